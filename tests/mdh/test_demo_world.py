"""The demo world on a real PostgreSQL: source schemas, the duplicate generator, live traffic."""

from __future__ import annotations

import itertools
import re
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest
from psycopg import sql
from rapidfuzz import fuzz
from unidecode import unidecode

from mdh.demo.generator import DemoWorld, GeneratorConfig, SeedResult, generate, seed_sources
from mdh.demo.schemas import (
    SOURCE_TABLES,
    SYSTEMS,
    TABLES_BY_KEY,
    DemoDatabases,
    DemoError,
    create_sources,
)
from mdh.demo.systems import salesforce_checksum
from mdh.demo.traffic import TrafficConfig, TrafficCounts, run_traffic
from mdh.demo.vocabulary import load_vocabulary
from mdh.embedded_pg import EmbeddedPostgres

RowKey = tuple[str, str, str]
CUSTOMER_TABLES = {("crm", "account"), ("billing", "account"), ("erp", "kna1")}


# ---- helpers ---------------------------------------------------------------------------------


def source_keys(databases: DemoDatabases) -> set[RowKey]:
    keys: set[RowKey] = set()
    for table in SOURCE_TABLES:
        with psycopg.connect(databases.url(table.system)) as conn:
            query = sql.SQL("SELECT {} FROM {}").format(
                sql.Identifier(table.columns[0]), sql.Identifier(table.name)
            )
            keys.update((table.system, table.name, pk) for (pk,) in conn.execute(query))
    return keys


def truth_rows(databases: DemoDatabases) -> list[tuple[Any, ...]]:
    with psycopg.connect(databases.truth) as conn:
        return conn.execute(
            "SELECT system, table_name, pk, entity_id, duplicate, origin, deleted_at"
            " FROM truth.source_entity ORDER BY system, table_name, pk"
        ).fetchall()


def dump(databases: DemoDatabases) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every demo table, in key order."""
    out: dict[str, list[tuple[Any, ...]]] = {}
    for table in SOURCE_TABLES:
        with psycopg.connect(databases.url(table.system)) as conn:
            query = sql.SQL("SELECT * FROM {} ORDER BY {}").format(
                sql.Identifier(table.name), sql.Identifier(table.columns[0])
            )
            out[f"{table.system}.{table.name}"] = conn.execute(query).fetchall()
    with psycopg.connect(databases.truth) as conn:
        out["truth.source_entity"] = conn.execute(
            "SELECT * FROM truth.source_entity ORDER BY system, table_name, pk"
        ).fetchall()
        out["truth.entity"] = conn.execute(
            "SELECT * FROM truth.entity ORDER BY entity_id"
        ).fetchall()
    return out


def ticking_clock(start: datetime) -> Iterator[datetime]:
    moment = start
    while True:
        yield moment
        moment += timedelta(seconds=1)


def fixed_clock(start: datetime) -> Any:
    ticks = ticking_clock(start)
    return lambda: next(ticks)


def customers_by_system(world: DemoWorld) -> dict[str, set[str]]:
    """Entity ids of the customers with a record in each system."""
    present: dict[str, set[str]] = defaultdict(set)
    for system, table, _pk, entity_id, *_ in world.truth_sources:
        if (system, table) in CUSTOMER_TABLES:
            present[system].add(entity_id)
    return present


# ---- signal: what a matcher could link two records of one customer by ---------------------

_FREE_MAIL = {
    domain for domains, _ in load_vocabulary().email_domains.values() for domain in domains
}


def _phone(text: str | None) -> str | None:
    digits = re.sub(r"\D", "", unidecode(text or ""))
    return digits[-8:] if len(digits) >= 7 else None


def _name(text: str | None) -> str:
    return " ".join(re.sub(r"[^a-z0-9 ]", " ", unidecode(text or "").lower()).split())


def _postcode(text: str | None) -> str | None:
    return re.sub(r"[^A-Z0-9]", "", (text or "").upper()).lstrip("0")[:6] or None


def _tax(text: str | None) -> str | None:
    clean = re.sub(r"[^A-Z0-9]", "", (text or "").upper())
    return clean[-9:] if clean else None


def _domain(text: str | None) -> str | None:
    host = re.sub(r"^(https?://)?(www\.)?", "", (text or "").lower().split("@")[-1]).strip("/")
    return host if host and host not in _FREE_MAIL else None


def customer_records(world: DemoWorld) -> dict[str, list[dict[str, Any]]]:
    """Per customer entity: the match-relevant values of each of its customer records."""
    entity_of = {(s, t, pk): e for s, t, pk, e, *_ in world.truth_sources}

    def rows(key: tuple[str, str]) -> list[dict[str, Any]]:
        columns = TABLES_BY_KEY[key].columns
        return [dict(zip(columns, row, strict=True)) for row in world.rows[key]]

    bill_to = {row["id"]: row for row in rows(("billing", "contact"))}
    records: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in rows(("crm", "account")):
        records[entity_of[("crm", "account", row["id"])]].append(
            {
                "system": "crm",
                "name": _name(row["name"]),
                "phones": {_phone(row["phone"]), _phone(row["personmobilephone"])} - {None},
                "emails": {(row["personemail"] or "").lower()} - {""},
                "taxes": set(),
                "postcode": _postcode(row["billingpostalcode"]),
                "domains": {_domain(row["website"]), _domain(row["personemail"])} - {None},
            }
        )
    for row in rows(("billing", "account")):
        contact = bill_to[row["billtoid"]]
        records[entity_of[("billing", "account", row["id"])]].append(
            {
                "system": "billing",
                "name": _name(row["name"]),
                "phones": {_phone(contact["workphone"])} - {None},
                "emails": {(contact["workemail"] or "").lower()} - {""},
                "taxes": {_tax(row["vatid"])} - {None},
                "postcode": _postcode(contact["postalcode"]),
                "domains": {_domain(contact["workemail"])} - {None},
            }
        )
    for row in rows(("erp", "kna1")):
        records[entity_of[("erp", "kna1", row["kunnr"])]].append(
            {
                "system": "erp",
                "name": _name(f"{row['name1']} {row['name2'] or ''}"),
                "phones": {_phone(row["telf1"])} - {None},
                "emails": set(),
                "taxes": {_tax(row["stceg"]), _tax(row["stcd1"])} - {None},
                "postcode": _postcode(row["pstlz"]),
                "domains": set(),
            }
        )
    return records


def linkable(a: dict[str, Any], b: dict[str, Any]) -> bool:
    if a["phones"] & b["phones"] or a["emails"] & b["emails"] or a["taxes"] & b["taxes"]:
        return True
    if a["domains"] & b["domains"]:
        return True
    return bool(
        a["postcode"]
        and a["postcode"] == b["postcode"]
        and fuzz.token_set_ratio(a["name"], b["name"]) >= 80
    )


# ---- fixtures ----------------------------------------------------------------------------------

SEED_CONFIG = GeneratorConfig(customers=1_200, seed=2024)


@pytest.fixture(scope="module")
def seeded(pg_server: EmbeddedPostgres) -> tuple[DemoDatabases, SeedResult]:
    result = seed_sources(pg_server, SEED_CONFIG, reset=True, prefix="dwseed_")
    return DemoDatabases.on_server(pg_server, "dwseed_"), result


# ---- schemas -----------------------------------------------------------------------------------


def test_create_sources_is_idempotent_and_reset_starts_over(pg_server: EmbeddedPostgres) -> None:
    databases = create_sources(pg_server, prefix="dwschema_")
    assert "password" not in repr(databases)
    assert pg_server.password not in repr(databases)
    create_sources(pg_server, prefix="dwschema_")  # a second run changes nothing

    for system in SYSTEMS:
        with psycopg.connect(databases.url(system)) as conn:
            tables = conn.execute(
                "SELECT c.relname, c.relreplident, i.indisprimary"
                " FROM pg_class c LEFT JOIN pg_index i ON i.indrelid = c.oid AND i.indisprimary"
                " WHERE c.relnamespace = 'public'::regnamespace AND c.relkind = 'r'"
                " ORDER BY c.relname"
            ).fetchall()
        expected = sorted(table.name for table in SOURCE_TABLES if table.system == system)
        assert [name for name, _, _ in tables] == expected
        assert all(identity == "f" for _, identity, _ in tables), "REPLICA IDENTITY FULL"
        assert all(primary for _, _, primary in tables), "every table has a primary key"

    with psycopg.connect(databases.crm) as conn:
        conn.execute(
            "INSERT INTO account (id, name, createddate, lastmodifieddate)"
            " VALUES ('001Dn0000000001AAA', 'Kept', now(), now())"
        )
    create_sources(pg_server, prefix="dwschema_")
    with psycopg.connect(databases.crm) as conn:
        assert conn.execute("SELECT name FROM account").fetchall() == [("Kept",)]
    create_sources(pg_server, reset=True, prefix="dwschema_")
    with psycopg.connect(databases.crm) as conn:
        assert conn.execute("SELECT count(*) FROM account").fetchone() == (0,)
    with psycopg.connect(databases.truth) as conn:
        assert conn.execute("SELECT count(*) FROM truth.source_entity").fetchone() == (0,)


def test_salesforce_ids_carry_the_case_safe_checksum() -> None:
    # The example from Salesforce's documentation of 15- to 18-character ids.
    assert salesforce_checksum("001D000000IqhSL") == "IAZ"
    ids = [
        row[0] for row in generate(GeneratorConfig(customers=50, seed=1)).rows[("crm", "account")]
    ]
    assert all(len(i) == 18 and i.startswith("001") for i in ids)
    assert all(salesforce_checksum(i[:15]) == i[15:] for i in ids)
    assert ids == sorted(ids), "Salesforce ids grow with creation order"


# ---- generator ---------------------------------------------------------------------------------


def test_generation_is_reproducible_by_seed() -> None:
    config = GeneratorConfig(customers=250, seed=7)
    first, second = generate(config), generate(config)
    assert first.rows == second.rows
    assert first.truth_sources == second.truth_sources
    assert first.truth_entities == second.truth_entities

    other = generate(GeneratorConfig(customers=250, seed=8))
    assert other.rows[("crm", "account")] != first.rows[("crm", "account")]

    # Customer i depends only on (seed, i): a smaller world is a prefix of a larger one.
    small = generate(GeneratorConfig(customers=100, seed=7))
    assert small.truth_entities == first.truth_entities[: len(small.truth_entities)]
    for key, rows in small.rows.items():
        assert rows == first.rows[key][: len(rows)]


def test_loaded_rows_are_the_generated_rows_and_truth_covers_each_one(
    seeded: tuple[DemoDatabases, SeedResult],
) -> None:
    databases, result = seeded
    world = generate(SEED_CONFIG)
    assert result.rows == {f"{s}.{t}": len(rows) for (s, t), rows in world.rows.items()}

    with psycopg.connect(databases.erp) as conn:
        kna1 = conn.execute(
            "SELECT kunnr, anred, name1, name2, stras, ort01, pstlz, regio, land1, telf1, stceg,"
            " stcd1, stkzn, spras, ktokd, erdat FROM kna1 ORDER BY kunnr"
        ).fetchall()
    assert kna1 == sorted(world.rows[("erp", "kna1")])

    keys = source_keys(databases)
    truth = truth_rows(databases)
    assert {(s, t, pk) for s, t, pk, *_ in truth} == keys, "truth covers every source row"
    assert len(truth) == len(keys) == result.truth_rows
    with psycopg.connect(databases.truth) as conn:
        unknown = conn.execute(
            "SELECT count(*) FROM truth.source_entity s"
            " LEFT JOIN truth.entity e USING (entity_id) WHERE e.entity_id IS NULL"
        ).fetchone()
        customers = conn.execute(
            "SELECT count(*) FROM truth.entity WHERE role = 'customer'"
        ).fetchone()
    assert unknown == (0,)
    assert customers == (SEED_CONFIG.customers,)


def test_seeding_again_resumes_and_another_configuration_is_refused(
    seeded: tuple[DemoDatabases, SeedResult], pg_server: EmbeddedPostgres
) -> None:
    databases, first = seeded
    again = seed_sources(pg_server, SEED_CONFIG, prefix="dwseed_")
    assert again.resumed
    assert again.rows == first.rows
    with pytest.raises(DemoError, match="another configuration"):
        seed_sources(pg_server, GeneratorConfig(customers=10, seed=1), prefix="dwseed_")
    assert len(source_keys(databases)) == first.truth_rows


def test_overlap_and_duplicate_rates_land_near_what_was_asked() -> None:
    overlap = {"crm": 0.3, "crm+billing": 0.3, "billing+crm+erp": 0.2, "erp": 0.2}
    rates = {"crm": 0.15, "billing": 0.05, "erp": 0.0}
    world = generate(
        GeneratorConfig(customers=4_000, seed=3, overlap=overlap, duplicate_rate=rates)
    )
    per_customer: dict[str, set[str]] = defaultdict(set)
    records: Counter[tuple[str, str]] = Counter()
    for system, table, _pk, entity_id, *_ in world.truth_sources:
        if (system, table) in CUSTOMER_TABLES:
            per_customer[entity_id].add(system)
            records[(system, entity_id)] += 1
    assert len(per_customer) == 4_000
    combos = Counter(
        "+".join(s for s in SYSTEMS if s in systems) for systems in per_customer.values()
    )
    expected = {"crm": 0.3, "crm+billing": 0.3, "crm+billing+erp": 0.2, "erp": 0.2}
    for combo, share in expected.items():
        assert combos[combo] / 4_000 == pytest.approx(share, abs=0.03), combo
    assert set(combos) == set(expected)

    for system, rate in rates.items():
        holders = [n for (s, _), n in records.items() if s == system]
        duplicated = sum(1 for n in holders if n > 1) / len(holders)
        assert duplicated == pytest.approx(rate, abs=0.025), system


def test_records_deviate_from_the_truth_but_stay_linkable() -> None:
    world = generate(GeneratorConfig(customers=3_000, seed=11))
    records = customer_records(world)
    pairs = [pair for recs in records.values() for pair in itertools.combinations(recs, 2)]
    within = [(a, b) for a, b in pairs if a["system"] == b["system"]]
    assert len(within) > 200

    # Corruption happens: most duplicates inside one system are not spelled alike ...
    differ = sum(1 for a, b in within if a["name"] != b["name"]) / len(within)
    assert differ > 0.4
    # ... yet nearly every pair of records of one customer shares something to link by.
    linked = sum(1 for a, b in pairs if linkable(a, b)) / len(pairs)
    assert linked > 0.95

    text = repr(world.rows)
    assert re.search(r"[\u3040-\u30ff\u4e00-\u9fff]", text), "Japanese script"
    assert re.search(r"[\u0400-\u04ff]", text), "Cyrillic script"
    assert re.search(r"[\u0370-\u03ff]", text), "Greek script"
    for spelling in ("G.m.b.H.", "Incorporated", "Str.", "Intl", "St "):
        assert spelling in text, spelling

    crm_people = {row[0]: (row[3], row[4]) for row in world.rows[("crm", "account")] if row[2]}
    nicknames = {
        nick for names in load_vocabulary().given.values() for n in names for nick in n.nicknames
    }
    assert sum(1 for given, _ in crm_people.values() if given in nicknames) > 10
    erp_names = [row[2] for row in world.rows[("erp", "kna1")] if row[8] != "JP"]
    assert sum(1 for name in erp_names if name == name.upper()) / len(erp_names) > 0.95


# ---- traffic -----------------------------------------------------------------------------------


def test_traffic_changes_rows_and_keeps_the_truth_consistent(pg_server: EmbeddedPostgres) -> None:
    seed_sources(pg_server, GeneratorConfig(customers=400, seed=5), reset=True, prefix="dwtraffic_")
    databases = DemoDatabases.on_server(pg_server, "dwtraffic_")
    before = source_keys(databases)
    start = datetime(2025, 7, 1, 9, 0, tzinfo=UTC)
    clock = fixed_clock(start)

    counts = run_traffic(
        databases,
        TrafficConfig(rate=None, seed=3, max_transactions=150),
        threading.Event(),
        clock=clock,
    )
    # The newest CRM account goes away between two runs: its id must never be issued again.
    with psycopg.connect(databases.crm) as conn:
        row = conn.execute('SELECT max(id COLLATE "C") FROM account').fetchone()
        assert row is not None
        newest = row[0]
        contacts = conn.execute(
            "DELETE FROM contact WHERE accountid = %s RETURNING id", (newest,)
        ).fetchall()
        conn.execute("DELETE FROM account WHERE id = %s", (newest,))
    with psycopg.connect(databases.truth) as conn, conn.cursor() as cur:
        cur.executemany(
            "UPDATE truth.source_entity SET deleted_at = %s"
            " WHERE system = 'crm' AND table_name = %s AND pk = %s",
            [(start, "account", newest)] + [(start, "contact", pk) for (pk,) in contacts],
        )
    again = run_traffic(
        databases,
        TrafficConfig(rate=None, seed=4, max_transactions=100),
        threading.Event(),
        clock=clock,
    )

    assert counts.transactions + counts.skipped == 150
    assert again.transactions + again.skipped == 100
    for kind in ("inserts", "updates", "amendments", "deletes", "duplicates", "arrivals"):
        assert getattr(counts, kind) + getattr(again, kind) > 0, kind
    after = source_keys(databases)
    assert after - before, "rows were inserted"
    assert before - after, "rows were deleted"

    truth = truth_rows(databases)
    live = {(s, t, pk) for s, t, pk, *_rest, deleted_at in truth if deleted_at is None}
    gone = {(s, t, pk) for s, t, pk, *_rest, deleted_at in truth if deleted_at is not None}
    assert live == after, "the truth knows exactly the rows that exist"
    assert before - after <= gone
    assert not gone & after
    traffic_rows = [row for row in truth if row[5] == "traffic"]
    assert len(traffic_rows) == counts.rows_inserted + again.rows_inserted
    assert any(row[4] for row in traffic_rows), "some arrivals are duplicates in their system"

    with psycopg.connect(databases.truth) as conn:
        orphans = conn.execute(
            "SELECT count(*) FROM truth.source_entity LEFT JOIN truth.entity e USING (entity_id)"
            " WHERE e.entity_id IS NULL"
        ).fetchone()
        changed = conn.execute(
            "SELECT count(*) FROM truth.entity WHERE updated_at >= %s", (start,)
        ).fetchone()
    assert orphans == (0,)
    assert changed is not None
    assert changed[0] > 0, "updates change the true attributes"
    with psycopg.connect(databases.billing) as conn:
        amended = conn.execute(
            "SELECT count(*) FROM account WHERE updateddate >= %s",
            (start.replace(tzinfo=None) - timedelta(hours=8),),
        ).fetchone()
    assert amended is not None
    assert amended[0] > 0


def test_traffic_is_reproducible_by_seed(pg_server: EmbeddedPostgres) -> None:
    config = GeneratorConfig(customers=150, seed=9)
    start = datetime(2025, 7, 2, 9, 0, tzinfo=UTC)
    dumps = []
    for prefix in ("dwrepro_a_", "dwrepro_b_"):
        seed_sources(pg_server, config, reset=True, prefix=prefix)
        databases = DemoDatabases.on_server(pg_server, prefix)
        run_traffic(
            databases,
            TrafficConfig(rate=None, seed=4, max_transactions=80),
            threading.Event(),
            clock=fixed_clock(start),
        )
        dumps.append(dump(databases))
    first, second = dumps
    for table in first:
        assert first[table] == second[table], table


def test_traffic_keeps_its_rate_and_stops_when_asked(pg_server: EmbeddedPostgres) -> None:
    seed_sources(pg_server, GeneratorConfig(customers=100, seed=2), reset=True, prefix="dwstop_")
    databases = DemoDatabases.on_server(pg_server, "dwstop_")
    stop = threading.Event()
    counts = TrafficCounts()
    timer = threading.Timer(1.0, stop.set)
    started = time.monotonic()
    timer.start()
    try:
        result = run_traffic(databases, TrafficConfig(rate=20, seed=1), stop, counts=counts)
    finally:
        timer.cancel()
    elapsed = time.monotonic() - started
    assert result is counts
    assert elapsed < 5
    done = counts.transactions + counts.skipped
    assert 5 <= done <= 20 * elapsed + 2


def test_traffic_refuses_an_unseeded_world(pg_server: EmbeddedPostgres) -> None:
    databases = create_sources(pg_server, reset=True, prefix="dwempty_")
    with pytest.raises(DemoError, match="not seeded"):
        run_traffic(databases, TrafficConfig(max_transactions=1), threading.Event())
