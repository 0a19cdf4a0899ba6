"""PostgreSQL write-back into the demo's CRM, billing and ERP databases (real PostgreSQL, the
demo mapping and config, the change capture done by hand: every row read and applied as a
snapshot read from Debezium would be; tests/cdc/test_relay_writeback.py runs real Debezium).

A merge and an unmerge reach all three systems; the hub writes the names it owns and never a
field a system owns; a repeated delivery writes nothing; a write-back transaction announces
itself, and its changes, and only its changes, are recognised when capture brings them back."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
import sqlalchemy as sa
from cdc_testkit import fresh_hub_database
from publish_kit import (
    ACME_BILLING,
    ACME_CRM,
    ACME_ERP,
    MARIA_CRM,
    MARIA_ERP,
    capture_by_hand,
    demo_config,
    relay_until_settled,
    seed_world,
    source_row,
)
from sqlalchemy.engine import Engine

from cdc.envelope import ChangeEnvelope, LogicalMessage, Operation, SourceInfo
from cdc.targets import (
    DeliveryTarget,
    PostgresTarget,
    TargetSetupError,
    build_targets,
    parse_targets,
)
from hub.db import create_engine
from hub.model import SourceKey
from hub.services import HubServices
from hub.tables import HUB_TABLES
from mdh.config import MdhConfig
from mdh.demo import DemoDatabases, create_sources
from mdh.demo.mapping import DemoChangeMapper, ReferenceData
from mdh.embedded_pg import EmbeddedPostgres

pytestmark = pytest.mark.slow

BILL_TO = SourceKey("billing", "contact", "2c92a0fd0000000000000000000000c1")


@pytest.fixture(scope="module")
def databases(pg_server: EmbeddedPostgres) -> DemoDatabases:
    return create_sources(pg_server, reset=True, prefix="pgt_")


@pytest.fixture(scope="module")
def config(databases: DemoDatabases) -> MdhConfig:
    return demo_config(databases)


@pytest.fixture(scope="module")
def engine(pg_server: EmbeddedPostgres) -> Iterator[Engine]:
    engine = create_engine(fresh_hub_database(pg_server, "writeback_tests"))
    try:
        yield engine
    finally:
        engine.dispose()


@pytest.fixture(scope="module")
def matcher(config: MdhConfig) -> Any:
    return config.build_matcher()


class World:
    """The hub, the demo sources with Acme and Maria, and the capture by hand."""

    def __init__(
        self, engine: Engine, config: MdhConfig, matcher: Any, databases: DemoDatabases
    ) -> None:
        with engine.begin() as conn:
            conn.execute(sa.text(f"TRUNCATE {', '.join(HUB_TABLES)} RESTART IDENTITY CASCADE"))
        seed_world(databases)
        self.engine = engine
        self.databases = databases
        self.hub = HubServices(
            engine, matcher=matcher, rules=config.survivorship, targets=config.targets
        )
        assert config.mappings is not None
        self.references = ReferenceData({s: databases.url(s) for s in ("crm", "billing", "erp")})
        self.mapper = DemoChangeMapper(config.mappings, self.references)
        self.lsn = 1
        self.targets = build_targets(
            config.target_specs, writeback_state=self.hub.publishing().writeback_state
        )

    def capture(self) -> None:
        self.lsn = capture_by_hand(self.hub, self.databases, self.mapper, lsn=self.lsn)

    def golden(self, key: SourceKey) -> int:
        return self.hub.get_golden_by_source(key).id

    def publish(self) -> None:
        relay_until_settled(self.hub, self.targets)

    def changes_made(self) -> tuple[int, int]:
        with self.engine.connect() as conn:
            history = conn.execute(sa.text("SELECT count(*) FROM golden_history")).scalar_one()
            outbox = conn.execute(sa.text("SELECT count(*) FROM outbox")).scalar_one()
        return int(history), int(outbox)

    def written(self, key: SourceKey) -> str | None:
        value = source_row(self.databases, key)["mdh_golden_id"]
        return None if value is None else str(value)


@pytest.fixture
def world(
    engine: Engine, config: MdhConfig, matcher: Any, databases: DemoDatabases
) -> Iterator[World]:
    world = World(engine, config, matcher, databases)
    try:
        yield world
    finally:
        world.references.close()


def _one_acme(world: World) -> int:
    """Acme's three rows on one golden record, and Maria's two on one (a steward merges
    whatever the matcher left apart)."""
    acme = world.golden(ACME_CRM)
    for key in (ACME_BILLING, ACME_ERP):
        if world.golden(key) != acme:
            world.hub.merge_golden(acme, world.golden(key), actor="steward", reason="same")
    maria = world.golden(MARIA_CRM)
    if world.golden(MARIA_ERP) != maria:
        world.hub.merge_golden(maria, world.golden(MARIA_ERP), actor="steward", reason="same")
    return acme


def test_merge_and_unmerge_propagate_to_all_three_systems(world: World) -> None:
    world.capture()
    acme = _one_acme(world)
    maria = world.golden(MARIA_CRM)
    world.publish()
    for key in (ACME_CRM, ACME_BILLING, ACME_ERP):
        assert world.written(key) == str(acme)
    assert world.written(MARIA_CRM) == world.written(MARIA_ERP) == str(maria)
    assert world.written(BILL_TO) == str(world.golden(BILL_TO))  # a party of its own

    # The steward splits the ERP customer off: it gets the new id, the others keep Acme's.
    erp_record = world.hub.get_source_record(ACME_ERP).id
    kept, split = world.hub.unmerge(acme, [erp_record], actor="steward", reason="not the same")
    assert kept.id == acme
    world.publish()
    assert world.written(ACME_ERP) == str(split.id)
    assert world.written(ACME_CRM) == world.written(ACME_BILLING) == str(acme)

    # Merged back: the merged-away id is replaced by the survivor's everywhere.
    world.hub.merge_golden(acme, split.id, actor="steward", reason="same after all")
    world.publish()
    for key in (ACME_CRM, ACME_BILLING, ACME_ERP):
        assert world.written(key) == str(acme)
    for system in ("crm", "billing", "erp"):
        with psycopg.connect(world.databases.url(system)) as conn:
            ids = {
                str(value)
                for table in ("account", "contact", "kna1", "knvk")
                if conn.execute("SELECT to_regclass(%s)", (table,)).fetchone() != (None,)
                for (value,) in conn.execute(f"SELECT mdh_golden_id FROM {table}")
            }
        assert str(split.id) not in ids, system


def test_the_hub_writes_the_names_it_owns_and_never_a_system_of_record_field(
    world: World,
) -> None:
    world.capture()
    _one_acme(world)
    before = {key: source_row(world.databases, key) for key in (ACME_BILLING, ACME_ERP)}
    world.publish()
    billing = source_row(world.databases, ACME_BILLING)
    assert billing["name"] == "Acme Robotics GmbH"  # the CRM's spelling: the hub owns it here
    knvk = source_row(world.databases, MARIA_ERP)
    assert (knvk["namev"], knvk["name1"]) == ("Maria", "Lopez")
    # Billing owns tax id and commercial terms; the ERP its legal names, tax id, addresses.
    for column in ("vatid", "currency", "paymentterm", "status"):
        assert billing[column] == before[ACME_BILLING][column]
    kna1 = source_row(world.databases, ACME_ERP)
    for column in ("name1", "name2", "stceg", "stras", "telf1"):
        assert kna1[column] == before[ACME_ERP][column]


def test_a_repeated_delivery_writes_nothing(world: World) -> None:
    world.capture()
    _one_acme(world)
    world.publish()
    rows = {key: source_row(world.databases, key)["xmin"] for key in (ACME_BILLING, ACME_ERP)}
    assert world.hub.publishing().replay("billing", all_versions=True) > 0
    assert world.hub.publishing().replay("erp", all_versions=True) > 0
    world.publish()
    # No row was updated again: same row versions, so no change event either.
    assert {key: source_row(world.databases, key)["xmin"] for key in rows} == rows


def test_the_write_back_is_recognised_when_it_comes_back(world: World) -> None:
    """A write-back transaction announces itself (a logical message first); the mapper
    drops that transaction's row changes, and only those, when capture brings them back."""
    world.capture()
    _one_acme(world)
    with psycopg.connect(world.databases.billing, autocommit=True) as conn:
        slot = conn.execute(
            "SELECT pg_create_logical_replication_slot('pgt_echo', 'test_decoding')"
        ).fetchone()
    assert slot is not None
    try:
        world.publish()
        with psycopg.connect(world.databases.billing, autocommit=True) as conn:
            conn.execute(
                "UPDATE account SET paymentterm = 'Net 45' WHERE id = %s", (ACME_BILLING.pk,)
            )
            decoded = [
                (int(xid), str(data))
                for (xid, data) in conn.execute(
                    "SELECT xid::text, data FROM pg_logical_slot_get_changes('pgt_echo', NULL,"
                    " NULL, 'include-xids', '1')"
                )
            ]
    finally:
        with psycopg.connect(world.databases.billing, autocommit=True) as conn:
            conn.execute("SELECT pg_drop_replication_slot('pgt_echo')")
    written = {xid for xid, data in decoded if "prefix: mdh.writeback" in data}
    updates = [xid for xid, data in decoded if data.startswith("table public.")]
    *writes, user_xid = updates
    assert writes  # the write-back of the billing rows (golden ids, Acme's name)...
    assert all(xid in written for xid in writes)  # ...each in an announced transaction
    assert user_xid not in written  # and the user's edit is not
    # The same stream as Debezium delivers it, through the demo mapping.
    echo_xid = writes[0]
    message = _envelope(Operation.MESSAGE, echo_xid, None)
    echo = _envelope(Operation.UPDATE, echo_xid, source_row(world.databases, ACME_BILLING))
    edit = _envelope(Operation.UPDATE, user_xid, source_row(world.databases, ACME_BILLING))
    assert world.mapper.map_change(message) is None
    assert world.mapper.map_change(echo) is None
    assert world.mapper.ignored["echo"] == 1
    change = world.mapper.map_change(edit)
    assert change is not None
    assert change.attributes["payment_terms"] == "Net 45"


def _envelope(op: Operation, xid: int, row: dict[str, Any] | None) -> ChangeEnvelope:
    source = SourceInfo("postgresql", "billing", "pgt_billing", "public", "account", 0, tx_id=xid)
    if op is Operation.MESSAGE:
        return ChangeEnvelope(
            op, None, None, None, source, message=LogicalMessage("mdh.writeback", b"1:1:billing")
        )
    assert row is not None
    image = {k: v for k, v in row.items() if k != "xmin"}
    return ChangeEnvelope(op, {"id": row["id"]}, image, image, source)


def test_a_target_that_does_not_fit_its_configuration_is_refused_at_start(
    world: World, databases: DemoDatabases
) -> None:
    for tables, problem in (
        ({"acount": {"key": "id"}}, "table public.acount"),
        ({"account": {"key": "id", "fields": {"nmae": "legal_name"}}}, "no column 'nmae'"),
        ({"account": {"key": "id", "golden_id_column": "golden"}}, "no column 'golden'"),
    ):
        spec = parse_targets(
            {"crm": {"kind": "postgres", "connection": databases.crm, "tables": tables}}
        ).specs["crm"]
        assert spec.kind == "postgres"
        target = PostgresTarget("crm", spec, world.hub.publishing().writeback_state)
        with pytest.raises(TargetSetupError, match=problem):
            target.open()
        target.close()


def _target(world: World, name: str) -> DeliveryTarget:
    [target] = [t for t in world.targets if t.name == name]
    return target
