"""`mdh demo`: CRM, billing and ERP sources, Debezium, the hub and the API on one machine.

The parts and their order are ``mdh.demo.runner``'s; this module parses the options, shows
progress (a live rich table on a terminal, one plain line every few seconds otherwise),
turns Ctrl-C and SIGTERM into a clean stop, and prints the quality report at the end.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import threading
import time
from collections.abc import Iterator
from types import FrameType
from typing import Annotated

import typer
from rich.console import Console, Group
from rich.live import Live
from rich.table import Table
from rich.text import Text

from mdh.config import ConfigFileError
from mdh.demo.evaluation import QualityReport
from mdh.demo.runner import DemoOptions, DemoRunner, DemoStatus
from mdh.demo.schemas import DemoError
from mdh.embedded_pg import EmbeddedPostgresError
from mdh.runtime import handling_signals
from mdh.settings import Settings

console = Console()
err = Console(stderr=True)
logger = logging.getLogger("mdh.demo")

PLAIN_INTERVAL = 5.0
"""Seconds between progress lines when stdout is not a terminal."""


def demo(
    customers: Annotated[
        int | None,
        typer.Option(
            "--customers",
            "-n",
            min=1,
            help="Customers in the generated world (default: the seeded world's size, else 10000).",
        ),
    ] = None,
    seed: Annotated[
        int | None,
        typer.Option(help="Seed of the generated world and its traffic (default: 42)."),
    ] = None,
    rate: Annotated[
        float,
        typer.Option(min=0, help="Live traffic in transactions per second (0: none)."),
    ] = 5.0,
    duration: Annotated[
        float | None,
        typer.Option(
            min=0,
            help="Stop this many seconds after the snapshot reached the hub, once every"
            " change has (for tests and CI). Default: run until Ctrl-C.",
        ),
    ] = None,
    reset: Annotated[
        bool,
        typer.Option(
            "--reset",
            help="Start over: drop replication slots, publications and offsets, empty the hub"
            " and the sources.",
        ),
    ] = False,
    api: Annotated[bool, typer.Option(help="Serve the API.")] = True,
    publish: Annotated[
        bool, typer.Option(help="Write golden records back to CRM, billing and ERP.")
    ] = True,
    api_port: Annotated[int, typer.Option(min=1, max=65535, help="The API's port.")] = 8000,
) -> None:
    """Run the demo: three source systems feeding the hub, with live traffic.

    Starts PostgreSQL (or uses MDH_DATABASE_URL), creates and seeds the CRM, billing and ERP
    databases once, migrates the hub, captures the sources with Debezium into the hub, serves
    the API and runs live traffic. Ctrl-C stops every part; running it again resumes.
    """
    settings = Settings()
    _log_to_file(settings)
    options = DemoOptions(
        customers=customers,
        seed=seed,
        rate=rate,
        reset=reset,
        api=api,
        api_port=api_port,
        publish=publish,
    )
    runner = DemoRunner(settings, options, say=lambda line: console.print(line, highlight=False))
    stop = threading.Event()
    code = 0
    try:
        with _signals(runner, stop):
            runner.prepare()
            runner.start()
            _watch(runner, stop, duration)
            if duration is not None and not stop.is_set():
                console.print("draining: waiting for the last changes to reach the hub")
                if not runner.drain():
                    err.print("[yellow]warning:[/] not every change reached the hub in time")
    except KeyboardInterrupt:
        console.print("interrupted")
    except (DemoError, EmbeddedPostgresError, ConfigFileError) as exc:
        err.print(f"[bold red]error:[/] {exc}", highlight=False)
        code = 1
    finally:
        started = runner.phase != "starting"
        console.print("stopping: traffic, API, write-back, capture")
        runner.stop_parts()
        if code == 0 and started:
            _final_report(runner)
        if runner.stops_server:
            console.print("stopping PostgreSQL")
        runner.close()
    lingering = runner.lingering_java_threads()
    if lingering:
        # Everything of ours is closed and the engines flushed their offsets; the JVM would
        # wait forever at exit for these (see lingering_java_threads), so leave without it.
        logger.warning("leaving without waiting for JVM threads: %s", ", ".join(lingering))
        console.file.flush()
        err.file.flush()
        logging.shutdown()
        os._exit(code)
    if code:
        raise typer.Exit(code)


@contextlib.contextmanager
def _signals(runner: DemoRunner, stop: threading.Event) -> Iterator[None]:
    """Ctrl-C and SIGTERM: while preparing, interrupt (KeyboardInterrupt); once the parts run,
    set ``stop`` so the watch loop ends and ``close`` stops them in order."""

    def handler(signum: int, frame: FrameType | None) -> None:
        if runner.phase == "starting":
            raise KeyboardInterrupt
        stop.set()

    with handling_signals(handler):
        yield


def _log_to_file(settings: Settings) -> None:
    """Log to ``<home>/logs/demo.log``: the terminal belongs to the progress display."""
    log_dir = settings.home.expanduser().absolute() / "logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(log_dir / "demo.log", encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.addHandler(handler)
    root.setLevel(settings.log_level.upper())


def _watch(runner: DemoRunner, stop: threading.Event, duration: float | None) -> None:
    """Poll and show progress until ``stop`` or ``duration`` seconds of live traffic."""
    live_since: float | None = None
    interactive = sys.stdout.isatty()
    last_line = 0.0
    with contextlib.ExitStack() as stack:
        display = (
            stack.enter_context(Live(console=console, refresh_per_second=2, transient=False))
            if interactive
            else None
        )
        while not stop.is_set():
            status = runner.poll()
            if status.phase == "live" and live_since is None:
                live_since = time.monotonic()
                message = (
                    f"capture resumed from stored offsets; hub up to date after"
                    f" {status.snapshot_seconds:.1f}s; live traffic"
                    if runner.capture_resumed
                    else f"snapshot in the hub after {status.snapshot_seconds:.1f}s; live traffic"
                )
                (display.console if display else console).print(message, highlight=False)
            if display is not None:
                display.update(_render(status))
            elif time.monotonic() - last_line >= PLAIN_INTERVAL:
                console.print(_plain(status), highlight=False, soft_wrap=True)
                last_line = time.monotonic()
            if (
                duration is not None
                and live_since is not None
                and time.monotonic() - live_since >= duration
            ):
                return
            stop.wait(1.0)


def _rate(value: float | None) -> str:
    return "-" if value is None else f"{value:.1%}"


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:,.0f}"


def _render(status: DemoStatus) -> Group:
    table = Table(title=f"mdh demo: {status.phase} ({status.elapsed:,.0f}s)", expand=False)
    for column in ("source", "snapshot", "events", "events/s", "lag p50 ms", "p95 ms", "dead"):
        table.add_column(column, justify="left" if column == "source" else "right")
    for s in status.systems:
        snapshot = f"{min(s.applied, s.rows):,}/{s.rows:,}"
        if s.snapshot_done:
            snapshot += " ✓"
        table.add_row(
            s.name,
            snapshot,
            f"{s.events:,}",
            f"{s.events_per_second:,.0f}",
            _ms(s.lag_p50_ms),
            _ms(s.lag_p95_ms),
            str(s.dead_letters),
        )
    traffic = status.traffic
    lines = [
        Text(
            f"golden records {status.golden_records:,} from {status.source_records:,} source"
            f" records; review queue {status.open_review_tasks:,}"
        ),
        Text(
            f"duplicate rate: hub {_rate(status.duplicate_rate)}, truth"
            f" {_rate(status.true_duplicate_rate)}"
        ),
        Text(
            "traffic: "
            + ", ".join(
                f"{traffic.get(k, 0):,} {k}"
                for k in ("inserts", "updates", "amendments", "deletes", "duplicates", "arrivals")
            )
        ),
    ]
    if status.api_url:
        lines.append(Text(f"API {status.api_url}/docs; Ctrl-C stops the demo"))
    else:
        lines.append(Text("Ctrl-C stops the demo"))
    return Group(table, *lines)


def _plain(status: DemoStatus) -> str:
    systems = " ".join(
        f"{s.name}={min(s.applied, s.rows)}/{s.rows}"
        f"@{s.events_per_second:.0f}ev/s,p95={_ms(s.lag_p95_ms)}ms"
        for s in status.systems
    )
    traffic = sum(
        status.traffic.get(k, 0)
        for k in ("inserts", "updates", "amendments", "deletes", "duplicates", "arrivals")
    )
    return (
        f"[{status.elapsed:6.0f}s] {status.phase} {systems} golden={status.golden_records}"
        f" review={status.open_review_tasks} dup={_rate(status.duplicate_rate)}"
        f" truth_dup={_rate(status.true_duplicate_rate)} traffic={traffic}"
    )


def _final_report(runner: DemoRunner) -> None:
    """Measure the golden records against the truth, print it, and keep it in report.json."""
    try:
        report = runner.quality()
    except Exception as exc:
        err.print(f"[yellow]warning:[/] quality report failed: {exc}", highlight=False)
        return
    hub_rate = runner.hub_duplicate_rate()
    try:
        sync = runner.sync_latency()
    except Exception as exc:
        err.print(f"[yellow]warning:[/] sync latency failed: {exc}", highlight=False)
        sync = []
    path = runner.write_report(
        report,
        {
            "snapshot_seconds": runner.snapshot_seconds,
            "sync_latency": sync,
            "hub_report_duplicate_rate": hub_rate,
            "traffic": runner.traffic_counts.__dict__,
            "customers": runner.generator.customers if runner.generator else None,
        },
    )
    console.print(_quality_table(report, hub_rate))
    for target in sync:
        spans = target["source_to_target_ms"]
        if spans["count"]:
            console.print(
                f"write-back to {target['target']}: {spans['count']:,} live changes, source"
                f" commit to target p50 {spans['p50']:,.0f} ms, p95 {spans['p95']:,.0f} ms,"
                f" p99 {spans['p99']:,.0f} ms, max {spans['max']:,.0f} ms",
                highlight=False,
            )
    console.print(f"report: {path}", highlight=False)
    if report.worst_tables():
        console.print(
            "most errors between: "
            + "; ".join(
                f"{tables} ({false} false merges, {missed} missed)"
                for tables, false, missed in report.worst_tables(3)
            ),
            highlight=False,
        )


def _quality_table(report: QualityReport, hub_rate: float | None) -> Table:
    table = Table(title="golden records against the ground truth", show_header=False)
    table.add_column("measure")
    table.add_column("value", justify="right")
    rows = [
        ("source records (live)", f"{report.records:,}"),
        ("golden records / real parties", f"{report.golden_records:,} / {report.parties:,}"),
        ("precision of automatic merges", f"{report.precision:.4f}"),
        ("recall (automatic + review)", f"{report.recall:.4f}"),
        ("recall (automatic only)", f"{report.automatic_recall:.4f}"),
        ("review queue", f"{report.open_review_tasks:,} ({report.review_share:.2%})"),
        (
            "duplicate rate: hub / truth",
            f"{report.duplicate_rate:.2%} / {report.true_duplicate_rate:.2%}",
        ),
    ]
    if hub_rate is not None:
        rows.append(("duplicate rate (hub report)", f"{hub_rate:.2%}"))
    if report.invalid_records:
        rows.append(("invalid source records", f"{report.invalid_records:,}"))
    for row in rows:
        table.add_row(*row)
    return table


__all__ = ["demo"]
