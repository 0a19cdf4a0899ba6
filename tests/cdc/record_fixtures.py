"""Record the Debezium fixtures in tests/cdc/fixtures/ from a real engine run (by hand, not a test).

    .venv/bin/python tests/cdc/record_fixtures.py [--out tests/cdc/fixtures]

Starts a throwaway embedded PostgreSQL, and for each variant (schemas on/off, REPLICA
IDENTITY DEFAULT/FULL, decimal handling mode) creates a database with a ``customer`` table,
seeds three rows, starts the embedded engine through ``cdc.debezium`` (snapshot), then runs
the same script of changes: an insert, an update that leaves the TOASTed ``notes`` column
untouched, one that changes it, a primary-key change, a two-row transaction, a delete, a
logical decoding message and a TRUNCATE. Every message the engine delivers, heartbeats and
tombstones included, is written byte for byte as JSONL (``cdc.replay`` format).

Takes about half a minute; one JVM for all variants.
"""

from __future__ import annotations

import argparse
import secrets
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import psycopg

from cdc.debezium import DebeziumSource, PostgresSource, reset
from cdc.raw import RawMessage
from cdc.replay import write_replay
from mdh.embedded_pg import EmbeddedPostgres

HERE = Path(__file__).parent


@dataclass(frozen=True)
class Variant:
    file: str
    schemas: bool
    replica_identity: str
    decimal_mode: str


VARIANTS = (
    Variant("pg_schemas_default.jsonl", True, "DEFAULT", "precise"),
    Variant("pg_schemas_full.jsonl", True, "FULL", "precise"),
    Variant("pg_plain_default_string.jsonl", False, "DEFAULT", "string"),
    Variant("pg_plain_full_double.jsonl", False, "FULL", "double"),
)

# Random hex does not compress; with STORAGE EXTERNAL a value this long is stored out of line
# (TOASTed), so an update that does not touch it carries no value for it in the WAL.
_rng = secrets.SystemRandom(20240601)


def _big_text(tag: str) -> str:
    return tag + ":" + "".join(_rng.choice("0123456789abcdef") for _ in range(2600))


DDL = """
CREATE TABLE customer (
    id            integer PRIMARY KEY,
    kind          char(1) NOT NULL,
    company_name  text,
    given_name    text,
    family_name   text,
    email         text,
    phone         text,
    mobile        text,
    street        text,
    city          text,
    postal_code   text,
    country       text,
    credit_limit  numeric(12, 2),
    balance       numeric,
    date_of_birth date,
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamp(6),
    notes         text,
    profile       jsonb
);
ALTER TABLE customer ALTER COLUMN notes SET STORAGE EXTERNAL;
"""

SEED = [
    (
        1,
        "O",
        "Acme GmbH",
        None,
        None,
        "billing@acme.example",
        "+49 30 1234567",
        None,
        "Hauptstraße 5",
        "Berlin",
        "10115",
        "DE",
        "12500.00",
        "1234.5678",
        None,
        "2024-03-01 09:30:00.123456",
        _big_text("acme"),
        '{"segment": "enterprise", "tags": ["vip"]}',
    ),
    (
        2,
        "P",
        None,
        "Jane",
        "Doe",
        "jane.doe@example.com",
        "(555) 010-2000",
        "555 010 2001",
        "1 Main St",
        "Springfield",
        "62701",
        "US",
        "0.01",
        "-3",
        "1985-07-14",
        "2024-03-02 10:00:00",
        None,
        None,
    ),
    (
        3,
        "P",
        None,
        "Zoë",
        "Ünal",
        None,
        None,
        None,
        None,
        None,
        None,
        "tr",
        None,
        None,
        "1970-01-01",
        None,
        None,
        None,
    ),
]

INSERT = (
    "INSERT INTO customer (id, kind, company_name, given_name, family_name, email, phone, mobile,"
    " street, city, postal_code, country, credit_limit, balance, date_of_birth, updated_at,"
    " notes, profile) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s,"
    " %s, %s)"
)

# (label, statements run in one transaction, row events the engine emits for it)
CHANGES: list[tuple[str, list[tuple[str, tuple[object, ...]]], int]] = [
    (
        "insert",
        [
            (
                INSERT,
                (
                    4,
                    "O",
                    "Globex Corporation",
                    None,
                    None,
                    "ap@globex.example",
                    "+1 212 555 0100",
                    None,
                    "200 Park Ave",
                    "New York",
                    "10166",
                    "US",
                    "99999999.99",
                    "0.000001",
                    None,
                    "2024-03-04 08:00:00",
                    _big_text("globex"),
                    '{"segment": "mid-market"}',
                ),
            )
        ],
        1,
    ),
    (
        "update leaving the TOASTed notes unchanged",
        [
            (
                "UPDATE customer SET city = %s, credit_limit = %s WHERE id = 1",
                ("Potsdam", "15000.50"),
            )
        ],
        1,
    ),
    (
        "update of the TOASTed notes",
        [("UPDATE customer SET notes = %s WHERE id = 1", (_big_text("acme-v2"),))],
        1,
    ),
    # Debezium turns a primary-key change into a delete (+ tombstone) and a create.
    ("primary-key change", [("UPDATE customer SET id = 20 WHERE id = 2", ())], 3),
    (
        "two rows in one transaction",
        [
            ("UPDATE customer SET email = %s WHERE id = 4", ("finance@globex.example",)),
            ("UPDATE customer SET phone = %s WHERE id = 20", ("+1 555 010 2000",)),
        ],
        2,
    ),
    ("delete", [("DELETE FROM customer WHERE id = 3", ())], 2),
    (
        "logical decoding message",
        [("SELECT pg_logical_emit_message(true, 'mdh', 'echo-42')", ())],
        1,
    ),
    ("truncate", [("TRUNCATE customer", ())], 1),
]


class Recorder:
    """Collects delivered messages and lets the script wait for a number of row events."""

    def __init__(self) -> None:
        self.messages: list[RawMessage] = []
        self._rows = 0
        self._cond = threading.Condition()

    def on_batch(self, batch: list[RawMessage]) -> None:
        with self._cond:
            self.messages.extend(batch)
            self._rows += sum(1 for m in batch if not m.topic.startswith("__debezium-heartbeat"))
            self._cond.notify_all()

    def wait_rows(self, count: int, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        with self._cond:
            while self._rows < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"saw {self._rows} row events, expected {count}")
                self._cond.wait(left)


def record(server: EmbeddedPostgres, variant: Variant, state_root: Path, out: Path) -> None:
    database = variant.file.removesuffix(".jsonl")
    server.ensure_database(database)
    url = server.url(database, driver="postgresql")
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("DROP TABLE IF EXISTS customer")
        conn.execute(DDL)
        conn.execute(f"ALTER TABLE customer REPLICA IDENTITY {variant.replica_identity}")
        with conn.transaction():
            for row in SEED:
                conn.execute(INSERT, row)
    source = PostgresSource.from_url(
        "crm",
        url,
        ["public.customer"],
        schemas_enabled=variant.schemas,
        decimal_handling_mode=variant.decimal_mode,
        heartbeat_interval_ms=2000,
    )
    state = state_root / database
    reset(source, state)
    recorder = Recorder()
    engine = DebeziumSource(source, state, recorder.on_batch, log_dir=state_root / "logs")
    started = time.monotonic()
    engine.start()
    try:
        recorder.wait_rows(len(SEED))
        print(
            f"{variant.file}: snapshot of {len(SEED)} rows after {time.monotonic() - started:.1f}s"
        )
        expected = len(SEED)
        with psycopg.connect(url, autocommit=True) as conn:
            for label, statements, events in CHANGES:
                with conn.transaction():
                    for statement, params in statements:
                        conn.execute(statement, params)
                expected += events
                recorder.wait_rows(expected)
                print(f"  {label}: ok")
        time.sleep(2.5)  # let a heartbeat through
    finally:
        engine.stop()
        reset(source, state)
    with (out / variant.file).open("wb") as fh:
        count = write_replay(fh, recorder.messages)
    print(f"  wrote {count} messages to {out / variant.file}")


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--out", type=Path, default=HERE / "fixtures")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="mdh-record-") as tmp:
        root = Path(tmp)
        server = EmbeddedPostgres(root / "pg")
        server.start()
        try:
            for variant in VARIANTS:
                record(server, variant, root / "cdc", args.out)
        finally:
            server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
