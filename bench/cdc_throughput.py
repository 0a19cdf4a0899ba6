"""CDC end to end: source commits to golden records, against the raw Debezium engine.

In one run, on one embedded PostgreSQL (source and hub databases on the same server):

1. *Throughput.* Two replication slots are created (``benchraw`` and ``benchhub``), then
   synthetic customers (with noisy duplicates, ``bench/synthetic.py``) are inserted and a share
   of them updated, in transactions of 100 rows. The raw engine drains its slot with a no-op
   handler; then the hub engine drains the same changes through the apply loop (parse, map,
   standardize, match, survivorship, golden records, history, outbox: one transaction per
   batch), wired as ``mdh cdc run`` wires it (the next batch is captured and parsed while one
   is applied). Events per second of each, from the first event's arrival to the last one's
   delivery (raw) or commit (hub), and their ratio.
2. *Latency.* A writer commits single-row transactions at a steady rate (200/s by default);
   commit-to-golden is the time from the source commit (Debezium ``ts_us``) to the hub's
   commit of the batch that carried it. The raw engine's commit-to-handler latency at the same
   rate is the comparison point.

    .venv/bin/python bench/cdc_throughput.py [--customers 6000] [--rate 200] [--seconds 20]
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parent))

from cdc.apply import ApplyLoop, ParsedBatch
from cdc.debezium import DebeziumSource, PostgresSource
from cdc.mapping import ChangeMapper, parse_source_mappings
from cdc.metrics import CaptureMetrics, percentile
from cdc.raw import RawMessage
from hub.db import create_engine, migrate
from hub.rules import default_rules
from hub.services import HubServices
from matching import MatchModel, default_spec
from mdh.embedded_pg import EmbeddedPostgres
from synthetic import Record, generate_customers, with_duplicates

COLUMNS = (
    "id",
    "legal_name",
    "given_name",
    "family_name",
    "email",
    "phone",
    "address",
    "unit",
    "city",
    "region",
    "postcode",
    "country",
    "dob",
    "tax_id",
    "website",
)
FIELDS = {
    "kind": {"from": "legal_name", "when_present": "organization", "when_absent": "person"},
    "legal_name": "legal_name",
    "given_name": "given_name",
    "family_name": "family_name",
    "emails": {"columns": ["email"]},
    "phones": {"columns": ["phone"]},
    "addresses[0].lines": {"columns": ["address", "unit"]},
    "addresses[0].city": "city",
    "addresses[0].region": "region",
    "addresses[0].postal_code": "postcode",
    "addresses[0].country": "country",
    "date_of_birth": {"from": "dob", "type": "date"},
    "tax_id": "tax_id",
    "website": "website",
}
TOPIC_TABLE = "public.customer"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--customers", type=int, default=6_000)
    parser.add_argument("--update-share", type=float, default=0.3)
    parser.add_argument("--rate", type=int, default=200, help="transactions/s for latency")
    parser.add_argument("--seconds", type=float, default=20.0, help="latency phase length")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)

    with tempfile.TemporaryDirectory(prefix="mdh-bench-cdc-") as scratch:
        root = Path(scratch)
        server = EmbeddedPostgres(root / "pg")
        server.start()
        try:
            run(server, root, args)
        finally:
            server.stop()


def run(server: EmbeddedPostgres, root: Path, args: argparse.Namespace) -> None:
    server.ensure_database("bench_src")
    server.ensure_database("bench_hub")
    source_url = server.url("bench_src", driver="postgresql")
    hub_url = server.url("bench_hub")
    migrate(hub_url)
    with psycopg.connect(source_url, autocommit=True) as conn:
        conn.execute("DROP TABLE IF EXISTS customer")
        conn.execute(
            "CREATE TABLE customer (id text PRIMARY KEY, "
            + ", ".join(f"{c} text" for c in COLUMNS[1:12])
            + ", dob date, tax_id text, website text)"
        )

    def source(name: str) -> PostgresSource:
        return PostgresSource.from_url(
            name, source_url, [TOPIC_TABLE], snapshot_mode="no_data", heartbeat_interval_ms=0
        )

    # 1. both slots first, so both engines see exactly the same changes
    for name in ("benchraw", "benchhub"):
        engine = DebeziumSource(
            source(name), root / name, lambda batch: None, log_dir=root / "logs"
        )
        engine.start()
        _wait(lambda n=name: _slot_exists(source_url, f"mdh_{n}"), 120, f"slot mdh_{name}")
        engine.stop()

    records = with_duplicates(generate_customers(args.customers, seed=7), 0.3, seed=7)
    began = time.monotonic()
    events = _write_changes(source_url, records, args.update_share)
    print(
        f"wrote {events:,} change events ({len(records):,} inserts, "
        f"{events - len(records):,} updates) in {time.monotonic() - began:.1f}s"
    )

    raw_rate = _drain_raw(source("benchraw"), root, events)
    hub_services = _hub(hub_url)
    hub_rate, batches = _drain_hub(source("benchhub"), root, events, hub_services)
    goldens = _count(source_url.replace("bench_src", "bench_hub"), "golden_records")
    print()
    print("throughput (change events/s, first event to last)")
    print(f"  raw Debezium engine, no-op handler : {raw_rate:10,.0f}")
    print(f"  mdh (match + golden + outbox)      : {hub_rate:10,.0f}   ({batches} batches)")
    print(f"  ratio mdh / raw                    : {hub_rate / raw_rate:10.2f}")
    print(f"  golden records after the run       : {goldens:10,}")

    # the hub first: its slot was drained above, so it measures a steady state, not a backlog
    hub_latency = _latency_hub(source("benchhub"), root, source_url, args, hub_services)
    raw_latency = _latency_raw(source("benchraw"), root, source_url, args)
    print()
    print(f"commit-to-golden latency at {args.rate} transactions/s ({args.seconds:.0f}s)")
    ordered = sorted(raw_latency)
    rows = [
        ("raw engine (commit to handler)", *(percentile(ordered, q) for q in (0.5, 0.95, 0.99))),
        ("mdh (commit to golden committed)", *(hub_latency[p] for p in ("p50", "p95", "p99"))),
    ]
    print(f"  {'':<34}{'p50':>9}{'p95':>9}{'p99':>9}")
    for label, p50, p95, p99 in rows:
        print(f"  {label:<34}{p50:7.0f}ms{p95:7.0f}ms{p99:7.0f}ms")
    print(f"  samples: raw {len(ordered):,}, mdh {hub_latency['samples']:,}")
    hub_services.engine.dispose()


def _hub(url: str) -> HubServices:
    engine = create_engine(url)
    return HubServices(
        engine,
        matcher=MatchModel.untrained(default_spec()),
        rules=default_rules(),
        targets=("crm", "billing", "erp"),
    )


def _mapper() -> ChangeMapper:
    document = {
        "sources": {
            name: {"tables": {TOPIC_TABLE: {"primary_key": "id", "fields": FIELDS}}}
            for name in ("benchhub",)
        }
    }
    return ChangeMapper(parse_source_mappings(document))


def _row(record: Record) -> tuple[Any, ...]:
    values = {
        "id": record["record_id"],
        "address": record.get("address"),
        "postcode": record.get("postcode"),
        "dob": record.get("dob"),
        **{k: record.get(k) for k in COLUMNS if k not in ("id", "address", "postcode", "dob")},
    }
    return tuple(values[c] for c in COLUMNS)


def _write_changes(url: str, records: list[Record], update_share: float) -> int:
    insert = (
        f"INSERT INTO customer ({', '.join(COLUMNS)}) VALUES ({', '.join(['%s'] * len(COLUMNS))})"
    )
    rows = [_row(r) for r in records]
    with psycopg.connect(url) as conn:
        for start in range(0, len(rows), 100):
            with conn.cursor() as cursor:
                cursor.executemany(insert, rows[start : start + 100])
            conn.commit()
        step = max(1, round(1 / update_share))
        updated = [r["record_id"] for r in records[::step]]
        for start in range(0, len(updated), 100):
            with conn.cursor() as cursor:
                cursor.executemany(
                    "UPDATE customer SET phone = %s WHERE id = %s",
                    [
                        (f"+1 555 01{i % 100:02d}", pk)
                        for i, pk in enumerate(updated[start : start + 100])
                    ],
                )
            conn.commit()
    return len(rows) + len(updated)


class _Counter:
    """Counts row events; the first one's arrival and the last one's count (delivered to the
    raw handler, or committed by the hub)."""

    def __init__(self, expected: int) -> None:
        self.expected = expected
        self.count = 0
        self.first: float | None = None
        self.last = 0.0
        self.done = threading.Event()

    def arrived(self, batch: Sequence[RawMessage]) -> None:
        if self.first is None and _rows(batch):
            self.first = time.monotonic()

    def add(self, batch: Sequence[RawMessage]) -> None:
        self.arrived(batch)
        self.count += _rows(batch)
        self.last = time.monotonic()
        if self.count >= self.expected:
            self.done.set()

    @property
    def rate(self) -> float:
        assert self.first is not None
        return self.count / max(self.last - self.first, 1e-9)


def _rows(batch: Sequence[RawMessage]) -> int:
    return sum(1 for m in batch if m.value is not None and m.topic.endswith(TOPIC_TABLE))


class _Applying:
    """The apply loop as the engine's staged callback (as ``mdh cdc run`` gives it), counting:
    a batch is parsed on the engine's thread while the one before it is applied."""

    def __init__(self, loop: ApplyLoop, counter: _Counter | None = None) -> None:
        self.loop = loop
        self.counter = counter
        self.batches = 0
        self.changes = 0

    def prepare(self, messages: Sequence[RawMessage]) -> tuple[Sequence[RawMessage], ParsedBatch]:
        if self.counter is not None:
            self.counter.arrived(messages)
        return messages, self.loop.prepare(messages)

    def merge(
        self, prepared: Sequence[tuple[Sequence[RawMessage], ParsedBatch]]
    ) -> tuple[Sequence[RawMessage], ParsedBatch]:
        messages = [m for batch, _ in prepared for m in batch]
        return messages, self.loop.merge([parsed for _, parsed in prepared])

    def apply_prepared(self, prepared: tuple[Sequence[RawMessage], ParsedBatch]) -> None:
        messages, parsed = prepared
        outcome = self.loop.apply_prepared(parsed)
        self.batches += 1
        self.changes += outcome.changes
        if self.counter is not None:
            self.counter.add(messages)


def _drain_raw(source: PostgresSource, root: Path, events: int) -> float:
    counter = _Counter(events)
    engine = DebeziumSource(source, root / source.name, counter.add, log_dir=root / "logs")
    engine.start()
    try:
        _wait(counter.done.is_set, 600, "the raw engine to drain")
    finally:
        engine.stop()
    return counter.rate


def _drain_hub(
    source: PostgresSource, root: Path, events: int, hub: HubServices
) -> tuple[float, int]:
    counter = _Counter(events)
    applying = _Applying(ApplyLoop(hub, _mapper(), label=source.name), counter)
    engine = DebeziumSource(source, root / source.name, applying, log_dir=root / "logs")
    engine.start()
    try:
        _wait(counter.done.is_set, 1800, "the hub engine to drain")
    finally:
        engine.stop()
    return counter.rate, applying.batches


def _steady_writer(url: str, rate: int, seconds: float, prefix: str) -> int:
    """Single-row transactions at ``rate`` per second, on an absolute schedule."""
    records = generate_customers(int(rate * seconds) + 1, seed=hash(prefix) % 1000)
    insert = (
        f"INSERT INTO customer ({', '.join(COLUMNS)}) VALUES ({', '.join(['%s'] * len(COLUMNS))})"
    )
    written = 0
    with psycopg.connect(url, autocommit=True) as conn:
        start = time.monotonic()
        for i, record in enumerate(records[: int(rate * seconds)]):
            due = start + i / rate
            pause = due - time.monotonic()
            if pause > 0:
                time.sleep(pause)
            row = list(_row(record))
            row[0] = f"{prefix}{i}"
            conn.execute(insert, row)
            written += 1
    return written


def _latency_raw(
    source: PostgresSource, root: Path, url: str, args: argparse.Namespace
) -> list[float]:
    latencies: list[float] = []
    expected = int(args.rate * args.seconds)

    def handle(batch: list[RawMessage]) -> None:
        now = datetime.now(UTC).timestamp()
        for message in batch:
            if message.value is None or not message.topic.endswith(TOPIC_TABLE):
                continue
            if b'"raw' not in (message.key or b""):
                continue  # the hub phase's rows, caught up on first: not measured
            payload = json.loads(message.value)
            payload = payload.get("payload", payload)
            committed = payload["source"].get("ts_us") or payload["source"]["ts_ms"] * 1000
            latencies.append((now - committed / 1_000_000) * 1000)

    engine = DebeziumSource(source, root / source.name, handle, log_dir=root / "logs")
    engine.start()
    _wait(lambda: engine.wait_started(0.1), 120, "the raw engine")
    time.sleep(2)
    try:
        _steady_writer(url, args.rate, args.seconds, "raw")
        _wait(lambda: len(latencies) >= expected, 60, "the raw engine to catch up")
    finally:
        engine.stop()
    return latencies


def _latency_hub(
    source: PostgresSource, root: Path, url: str, args: argparse.Namespace, hub: HubServices
) -> dict[str, Any]:
    loop = ApplyLoop(hub, _mapper(), label=source.name)
    applying = _Applying(loop)

    engine = DebeziumSource(source, root / source.name, applying, log_dir=root / "logs")
    engine.start()
    _wait(lambda: engine.wait_started(0.1), 120, "the hub engine")
    time.sleep(3)  # streaming, not just started
    metrics = CaptureMetrics()
    loop.metrics = metrics
    before = applying.changes
    expected = int(args.rate * args.seconds)
    try:
        _steady_writer(url, args.rate, args.seconds, "hub")
        _wait(lambda: applying.changes - before >= expected, 120, "the hub to catch up")
    finally:
        engine.stop()
    latency: dict[str, Any] = metrics.snapshot()[source.name]["commit_to_golden_ms"]
    return latency


def _slot_exists(url: str, slot: str) -> bool:
    with psycopg.connect(url, autocommit=True) as conn:
        return (
            conn.execute(
                "SELECT 1 FROM pg_replication_slots WHERE slot_name = %s", (slot,)
            ).fetchone()
            is not None
        )


def _count(url: str, table: str) -> int:
    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute(f"SELECT count(*) FROM {table}").fetchone()
        return int(row[0]) if row else 0


def _wait(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out waiting for {what}")
        time.sleep(0.05)


if __name__ == "__main__":
    main()
