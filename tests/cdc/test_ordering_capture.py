"""Per-row order of a real Debezium capture: an update committed as the snapshot starts.

A real embedded engine (Debezium 3) snapshots two tables and streams on. Every snapshot read
carries the snapshot's LSN (its consistent point, where the replication slot became
consistent) and one time for the whole snapshot, taken when its transaction starts: later
than the consistent point. An update committed in between is not in the snapshot and is
streamed with an LSN at or past the snapshot's, but with a commit time before the reads'.
Ordered by commit time first, as the hub did, it looked older than the snapshot row and was
ignored: a lost update, whether one engine applies the stream or two Kafka workers of one
consumer group apply one topic each.

The run also pins down what Debezium puts in ``source`` (``lsn``, ``txId``, ``sequence``,
``ts_us``) for snapshot reads and streamed changes, which ``SourcePosition.supersedes``
relies on. JPype allows one JVM per process, so the engine runs in engine_worker.py.
"""

from __future__ import annotations

import json
import queue
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import psycopg
import pytest
import sqlalchemy as sa
from cdc_testkit import empty_hub, make_hub
from sqlalchemy.engine import Engine

from cdc.apply import ApplyLoop
from cdc.debezium import PostgresSource, reset
from cdc.envelope import ChangeEnvelope, Operation, parse_message
from cdc.mapping import ChangeMapper, parse_source_mappings
from cdc.raw import RawMessage
from cdc.replay import parse_replay_line
from hub.model import BatchPosition
from mdh.embedded_pg import EmbeddedPostgres

pytestmark = pytest.mark.slow

WORKER = Path(__file__).with_name("engine_worker.py")
SYSTEM = "ordering"
ACCOUNTS = 200
ATTEMPTS = 3
"""Captures tried until the update lands between the consistent point and the snapshot's
start (a window of a few hundred milliseconds, hit by polling the slot every 2 ms)."""

_FIELDS = {"legal_name": "name", "emails": "email"}
MAPPINGS = {
    "sources": {
        SYSTEM: {
            "tables": {
                "public.account": {"primary_key": "id", "fields": _FIELDS},
                "public.contact": {"primary_key": "id", "fields": _FIELDS},
            }
        }
    }
}
TOPICS = (f"{SYSTEM}.public.account", f"{SYSTEM}.public.contact")


class EngineProcess:
    """engine_worker.py in a subprocess; its stdout lines, parsed, on a queue."""

    def __init__(self, url: str, state: Path, cwd: Path, stderr: Path) -> None:
        self._stderr = stderr.open("wb")
        self.process = subprocess.Popen(
            [
                sys.executable,
                str(WORKER),
                "--url",
                url,
                "--name",
                SYSTEM,
                "--state",
                str(state),
                "--table",
                "public.account",
                "--table",
                "public.contact",
            ],
            cwd=cwd,
            stdout=subprocess.PIPE,
            stderr=self._stderr,
        )
        self.lines: queue.Queue[dict[str, Any]] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.put(json.loads(line))

    def next(self, deadline: float) -> dict[str, Any]:
        try:
            return self.lines.get(timeout=max(0.0, deadline - time.monotonic()))
        except queue.Empty:
            raise TimeoutError("the engine worker said nothing in time") from None

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
        self._stderr.close()


def _seed(url: str) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("DROP TABLE IF EXISTS account, contact")
        for table in ("account", "contact"):
            conn.execute(f"CREATE TABLE {table} (id integer PRIMARY KEY, name text, email text)")
        conn.execute(
            "INSERT INTO account SELECT i, 'Account ' || i, 'ap' || i || '@account.example'"
            " FROM generate_series(1, %s) AS i",
            (ACCOUNTS,),
        )
        conn.execute(
            "INSERT INTO contact VALUES (1, 'Umbrella Corp', 'info@umbrella.example'),"
            " (2, 'Globex', 'ap@globex.example'), (3, 'Initech', 'hello@initech.example')"
        )


def _slot_consistent(url: str, slot: str) -> bool:
    """The slot exists and has its consistent point (the snapshot's LSN): creating it is over."""
    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute(
            "SELECT confirmed_flush_lsn IS NOT NULL FROM pg_replication_slots WHERE slot_name = %s",
            (slot,),
        ).fetchone()
    return row is not None and bool(row[0])


def _wal_lsn(conn: psycopg.Connection[Any]) -> int:
    row = conn.execute("SELECT (pg_current_wal_lsn() - '0/0')::bigint").fetchone()
    assert row is not None
    return int(row[0])


def _capture(url: str, tmp_path: Path) -> tuple[list[RawMessage], dict[str, int]]:
    """Snapshot and stream; the messages, and WAL positions the source reported meanwhile."""
    _seed(url)
    source = PostgresSource.from_url(SYSTEM, url, ["public.account", "public.contact"])
    state, cwd = tmp_path / "state", tmp_path / "cwd"
    cwd.mkdir()
    reset(source, state)
    wal: dict[str, int] = {}
    messages: list[RawMessage] = []
    updated: set[tuple[str, int]] = set()
    engine = EngineProcess(url, state, cwd, tmp_path / "worker.err")

    def until(deadline: float, *wanted: tuple[str, int]) -> None:
        while not updated.issuperset(wanted):
            line = engine.next(deadline)
            assert "event" not in line or line["event"] == "started", line
            if "event" in line:
                continue
            message = parse_replay_line(json.dumps(line).encode())
            messages.append(message)
            envelope = parse_message(message)
            if envelope.op is Operation.UPDATE:
                assert envelope.source is not None
                assert envelope.after is not None
                updated.add((envelope.source.table, envelope.after["id"]))

    try:
        deadline = time.monotonic() + 180
        # 1. As soon as the slot is consistent (before the snapshot's transaction starts),
        # a contact is updated.
        while not _slot_consistent(url, source.slot_name):
            assert time.monotonic() < deadline, "the replication slot never became consistent"
            assert engine.process.poll() is None, (tmp_path / "worker.err").read_text()
            time.sleep(0.002)
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("UPDATE contact SET name = 'Umbrella Corporation' WHERE id = 1")
        until(deadline, ("contact", 1))
        # 2. Two interleaved transactions: A writes first and commits after B.
        with psycopg.connect(url) as a, psycopg.connect(url, autocommit=True) as b:
            a.execute("UPDATE contact SET email = 'ap@globex.test' WHERE id = 2")
            b.execute("UPDATE account SET name = 'Account One' WHERE id = 1")
            wal["b_committed"] = _wal_lsn(b)
            a.commit()
        until(deadline, ("contact", 2), ("account", 1))
    finally:
        engine.stop()
        reset(source, state)
    return messages, wal


def _row_events(messages: list[RawMessage]) -> list[ChangeEnvelope]:
    return [e for e in map(parse_message, messages) if e.op.is_row_change]


def _the_update(events: list[ChangeEnvelope], table: str, pk: int) -> ChangeEnvelope:
    (event,) = [
        e
        for e in events
        if e.op is Operation.UPDATE
        and e.source is not None
        and e.source.table == table
        and e.after is not None
        and e.after["id"] == pk
    ]
    return event


def _in_the_window(messages: list[RawMessage]) -> bool:
    """The update is streamed past the snapshot's LSN but committed before its time."""
    events = _row_events(messages)
    read = next(e.source for e in events if e.op is Operation.READ)
    update = _the_update(events, "contact", 1).source
    assert read is not None
    assert update is not None
    assert read.lsn is not None
    assert update.lsn is not None
    return update.lsn >= read.lsn and update.committed_at < read.committed_at


def _contact_name(engine: Engine, pk: str) -> str:
    with engine.connect() as conn:
        row = conn.execute(
            sa.text(
                "SELECT g.attributes ->> 'legal_name' FROM source_records s"
                " JOIN golden_records g ON g.id = s.golden_id"
                " WHERE s.system = :system AND s.source_table = 'public.contact' AND s.pk = :pk"
            ),
            {"system": SYSTEM, "pk": pk},
        ).one()
    return str(row[0])


def _loop(engine: Engine, label: str) -> ApplyLoop:
    return ApplyLoop(make_hub(engine), ChangeMapper(parse_source_mappings(MAPPINGS)), label=label)


@pytest.fixture(scope="module")
def captured(
    pg_server: EmbeddedPostgres, tmp_path_factory: pytest.TempPathFactory
) -> tuple[list[RawMessage], dict[str, int]]:
    pg_server.ensure_database("cdc_ordering")
    url = pg_server.url("cdc_ordering", driver="postgresql")
    for attempt in range(1, ATTEMPTS + 1):
        messages, wal = _capture(url, tmp_path_factory.mktemp(f"capture{attempt}"))
        if _in_the_window(messages):
            return messages, wal
    pytest.fail(
        f"no update committed between the consistent point and the snapshot in {ATTEMPTS} runs"
    )


def test_what_debezium_puts_in_source_for_snapshot_reads_and_streamed_changes(
    captured: tuple[list[RawMessage], dict[str, int]],
) -> None:
    messages, wal = captured
    events = _row_events(messages)
    reads = [e.source for e in events if e.op is Operation.READ and e.source is not None]
    assert len(reads) == ACCOUNTS + 3
    # One LSN, one transaction and one time for the whole snapshot, two tables long.
    assert len({(s.lsn, s.tx_id, s.ts_us) for s in reads}) == 1
    assert {s.sequence for s in reads} == {(None, reads[0].lsn)}
    assert reads[0].snapshot == "first"
    assert reads[-1].snapshot == "last"
    assert all(s.in_snapshot for s in reads)
    update = _the_update(events, "contact", 1).source
    b = _the_update(events, "account", 1).source
    a = _the_update(events, "contact", 2).source
    assert update is not None
    assert a is not None
    assert b is not None
    assert update.lsn is not None
    assert a.lsn is not None
    assert b.lsn is not None
    # The first transaction streamed has no previous commit; the next ones name it.
    assert update.sequence == (None, update.lsn)
    assert b.sequence is not None
    assert b.sequence[0] is not None
    assert update.lsn < b.sequence[0] < b.lsn
    # A wrote first and committed after B: its own LSN is below B's, and its sequence
    # names B's commit (the end of B's commit record), which is above A's own record.
    assert a.lsn < b.lsn
    assert a.sequence == (wal["b_committed"], a.lsn)
    assert a.position.last_commit_lsn == wal["b_committed"]
    assert reads[0].position.last_commit_lsn is None


def test_an_update_committed_as_the_snapshot_starts_is_applied_by_one_engine(
    captured: tuple[list[RawMessage], dict[str, int]], cdc_hub_engine: Engine
) -> None:
    messages, _ = captured
    empty_hub(cdc_hub_engine)
    loop = _loop(cdc_hub_engine, SYSTEM)
    for start in range(0, len(messages), 50):
        loop.apply(messages[start : start + 50])
    assert _contact_name(cdc_hub_engine, "1") == "Umbrella Corporation"
    assert _contact_name(cdc_hub_engine, "2") == "Globex"


def test_an_update_committed_as_the_snapshot_starts_is_applied_by_kafka_workers(
    captured: tuple[list[RawMessage], dict[str, int]], cdc_hub_engine: Engine
) -> None:
    """Two workers of one consumer group, one topic each, as ``cdc.kafka`` hands them over:
    each batch with its topic-partition offset; the contacts' worker applies first."""
    messages, _ = captured
    empty_hub(cdc_hub_engine)
    by_topic = {topic: [m for m in messages if m.topic == topic] for topic in TOPICS}
    for topic in reversed(TOPICS):
        loop = _loop(cdc_hub_engine, f"kafka:{topic}")
        stream = by_topic[topic]
        for start in range(0, len(stream), 50):
            batch = stream[start : start + 50]
            loop.apply(batch, BatchPosition("kafka:mdh", f"{topic}:0", start + len(batch) - 1))
    assert _contact_name(cdc_hub_engine, "1") == "Umbrella Corporation"
    # Delivered again from the start (a rebalance before any offset commit): nothing moves.
    loop = _loop(cdc_hub_engine, "kafka:again")
    contacts = by_topic[TOPICS[1]]
    result = loop.apply(contacts)
    assert result.result is not None
    assert result.result.applied == 0
    assert _contact_name(cdc_hub_engine, "1") == "Umbrella Corporation"
