"""Outbox retention: settled rows past the retention that a later version superseded are
deleted, by ``Publishing.prune`` and by the relay every ``prune_interval``; pending and dead
rows stay, each golden record's latest delivered version stays (replay sends it), and the
KPI over the retained window is what it was."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import timedelta

import pytest
import sqlalchemy as sa
from cdc_testkit import fresh_hub_database
from publish_kit import COMPANY_NAMES, Changes, publish_hub
from sqlalchemy.engine import Engine

from cdc.relay import OutboxRelay, RelaySettings
from hub.db import create_engine
from hub.services import HubServices
from hub.services.sync import Delivery
from mdh.embedded_pg import EmbeddedPostgres

pytestmark = pytest.mark.slow

LEASE = timedelta(minutes=1)
OLD = timedelta(days=10)
RECENT = timedelta(days=2)


@pytest.fixture(scope="module")
def engine(pg_server: EmbeddedPostgres) -> Iterator[Engine]:
    engine = create_engine(fresh_hub_database(pg_server, "outbox_prune_tests"))
    try:
        yield engine
    finally:
        engine.dispose()


class Outbox:
    """Golden records A..G with versions settled as each test case needs, aged by hand."""

    def __init__(self, hub: HubServices, engine: Engine) -> None:
        self.hub = hub
        self.engine = engine
        self.changes = Changes(hub)
        self.publishing = hub.publishing()
        self.ids: dict[str, int] = {}

    def version(self, name: str) -> None:
        """A new version of golden record ``name`` (a rename in the CRM)."""
        index = "ABCDEFG".index(name)
        self.changes.put(f"C{index}", f"{COMPANY_NAMES[index]} {time.monotonic_ns()}")

    def claim(self) -> dict[str, Delivery]:
        claimed = self.publishing.claim("hooks", limit=100, lease=LEASE)
        names = {v: k for k, v in self.golden_ids().items()}
        return {names[d.golden_id]: d for d in claimed}

    def golden_ids(self) -> dict[str, int]:
        with self.engine.connect() as conn:
            rows = conn.execute(
                sa.text("SELECT pk, golden_id FROM source_records WHERE system = 'crm'")
            )
            return {"ABCDEFG"[int(pk[1:])]: int(golden) for pk, golden in rows}

    def age(self, name: str, version: int, by: timedelta) -> None:
        """Move the settle (delivered or dead) of one row ``by`` into the past."""
        with self.engine.begin() as conn:
            conn.execute(
                sa.text(
                    "UPDATE outbox SET delivered_at = delivered_at - :by,"
                    " acknowledged_at = acknowledged_at - :by, dead_at = dead_at - :by,"
                    " created_at = created_at - :by, golden_committed_at = golden_committed_at"
                    " - :by, source_committed_at = source_committed_at - :by"
                    " WHERE golden_id = :g AND version = :v"
                ),
                {"by": by, "g": self.golden_ids()[name], "v": version},
            )

    def rows(self) -> set[tuple[str, int, str]]:
        """(golden name, version, state) of every outbox row."""
        names = {v: k for k, v in self.golden_ids().items()}
        with self.engine.connect() as conn:
            rows = conn.execute(
                sa.text(
                    "SELECT golden_id, version, CASE WHEN dead_at IS NOT NULL THEN 'dead'"
                    " WHEN skipped THEN 'skipped' WHEN delivered_at IS NOT NULL"
                    " THEN 'delivered' ELSE 'pending' END FROM outbox"
                )
            )
            return {(names[g], int(v), str(state)) for g, v, state in rows}


def _settle(outbox: Outbox, plan: dict[str, str]) -> None:
    """Claim one version of each golden record and settle it as ``plan`` says."""
    claimed = outbox.claim()
    now = outbox.hub.clock()
    for name, how in plan.items():
        delivery = claimed.pop(name)
        if how == "delivered":
            assert outbox.publishing.mark_delivered(delivery, now)
        elif how == "dead":
            assert outbox.publishing.mark_dead(delivery, "rejected: HTTP 422")
        elif how == "skipped":
            assert outbox.publishing.mark_skipped(delivery)
    outbox.publishing.release(list(claimed.values()), retry_at=now)


@pytest.fixture
def outbox(engine: Engine) -> Outbox:
    """A: v1-v3 delivered long ago. B: v1 delivered long ago, v2 recently. C: v1 delivered,
    v2 dead, long ago. D: v1 dead, v2 delivered, long ago. E: v1 delivered long ago, v2
    pending. F: v1, v2 delivered recently. G: v1 delivered, v2 and v3 skipped, long ago."""
    hub = publish_hub(engine, ("hooks",))
    outbox = Outbox(hub, engine)
    for name in "ABCDEFG":
        outbox.version(name)
    _settle(outbox, dict.fromkeys("ABCDEFG", "delivered") | {"D": "dead"})
    for name in "ABCDEFG":
        outbox.version(name)
    _settle(outbox, dict.fromkeys("ABCDFG", "delivered") | {"C": "dead", "G": "skipped"})
    for name in "AG":
        outbox.version(name)
    _settle(outbox, {"A": "delivered", "G": "skipped"})
    for name, versions in {"A": 3, "B": 1, "C": 2, "D": 2, "E": 1, "G": 3}.items():
        for version in range(1, versions + 1):
            outbox.age(name, version, OLD)
    for version in (1, 2):
        outbox.age("F", version, RECENT)
    outbox.age("B", 2, timedelta(hours=1))
    return outbox


KEPT = {
    ("A", 3, "delivered"),  # the latest delivered version, however old: replay sends it
    ("B", 2, "delivered"),
    ("C", 1, "delivered"),  # its later version is dead: v1 is what the target has
    ("C", 2, "dead"),  # dead rows stay until retried (or revived and delivered)
    ("D", 1, "dead"),  # superseded, but dead: stays
    ("D", 2, "delivered"),
    ("E", 1, "delivered"),
    ("E", 2, "pending"),
    ("F", 1, "delivered"),  # within the retention
    ("F", 2, "delivered"),
    ("G", 1, "delivered"),
    ("G", 3, "skipped"),
}
PRUNED = {("A", 1, "delivered"), ("A", 2, "delivered"), ("B", 1, "delivered")}
PRUNED |= {("G", 2, "skipped")}


def test_prune_deletes_superseded_settled_rows_past_the_retention_only(outbox: Outbox) -> None:
    assert outbox.rows() == KEPT | PRUNED
    window = outbox.hub.clock() - timedelta(days=7)
    kpi_before = outbox.hub.sync_latency(since=window)
    assert outbox.publishing.prune(older_than=timedelta(days=7)) == len(PRUNED)
    assert outbox.rows() == KEPT
    assert outbox.publishing.prune(older_than=timedelta(days=7)) == 0
    # The KPI of the retained window is what it was.
    assert outbox.hub.sync_latency(since=window) == kpi_before
    # A replay reaching back past the retention sends each golden record's latest delivered
    # version, its current state (C's and E's latest versions are dead / pending: nothing).
    assert outbox.publishing.replay("hooks") == 4  # A v3, B v2, D v2, F v2
    pending = {(name, v) for name, v, state in outbox.rows() if state == "pending"}
    assert pending == {("A", 3), ("B", 2), ("D", 2), ("F", 2), ("E", 2)}


def test_the_relay_prunes_every_interval(outbox: Outbox) -> None:
    relay = OutboxRelay(
        outbox.hub,
        [],
        settings=RelaySettings(retention=timedelta(days=7), prune_interval=0.2),
    )
    relay.start()
    try:
        deadline = time.monotonic() + 20
        while outbox.rows() != KEPT:
            assert time.monotonic() < deadline, outbox.rows() - KEPT
            time.sleep(0.05)
        outbox.age("F", 1, OLD)  # F v1 is now past the retention too: the next prune has it
        while ("F", 1, "delivered") in outbox.rows():
            assert time.monotonic() < deadline, "not pruned at the next interval"
            time.sleep(0.05)
    finally:
        relay.stop.set()
        relay.join(10)
    assert relay.pruned == len(PRUNED) + 1


def test_a_relay_without_retention_keeps_every_row(outbox: Outbox) -> None:
    relay = OutboxRelay(outbox.hub, [], settings=RelaySettings(retention=None))
    relay.start()
    time.sleep(0.3)
    relay.stop.set()
    relay.join(10)
    assert relay.prune() == 0
    assert outbox.rows() == KEPT | PRUNED
