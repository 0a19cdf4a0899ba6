"""Steward actions: stable ids through merge and unmerge, pins, review decisions, constraints."""

from __future__ import annotations

import pytest
from hub_testkit import ExactMatcher, count, delete, key, make_hub, upsert
from sqlalchemy.engine import Engine

from hub.errors import (
    GoldenRecordNotActiveError,
    GoldenRecordNotFoundError,
    InvalidPinError,
    InvalidStewardActionError,
    StaleVersionError,
)
from hub.model import GoldenStatus
from hub.records import ReviewDecision, ReviewStatus
from hub.rules import Rule, RuleKind, SourceRef, SurvivorshipRules
from hub.services import HubServices


def _three_and_one(hub: HubServices) -> tuple[int, int]:
    """Golden A with three sources (same e-mail) and golden B with one."""
    hub.apply_changes(
        [
            upsert("crm", "1", 1, legal_name="Acme", emails=["a@acme.example"]),
            upsert("erp", "E1", 2, legal_name="Acme Corp", emails=["a@acme.example"]),
            upsert("billing", "B1", 3, legal_name="Acme", emails=["a@acme.example"]),
            upsert("crm", "2", 4, legal_name="Acme Europe", emails=["eu@acme.example"]),
        ]
    )
    a = hub.get_golden_by_source(key("crm", "1")).id
    b = hub.get_golden_by_source(key("crm", "2")).id
    assert a != b
    return a, b


def test_merge_keeps_the_survivor_id_and_the_merged_id_resolves(engine: Engine) -> None:
    hub = make_hub(engine)
    a, b = _three_and_one(hub)
    merged = hub.merge_golden(a, b, actor="steward:kim", reason="same company")
    assert merged.id == a
    assert len(merged.sources) == 4
    assert all(s.decided_by.value == "steward" for s in merged.sources if s.key.pk == "2")
    via_old_id = hub.get_golden(b)
    assert via_old_id.id == a
    assert via_old_id.requested_id == b
    assert hub.get_golden_by_source(key("crm", "2")).id == a
    with pytest.raises(GoldenRecordNotActiveError):
        hub.merge_golden(a, b, actor="steward:kim", reason="again")
    with pytest.raises(GoldenRecordNotFoundError) as missing:
        hub.get_golden(999)
    assert missing.value.golden_id == 999


def test_unmerge_majority_keeps_the_id_and_the_machine_never_remerges(engine: Engine) -> None:
    hub = make_hub(engine)
    a, b = _three_and_one(hub)
    hub.merge_golden(a, b, actor="steward:kim", reason="looked the same")
    crm2 = hub.get_source_record(key("crm", "2")).id
    crm1 = hub.get_source_record(key("crm", "1")).id
    erp1 = hub.get_source_record(key("erp", "E1")).id
    billing1 = hub.get_source_record(key("billing", "B1")).id

    # The steward selects the three old records: they are the majority, so they keep id a.
    kept, split = hub.unmerge(a, [crm1, erp1, billing1], actor="steward:kim", reason="wrong")
    assert kept.id == a
    assert {s.source_record_id for s in kept.sources} == {crm1, erp1, billing1}
    assert split.id not in (a, b)
    assert [s.source_record_id for s in split.sources] == [crm2]
    assert count(engine, "SELECT count(*) FROM match_constraints WHERE kind='cannot_link'") == 3

    # crm/2 now takes the e-mail of golden a: it matches automatically, but cannot-link wins.
    hub.apply_changes([upsert("crm", "2", 10, legal_name="Acme Europe", emails=["a@acme.example"])])
    assert hub.get_golden_by_source(key("crm", "2")).id == split.id
    assert hub.get_golden(a).version == kept.version
    assert hub.open_review_tasks() == []


def test_unmerge_rejects_detaching_everything(engine: Engine) -> None:
    hub = make_hub(engine)
    a, _ = _three_and_one(hub)
    ids = [s.source_record_id for s in hub.get_golden(a).sources]
    with pytest.raises(InvalidStewardActionError):
        hub.unmerge(a, ids, actor="steward:kim", reason="all of it")


def test_pin_survives_new_source_changes_until_unpinned(engine: Engine) -> None:
    hub = make_hub(engine)
    hub.apply_changes([upsert("erp", "E1", 1, legal_name="Acme Corp", tax_id="DE1")])
    golden = hub.get_golden_by_source(key("erp", "E1"))
    pinned = hub.pin_attribute(
        golden.id, "legal_name", "ACME Corporation", actor="steward:kim", reason="registry"
    )
    assert pinned.attributes["legal_name"] == "ACME Corporation"
    assert pinned.lineage["legal_name"].pinned
    assert pinned.lineage["legal_name"].pinned_by == "steward:kim"

    hub.apply_changes([upsert("erp", "E1", 5, legal_name="Acme Corp (renamed)", tax_id="DE1")])
    hub.apply_changes([upsert("crm", "9", 6, legal_name="Acme in CRM", tax_id="DE1")])
    again = hub.get_golden(golden.id)
    assert again.attributes["legal_name"] == "ACME Corporation"
    assert len(again.sources) == 2

    unpinned = hub.unpin_attribute(golden.id, "legal_name", actor="steward:kim", reason="done")
    assert unpinned.attributes["legal_name"] == "Acme Corp (renamed)"
    with pytest.raises(InvalidStewardActionError):
        hub.unpin_attribute(golden.id, "legal_name", actor="steward:kim", reason="twice")


def test_pin_validates_the_value_and_checks_the_version(engine: Engine) -> None:
    hub = make_hub(engine)
    hub.apply_changes([upsert("crm", "1", 1, legal_name="Acme")])
    golden = hub.get_golden_by_source(key("crm", "1"))
    with pytest.raises(InvalidPinError):
        hub.pin_attribute(golden.id, "emails", ["nope"], actor="s", reason="r")
    with pytest.raises(InvalidPinError):
        hub.pin_attribute(golden.id, "shoe_size", 42, actor="s", reason="r")
    with pytest.raises(StaleVersionError) as stale:
        hub.pin_attribute(
            golden.id, "legal_name", "X", actor="s", reason="r", expected_version=golden.version + 1
        )
    assert stale.value.actual_version == golden.version
    ok = hub.pin_attribute(golden.id, "emails", [" Boss@Acme.example "], actor="s", reason="r")
    assert ok.attributes["emails"] == ["Boss@Acme.example"]


def test_review_band_opens_a_task_and_a_rejection_never_comes_back(engine: Engine) -> None:
    hub = make_hub(engine)
    hub.apply_changes(
        [
            upsert("crm", "1", 1, legal_name="Initech LLC", emails=["a@initech.example"]),
            upsert("erp", "E7", 2, legal_name="Initech", emails=["b@initech.example"]),
        ]
    )
    crm = hub.get_golden_by_source(key("crm", "1"))
    erp = hub.get_golden_by_source(key("erp", "E7"))
    assert crm.id != erp.id
    [task] = hub.open_review_tasks()
    assert {task.golden_id, task.candidate_golden_id} == {crm.id, erp.id}
    assert task.explanation["agreements"] == ["name"]

    decided = hub.decide_review_task(task.id, ReviewDecision.NO_MATCH, actor="steward:kim")
    assert decided.status is ReviewStatus.DECIDED
    # The same pair, changed at the source, is neither merged nor suggested again.
    hub.apply_changes([upsert("erp", "E7", 9, legal_name="Initech", emails=["c@initech.example"])])
    assert hub.open_review_tasks() == []
    assert hub.get_golden_by_source(key("erp", "E7")).id == erp.id


def test_review_match_links_and_the_emptied_golden_resolves(engine: Engine) -> None:
    hub = make_hub(engine)
    hub.apply_changes(
        [
            upsert("crm", "1", 1, legal_name="Initech LLC", emails=["a@initech.example"]),
            upsert("erp", "E7", 2, legal_name="Initech", emails=["b@initech.example"]),
        ]
    )
    [task] = hub.open_review_tasks()
    hub.decide_review_task(task.id, ReviewDecision.MATCH, actor="steward:kim", reason="same")
    crm = hub.get_golden_by_source(key("crm", "1"))
    assert hub.get_golden_by_source(key("erp", "E7")).id == crm.id
    emptied = task.golden_id if task.golden_id != crm.id else task.candidate_golden_id
    assert hub.get_golden(emptied).id == crm.id
    with engine.connect() as conn:
        from sqlalchemy import text

        status = conn.execute(
            text("SELECT status FROM golden_records WHERE id = :id"), {"id": emptied}
        ).scalar_one()
    assert status == GoldenStatus.MERGED.value


def test_unlink_detaches_into_a_new_golden_and_stays_apart(engine: Engine) -> None:
    hub = make_hub(engine)
    a, _ = _three_and_one(hub)
    new = hub.unlink(key("billing", "B1"), actor="steward:kim", reason="a subsidiary")
    assert new.id != a
    assert [str(s.key) for s in new.sources] == ["billing/customers/B1"]
    hub.apply_changes([upsert("billing", "B1", 20, legal_name="Acme", emails=["a@acme.example"])])
    assert hub.get_golden_by_source(key("billing", "B1")).id == new.id
    assert len(hub.get_golden(a).sources) == 2
    relinked = hub.link(key("billing", "B1"), a, actor="steward:kim", reason="no, same after all")
    assert len(relinked.sources) == 3
    assert hub.get_golden(new.id).id == a


def test_a_steward_link_holds_when_the_record_is_deleted_and_recreated(engine: Engine) -> None:
    hub = make_hub(engine)
    hub.apply_changes(
        [
            upsert("crm", "1", 1, legal_name="Acme", emails=["a@acme.example"]),
            upsert("erp", "E1", 2, legal_name="Zeta Holdings", emails=["z@zeta.example"]),
        ]
    )
    acme = hub.get_golden_by_source(key("crm", "1")).id
    hub.link(key("erp", "E1"), acme, actor="steward:kim", reason="Zeta is Acme's new name")
    hub.apply_changes([delete("erp", "E1", 10)])
    assert [str(s.key) for s in hub.get_golden(acme).sources] == ["crm/customers/1"]
    # Re-created with nothing in common with Acme: the must-link brings it back.
    hub.apply_changes([upsert("erp", "E1", 20, legal_name="Zeta", emails=["new@zeta.example"])])
    back = hub.get_golden_by_source(key("erp", "E1"))
    assert back.id == acme
    assert next(s for s in back.sources if s.key.system == "erp").decided_by.value == "steward"


def test_a_record_whose_only_source_now_matches_elsewhere_resolves_there(engine: Engine) -> None:
    hub = make_hub(engine)
    hub.apply_changes(
        [
            upsert("crm", "1", 1, legal_name="Acme", emails=["a@acme.example"]),
            upsert("billing", "B1", 2, legal_name="Billing Name", emails=["b@other.example"]),
        ]
    )
    acme = hub.get_golden_by_source(key("crm", "1")).id
    alone = hub.get_golden_by_source(key("billing", "B1")).id
    assert alone != acme
    hub.apply_changes(
        [upsert("billing", "B1", 3, legal_name="Billing Name", emails=["a@acme.example"])]
    )
    assert hub.get_golden_by_source(key("billing", "B1")).id == acme
    resolved = hub.get_golden(alone)
    assert resolved.id == acme
    assert resolved.requested_id == alone


def test_hard_conflict_is_never_merged_automatically(engine: Engine) -> None:
    hub = make_hub(engine)
    hub.apply_changes(
        [
            upsert("crm", "1", 1, legal_name="Acme", emails=["a@acme.example"], tax_id="DE1"),
            upsert("erp", "E1", 2, legal_name="Acme", emails=["a@acme.example"], tax_id="DE2"),
        ]
    )
    crm = hub.get_golden_by_source(key("crm", "1"))
    erp = hub.get_golden_by_source(key("erp", "E1"))
    assert crm.id != erp.id
    [task] = hub.open_review_tasks()
    assert task.explanation["conflicts"] == ["tax_id"]


def test_rebuild_with_new_rules_updates_values_lineage_and_versions(engine: Engine) -> None:
    hub = make_hub(engine)
    hub.apply_changes(
        [
            upsert("crm", "1", 1, legal_name="Acme (CRM)", emails=["a@acme.example"]),
            upsert("erp", "E1", 2, legal_name="Acme (ERP)", emails=["a@acme.example"]),
        ]
    )
    before = hub.get_golden_by_source(key("crm", "1"))
    assert before.attributes["legal_name"] == "Acme (ERP)"
    crm_first = SurvivorshipRules(
        attributes={
            "legal_name": (Rule(kind=RuleKind.SOURCE_PRIORITY, systems=(SourceRef(system="crm"),)),)
        }
    )
    rebuilt = HubServices(engine, matcher=ExactMatcher(), rules=crm_first, targets=("crm",))
    result = rebuilt.rebuild_golden_records()
    assert result.goldens_changed == (before.id,)
    after = rebuilt.get_golden(before.id)
    assert after.attributes["legal_name"] == "Acme (CRM)"
    assert after.version == before.version + 1
    assert after.lineage["legal_name"].rule_set_version == crm_first.version
    assert str(after.lineage["legal_name"].source_key) == "crm/customers/1"
    assert rebuilt.golden_history(before.id)[-1].diff["legal_name"] == {
        "old": "Acme (ERP)",
        "new": "Acme (CRM)",
    }
    assert rebuilt.rebuild_golden_records().goldens_changed == ()
