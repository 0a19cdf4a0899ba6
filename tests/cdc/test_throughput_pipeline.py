"""Capture overlapped with apply (``DebeziumSource`` hand-off): at-least-once and per-row order.

The engine converts (and, for a staged callback, prepares) the next batches while the callback
applies one, and marks a batch processed only after the callback returned. A callback that fails leaves its batch and
those handed over behind it unmarked, so a restart delivers them again; the changes of one row
reach the callback in commit order in every run.

JPype allows one JVM per process: the engine runs in a subprocess, this same file run as a
script, which applies each batch to a sink table (one transaction per batch, like the hub) and
prints control events as JSON lines.
"""

from __future__ import annotations

import argparse
import json
import queue
import signal
import subprocess
import sys
import threading
import time
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import psycopg
import pytest

SYSTEM = "pipetest"
ROWS = 120
UPDATES = 3
SLOW_UPDATES = 20


def _worker_main() -> int:
    """The engine subprocess (see the module docstring)."""
    from cdc.debezium import DebeziumSource, PostgresSource
    from cdc.raw import RawMessage

    parser = argparse.ArgumentParser()
    parser.add_argument("--url", required=True)
    parser.add_argument("--state", type=Path, required=True)
    parser.add_argument("--run", type=int, required=True)
    parser.add_argument("--fail-at", type=int, default=0, help="the n-th row batch raises")
    parser.add_argument("--delay", type=float, default=0.0, help="seconds per batch applied")
    parser.add_argument("--staged", action="store_true", help="a StagedBatchCallback")
    args = parser.parse_args()

    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())

    def emit(event: str, **data: Any) -> None:
        print(json.dumps({"event": event, **data}), flush=True)

    sink = psycopg.connect(args.url)

    class Sink:
        """Parses on the engine's thread (``prepare``), writes on the apply thread."""

        batches = 0

        def prepare(self, batch: Sequence[RawMessage]) -> list[tuple[int, int, int]]:
            rows = []
            for message in batch:
                if message.value is None:
                    continue
                payload = json.loads(message.value)
                payload = payload.get("payload", payload)
                after = payload.get("after")
                if after is not None:
                    rows.append((after["id"], after["n"], payload["source"]["lsn"]))
            return rows

        def merge(
            self, prepared: Sequence[list[tuple[int, int, int]]]
        ) -> list[tuple[int, int, int]]:
            return [row for rows in prepared for row in rows]

        def apply_prepared(self, rows: list[tuple[int, int, int]]) -> None:
            if not rows:
                return
            self.batches += 1
            time.sleep(args.delay)  # the engine goes on capturing meanwhile
            if self.batches == args.fail_at:
                raise RuntimeError(f"injected failure in batch {self.batches}")
            with sink.cursor() as cursor:
                cursor.executemany(
                    "INSERT INTO applied (run, batch, id, n, lsn) VALUES (%s, %s, %s, %s, %s)",
                    [(args.run, self.batches, *row) for row in rows],
                )
            sink.commit()

    staged = Sink()

    def apply(batch: list[RawMessage]) -> None:
        staged.apply_prepared(staged.prepare(batch))

    source = PostgresSource.from_url(
        SYSTEM, args.url, ["public.item"], max_batch_size=25, heartbeat_interval_ms=0
    )
    engine = DebeziumSource(source, args.state, staged if args.staged else apply)
    engine.start()
    while not engine.wait_started(0.1):
        if not engine.running:
            break
    emit("started")
    try:
        while not stop.is_set():
            if engine.wait(0.1):
                emit("failed", error="the engine stopped by itself")
                return 1
    except Exception as exc:
        emit("failed", error=f"{type(exc).__name__}: {exc}")
        return 1
    engine.stop()
    emit("stopped", polls=engine.batches, applies=staged.batches)
    return 0


class _Worker:
    """The engine subprocess, and a thread that queues its control events."""

    def __init__(self, tmp_path: Path, url: str, run: int, *extra: str) -> None:
        self._stderr = (tmp_path / f"worker-{run}.err").open("wb")
        state = str(tmp_path / "state")
        self.process = subprocess.Popen(
            [sys.executable, __file__, "--url", url, "--state", state, "--run", str(run), *extra],
            stdout=subprocess.PIPE,
            stderr=self._stderr,
        )
        self._events: queue.Queue[bytes] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self._events.put(line)

    def event(self, timeout: float) -> dict[str, Any]:
        try:
            line = self._events.get(timeout=timeout)
        except queue.Empty:
            raise TimeoutError("the worker said nothing in time") from None
        event: dict[str, Any] = json.loads(line)
        return event

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)
        self._stderr.close()


def _applied(url: str) -> list[tuple[int, int, int, int]]:
    with psycopg.connect(url) as conn:
        return [
            (r[0], r[1], r[2], r[3])
            for r in conn.execute("SELECT run, batch, id, n FROM applied ORDER BY seq")
        ]


def _wait_until(condition: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out waiting for {what}")
        time.sleep(0.2)


@pytest.mark.slow
@pytest.mark.parametrize("staged", [False, True], ids=["callback", "staged"])
def test_failed_batch_and_those_behind_it_come_again_in_row_order(
    pg_server: Any, tmp_path: Path, staged: bool
) -> None:
    from cdc.debezium import PostgresSource, reset

    database = "cdc_pipeline"
    pg_server.ensure_database(database)
    url = pg_server.url(database, driver="postgresql")
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("DROP TABLE IF EXISTS item")
        conn.execute("DROP TABLE IF EXISTS applied")
        conn.execute("CREATE TABLE item (id integer PRIMARY KEY, n integer NOT NULL)")
        conn.execute(
            "CREATE TABLE applied (seq bigserial PRIMARY KEY, run integer, batch integer,"
            " id integer, n integer, lsn bigint)"
        )
    reset(PostgresSource.from_url(SYSTEM, url, ["public.item"]), tmp_path / "state")

    mode = ["--staged"] if staged else []
    first = _Worker(tmp_path, url, 1, "--fail-at", "4", "--delay", "0.3", *mode)
    try:
        assert first.event(120)["event"] == "started"
        with psycopg.connect(url) as conn:
            for start in range(1, ROWS + 1, 10):
                conn.execute(
                    "INSERT INTO item SELECT g, 0 FROM generate_series(%s::integer, %s::integer) g",
                    (start, start + 9),
                )
                conn.commit()
            for _ in range(UPDATES):
                for start in range(1, ROWS + 1, 20):
                    conn.execute(
                        "UPDATE item SET n = n + 1 WHERE id BETWEEN %s::integer AND %s::integer",
                        (start, start + 19),
                    )
                    conn.commit()
        failed = first.event(120)
        assert failed["event"] == "failed", failed
        assert "injected failure in batch 4" in failed["error"]
        assert first.process.wait(30) == 1
    finally:
        first.close()
    # Nothing of the failed batch was applied, and nothing handed over behind it either.
    assert {batch for run, batch, _, _ in _applied(url)} == {1, 2, 3}

    expected = {(i, n) for i in range(1, ROWS + 1) for n in range(UPDATES + 1)}
    second = _Worker(tmp_path, url, 2, "--delay", "0.2", *mode)
    try:
        assert second.event(120)["event"] == "started"
        _wait_until(
            lambda: {(i, n) for _, _, i, n in _applied(url)} >= expected,
            120,
            "every change applied",
        )
        # Single-row commits while each batch takes 0.2 s to apply: the polls that waited
        # meanwhile go in together.
        with psycopg.connect(url, autocommit=True) as conn:
            for i in range(1, SLOW_UPDATES + 1):
                conn.execute("UPDATE item SET n = n + 1 WHERE id = %s::integer", (i,))
                time.sleep(0.02)
        expected |= {(i, UPDATES + 1) for i in range(1, SLOW_UPDATES + 1)}
        _wait_until(
            lambda: {(i, n) for _, _, i, n in _applied(url)} >= expected,
            60,
            "the single-row commits applied",
        )
        second.process.send_signal(signal.SIGTERM)
        stopped = second.event(60)
        assert stopped["event"] == "stopped"
        assert second.process.wait(30) == 0
    finally:
        second.close()
    assert stopped["polls"] > stopped["applies"], stopped

    applied = _applied(url)
    # At least once: every change of every row, those of the failed batch included.
    assert {(i, n) for _, _, i, n in applied} == expected
    assert {(i, n) for run, _, i, n in applied if run == 2} - {
        (i, n) for run, _, i, n in applied if run == 1
    }, "the second run delivered what the first did not apply"
    # Per-row order within each run: a row's changes arrive in commit order.
    seen: dict[tuple[int, int], list[int]] = defaultdict(list)
    for run, _, i, n in applied:
        seen[(run, i)].append(n)
    for (run, i), values in seen.items():
        assert values == sorted(values), (run, i, values)
        assert len(set(values)) == len(values), (run, i, values)


if __name__ == "__main__":
    sys.exit(_worker_main())
