"""`mdh report duplicates`: the duplicate-rate report as a table, JSON, CSV or HTML."""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from html import escape
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from api.ui import render_report
from hub.services.reports import DuplicateReport, ReportQuery, TrendBucket, frame_records
from mdh.commands.serve import build_hub, load_mdh_config
from mdh.settings import Settings

app = typer.Typer(help="Reports over the golden-record store.")
console = Console()


class ReportFormat(StrEnum):
    TABLE = "table"
    JSON = "json"
    CSV = "csv"
    HTML = "html"


def report_json(report: DuplicateReport) -> str:
    return json.dumps(
        {
            "generated_at": report.generated_at.isoformat(),
            "since": report.query.since.isoformat(),
            "bucket": report.query.bucket.value,
            "sla_hours": report.query.sla.total_seconds() / 3600,
            "sections": report.records(),
        },
        indent=2,
    )


def report_html(report: DuplicateReport) -> str:
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        f"<title>mdh duplicate rates {escape(report.generated_at.isoformat())}</title>"
        "<style>body{font:14px system-ui,sans-serif;margin:1.5em}table{border-collapse:collapse}"
        "td,th{border-bottom:1px solid #ddd;padding:.3em .6em;text-align:left}"
        ".kpis{display:flex;gap:1em}.kpi{border:1px solid #ddd;padding:.5em}.kpi b{display:block;"
        "font-size:1.5em}</style></head><body>" + render_report(report) + "</body></html>\n"
    )


_SYNC_COLUMNS = {
    "target": "target",
    "delivered": "delivered",
    "pending": "pending",
    "dead": "dead",
    "skipped": "skipped",
    "source_to_target_p50_ms": "source->target p50 ms",
    "source_to_target_p95_ms": "p95",
    "source_to_target_p99_ms": "p99",
    "golden_to_target_p50_ms": "golden->target p50 ms",
    "golden_to_target_p95_ms": "p95",
    "golden_to_target_p99_ms": "p99",
    "oldest_pending_seconds": "oldest pending s",
}
"""The sync-latency columns a terminal has room for (JSON, CSV and HTML carry them all)."""


def _print_tables(report: DuplicateReport) -> None:
    for name, frame in report.frames.items():
        records = frame_records(frame)
        columns = {str(c): str(c) for c in frame.columns}
        if name == "sync_latency":
            columns = _SYNC_COLUMNS
        table = Table(*columns.values(), title=name.replace("_", " "))
        for record in records:
            table.add_row(*[_cell(record[c]) for c in columns])
        console.print(table)


def _cell(value: object) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


@app.command()
def duplicates(
    output_format: Annotated[
        ReportFormat, typer.Option("--format", help="table, json, csv or html.")
    ] = ReportFormat.TABLE,
    days: Annotated[int, typer.Option(help="Window: the last N days.", min=1)] = 30,
    bucket: Annotated[TrendBucket, typer.Option(help="Trend bucket.")] = TrendBucket.DAY,
    sla_hours: Annotated[float, typer.Option(help="Review SLA.", min=0.01)] = 48.0,
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write to this file.")
    ] = None,
) -> None:
    """Duplicate rates overall, per system and over time; coverage; queue vs SLA; sync latency."""
    settings = Settings()
    hub = build_hub(settings, load_mdh_config(settings), pool_size=1)
    report = hub.duplicate_report(
        ReportQuery(
            since=datetime.now(UTC) - timedelta(days=days),
            bucket=bucket,
            sla=timedelta(hours=sla_hours),
        )
    )
    if output_format is ReportFormat.TABLE and output is None:
        _print_tables(report)
        return
    if output_format is ReportFormat.JSON:
        text = report_json(report) + "\n"
    elif output_format is ReportFormat.CSV:
        text = report.long().to_csv(index=False)
    elif output_format is ReportFormat.HTML:
        text = report_html(report)
    else:
        console_file = Console(record=True, width=160)
        for name, frame in report.frames.items():
            console_file.print(name)
            console_file.print(frame.to_string(index=False))
        text = console_file.export_text()
    if output is None:
        sys.stdout.write(text)
    else:
        output.write_text(text, encoding="utf-8")
