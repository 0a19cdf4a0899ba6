"""`mdh demo` end to end at scale: snapshot to golden records, lag under traffic, peak memory.

Runs the real ``mdh demo`` command as a subprocess in a fresh ``MDH_HOME`` and watches it:

1. *Snapshot to golden records.* ``--customers`` (100,000 by default) are generated into the
   CRM, billing and ERP databases; the time from the command's start to the moment every
   source row is a linked source record in the hub (matched, golden record written: apply is
   one transaction per batch) is ``snapshot_seconds`` in the demo's ``status.json``. Seeding
   the sources is timed apart (it is not capture).
2. *Steady state.* Live traffic at ``--rate`` for ``--duration`` seconds; commit-to-golden lag
   (source commit to hub commit, p50/p95 over the streamed changes) and events per second.
3. *Peak memory* of each process: the demo process (Python, the JVM with the three Debezium
   engines, the API) and PostgreSQL (postmaster and backends; PSS, so shared buffers are
   counted once), sampled every half second.
4. *Quality* of the golden records against the truth (``mdh.demo.evaluation``).
5. *Comparison point:* the raw Debezium embedded engine snapshotting the same three databases
   with a no-op handler (its own slots, dropped afterwards), and the ratio.

When the snapshot does not finish within ``--max-seconds`` the demo is interrupted (Ctrl-C)
and the rate reached so far, and the projected time, are printed instead.

    .venv/bin/python bench/end_to_end.py                          # 100k customers (long)
    .venv/bin/python bench/end_to_end.py --customers 10000 --duration 60
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil

from cdc.debezium import DebeziumSource, PostgresSource
from cdc.debezium import reset as reset_capture
from cdc.raw import RawMessage
from mdh.demo.generator import count_rows
from mdh.demo.schemas import SOURCE_TABLES, SYSTEMS, DemoDatabases
from mdh.embedded_pg import EmbeddedPostgres


@dataclass
class MemoryPeaks:
    """Peak memory (MiB) per process, sampled while the demo runs."""

    demo_rss: float = 0.0
    demo_pss: float = 0.0
    postgres_total_pss: float = 0.0
    postgres_largest_backend_pss: float = 0.0
    samples: int = 0


@dataclass
class Watch:
    started: float
    statuses: list[tuple[float, dict[str, Any]]] = field(default_factory=list)
    memory: MemoryPeaks = field(default_factory=MemoryPeaks)


def _mib(value: float) -> float:
    return value / (1024 * 1024)


def _pss(process: psutil.Process) -> float:
    try:
        return float(process.memory_full_info().pss)
    except (psutil.Error, AttributeError):
        try:
            return float(process.memory_info().rss)
        except psutil.Error:
            return 0.0


def _postgres_processes(home: Path) -> list[psutil.Process]:
    try:
        pid = int((home / "pg" / "data" / "postmaster.pid").read_text().split()[0])
        postmaster = psutil.Process(pid)
        return [postmaster, *postmaster.children(recursive=True)]
    except (OSError, ValueError, IndexError, psutil.Error):
        return []


def _sample_memory(demo: psutil.Process, home: Path, peaks: MemoryPeaks) -> None:
    try:
        peaks.demo_rss = max(peaks.demo_rss, _mib(demo.memory_info().rss))
    except psutil.Error:
        return
    peaks.demo_pss = max(peaks.demo_pss, _mib(_pss(demo)))
    backends = [_pss(p) for p in _postgres_processes(home)]
    if backends:
        peaks.postgres_total_pss = max(peaks.postgres_total_pss, _mib(sum(backends)))
        peaks.postgres_largest_backend_pss = max(
            peaks.postgres_largest_backend_pss, _mib(max(backends))
        )
    peaks.samples += 1


def run_demo(home: Path, args: argparse.Namespace) -> tuple[Watch, int, str]:
    """Run ``mdh demo`` and watch it until it exits; Ctrl-C it past ``--max-seconds``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MDH_")}
    env["MDH_HOME"] = str(home)
    command = [
        sys.executable,
        "-m",
        "mdh",
        "demo",
        "--customers",
        str(args.customers),
        "--rate",
        str(args.rate),
        "--duration",
        str(args.duration),
        "--api-port",
        str(args.api_port),
    ]
    log = (home / "bench-demo.log").open("w")
    process = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
    demo = psutil.Process(process.pid)
    watch = Watch(started=time.monotonic())
    status_file = home / "demo" / "status.json"
    last_written = ""
    interrupted = False
    while process.poll() is None:
        _sample_memory(demo, home, watch.memory)
        try:
            status = json.loads(status_file.read_text())
        except (OSError, ValueError):
            status = None
        if status is not None and status.get("written_at") != last_written:
            last_written = status["written_at"]
            watch.statuses.append((time.monotonic() - watch.started, status))
            if len(watch.statuses) % 20 == 0:
                done = sum(min(s["applied"], s["rows"]) for s in status["systems"])
                total = sum(s["rows"] for s in status["systems"])
                print(
                    f"  {time.monotonic() - watch.started:6.0f}s {status['phase']}:"
                    f" {done:,}/{total:,} rows in the hub",
                    flush=True,
                )
        if not interrupted and time.monotonic() - watch.started > args.max_seconds:
            print(f"  past --max-seconds {args.max_seconds}: interrupting the demo", flush=True)
            process.send_signal(signal.SIGINT)
            interrupted = True
        time.sleep(0.5)
    log.close()
    return watch, process.returncode, (home / "bench-demo.log").read_text()


def raw_snapshot(databases: DemoDatabases, home: Path, rows: dict[str, int]) -> float:
    """Seconds for the raw Debezium engine (no-op handler) to read every row of the three
    sources, all three side by side as the demo runs them."""
    seen = dict.fromkeys(SYSTEMS, 0)
    lock = threading.Lock()
    done = threading.Event()

    def handler(system: str) -> Any:
        def on_batch(batch: list[RawMessage]) -> None:
            with lock:
                seen[system] += sum(1 for m in batch if m.value is not None)
                if all(seen[s] >= rows[s] for s in SYSTEMS):
                    done.set()

        return on_batch

    sources = []
    tables = {s: tuple(f"public.{t.name}" for t in SOURCE_TABLES if t.system == s) for s in SYSTEMS}
    for system in SYSTEMS:
        source = PostgresSource.from_url(f"raw{system}", databases.url(system), tables[system])
        sources.append(
            DebeziumSource(
                source, home / "raw" / system, handler(system), log_dir=home / "raw" / "logs"
            )
        )
    began = time.monotonic()
    for source in sources:
        source.start()
    finished = done.wait(3600)
    seconds = time.monotonic() - began
    for source in sources:
        source.stop()
    for source in sources:
        reset_capture(source.source, source.state_dir, force=True)
    return seconds if finished else float("nan")


def _lag(statuses: list[tuple[float, dict[str, Any]]]) -> dict[str, Any]:
    live = [s for _, s in statuses if s["phase"] == "live"]
    if not live:
        return {}
    last = live[-1]
    return {
        s["name"]: {
            "p50_ms": s["lag_p50_ms"],
            "p95_ms": s["lag_p95_ms"],
            "events_per_second": s["events_per_second"],
        }
        for s in last["systems"]
    }


def _snapshot_rate(statuses: list[tuple[float, dict[str, Any]]]) -> tuple[float, int, int]:
    """Rows per second into the hub during the snapshot, rows done and rows in total."""
    points = [
        (t, sum(min(x["applied"], x["rows"]) for x in s["systems"]))
        for t, s in statuses
        if s["phase"] == "snapshot" or s.get("snapshot_seconds")
    ]
    total = sum(x["rows"] for x in statuses[-1][1]["systems"]) if statuses else 0
    moving = [(t, n) for t, n in points if n > 0]
    if len(moving) < 2:
        return 0.0, points[-1][1] if points else 0, total
    (t0, n0), (t1, n1) = moving[0], moving[-1]
    return (n1 - n0) / max(t1 - t0, 1e-9), n1, total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--rate", type=float, default=20.0, help="traffic transactions/s")
    parser.add_argument("--duration", type=float, default=60.0, help="seconds of traffic")
    parser.add_argument("--max-seconds", type=float, default=3600.0)
    parser.add_argument("--api-port", type=int, default=18799)
    parser.add_argument("--no-raw", action="store_true", help="skip the raw Debezium run")
    parser.add_argument("--keep", action="store_true", help="keep the MDH_HOME afterwards")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()

    home = Path(tempfile.mkdtemp(prefix="mdh-bench-e2e-"))
    print(f"mdh demo, {args.customers:,} customers, in {home} ({psutil.cpu_count()} cores)")
    try:
        watch, code, output = run_demo(home, args)
        statuses = watch.statuses
        final = statuses[-1][1] if statuses else {}
        report_path = home / "demo" / "report.json"
        report = json.loads(report_path.read_text()) if report_path.exists() else {}
        seeded = next((line for line in output.splitlines() if line.startswith("seeded")), "")
        rate, done, total = _snapshot_rate(statuses)
        snapshot_seconds = final.get("snapshot_seconds")
        results: dict[str, Any] = {
            "customers": args.customers,
            "exit_code": code,
            "seeding": seeded,
            "source_rows": total,
            "snapshot_seconds": snapshot_seconds,
            "snapshot_rows_per_second": round(rate, 1),
            "rows_in_hub_at_end_of_snapshot_phase": done,
            "projected_snapshot_seconds": round(total / rate) if rate else None,
            "lag": _lag(statuses),
            "memory_mib": {
                "demo_process_rss_peak": round(watch.memory.demo_rss),
                "demo_process_pss_peak": round(watch.memory.demo_pss),
                "postgres_total_pss_peak": round(watch.memory.postgres_total_pss),
                "postgres_largest_process_pss_peak": round(
                    watch.memory.postgres_largest_backend_pss
                ),
            },
            "quality": report.get("quality"),
            "worst_tables": report.get("worst_tables"),
            "traffic": report.get("traffic"),
        }
        if not args.no_raw and total:
            server = EmbeddedPostgres(home / "pg")
            server.start()
            try:
                databases = DemoDatabases.on_server(server)
                rows = dict.fromkeys(SYSTEMS, 0)
                for table, count in count_rows(databases).items():
                    rows[table.split(".", 1)[0]] += count
                raw = raw_snapshot(databases, home, rows)
            finally:
                server.stop()
            results["raw_debezium_snapshot_seconds"] = round(raw, 1)
            if snapshot_seconds:
                results["ratio_mdh_to_raw"] = round(snapshot_seconds / raw, 1)
        print(json.dumps(results, indent=2))
        if args.json is not None:
            args.json.write_text(json.dumps(results, indent=2))
        if code != 0:
            print(output[-3000:], file=sys.stderr)
    finally:
        if args.keep:
            print(f"kept {home}")
        else:
            EmbeddedPostgres(home / "pg").stop()
            shutil.rmtree(home, ignore_errors=True)


if __name__ == "__main__":
    main()
