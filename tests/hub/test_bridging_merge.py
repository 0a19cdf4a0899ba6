"""Bridging merges: a source record that matches two golden records automatically merges them,
unless a steward kept them apart or a pair of their members conflicts; then it is reviewed."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from hub_testkit import count, key, make_hub, store_state, upsert
from sqlalchemy.engine import Engine

from hub.history import HistoryEventKind
from hub.model import GoldenStatus, SourceChange
from hub.records import ReviewDecision
from hub.services import HubServices


def _two_goldens(hub: HubServices, *, tax_b: str | None = None) -> tuple[int, int]:
    """Golden A (crm/1, erp/E1: one e-mail) and golden B (billing/B1: another e-mail)."""
    b_attributes: dict[str, Any] = {
        "legal_name": "Acme Billing",
        "emails": ["billing@acme.example"],
    }
    if tax_b:
        b_attributes["tax_id"] = tax_b
    hub.apply_changes(
        [
            upsert("crm", "1", 1, legal_name="Acme", emails=["a@acme.example"], tax_id="DE1"),
            upsert("erp", "E1", 2, legal_name="Acme Corp", emails=["a@acme.example"]),
            upsert("billing", "B1", 3, **b_attributes),
        ]
    )
    a = hub.get_golden_by_source(key("crm", "1")).id
    b = hub.get_golden_by_source(key("billing", "B1")).id
    assert a != b
    return a, b


def _bridge() -> list[SourceChange]:
    """A record carrying both e-mails: it matches A and B automatically."""
    return [
        upsert(
            "crm",
            "9",
            10,
            legal_name="Acme",
            emails=["a@acme.example", "billing@acme.example"],
        )
    ]


def test_a_bridging_record_merges_the_two_golden_records(engine: Engine) -> None:
    hub = make_hub(engine)
    a, b = _two_goldens(hub)
    outbox_before = count(engine, "SELECT count(*) FROM outbox")

    hub.apply_changes(_bridge())

    # A holds more sources, so it survives (plan_merge); B resolves to it.
    golden = hub.get_golden_by_source(key("crm", "9"))
    assert golden.id == a
    assert {(s.key.system, s.key.pk) for s in golden.sources} == {
        ("crm", "1"),
        ("erp", "E1"),
        ("billing", "B1"),
        ("crm", "9"),
    }
    assert hub.get_golden(b).id == a
    assert hub.get_golden_by_source(key("billing", "B1")).id == a
    assert hub.open_review_tasks() == []

    loser_events = hub.golden_history(b)
    assert loser_events[-1].kind is HistoryEventKind.MERGED
    assert loser_events[-1].status is GoldenStatus.MERGED
    assert loser_events[-1].merged_into == a
    bridge_id = hub.get_source_record(key("crm", "9")).id
    survivor_event = hub.golden_history(a)[-1]
    assert survivor_event.kind is HistoryEventKind.MERGED
    assert survivor_event.details["merged_from"] == b
    assert survivor_event.details["bridging_source_record_id"] == bridge_id
    assert set(survivor_event.details["bridge_scores"]) == {str(a), str(b)}

    # Downstream learns of both: the survivor's new version and the merged record's status.
    rows = {(golden_id, status) for golden_id, status in _outbox_statuses(engine, outbox_before)}
    assert (a, "active") in rows
    assert (b, "merged") in rows

    # Lineage is recomputed over the union; rebuilding changes nothing.
    before = store_state(engine)
    hub.rebuild_golden_records()
    assert store_state(engine) == before


def test_a_hard_conflict_between_members_opens_a_review_instead(engine: Engine) -> None:
    hub = make_hub(engine)
    # B's record carries another tax id than A's crm/1: the bridge does not conflict with
    # either side, but crm/1 and billing/B1 do.
    a, b = _two_goldens(hub, tax_b="FR2")

    hub.apply_changes(_bridge())

    assert hub.get_golden_by_source(key("crm", "9")).id == a
    assert hub.get_golden(b).id == b
    [task] = hub.open_review_tasks()
    assert task.source_record_id == hub.get_source_record(key("crm", "9")).id
    assert (task.golden_id, task.candidate_golden_id) == (a, b)
    # the task tells the steward why the machine did not merge them itself
    crm_1 = hub.get_source_record(key("crm", "1")).id
    b1 = hub.get_source_record(key("billing", "B1")).id
    assert task.explanation["held_back"] == (
        f"not merged automatically with golden record {a}:"
        f" source records {min(crm_1, b1)} and {max(crm_1, b1)} have a hard conflict"
    )


def test_a_cannot_link_between_members_opens_a_review_instead(engine: Engine) -> None:
    hub = make_hub(engine)
    hub.apply_changes(
        [
            upsert("crm", "1", 1, legal_name="Acme", emails=["a@acme.example"]),
            upsert("billing", "B1", 2, legal_name="Acme", emails=["billing@acme.example"]),
        ]
    )
    a = hub.get_golden_by_source(key("crm", "1")).id
    b = hub.get_golden_by_source(key("billing", "B1")).id
    # Same name only: a review task, which the steward answers "not the same" (cannot-link
    # between billing/B1 and crm/1; nobody's link changes).
    [task] = hub.open_review_tasks()
    hub.decide_review_task(task.id, ReviewDecision.NO_MATCH, actor="steward:kim")

    hub.apply_changes(_bridge())

    assert hub.get_golden_by_source(key("crm", "9")).id == a
    assert hub.get_golden(b).id == b
    assert hub.get_golden(b).status is GoldenStatus.ACTIVE
    [task] = hub.open_review_tasks()
    assert task.source_record_id == hub.get_source_record(key("crm", "9")).id
    assert (task.golden_id, task.candidate_golden_id) == (a, b)
    assert task.explanation["held_back"].endswith(
        "a steward kept members of them apart (cannot-link)"
    )


def test_a_steward_unmerge_is_not_merged_again_by_a_bridge(engine: Engine) -> None:
    hub = make_hub(engine)
    a, b = _two_goldens(hub)
    hub.apply_changes(_bridge())
    assert hub.get_golden(b).id == a
    b1 = hub.get_source_record(key("billing", "B1")).id
    kept, split = hub.unmerge(a, [b1], actor="steward:kim", reason="two companies")
    assert kept.id == a

    # The bridging record changes (a new image with both e-mails again): no re-merge.
    hub.apply_changes(
        [
            upsert(
                "crm",
                "9",
                20,
                legal_name="Acme Holding",
                emails=["a@acme.example", "billing@acme.example"],
            )
        ]
    )
    assert hub.get_golden_by_source(key("billing", "B1")).id == split.id
    assert hub.get_golden(split.id).id == split.id
    assert hub.get_golden_by_source(key("crm", "9")).id == a


def test_a_bridging_merge_is_the_same_applied_twice_or_replayed(engine: Engine) -> None:
    hub = make_hub(engine)
    changes = [
        upsert("crm", "1", 1, legal_name="Acme", emails=["a@acme.example"]),
        upsert("billing", "B1", 2, legal_name="Acme GmbH", emails=["b@acme.example"]),
        upsert("billing", "B2", 3, legal_name="Acme GmbH", emails=["b@acme.example"]),
        upsert("crm", "9", 4, legal_name="Acme", emails=["a@acme.example", "b@acme.example"]),
    ]
    for change in changes[:3]:
        hub.apply_changes([change])
    # Same name only: billing/B1 and B2 are reviewed against crm/1's golden record.
    assert len(hub.open_review_tasks()) == 2
    hub.apply_changes(changes[3:])
    # The bridge merged them: the open tasks are answered, so superseded.
    assert hub.open_review_tasks() == []
    once = store_state(engine)
    hub.apply_changes(changes)
    assert store_state(engine) == once
    # B (two sources) survives, A (one, older) is merged into it.
    golden = hub.get_golden_by_source(key("crm", "1"))
    assert {s.key.pk for s in golden.sources} == {"1", "B1", "B2", "9"}
    assert golden.id == hub.get_golden_by_source(key("billing", "B1")).id


def _outbox_statuses(engine: Engine, after: int) -> list[tuple[int, str]]:
    with engine.connect() as conn:
        return [
            (int(r[0]), str(r[1]))
            for r in conn.execute(
                sa.text(
                    "SELECT golden_id, payload->>'status' FROM outbox WHERE id > :after ORDER BY id"
                ),
                {"after": after},
            )
        ]
