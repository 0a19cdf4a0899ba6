"""PostgreSQL write-back in batches (real PostgreSQL, the demo's source tables): the relay
writes a claimed batch of golden records to one source system in ONE transaction, announced
once, and a row the database refuses, or one a user holds locked, fails alone while the rest
of the batch is delivered."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import psycopg
import pytest
import sqlalchemy as sa
from cdc_testkit import fresh_hub_database
from sqlalchemy.engine import Engine

from cdc.relay import OutboxRelay, RelaySettings, build_relays
from cdc.targets import parse_targets
from hub.db import create_engine
from hub.model import ChangeOp, SourceChange, SourceKey, SourcePosition
from hub.rules import default_rules
from hub.services import HubServices
from hub.tables import HUB_TABLES
from matching import MatchModel, default_spec
from mdh.demo import DemoDatabases, create_sources
from mdh.embedded_pg import EmbeddedPostgres

pytestmark = pytest.mark.slow

CUSTOMERS = 12
SYSTEMS = (("crm", "account", "C"), ("billing", "account", "B"))


@pytest.fixture(scope="module")
def databases(pg_server: EmbeddedPostgres) -> DemoDatabases:
    return create_sources(pg_server, reset=True, prefix="rbt_")


@pytest.fixture(scope="module")
def engine(pg_server: EmbeddedPostgres) -> Iterator[Engine]:
    engine = create_engine(fresh_hub_database(pg_server, "relay_batch_tests"), pool_size=4)
    try:
        yield engine
    finally:
        engine.dispose()


def _name(i: int) -> str:
    return f"Refused Company {i}" if i == 3 else f"Company {i}"


class World:
    """``CUSTOMERS`` companies in CRM and billing, one golden record each (the same e-mail
    links them), and write-back targets for both (golden id and name)."""

    def __init__(self, engine: Engine, databases: DemoDatabases) -> None:
        self.engine = engine
        self.databases = databases
        with engine.begin() as conn:
            conn.execute(sa.text(f"TRUNCATE {', '.join(HUB_TABLES)} RESTART IDENTITY CASCADE"))
        with psycopg.connect(databases.crm, autocommit=True) as conn:
            conn.execute("DELETE FROM contact")
            conn.execute("DELETE FROM account")
            conn.execute(
                "INSERT INTO account (id, name, ispersonaccount, createddate, lastmodifieddate)"
                " SELECT 'C' || i, 'company ' || i, false, now(), now()"
                " FROM generate_series(1, %s) AS i",
                (CUSTOMERS,),
            )
        with psycopg.connect(databases.billing, autocommit=True) as conn:
            conn.execute("ALTER TABLE account DROP CONSTRAINT IF EXISTS rbt_refuse")
            conn.execute("DELETE FROM contact")
            conn.execute("DELETE FROM account")
            conn.execute(
                "INSERT INTO account (id, accountnumber, name, currency, billcycleday, status,"
                " createddate, updateddate) SELECT 'B' || i, 'A' || i, 'COMPANY ' || i, 'EUR',"
                " 1, 'Active', now(), now() FROM generate_series(1, %s) AS i",
                (CUSTOMERS,),
            )
        fast = {"initial_backoff_seconds": 0.05, "max_backoff_seconds": 0.2, "timeout_seconds": 1}
        self.specs = parse_targets(
            {
                system: {
                    "kind": "postgres",
                    "connection": databases.url(system),
                    "delivery": fast,
                    "tables": {table: {"key": "id", "fields": {"name": "legal_name"}}},
                }
                for system, table, _ in SYSTEMS
            }
        )
        self.hub = HubServices(
            engine,
            matcher=MatchModel.untrained(default_spec()),
            rules=default_rules(),
            targets=self.specs.names,
        )
        changes = []
        lsn = 0
        for i in range(1, CUSTOMERS + 1):
            for system, table, prefix in SYSTEMS:
                lsn += 1
                changes.append(
                    SourceChange(
                        key=SourceKey(system, table, f"{prefix}{i}"),
                        op=ChangeOp.UPSERT,
                        attributes={
                            "kind": "organization",
                            "legal_name": _name(i),
                            "emails": [f"ap{i}@company{i}.example"],
                        },
                        raw={"id": f"{prefix}{i}"},
                        position=SourcePosition(lsn, lsn, datetime.now(UTC)),
                    )
                )
        self.hub.apply_changes(changes)
        [self.relay] = build_relays(
            self.hub, self.specs.specs, threading.Event(), settings=RelaySettings(batch_size=100)
        )

    def rows(self, system: str) -> dict[str, dict[str, Any]]:
        with psycopg.connect(self.databases.url(system)) as conn:
            return {
                pk: {"golden": golden, "name": name, "xmin": xmin}
                for pk, golden, name, xmin in conn.execute(
                    "SELECT id, mdh_golden_id, name, xmin::text FROM account"
                )
            }

    def golden(self, system: str, pk: str) -> int:
        return self.hub.get_golden_by_source(SourceKey(system, "account", pk)).id

    def close(self) -> None:
        for adapter in self.relay.adapters:
            adapter.close()


@pytest.fixture
def world(engine: Engine, databases: DemoDatabases) -> Iterator[World]:
    world = World(engine, databases)
    try:
        yield world
    finally:
        world.close()


def test_a_claimed_batch_is_one_announced_source_transaction(world: World) -> None:
    with psycopg.connect(world.databases.crm, autocommit=True) as conn:
        conn.execute("SELECT pg_create_logical_replication_slot('rbt_batch', 'test_decoding')")
    try:
        assert world.relay.deliver_due("crm") == CUSTOMERS  # one claim, one delivery
        with psycopg.connect(world.databases.crm, autocommit=True) as conn:
            decoded = [
                str(data)
                for (data,) in conn.execute(
                    "SELECT data FROM pg_logical_slot_get_changes('rbt_batch', NULL, NULL,"
                    " 'include-xids', '1')"
                )
            ]
    finally:
        with psycopg.connect(world.databases.crm, autocommit=True) as conn:
            conn.execute("SELECT pg_drop_replication_slot('rbt_batch')")
    rows = world.rows("crm")
    for pk, row in rows.items():
        assert row["golden"] == str(world.golden("crm", pk))
        assert row["name"] == _name(int(pk[1:]))  # the hub-owned field
    assert len({row["xmin"] for row in rows.values()}) == 1  # one transaction wrote them all
    messages = [d for d in decoded if "prefix: mdh.writeback" in d]
    updates = [d for d in decoded if d.startswith("table public.account: UPDATE")]
    assert len(messages) == 1  # announced once, before its first update
    assert len(updates) == CUSTOMERS
    assert len([d for d in decoded if d.startswith("BEGIN")]) == 1
    status = {s.target: s for s in world.hub.publishing().status()}
    assert (status["crm"].delivered, status["crm"].pending) == (CUSTOMERS, 0)
    # Delivered again (a replay): nothing differs, nothing is written.
    assert world.hub.publishing().replay("crm") == CUSTOMERS
    world.relay.deliver_due("crm")
    assert world.rows("crm") == rows


def test_a_row_the_database_refuses_is_dead_alone_and_the_rest_of_the_batch_delivered(
    world: World,
) -> None:
    with psycopg.connect(world.databases.billing, autocommit=True) as conn:
        conn.execute(
            "ALTER TABLE account ADD CONSTRAINT rbt_refuse CHECK (name NOT LIKE 'Refused%%')"
        )
    world.relay.deliver_due("billing")  # the batch fails; its rows go one by one
    rows = world.rows("billing")
    refused = world.golden("billing", "B3")
    assert rows["B3"]["golden"] is None  # nothing of that delivery was written
    for pk, row in rows.items():
        if pk != "B3":
            assert row["golden"] == str(world.golden("billing", pk))
            assert row["name"] == _name(int(pk[1:]))
    [dead] = world.hub.publishing().dead("billing")
    assert dead.golden_id == refused
    assert "rejected" in (dead.last_error or "")
    assert "rbt_refuse" in (dead.last_error or "")
    status = {s.target: s for s in world.hub.publishing().status()}
    assert (status["billing"].delivered, status["billing"].dead) == (CUSTOMERS - 1, 1)
    assert world.relay.counts()["billing"].batches_split == 1
    # The other system took the whole batch at once.
    assert world.relay.deliver_due("crm") == CUSTOMERS
    assert len({row["xmin"] for row in world.rows("crm").values()}) == 1


def test_a_row_a_user_holds_locked_waits_alone(world: World) -> None:
    """A user's transaction keeps one CRM row locked past the write-back's lock timeout: the
    batch is deferred as a whole, then the other rows go one by one and only the locked row
    waits for its retry, which delivers it once the user commits."""
    user = psycopg.connect(world.databases.crm)
    try:
        user.execute("SELECT 1 FROM account WHERE id = 'C5' FOR UPDATE")
        world.relay.deliver_due("crm")
        rows = world.rows("crm")
        assert rows["C5"]["golden"] is None
        assert all(r["golden"] is not None for pk, r in rows.items() if pk != "C5")
        [status] = [s for s in world.hub.publishing().status() if s.target == "crm"]
        assert (status.delivered, status.pending, status.dead) == (CUSTOMERS - 1, 1, 0)
        assert "deferred" in (status.last_error or "")
    finally:
        user.rollback()
        user.close()
    relay = OutboxRelay(
        world.hub, [world.relay.adapters[0]], settings=RelaySettings(idle_wait=0.02)
    )
    relay.start()
    try:
        deadline = time.monotonic() + 20
        while world.rows("crm")["C5"]["golden"] is None:
            assert time.monotonic() < deadline, "the locked row was never delivered"
            time.sleep(0.05)
    finally:
        relay.stop.set()
        relay.join(10)
    assert world.rows("crm")["C5"]["golden"] == str(world.golden("crm", "C5"))
