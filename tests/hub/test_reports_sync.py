"""The sync-latency section of the duplicate-rate report: the KPI's one definition
(``hub.services.sync.measure_sync_latency``), so the report, ``mdh publish status`` and
``HubServices.sync_latency`` agree; a dead-lettered, superseded or skipped delivery is not a
delivery, and the percentiles are what the rows say."""

from __future__ import annotations

from datetime import datetime, timedelta

import numpy as np
import pytest
import sqlalchemy as sa
from hub_testkit import key, make_hub, upsert
from sqlalchemy.engine import Engine

from hub.services import HubServices, utc_now
from hub.services.reports import ReportQuery
from hub.services.sync import Delivery

LEASE = timedelta(seconds=60)


def _claim(hub: HubServices) -> dict[int, Delivery]:
    return {d.golden_id: d for d in hub.publishing().claim("crm", limit=100, lease=LEASE)}


def _set_times(
    engine: Engine, delivery: Delivery, base: datetime, s2g_ms: float | None, g2t_ms: float
) -> None:
    """Source commit at ``base`` (None: a steward action), golden commit ``s2g_ms`` later,
    acknowledgement ``g2t_ms`` after that."""
    golden = base + timedelta(milliseconds=s2g_ms or 0)
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                "UPDATE outbox SET source_committed_at = :source, golden_committed_at = :golden,"
                " acknowledged_at = :ack WHERE id = :id"
            ),
            {
                "source": None if s2g_ms is None else base,
                "golden": golden,
                "ack": golden + timedelta(milliseconds=g2t_ms),
                "id": delivery.id,
            },
        )


def _pct(values: list[float], q: float) -> float:
    return float(np.percentile(values, q))  # linear interpolation, as percentile_cont


def test_dead_superseded_and_skipped_rows_are_not_deliveries_and_percentiles_match_the_rows(
    engine: Engine,
) -> None:
    hub = make_hub(engine, targets=("crm",))
    names = ["Acme", "Brightwater", "Cobalt", "Dunmore", "Elmstead", "Foxglove", "Granite"]
    names += ["Hollowell", "Ironbridge"]
    hub.apply_changes(
        [upsert("crm", name[0], i + 1, legal_name=name) for i, name in enumerate(names)]
    )
    golden = {name[0]: hub.get_golden_by_source(key("crm", name[0])).id for name in names}
    publishing = hub.publishing()
    claimed = _claim(hub)
    assert len(claimed) == 9
    now = utc_now()
    acked = [claimed[golden[k]] for k in "ABCDH"]
    assert publishing.mark_all_delivered([(d, now) for d in acked]) == 5
    publishing.mark_dead(claimed[golden["E"]], "rejected: 422")  # never delivered
    publishing.mark_dead(claimed[golden["F"]], "rejected: 422")  # superseded below
    publishing.mark_skipped(claimed[golden["G"]])  # the target does not take the event
    publishing.release([claimed[golden["I"]]], retry_at=now + timedelta(days=1))  # pending
    # H was delivered, replayed, and the replay died: the target no longer counts as having it.
    assert publishing.replay("crm", golden_ids=[golden["H"]]) == 1
    [again] = _claim(hub).values()
    publishing.mark_dead(again, "rejected: 410")
    # F's next version is delivered: its dead first version is superseded, and still dead.
    hub.apply_changes([upsert("crm", "F", 20, legal_name="Foxglove Pharmacy")])
    [f2] = _claim(hub).values()
    assert (f2.golden_id, f2.version) == (golden["F"], 2)
    publishing.mark_delivered(f2, now)

    base = now - timedelta(minutes=30)
    # (source to golden, golden to target) in ms; D is a steward action: no source commit.
    spans = {"A": (40.0, 60.0), "B": (50.0, 150.0), "C": (100.0, 300.0), "D": (None, 50.0)}
    for k, (s2g, g2t) in spans.items():
        _set_times(engine, claimed[golden[k]], base, s2g, g2t)
    _set_times(engine, f2, base, 200.0, 600.0)
    _set_times(engine, claimed[golden["H"]], base, 1.0, 1.0)  # must not count
    _set_times(engine, claimed[golden["E"]], base, 1.0, 1.0)  # a dead row's times: no count

    report = hub.duplicate_report(ReportQuery(since=now - timedelta(hours=1)))
    [sync] = report.records()["sync_latency"]
    s2t = [100.0, 200.0, 400.0, 800.0]  # A, B, C, F v2
    g2t = [60.0, 150.0, 300.0, 50.0, 600.0]  # and D
    s2g = [40.0, 50.0, 100.0, 200.0]
    assert sync["target"] == "crm"
    assert (sync["delivered"], sync["from_sources"]) == (5, 4)
    assert (sync["dead"], sync["skipped"], sync["pending"]) == (3, 1, 1)  # E, F v1, H; G; I
    for span, values in (
        ("source_to_target", s2t),
        ("golden_to_target", g2t),
        ("source_to_golden", s2g),
    ):
        for stat, q in (("p50", 50), ("p95", 95), ("p99", 99), ("max", 100)):
            assert sync[f"{span}_{stat}_ms"] == pytest.approx(_pct(values, q), abs=0.01), (
                span,
                stat,
            )
    assert sync["oldest_pending_seconds"] >= 0.0
    assert hub.store_status().outbox_pending == {"crm": 1}  # the metrics' gauge: I alone
    # The one definition: the service the relay's status command uses says the same.
    [kpi] = hub.sync_latency(since=now - timedelta(hours=1))
    assert kpi.delivered == sync["delivered"]
    assert kpi.source_to_target.p95 == pytest.approx(sync["source_to_target_p95_ms"])
    assert kpi.golden_to_target.p99 == pytest.approx(sync["golden_to_target_p99_ms"])

    # Outside the window nothing is counted, and what waits is still reported.
    later = hub.duplicate_report(ReportQuery(since=now + timedelta(minutes=1)))
    [quiet] = later.records()["sync_latency"]
    assert (quiet["delivered"], quiet["pending"], quiet["dead"]) == (0, 1, 3)
    assert quiet["source_to_target_p50_ms"] is None


def test_a_clock_behind_the_hub_does_not_make_a_negative_latency(engine: Engine) -> None:
    """A source database whose clock runs ahead (its commit 'after' the golden commit) counts
    as 0 ms: the report stays valid instead of failing its schema."""
    hub = make_hub(engine, targets=("crm",))
    hub.apply_changes([upsert("crm", "A", 1, legal_name="Acme")])
    [delivery] = _claim(hub).values()
    now = utc_now()
    hub.publishing().mark_delivered(delivery, now)
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                "UPDATE outbox SET source_committed_at = :s, golden_committed_at = :g,"
                " acknowledged_at = :a"
            ),
            {"s": now, "g": now - timedelta(milliseconds=30), "a": now + timedelta(seconds=1)},
        )
    [sync] = hub.duplicate_report(ReportQuery(since=now - timedelta(hours=1))).records()[
        "sync_latency"
    ]
    assert sync["source_to_golden_p50_ms"] == 0.0
    assert sync["golden_to_target_p50_ms"] == pytest.approx(1030.0)
    assert sync["source_to_target_p50_ms"] == pytest.approx(1000.0)
