"""The store's invariants under arbitrary change logs (hypothesis): idempotent apply, order of
re-delivery irrelevant, rebuild equal to incremental, replay from empty gives the same ids."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from hub_testkit import at, count, delete, make_hub, store_state, truncate_hub, upsert
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy.engine import Engine

from hub.model import BatchPosition, SourceChange

SETTINGS = settings(
    max_examples=15,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

NAMES = ["Acme", "Acme Inc", "Globex", "Initech LLC", "Initech"]
EMAILS = [[], ["a@acme.example"], ["b@globex.example"], ["c@initech.example"], ["not-an-email"]]
TAX_IDS = [None, "DE1", "DE2"]
STATUSES = ["active", "prospect", "churned"]


@st.composite
def change_logs(draw: st.DrawFn) -> list[SourceChange]:
    """A change log in commit order over a few source rows, with deletes and invalid values."""
    length = draw(st.integers(min_value=1, max_value=14))
    log: list[SourceChange] = []
    for index in range(length):
        system = draw(st.sampled_from(["crm", "billing", "erp"]))
        pk = draw(st.sampled_from(["1", "2", "3"]))
        seconds = index + 1
        if draw(st.integers(0, 9)) == 0:
            log.append(delete(system, pk, seconds))
            continue
        attributes: dict[str, Any] = {
            "legal_name": draw(st.sampled_from(NAMES)),
            "emails": draw(st.sampled_from(EMAILS)),
            "lifecycle_status": draw(st.sampled_from(STATUSES)),
        }
        tax_id = draw(st.sampled_from(TAX_IDS))
        if tax_id is not None:
            attributes["tax_id"] = tax_id
        log.append(upsert(system, pk, seconds, **attributes))
    return log


@st.composite
def batched(draw: st.DrawFn, log: Sequence[SourceChange]) -> list[list[SourceChange]]:
    batches: list[list[SourceChange]] = []
    rest = list(log)
    while rest:
        size = draw(st.integers(min_value=1, max_value=len(rest)))
        batches.append(rest[:size])
        rest = rest[size:]
    return batches


def _position(batch: Sequence[SourceChange]) -> BatchPosition:
    return BatchPosition("connector", "", max(c.position.lsn or 0 for c in batch))


def _apply_all(engine: Engine, batches: Sequence[Sequence[SourceChange]], positions: bool) -> None:
    hub = make_hub(engine)
    for batch in batches:
        hub.apply_changes(batch, _position(batch) if positions else None)


def _effects(engine: Engine) -> tuple[int, int, int]:
    return (
        count(engine, "SELECT count(*) FROM outbox"),
        count(engine, "SELECT count(*) FROM golden_history"),
        count(engine, "SELECT coalesce(sum(version), 0) FROM golden_records"),
    )


@SETTINGS
@given(data=st.data(), log=change_logs())
def test_applying_a_change_log_twice_equals_applying_it_once(
    hub_engine: Engine, data: st.DataObject, log: list[SourceChange]
) -> None:
    truncate_hub(hub_engine)
    batches = data.draw(batched(log))
    _apply_all(hub_engine, batches, positions=True)
    once, effects = store_state(hub_engine), _effects(hub_engine)

    # Re-delivered with positions: every batch is skipped.
    _apply_all(hub_engine, batches, positions=True)
    # Re-delivered without positions and grouped differently: every change is stale.
    _apply_all(hub_engine, data.draw(batched(log)), positions=False)

    assert store_state(hub_engine) == once
    assert _effects(hub_engine) == effects


@SETTINGS
@given(data=st.data(), log=change_logs())
def test_rebuild_from_scratch_equals_the_incremental_result(
    hub_engine: Engine, data: st.DataObject, log: list[SourceChange]
) -> None:
    truncate_hub(hub_engine)
    _apply_all(hub_engine, data.draw(batched(log)), positions=False)
    incremental = store_state(hub_engine)
    hub = make_hub(hub_engine)

    untouched = hub.rebuild_golden_records()
    assert untouched.goldens_changed == ()
    assert store_state(hub_engine) == incremental

    # Throw away everything derived, then rebuild it from source records and decisions.
    with hub_engine.begin() as conn:
        from sqlalchemy import text

        conn.execute(text("DELETE FROM attribute_lineage"))
        conn.execute(text("DELETE FROM blocking_keys"))
        conn.execute(text("UPDATE golden_records SET attributes = '{}'"))
        conn.execute(text("UPDATE source_records SET features = '{}'"))
    hub.rebuild_golden_records()
    assert store_state(hub_engine) == incremental


@SETTINGS
@given(data=st.data())
def test_survivorship_by_commit_time_is_unaffected_by_redelivery_order(
    hub_engine: Engine, data: st.DataObject
) -> None:
    # Every version of every row shares one e-mail, so all link to one golden record.
    log = [
        upsert(
            system,
            pk,
            seconds,
            legal_name=f"{system} name {seconds}",
            emails=["shared@acme.example"],
            lifecycle_status=data.draw(st.sampled_from(STATUSES)),
            phones=[f"+4930{seconds:04d}"],
        )
        for seconds, (system, pk) in enumerate(
            data.draw(
                st.lists(
                    st.sampled_from([("crm", "1"), ("crm", "2"), ("billing", "7"), ("erp", "E")]),
                    min_size=1,
                    max_size=10,
                )
            ),
            start=1,
        )
    ]
    truncate_hub(hub_engine)
    _apply_all(hub_engine, [log], positions=False)
    in_order = _without_ids(store_state(hub_engine))

    truncate_hub(hub_engine)
    shuffled = data.draw(st.permutations(log))
    redelivered = shuffled + data.draw(st.lists(st.sampled_from(log), max_size=5))
    _apply_all(hub_engine, data.draw(batched(redelivered)), positions=False)
    assert _without_ids(store_state(hub_engine)) == in_order


def _without_ids(state: dict[str, Any]) -> dict[str, Any]:
    return {
        "attributes": sorted(row[3] for row in state["golden"] if row[1] == "active"),
        "lineage": sorted(row[1:] for row in state["lineage"]),
        "links": sorted(row[:3] + row[4:] for row in state["links"]),
    }


def test_replaying_log_and_steward_decisions_from_empty_gives_the_same_ids(
    hub_engine: Engine,
) -> None:
    def run() -> dict[str, Any]:
        truncate_hub(hub_engine)
        hub = make_hub(hub_engine)
        hub.apply_changes(
            [
                upsert("crm", "1", 1, legal_name="Acme", emails=["a@acme.example"]),
                upsert("erp", "E1", 2, legal_name="Acme AG", emails=["a@acme.example"]),
                upsert("billing", "B1", 3, legal_name="Acme", emails=["x@acme.example"]),
                upsert("crm", "2", 4, legal_name="Globex", emails=["g@globex.example"]),
            ]
        )
        hub.merge_golden(1, 2, actor="steward", reason="same")
        hub.pin_attribute(1, "website", "acme.example", actor="steward", reason="known")
        hub.unmerge(1, [3], actor="steward", reason="not the same")
        hub.apply_changes([upsert("crm", "3", at(9).second, legal_name="Acme", tax_id="DE1")])
        return store_state(hub_engine)

    assert run() == run()
