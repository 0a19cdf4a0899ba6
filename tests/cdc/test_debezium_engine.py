"""The real embedded Debezium engine against the session's PostgreSQL: snapshot, then streaming,
a clean stop and a reset that leaves no slot, publication or offsets behind.

JPype allows one JVM per process, so the engine runs in a subprocess (engine_worker.py) that
prints what it captures as replay lines; this process parses and maps them as the hub would.
"""

from __future__ import annotations

import json
import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from cdc.debezium import PostgresSource, reset
from cdc.envelope import Operation, parse_message
from cdc.mapping import ChangeMapper, parse_source_mappings
from cdc.replay import parse_replay_line
from hub.model import ChangeOp, SourceChange
from mdh.embedded_pg import EmbeddedPostgres

pytestmark = pytest.mark.slow

WORKER = Path(__file__).with_name("engine_worker.py")
SYSTEM = "enginetest"

MAPPINGS = {
    "sources": {
        SYSTEM: {
            "tables": {
                "public.customer": {
                    "primary_key": "id",
                    "fields": {
                        "legal_name": "company_name",
                        "emails": "email",
                        "credit_limit": {"from": "credit_limit", "type": "decimal"},
                        "date_of_birth": {"from": "founded", "type": "date"},
                    },
                }
            }
        }
    }
}


class Worker:
    """The engine subprocess and a thread that turns its stdout into parsed lines."""

    def __init__(self, args: list[str], cwd: Path, stderr: Path) -> None:
        self._stderr = stderr.open("wb")
        self.process = subprocess.Popen(
            [sys.executable, str(WORKER), *args],
            cwd=cwd,
            stdout=subprocess.PIPE,
            stderr=self._stderr,
        )
        self.lines: queue.Queue[bytes] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.put(line)

    def next_line(self, deadline: float) -> bytes:
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError("the engine worker said nothing in time")
        try:
            return self.lines.get(timeout=left)
        except queue.Empty:
            raise TimeoutError("the engine worker said nothing in time") from None

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)
        self._stderr.close()


@pytest.fixture
def customer_db(pg_server: EmbeddedPostgres) -> Iterator[str]:
    database = "cdc_engine"
    pg_server.ensure_database(database)
    url = pg_server.url(database, driver="postgresql")
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("DROP TABLE IF EXISTS customer")
        conn.execute(
            "CREATE TABLE customer (id integer PRIMARY KEY, company_name text, email text,"
            " credit_limit numeric(12, 2), founded date, notes text)"
        )
        conn.execute(
            "INSERT INTO customer VALUES"
            " (1, 'Acme GmbH', 'ap@acme.example', 12500.00, '1999-04-01', NULL),"
            " (2, 'Globex', 'ap@globex.example', 0.01, NULL, NULL),"
            " (3, 'Initech', NULL, NULL, '1988-02-29', NULL)"
        )
    return url


def _slot_and_publication(url: str, name: str) -> tuple[bool, bool]:
    with psycopg.connect(url, autocommit=True) as conn:
        slot = conn.execute(
            "SELECT 1 FROM pg_replication_slots WHERE slot_name = %s", (name,)
        ).fetchone()
        publication = conn.execute(
            "SELECT 1 FROM pg_publication WHERE pubname = %s", (name,)
        ).fetchone()
    return slot is not None, publication is not None


def test_snapshot_then_streaming_then_clean_stop_and_reset(
    customer_db: str, tmp_path: Path
) -> None:
    url = customer_db
    source = PostgresSource.from_url(SYSTEM, url, ["public.customer"])
    state, cwd = tmp_path / "state", tmp_path / "cwd"
    cwd.mkdir()
    reset(source, state)  # a leftover slot from an aborted earlier run must not interfere
    mapper = ChangeMapper(parse_source_mappings(MAPPINGS))
    ops: list[Operation] = []

    def changes_until(count: int, deadline: float) -> list[SourceChange]:
        got: list[SourceChange] = []
        while len(got) < count:
            record = json.loads(worker.next_line(deadline))
            assert "event" not in record or record["event"] == "started", record
            if "event" in record:
                continue
            envelope = parse_message(parse_replay_line(json.dumps(record).encode()))
            ops.append(envelope.op)
            change = mapper.map_change(envelope)
            if change is not None:
                got.append(change)
        return got

    began = time.monotonic()
    worker = Worker(
        ["--url", url, "--name", SYSTEM, "--table", "public.customer", "--state", str(state)],
        cwd=cwd,
        stderr=tmp_path / "worker.err",
    )
    try:
        started: dict[str, Any] = json.loads(worker.next_line(began + 120))
        assert started["event"] == "started", started
        snapshot = changes_until(3, time.monotonic() + 60)
        snapshot_seconds = time.monotonic() - began
        assert [c.key.pk for c in snapshot] == ["1", "2", "3"]
        assert all(c.op is ChangeOp.UPSERT for c in snapshot)
        assert ops[:3] == [Operation.READ] * 3
        assert snapshot[0].attributes == {
            "legal_name": "Acme GmbH",
            "emails": ["ap@acme.example"],
            "credit_limit": "12500.00",
            "date_of_birth": "1999-04-01",
        }

        committed = time.monotonic()
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("INSERT INTO customer VALUES (4, 'Umbrella', NULL, 99.5, NULL, NULL)")
            conn.execute("UPDATE customer SET company_name = 'Acme SE' WHERE id = 1")
            conn.execute("DELETE FROM customer WHERE id = 2")
        streamed = changes_until(3, time.monotonic() + 30)
        stream_seconds = time.monotonic() - committed
        assert [(c.op, c.key.pk) for c in streamed] == [
            (ChangeOp.UPSERT, "4"),
            (ChangeOp.UPSERT, "1"),
            (ChangeOp.DELETE, "2"),
        ]
        assert streamed[0].attributes["credit_limit"] == "99.50"
        assert streamed[1].attributes["legal_name"] == "Acme SE"
        lsns = [c.position.lsn or 0 for c in streamed]
        assert lsns == sorted(lsns)
        assert streamed[0].position.committed_at > snapshot[0].position.committed_at

        stopping = time.monotonic()
        worker.process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 30
        while True:
            record = json.loads(worker.next_line(deadline))
            if record.get("event") == "stopped":
                break
            assert "event" not in record, record  # late heartbeats are fine, failures are not
        assert worker.process.wait(30) == 0
        stop_seconds = time.monotonic() - stopping
    finally:
        worker.close()

    print(
        f"\nengine: JVM+task start {started['seconds']:.1f}s (Java {started['java']},"
        f" {started['origin']}), snapshot of 3 rows by {snapshot_seconds:.1f}s,"
        f" 3 streamed changes in {stream_seconds * 1000:.0f} ms, stop {stop_seconds:.1f}s"
    )
    # Quiet: nothing from log4j on the console (a Debezium warning forwarded to Python's
    # logging, such as an LSN flush interrupted by the stop, may be there, marked as such),
    # nothing written to the working directory.
    console = (tmp_path / "worker.err").read_text().splitlines()
    assert all(line.startswith("python-log: [io.debezium") for line in console), console
    assert list(cwd.iterdir()) == []
    assert (state / "logs" / "debezium.log").stat().st_size > 0
    assert (state / "offsets.dat").exists()
    # The slot and publication outlive the engine (so a restart resumes) until reset.
    assert _slot_and_publication(url, source.slot_name) == (True, True)
    result = reset(source, state)
    assert (result.slot_dropped, result.publication_dropped, result.offsets_deleted) == (
        True,
        True,
        True,
    )
    assert _slot_and_publication(url, source.slot_name) == (False, False)
    assert not (state / "offsets.dat").exists()
