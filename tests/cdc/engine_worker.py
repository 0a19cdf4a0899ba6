"""Run one embedded Debezium engine in its own process and print what it captures (test helper).

JPype starts one JVM per process and never a second one, so tests run the engine here, as a
subprocess. Every delivered message goes to stdout as a JSONL replay line (``cdc.replay``
format); control events are JSON lines with an ``"event"`` key:

    {"event": "started", "seconds": 4.2, "java": "...", "origin": "PATH"}
    {"event": "stopped"}                 after SIGTERM/SIGINT: clean stop, exit 0
    {"event": "failed", "error": "..."}  the engine failed: exit 1

    python tests/cdc/engine_worker.py --url postgresql://... --name crm \
        --table public.customer --state DIR [--bundled-java] [--log-dir DIR]
"""

from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any

from cdc.debezium import DebeziumSource, PostgresSource
from cdc.java import find_java
from cdc.raw import RawMessage
from cdc.replay import format_replay_line

_out_lock = threading.Lock()


def _emit_line(line: bytes) -> None:
    with _out_lock:
        sys.stdout.buffer.write(line)
        sys.stdout.buffer.flush()


PYTHON_LOG = "python-log: "
"""The prefix of every line the worker's Python logging writes to stderr."""


def _emit_event(event: str, **data: Any) -> None:
    _emit_line(json.dumps({"event": event, **data}).encode() + b"\n")


def _print_batch(batch: list[RawMessage]) -> None:
    _emit_line(b"".join(format_replay_line(message) for message in batch))


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", required=True)
    parser.add_argument("--name", required=True)
    parser.add_argument("--table", action="append", required=True)
    parser.add_argument("--state", type=Path, required=True)
    parser.add_argument("--log-dir", type=Path)
    parser.add_argument("--bundled-java", action="store_true")
    args = parser.parse_args()
    # Debezium's WARN and above reach Python's logging (cdc.java); mark them, so the test can
    # tell them from anything log4j might print on the console itself.
    logging.basicConfig(stream=sys.stderr, level=logging.WARNING, format=PYTHON_LOG + "%(message)s")

    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())

    java = find_java(use_system=not args.bundled_java)
    source = PostgresSource.from_url(args.name, args.url, args.table)
    engine = DebeziumSource(source, args.state, _print_batch, log_dir=args.log_dir, java=java)
    began = time.monotonic()
    engine.start()
    while not engine.wait_started(0.1):
        if not engine.running or stop.is_set():
            break
    _emit_event(
        "started",
        seconds=round(time.monotonic() - began, 3),
        java=".".join(map(str, java.version)),
        origin=java.origin,
    )
    try:
        while not stop.is_set():
            if engine.wait(0.1):
                _emit_event("failed", error="the engine stopped by itself")
                return 1
    except Exception as exc:
        _emit_event("failed", error=f"{type(exc).__name__}: {exc}")
        return 1
    engine.stop()
    _emit_event("stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
