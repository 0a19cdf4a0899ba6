"""The duplicate generator: N customers spread over CRM, billing and ERP, with ground truth.

``generate`` builds the world in memory (for tests and small N); ``load_world`` streams it in
batches into the source databases with COPY, together with the truth store; ``seed_sources``
creates the schemas and loads once (running it again on a seeded world resumes, and refuses
a different configuration unless reset).

Reproducibility: customer ``i`` is derived from ``(seed, i)`` alone (``entity_seed``), and
its records from a second stream of the same pair, so the same configuration yields the same
rows, and the first 1,000 customers of a 10,000-customer world are the same customers as in
a 1,000-customer world. Record ids come from per-system sequences (Zuora ids from a stream of
the seed), assigned in customer order.

Knobs: ``overlap`` is the share of customers per combination of systems; ``duplicate_rate``
the share of a system's customers that have more than one record in it (a fifth of those
have three); ``corruption`` how records deviate (``corruption.Corruption``).
"""

from __future__ import annotations

import json
import queue
import random
import threading
import time
from collections import defaultdict
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

import psycopg
from psycopg import sql

from mdh.demo.corruption import Corruption
from mdh.demo.entities import (
    Customer,
    Person,
    WorldShape,
    build_customer,
    contact_attributes,
    true_attributes,
)
from mdh.demo.schemas import (
    SOURCE_TABLES,
    SYSTEMS,
    TRUTH_ENTITY_COLUMNS,
    TRUTH_INDEXES,
    TRUTH_SCHEMA,
    TRUTH_SOURCE_COLUMNS,
    DemoDatabases,
    DemoError,
    create_sources,
)
from mdh.demo.systems import Emitted, IdAllocator, RecordWriter, Row
from mdh.demo.vocabulary import Vocabulary, load_vocabulary
from mdh.embedded_pg import EmbeddedPostgres

DEFAULT_OVERLAP: dict[str, float] = {
    "crm": 0.22,
    "billing": 0.06,
    "erp": 0.04,
    "crm+billing": 0.28,
    "crm+erp": 0.08,
    "billing+erp": 0.07,
    "crm+billing+erp": 0.25,
}
DEFAULT_DUPLICATE_RATE: dict[str, float] = {"crm": 0.08, "billing": 0.03, "erp": 0.05}

_SYSTEM_OFFSET_DAYS = {"crm": 0, "billing": 60, "erp": 120}


def entity_seed(seed: int, index: int) -> int:
    """The seed of customer ``index`` in the world of ``seed``."""
    return (seed & 0xFFFFFFFF) << 32 | (index & 0xFFFFFFFF)


def overlap_key(systems: frozenset[str]) -> str:
    """The canonical spelling of a combination of systems ("crm+billing")."""
    return "+".join(system for system in SYSTEMS if system in systems)


@dataclass(frozen=True)
class GeneratorConfig:
    customers: int = 10_000
    seed: int = 42
    shape: WorldShape = field(default_factory=WorldShape)
    overlap: Mapping[str, float] = field(default_factory=lambda: dict(DEFAULT_OVERLAP))
    """Weight of each combination of systems ("crm", "crm+billing", ...); normalised."""
    duplicate_rate: Mapping[str, float] = field(
        default_factory=lambda: dict(DEFAULT_DUPLICATE_RATE)
    )
    corruption: Corruption = field(default_factory=Corruption)
    contact_duplicate_rate: float = 0.03
    """Share of contact persons entered twice under the same customer record."""

    def __post_init__(self) -> None:
        if self.customers < 0:
            raise DemoError(f"customers must not be negative, got {self.customers}")
        if not 0 <= self.seed < 2**32:
            raise DemoError(f"seed must be in [0, 2**32), got {self.seed}")
        normalised: dict[str, float] = {}
        for key, weight in self.overlap.items():
            systems = frozenset(part.strip() for part in key.split("+"))
            if not systems or not systems <= set(SYSTEMS):
                raise DemoError(f"overlap key {key!r}: expected systems of {'+'.join(SYSTEMS)}")
            if weight < 0:
                raise DemoError(f"overlap {key!r} must not be negative, got {weight}")
            canonical = overlap_key(systems)
            normalised[canonical] = normalised.get(canonical, 0.0) + weight
        if sum(normalised.values()) <= 0:
            raise DemoError("overlap weights must not all be zero")
        for system, rate in self.duplicate_rate.items():
            if system not in SYSTEMS or not 0.0 <= rate < 1.0:
                raise DemoError(f"duplicate_rate {system!r}={rate}: expected a system and [0, 1)")
        object.__setattr__(self, "overlap", normalised)

    def overlap_shares(self) -> dict[str, float]:
        total = sum(self.overlap.values())
        return {key: weight / total for key, weight in self.overlap.items()}

    def to_json(self) -> dict[str, Any]:
        """The configuration as JSON. Weighted choices depend on order, so weights are lists of
        pairs (a JSON object's key order does not survive jsonb)."""
        shape = asdict(self.shape)
        shape["as_of"] = self.shape.as_of.isoformat()
        shape["countries"] = [list(pair) for pair in self.shape.countries]
        return {
            "customers": self.customers,
            "seed": self.seed,
            "shape": shape,
            "overlap": [[key, weight] for key, weight in self.overlap.items()],
            "duplicate_rate": dict(self.duplicate_rate),
            "corruption": asdict(self.corruption),
            "contact_duplicate_rate": self.contact_duplicate_rate,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> GeneratorConfig:
        """The inverse of ``to_json``."""
        shape = dict(data["shape"])
        shape["as_of"] = datetime.fromisoformat(shape["as_of"])
        shape["countries"] = tuple((code, float(weight)) for code, weight in shape["countries"])
        return cls(
            customers=int(data["customers"]),
            seed=int(data["seed"]),
            shape=WorldShape(**shape),
            overlap={key: float(weight) for key, weight in data["overlap"]},
            duplicate_rate={key: float(value) for key, value in data["duplicate_rate"].items()},
            corruption=Corruption(**data["corruption"]),
            contact_duplicate_rate=float(data["contact_duplicate_rate"]),
        )


@dataclass
class Batch:
    """Rows for every table and the truth about them, for a run of consecutive customers."""

    rows: dict[tuple[str, str], list[Row]] = field(default_factory=lambda: defaultdict(list))
    truth_sources: list[Row] = field(default_factory=list)
    truth_entities: list[Row] = field(default_factory=list)

    def extend(self, other: Batch) -> None:
        for key, rows in other.rows.items():
            self.rows[key].extend(rows)
        self.truth_sources.extend(other.truth_sources)
        self.truth_entities.extend(other.truth_entities)


@dataclass
class DemoWorld(Batch):
    """A whole generated world in memory."""

    config: GeneratorConfig = field(default_factory=GeneratorConfig)


def _record_times(
    customer: Customer, system: str, duplicate: bool, rng: random.Random, as_of: datetime
) -> tuple[datetime, datetime]:
    start = customer.created_at.timestamp() + rng.random() * _SYSTEM_OFFSET_DAYS[system] * 86400
    latest = as_of.timestamp() - 3600
    if duplicate and start < latest:
        start += (latest - start) * rng.random()
    start = min(start, latest)
    modified = start + (as_of.timestamp() - start) * rng.random()
    return (
        datetime.fromtimestamp(int(start), UTC),
        datetime.fromtimestamp(int(modified), UTC),
    )


class WorldBuilder:
    """Turns customers into records, one customer at a time, keeping what must be unique
    across the world (ids, e-mail addresses)."""

    def __init__(self, config: GeneratorConfig, vocab: Vocabulary | None = None) -> None:
        self.config = config
        self.vocab = vocab or load_vocabulary()
        self.ids = IdAllocator(random.Random(config.seed))
        self.writer = RecordWriter(self.vocab, self.ids)
        self.used_emails: set[str] = set()
        shares = config.overlap_shares()
        self._combos = [frozenset(key.split("+")) for key in shares]
        cumulative, total = [], 0.0
        for share in shares.values():
            total += share
            cumulative.append(total)
        self._cumulative = cumulative
        self._dup = config.corruption.for_duplicate()

    def customer(self, index: int, rng: random.Random | None = None) -> Customer:
        """Customer ``index``; ``rng``, if given, is seeded here and left positioned after
        the customer's draws (its record stream)."""
        seed = entity_seed(self.config.seed, index)
        if rng is not None:
            rng.seed(seed)
        customer = build_customer(index, seed, self.vocab, self.config.shape, rng)
        return self.unique_emails(customer)

    def unique_emails(self, customer: Customer) -> Customer:
        """Two people never share an e-mail address: a clash gets a number, as providers do."""
        rng: random.Random | None = None

        def claim(email: str | None) -> str | None:
            nonlocal rng
            if email is None:
                return None
            candidate = email
            while candidate in self.used_emails:
                rng = rng or random.Random(customer.seed ^ 0xE3A11)
                local, _, domain = email.partition("@")
                candidate = f"{local}{rng.randrange(2, 1000)}@{domain}"
            self.used_emails.add(candidate)
            return candidate

        def person(p: Person) -> Person:
            email, previous = claim(p.email), claim(p.previous_email)
            if email == p.email and previous == p.previous_email:
                return p
            return replace(p, email=email, previous_email=previous)

        if customer.person is not None:
            updated = person(customer.person)
            if updated is customer.person:
                return customer
            return replace(
                customer,
                person=updated,
                email=updated.email,
                previous_email=updated.previous_email,
            )
        contacts = tuple(person(contact) for contact in customer.contacts)
        changed = any(a is not b for a, b in zip(contacts, customer.contacts, strict=True))
        return replace(customer, contacts=contacts) if changed else customer

    def systems_for(self, rng: random.Random) -> frozenset[str]:
        point = rng.random()
        for combo, cumulative in zip(self._combos, self._cumulative, strict=True):
            if point < cumulative:
                return combo
        return self._combos[-1]

    def records(
        self,
        customer: Customer,
        batch: Batch,
        rng: random.Random,
    ) -> frozenset[str]:
        """Write the customer's records into ``batch`` (rows and truth); returns its systems.

        ``rng`` is the customer's stream, positioned after ``customer(index, rng)``."""
        config = self.config
        systems = self.systems_for(rng)
        as_of = config.shape.as_of
        seen: set[tuple[str, str, str]] = set()

        def emit(emitted: Emitted, created: datetime) -> None:
            key = (emitted.system, emitted.table, emitted.entity_id)
            batch.rows[(emitted.system, emitted.table)].append(emitted.row)
            batch.truth_sources.append(
                (
                    emitted.system,
                    emitted.table,
                    emitted.pk,
                    emitted.entity_id,
                    key in seen,
                    "seed",
                    created,
                )
            )
            seen.add(key)

        crm_ids: list[str] = []
        for system in SYSTEMS:
            if system not in systems:
                continue
            count = 1
            if rng.random() < config.duplicate_rate.get(system, 0.0):
                count = 3 if rng.random() < 0.2 else 2
            for number in range(count):
                duplicate = number > 0
                created, modified = _record_times(customer, system, duplicate, rng, as_of)
                crm_id = crm_ids[0] if crm_ids and rng.random() < 0.5 else None
                emitted = self.system_records(
                    customer, system, rng, duplicate, created, modified, crm_id
                )
                if system == "crm":
                    crm_ids.append(emitted[0].pk)
                for item in emitted:
                    emit(item, created)
        return systems

    def system_records(
        self,
        customer: Customer,
        system: str,
        rng: random.Random,
        duplicate: bool,
        created: datetime,
        modified: datetime,
        crm_id: str | None = None,
    ) -> list[Emitted]:
        """One record of the customer in ``system``: the customer row first, then the contact
        rows that come with it. A duplicate deviates more and carries fewer contacts.
        ``crm_id`` is the CRM account id a billing account may refer to."""
        rates = self._dup if duplicate else self.config.corruption
        writer = self.writer
        if system == "crm":
            account = writer.crm_account(customer, rng, rates, created, modified)
            out = [account]
            share = 0.3 if duplicate else 0.85
            for contact in customer.contacts:
                if rng.random() >= share:
                    continue
                again = 1 + (rng.random() < self.config.contact_duplicate_rate)
                for copy in range(again):
                    out.append(
                        writer.crm_contact(
                            contact,
                            customer,
                            account.pk,
                            rng,
                            self._dup if copy else rates,
                            created,
                            modified,
                        )
                    )
            return out
        if system == "billing":
            account, bill_to = writer.billing_account(
                customer, rng, rates, created, modified, crm_id
            )
            return [account, bill_to]
        kna1 = writer.erp_customer(customer, rng, rates, created)
        out = [kna1]
        share = 0.2 if duplicate else 0.6
        for contact in customer.contacts:
            if rng.random() < share:
                out.append(writer.erp_contact(contact, customer, kna1.pk, rng, rates))
        return out

    def entities(self, customer: Customer, batch: Batch) -> None:
        """The truth about the customer and its contact persons."""
        country = customer.country.code
        batch.truth_entities.append(
            (
                customer.entity_id,
                customer.kind,
                "customer",
                customer.entity_id,
                country,
                customer.seed,
                json.dumps(true_attributes(customer), ensure_ascii=False),
                customer.created_at,
            )
        )
        for contact in customer.contacts:
            batch.truth_entities.append(
                (
                    contact.entity_id,
                    "person",
                    "contact",
                    customer.entity_id,
                    country,
                    customer.seed,
                    json.dumps(contact_attributes(contact), ensure_ascii=False),
                    customer.created_at,
                )
            )


def iter_batches(config: GeneratorConfig, batch_size: int = 5_000) -> Iterator[Batch]:
    """The world in batches of ``batch_size`` customers, in customer order."""
    builder = WorldBuilder(config)
    rng = random.Random()
    for start in range(0, config.customers, batch_size):
        batch = Batch()
        for index in range(start, min(start + batch_size, config.customers)):
            customer = builder.customer(index, rng)
            builder.records(customer, batch, rng)
            builder.entities(customer, batch)
        yield batch


def generate(config: GeneratorConfig) -> DemoWorld:
    """The whole world in memory."""
    world = DemoWorld(config=config)
    for batch in iter_batches(config):
        world.extend(batch)
    return world


@dataclass(frozen=True)
class SeedResult:
    customers: int
    rows: dict[str, int]
    """Rows per "system.table"."""
    truth_rows: int
    seconds: float
    resumed: bool
    """True when the world was already seeded with this configuration and nothing was loaded."""


def _copy(
    conn: psycopg.Connection[Any], table: str, columns: tuple[str, ...], rows: list[Row]
) -> None:
    statement = sql.SQL("COPY {} ({}) FROM STDIN").format(
        sql.SQL(table), sql.SQL(", ").join(sql.Identifier(column) for column in columns)
    )
    with conn.cursor() as cur, cur.copy(statement) as copy:
        for row in rows:
            copy.write_row(row)


def load_world(
    databases: DemoDatabases, config: GeneratorConfig, batch_size: int = 5_000
) -> SeedResult:
    """Generate the world and COPY it into the (empty) source tables and the truth store.

    Generation (this thread) and COPY (a writer thread) overlap, one batch apart, so the
    server inserts one batch while the next is generated.

    The truth store's indexes are dropped for the load and built at the end, inside its
    transaction (a failed load rolls that back too).

    Ordering: 1. every batch is copied into one open transaction per database; 2. the source
    databases commit; 3. the truth store commits, with the ``dataset`` row that marks the
    world as seeded. A failure before 3 leaves no ``dataset`` row, and ``seed_sources``
    refuses to load over the partial rows until reset.
    """
    started = time.perf_counter()
    counts: dict[str, int] = defaultdict(int)
    pending: queue.Queue[Batch | None] = queue.Queue(maxsize=2)
    failures: list[BaseException] = []
    try:
        connections = {name: psycopg.connect(databases.url(name)) for name in (*SYSTEMS, "truth")}
    except psycopg.Error as exc:
        raise DemoError(f"could not connect to the demo databases: {exc}") from exc

    def write() -> None:
        try:
            while (batch := pending.get()) is not None:
                _write_batch(connections, batch, counts)
        except BaseException as exc:
            failures.append(exc)
            while pending.get() is not None:  # let the generator finish putting
                pass

    writer = threading.Thread(target=write, name="mdh-demo-copy", daemon=True)
    try:
        for conn in connections.values():
            conn.execute("SET synchronous_commit = off")
        for drop, _ in TRUTH_INDEXES:
            connections["truth"].execute(drop)
        writer.start()
        try:
            for batch in iter_batches(config, batch_size):
                if failures:
                    break
                pending.put(batch)
        finally:
            pending.put(None)
            writer.join()
        if failures:
            raise failures[0]
        for _, create in TRUTH_INDEXES:
            connections["truth"].execute(create)
        for system in SYSTEMS:
            connections[system].commit()
        connections["truth"].execute(
            f"INSERT INTO {TRUTH_SCHEMA}.dataset (id, seed, customers, config, generated_at)"
            " VALUES (1, %s, %s, %s, now())",
            (config.seed, config.customers, json.dumps(config.to_json())),
        )
        connections["truth"].commit()
    except psycopg.Error as exc:
        raise DemoError(f"could not load the demo world: {exc}") from exc
    finally:
        for conn in connections.values():
            conn.close()
    return SeedResult(
        config.customers,
        {key: counts[key] for key in counts if key != _TRUTH_COUNT},
        counts[_TRUTH_COUNT],
        time.perf_counter() - started,
        False,
    )


_TRUTH_COUNT = "truth.source_entity"


def _write_batch(
    connections: dict[str, psycopg.Connection[Any]], batch: Batch, counts: dict[str, int]
) -> None:
    for table in SOURCE_TABLES:
        rows = batch.rows.get(table.key)
        if rows:
            _copy(connections[table.system], table.name, table.columns, rows)
            counts[f"{table.system}.{table.name}"] += len(rows)
    truth = connections["truth"]
    _copy(truth, f"{TRUTH_SCHEMA}.entity", TRUTH_ENTITY_COLUMNS, batch.truth_entities)
    _copy(truth, f"{TRUTH_SCHEMA}.source_entity", TRUTH_SOURCE_COLUMNS, batch.truth_sources)
    counts[_TRUTH_COUNT] += len(batch.truth_sources)


def find_dataset(databases: DemoDatabases) -> dict[str, Any] | None:
    """The configuration the world was seeded with, or None when it was not (yet)."""
    with psycopg.connect(databases.truth) as conn:
        row = conn.execute(f"SELECT config FROM {TRUTH_SCHEMA}.dataset WHERE id = 1").fetchone()
    return None if row is None else dict(row[0])


def count_rows(databases: DemoDatabases) -> dict[str, int]:
    """Rows per "system.table" in the source databases."""
    counts: dict[str, int] = {}
    for system in SYSTEMS:
        with psycopg.connect(databases.url(system)) as conn:
            for table in SOURCE_TABLES:
                if table.system == system:
                    query = sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(table.name))
                    row = conn.execute(query).fetchone()
                    counts[f"{system}.{table.name}"] = int(row[0]) if row else 0
    return counts


def seed_sources(
    target: EmbeddedPostgres | DemoDatabases,
    config: GeneratorConfig,
    reset: bool = False,
    prefix: str = "",
) -> SeedResult:
    """Create the source databases and load the generated world, once.

    A world already seeded with the same configuration is kept as it is (the demo resumes;
    live traffic may have changed it since). A different configuration, or rows without a
    completed seed, raise ``DemoError`` asking for a reset.
    """
    started = time.perf_counter()
    databases = create_sources(target, reset=reset, prefix=prefix)
    existing = find_dataset(databases)
    if existing is not None:
        if existing != json.loads(json.dumps(config.to_json())):
            raise DemoError(
                f"the demo sources were seeded with another configuration (seed"
                f" {existing.get('seed')}, {existing.get('customers')} customers); reset to"
                " start over"
            )
        counts = count_rows(databases)
        return SeedResult(config.customers, counts, 0, time.perf_counter() - started, resumed=True)
    if any(count_rows(databases).values()):
        raise DemoError("the demo source tables hold rows from an unfinished seed; reset them")
    return load_world(databases, config)


__all__ = [
    "DEFAULT_DUPLICATE_RATE",
    "DEFAULT_OVERLAP",
    "Batch",
    "DemoWorld",
    "GeneratorConfig",
    "SeedResult",
    "WorldBuilder",
    "entity_seed",
    "generate",
    "iter_batches",
    "load_world",
    "seed_sources",
]
