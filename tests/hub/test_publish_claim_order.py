"""Which outbox rows a relay gets: recent changes ahead of a backlog (a live change does not
wait behind an initial load's write-back), the backlog in id order, and per golden record
versions strictly in order."""

from __future__ import annotations

from datetime import timedelta

from hub_testkit import key, make_hub, upsert
from sqlalchemy.engine import Engine

from hub.services import HubServices, utc_now

LEASE = timedelta(minutes=1)


def _claim(hub: HubServices, limit: int) -> dict[str, int]:
    """Claim and acknowledge; returns {source pk: version} of what was claimed."""
    publishing = hub.publishing()
    claimed = publishing.claim("crm", limit=limit, lease=LEASE)
    names = {hub.get_golden_by_source(key("crm", pk)).id: pk for pk in _pks()}
    assert publishing.mark_all_delivered([(d, utc_now()) for d in claimed]) == len(claimed)
    return {names[d.golden_id]: d.version for d in claimed}


def _pks() -> list[str]:
    return [*(f"B{i}" for i in range(30)), "L"]


def test_recent_changes_go_ahead_of_the_backlog_and_versions_stay_in_order(
    engine: Engine,
) -> None:
    hub = make_hub(engine, targets=("crm",))
    # The backlog: 30 golden records written by an initial load, not yet published.
    hub.apply_changes([upsert("crm", f"B{i}", i + 1, legal_name=f"Backlog {i}") for i in range(30)])
    # Live changes: a backlog record changes again, and a new one arrives.
    hub.apply_changes([upsert("crm", "B5", 100, legal_name="Backlog Five Renamed")])
    hub.apply_changes([upsert("crm", "L", 101, legal_name="Live Arrival")])

    # The target's newest five rows belong to B27, B28, B29, B5 and L: their earliest pending
    # versions go first. B5's is its first version: its second must wait for it.
    assert _claim(hub, 5) == {"B27": 1, "B28": 1, "B29": 1, "B5": 1, "L": 1}
    # Now B5's second version is due (still among the newest rows); the backlog follows in
    # id order.
    assert _claim(hub, 5) == {"B5": 2, "B0": 1, "B1": 1, "B2": 1, "B3": 1}
    assert _claim(hub, 100) == {f"B{i}": 1 for i in range(4, 27) if i != 5}
    assert _claim(hub, 100) == {}
