"""Helpers for running hub workers against a Kafka-protocol broker: a Debezium change stream
made from the demo world, a Tansu broker, `mdh cdc run` worker processes, and a summary of the
hub's state that does not depend on which worker applied what.

Shared by tests/infra/test_workers.py and bench/kafka_workers.py (which puts this folder on
``sys.path``).

The change stream is what Kafka Connect would write for the demo tables with the connector
configs in infra/connectors: topic ``<system>.public.<table>``, key ``{"<pk>": value}`` (so the
partition follows the source primary key), value a schemaless Debezium envelope, decimals as
strings, ``timestamptz`` as ISO text, ``timestamp`` as epoch microseconds, ``date`` as epoch
days. Records of one customer are adjacent in the stream but keyed differently, so they land
on different topics and partitions and reach different workers at about the same moment.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import IO, Any

import psycopg
import sqlalchemy as sa
from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, NewTopic

from hub.db import migrate
from mdh.demo import GeneratorConfig, generate
from mdh.demo.schemas import TABLES_BY_KEY, DemoDatabases

ROOT = Path(__file__).resolve().parents[2]
INFRA_CONFIG = ROOT / "infra" / "mdh.yaml"
TOPICS = tuple(
    f"{system}.public.{table}"
    for system, table in (
        ("crm", "account"),
        ("crm", "contact"),
        ("billing", "account"),
        ("billing", "contact"),
        ("erp", "kna1"),
        ("erp", "knvk"),
    )
)
STREAM_START = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
_EPOCH = date(1970, 1, 1)


@dataclass(frozen=True)
class StreamMessage:
    """One Debezium message as Kafka Connect writes it (value None: a tombstone)."""

    topic: str
    key: bytes
    value: bytes | None
    entity: str
    """The real customer or contact it describes (the generator's truth), for assertions."""


@dataclass
class ChangeStream:
    messages: list[StreamMessage] = field(default_factory=list)

    @property
    def row_events(self) -> int:
        return sum(1 for m in self.messages if m.value is not None)

    def duplicated_entities(self) -> set[str]:
        """Entities described by more than one source row."""
        rows: dict[str, set[tuple[str, bytes]]] = defaultdict(set)
        for message in self.messages:
            rows[message.entity].add((message.topic, message.key))
        return {entity for entity, keys in rows.items() if len(keys) > 1}


def _debezium_value(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)  # decimal.handling.mode=string
    if isinstance(value, datetime):
        if value.tzinfo is not None:  # timestamptz: io.debezium.time.ZonedTimestamp
            return value.astimezone(UTC).isoformat().replace("+00:00", "Z")
        # timestamp: io.debezium.time.MicroTimestamp
        return int(value.replace(tzinfo=UTC).timestamp()) * 1_000_000 + value.microsecond
    if isinstance(value, date):  # io.debezium.time.Date
        return (value - _EPOCH).days
    return value


def _envelope(
    system: str,
    table: str,
    op: str,
    before: Mapping[str, Any] | None,
    after: Mapping[str, Any] | None,
    sequence: int,
) -> bytes:
    committed_ms = int(STREAM_START.timestamp() * 1000) + sequence * 10
    lsn = 40_000_000 + sequence * 512
    envelope = {
        "before": dict(before) if before is not None else None,
        "after": dict(after) if after is not None else None,
        "source": {
            "version": "3.6.3.Final",
            "connector": "postgresql",
            "name": system,
            "ts_ms": committed_ms,
            "snapshot": "false",
            "db": system,
            "sequence": json.dumps([str(lsn - 512), str(lsn)]),
            "schema": "public",
            "table": table,
            "txId": 5_000 + sequence,
            "lsn": lsn,
            "xmin": None,
        },
        "transaction": None,
        "op": op,
        "ts_ms": committed_ms + 5,
    }
    return json.dumps(envelope, separators=(",", ":")).encode()


STREAM_SEED = 7
"""The generator seed of `demo_change_stream` (seed the sources with it for the joins)."""


def demo_change_stream(customers: int, seed: int = STREAM_SEED) -> ChangeStream:
    """Inserts of every demo row (customer by customer), then updates and deletes.

    The outcome is the same whatever the interleaving of partitions, which is all Kafka
    leaves open: every update sets a value no other record has (so it is a visible change
    whenever it is applied), and deletes only hit contact persons that have no other record
    anywhere (so no link depends on whether the delete came first).
    """
    world = generate(GeneratorConfig(customers=customers, seed=seed))
    entity_of = {(s[0], s[1], s[2]): str(s[3]) for s in world.truth_sources}
    rows_per_entity = Counter(entity_of.values())
    stream = ChangeStream()
    sequence = 0
    order: list[tuple[str, str, str, dict[str, Any]]] = []
    for (system, table), rows in world.rows.items():
        columns = TABLES_BY_KEY[(system, table)].columns
        for row in rows:
            record = {c: _debezium_value(v) for c, v in zip(columns, row, strict=True)}
            pk = str(row[0])
            order.append((entity_of[(system, table, pk)], system, table, record))
    # customer by customer (a contact "E0000042-C1" sorts right after its customer)
    order.sort(key=lambda item: (item[0], item[1], item[2]))
    latest: dict[tuple[str, str, str], dict[str, Any]] = {}
    for entity, system, table, record in order:
        sequence += 1
        pk_column = TABLES_BY_KEY[(system, table)].columns[0]
        key = json.dumps({pk_column: record[pk_column]}, separators=(",", ":")).encode()
        value = _envelope(system, table, "c", None, record, sequence)
        stream.messages.append(StreamMessage(f"{system}.public.{table}", key, value, entity))
        latest[(system, table, str(record[pk_column]))] = record

    # updates: a new payment term on one billing account per customer, every third customer
    updated: set[str] = set()
    for (system, table, pk), record in sorted(latest.items()):
        entity = entity_of[(system, table, pk)]
        if (system, table) != ("billing", "account") or entity in updated:
            continue
        updated.add(entity)
        if len(updated) % 3:
            continue
        sequence += 1
        after = {**record, "paymentterm": f"Net {100 + sequence}"}
        key = json.dumps({"id": pk}, separators=(",", ":")).encode()
        value = _envelope(system, table, "u", record, after, sequence)
        stream.messages.append(StreamMessage(f"{system}.public.{table}", key, value, entity))

    # deletes (with their tombstones): contact persons no other record describes
    deleted = 0
    for (system, table, pk), record in sorted(latest.items()):
        entity = entity_of[(system, table, pk)]
        if table not in ("contact", "knvk") or rows_per_entity[entity] != 1 or deleted >= 5:
            continue
        deleted += 1
        sequence += 1
        pk_column = TABLES_BY_KEY[(system, table)].columns[0]
        key = json.dumps({pk_column: pk}, separators=(",", ":")).encode()
        value = _envelope(system, table, "d", record, None, sequence)
        topic = f"{system}.public.{table}"
        stream.messages.append(StreamMessage(topic, key, value, entity))
        stream.messages.append(StreamMessage(topic, key, None, entity))
    return stream


# --- the broker ----------------------------------------------------------------------------


def create_topics(bootstrap: str, topics: Sequence[str], partitions: int) -> None:
    """Create the topics (retrying while the broker starts)."""
    admin = AdminClient({"bootstrap.servers": bootstrap})
    deadline = time.monotonic() + 30
    missing = list(topics)
    while missing:
        futures = admin.create_topics([NewTopic(t, num_partitions=partitions) for t in missing])
        for topic, future in futures.items():
            try:
                future.result(10)
                missing.remove(topic)
            except Exception:
                if time.monotonic() > deadline:
                    raise
        if missing:
            time.sleep(0.2)


class StreamProducer:
    """Produces a change stream keyed like Kafka Connect; remembers each partition's last row
    event (a tombstone carries no row change, so no applied position ever names it)."""

    def __init__(self, bootstrap: str) -> None:
        self.producer = Producer(
            {"bootstrap.servers": bootstrap, "enable.idempotence": False, "linger.ms": 5}
        )
        self.ends: dict[tuple[str, int], int] = {}
        self.partitions_of: dict[tuple[str, bytes], int] = {}

    def _delivered(self, error: Any, message: Any) -> None:
        if error is not None:
            raise RuntimeError(f"delivery failed: {error}")
        where = (message.topic(), message.partition())
        if message.value() is not None:
            self.ends[where] = max(self.ends.get(where, -1), message.offset())
        self.partitions_of[(message.topic(), message.key())] = message.partition()

    def produce(self, messages: Sequence[StreamMessage]) -> None:
        for message in messages:
            self.producer.produce(
                message.topic, key=message.key, value=message.value, on_delivery=self._delivered
            )
            self.producer.poll(0)
        if self.producer.flush(30) != 0:
            raise RuntimeError("messages left unflushed")


# --- workers -------------------------------------------------------------------------------


def source_environment(sources: DemoDatabases) -> dict[str, str]:
    """The variables infra/mdh.yaml builds the source databases' URLs from (the enrichment
    joins read referenced rows there)."""
    environment: dict[str, str] = {}
    for system in ("crm", "billing", "erp"):
        url = sa.make_url(getattr(sources, system))
        prefix = system.upper()
        environment |= {
            f"{prefix}_DB_USER": url.username or "",
            f"{prefix}_DB_PASSWORD": url.password or "",
            f"{prefix}_DB_HOST": url.host or "127.0.0.1",
            f"{prefix}_DB_PORT": str(url.port or 5432),
            f"{prefix}_DB_NAME": url.database or system,
        }
    return environment


def worker_environment(
    bootstrap: str,
    database_url: str,
    group: str,
    home: Path,
    *,
    batch_size: int,
    sources: DemoDatabases,
) -> dict[str, str]:
    """The environment of an `mdh cdc run` worker using infra/mdh.yaml; short group timeouts,
    because a Tansu group join takes a rebalance round per member. ``sources`` hold the world
    the stream was made from (``seed_sources`` with the stream's generator config)."""
    return {
        **os.environ,
        **source_environment(sources),
        "MDH_CONFIG_FILE": str(INFRA_CONFIG),
        "MDH_DATABASE_URL": database_url,
        "MDH_HOME": str(home),
        "MDH_LOG_LEVEL": "INFO",
        "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
        "MDH_KAFKA_GROUP_ID": group,
        "MDH_CAPTURE_BATCH_SIZE": str(batch_size),
        "MDH_CAPTURE_MAX_WAIT_MS": "20",
        "MDH_KAFKA_SESSION_TIMEOUT_MS": "6000",
        "MDH_KAFKA_HEARTBEAT_INTERVAL_MS": "500",
        "HOSTNAME": home.name,
    }


class Worker:
    """One `mdh cdc run` process; its output goes to ``<home>/worker.log``."""

    def __init__(self, name: str, environment: Mapping[str, str], home: Path) -> None:
        self.name = name
        home.mkdir(parents=True, exist_ok=True)
        self.log_path = home / "worker.log"
        self._log: IO[bytes] = self.log_path.open("wb")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "mdh", "cdc", "run"],
            env=dict(environment),
            cwd=home,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )

    def kill(self) -> None:
        """SIGKILL: no clean leave, no last offset commit (the group notices by timeout)."""
        self.process.kill()
        self.process.wait(30)
        self._log.close()

    def stop(self, timeout: float = 60) -> int:
        """SIGTERM, then wait: the batch in flight finishes and the worker leaves the group."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            code = self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            code = self.process.wait(30)
        self._log.close()
        return code

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")


def applied_offsets(engine: sa.Engine, group: str) -> dict[str, int]:
    """Last applied offset per ``topic:partition`` of the group, as stored with the effects."""
    with engine.connect() as conn:
        rows = conn.execute(
            sa.text('SELECT partition, "offset" FROM applied_positions WHERE source = :s'),
            {"s": f"kafka:{group}"},
        ).all()
    return {str(partition): int(offset) for partition, offset in rows}


def caught_up(engine: sa.Engine, group: str, ends: Mapping[tuple[str, int], int]) -> bool:
    """Every partition's last row event is applied (``ends`` from ``StreamProducer``)."""
    offsets = applied_offsets(engine, group)
    return all(offsets.get(f"{t}:{p}", -1) >= end for (t, p), end in ends.items())


# --- the hub's state, independent of which worker applied what -----------------------------


def hub_state(engine: sa.Engine) -> dict[str, Any]:
    """What the hub holds, as readers use it: the golden records that have live members,
    identified by those members (golden ids are drawn in commit order, which concurrent
    workers do not fix), each with its status and attributes; every merged-away id resolving
    to one of them; live source records without a golden record; dead letters and source
    record counts.

    Left out, because they record the path rather than the result: versions, history and
    outbox counts, and the ids merged away. When two records of one customer reach two
    workers before the record that bridges them, each gets a golden record and the bridge
    merges them later; one worker reading the partitions in another interleaving may link
    them directly. ``bookkeeping_problems`` checks each run's history and outbox for doubles
    and gaps instead. Review tasks are left out too: which record of a pair opens the task, and
    which tasks a later re-match supersedes, follow arrival order, which Kafka fixes only per
    partition.
    """
    with engine.connect() as conn:
        members: dict[int, list[str]] = defaultdict(list)
        unlinked = 0
        for golden_id, system, table, pk in conn.execute(
            sa.text(
                "SELECT golden_id, system, source_table, pk FROM source_records WHERE NOT deleted"
            )
        ):
            if golden_id is None:
                unlinked += 1
            else:
                members[golden_id].append(f"{system}.{table}:{pk}")
        goldens: dict[int, tuple[str, Any, int | None]] = {}
        for golden_id, status, attributes, merged_into in conn.execute(
            sa.text("SELECT id, status, attributes::text, merged_into FROM golden_records")
        ):
            goldens[golden_id] = (
                str(status),
                json.loads(attributes) if attributes else None,
                merged_into,
            )
        dead = conn.execute(sa.text("SELECT count(*) FROM dead_letters")).scalar_one()
        sources = conn.execute(
            sa.text("SELECT count(*), count(*) FILTER (WHERE deleted) FROM source_records")
        ).one()

    def resolved(golden_id: int) -> int:
        seen = {golden_id}
        while (target := goldens[golden_id][2]) is not None and target not in seen:
            seen.add(target)
            golden_id = target
        return golden_id

    by_members = {
        " + ".join(sorted(members[golden_id])): {"status": status, "attributes": attributes}
        for golden_id, (status, attributes, _) in goldens.items()
        if golden_id in members
    }
    unresolved = sorted(
        golden_id
        for golden_id, (status, _, _) in goldens.items()
        if status == "merged" and goldens[resolved(golden_id)][0] != "active"
    )
    return {
        "goldens": dict(sorted(by_members.items())),
        "merged_away_not_resolving_to_an_active_record": unresolved,
        "unlinked_live_records": unlinked,
        "dead_letters": dead,
        "source_records": tuple(sources),
    }


def bookkeeping_problems(engine: sa.Engine, targets: int) -> list[str]:
    """Doubles and gaps in one run's history and outbox: every golden record's history is
    versions 1 to its version, once each, and every history row has one outbox row per
    target."""
    with engine.connect() as conn:
        problems = [
            f"golden {golden_id}: history {count} rows, versions {low}-{high}, at {version}"
            for golden_id, count, low, high, version in conn.execute(
                sa.text(
                    "SELECT g.id, count(h.*), min(h.version), max(h.version), g.version"
                    " FROM golden_records g LEFT JOIN golden_history h ON h.golden_id = g.id"
                    " GROUP BY g.id, g.version"
                    " HAVING count(h.*) <> g.version OR count(DISTINCT h.version) <> g.version"
                    " OR min(h.version) <> 1 OR max(h.version) <> g.version"
                )
            )
        ]
        problems += [
            f"golden {golden_id} version {version}: {count} outbox rows for {targets} targets"
            for golden_id, version, count in conn.execute(
                sa.text(
                    "SELECT h.golden_id, h.version, count(o.*) FROM golden_history h"
                    " LEFT JOIN outbox o ON o.golden_id = h.golden_id AND o.version = h.version"
                    " GROUP BY h.golden_id, h.version HAVING count(o.*) <> :targets"
                ),
                {"targets": targets},
            )
        ]
    return problems[:10]


def differences(expected: Mapping[str, Any], actual: Mapping[str, Any], limit: int = 5) -> str:
    """A short readable account of where two hub states differ."""
    lines = []
    for key in expected:
        if key != "goldens" and expected[key] != actual[key]:
            lines.append(f"{key}: expected {expected[key]}, got {actual[key]}")
    missing = sorted(set(expected["goldens"]) - set(actual["goldens"]))
    extra = sorted(set(actual["goldens"]) - set(expected["goldens"]))
    lines += [f"missing golden: {m}" for m in missing[:limit]]
    lines += [f"unexpected golden: {e}" for e in extra[:limit]]
    changed = [
        k
        for k in expected["goldens"]
        if k in actual["goldens"] and expected["goldens"][k] != actual["goldens"][k]
    ]
    for key in changed[:limit]:
        lines.append(f"differs: {key}: {expected['goldens'][key]} != {actual['goldens'][key]}")
    return "\n".join(lines) or "no difference"


def fresh_database(admin_url: str, server_url_of: Any, name: str) -> str:
    """Drop and create database ``name`` and migrate it; returns its SQLAlchemy URL.

    Args:
        admin_url: a libpq URL of the server's maintenance database.
        server_url_of: ``EmbeddedPostgres.url`` (name -> SQLAlchemy URL).
    """
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    url: str = server_url_of(name)
    migrate(url)
    return url
