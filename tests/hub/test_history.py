"""Golden history: diffs, the stored event payload, and reconstructing a record as of a time."""

from __future__ import annotations

import json
import random
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hub.errors import InconsistentHistoryError
from hub.history import (
    GoldenSnapshot,
    HistoryCause,
    HistoryEvent,
    HistoryEventKind,
    apply_event,
    build_event,
    diff_attributes,
    reconstruct,
)
from hub.model import GoldenStatus, Pin

T0 = datetime(2024, 5, 1, 9, 0, tzinfo=UTC)
Kind = HistoryEventKind


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        pytest.param({}, {}, {}, id="nothing"),
        pytest.param({"tax_id": "DE1"}, {"tax_id": "DE1"}, {}, id="unchanged"),
        pytest.param({}, {"tax_id": "DE1"}, {"tax_id": {"old": None, "new": "DE1"}}, id="added"),
        pytest.param({"tax_id": "DE1"}, {}, {"tax_id": {"old": "DE1", "new": None}}, id="removed"),
        pytest.param(
            {"emails": ["a@x.io"]},
            {"emails": ["a@x.io", "b@x.io"]},
            {"emails": {"old": ["a@x.io"], "new": ["a@x.io", "b@x.io"]}},
            id="list grew",
        ),
        pytest.param({"emails": []}, {}, {}, id="empty list is the same as missing"),
        pytest.param({"website": ""}, {"website": None}, {}, id="blank is the same as None"),
    ],
)
def test_diff_attributes(
    old: dict[str, Any], new: dict[str, Any], expected: dict[str, Any]
) -> None:
    assert diff_attributes(old, new) == expected


def test_diff_lists_golden_attributes_in_model_order() -> None:
    diff = diff_attributes(
        {"currency": "EUR", "zz_extra": 1}, {"legal_name": "Acme", "kind": "person"}
    )

    assert list(diff) == ["kind", "legal_name", "currency", "zz_extra"]


# --- a small story: create, link, pin, merge -----------------------------------------------------


def state(
    version: int,
    attributes: dict[str, Any],
    sources: set[int],
    status: GoldenStatus = GoldenStatus.ACTIVE,
    merged_into: int | None = None,
    pins: dict[str, Pin] | None = None,
    golden_id: int = 7,
) -> GoldenSnapshot:
    return GoldenSnapshot(
        golden_id=golden_id,
        version=version,
        status=status,
        attributes=attributes,
        source_record_ids=frozenset(sources),
        merged_into=merged_into,
        pins=pins or {},
    )


PIN = Pin("legal_name", "Acme AG", pinned_by="ann", reason="contract", pinned_at=T0)

STORY: list[tuple[Kind, HistoryCause, GoldenSnapshot]] = [
    (Kind.CREATED, HistoryCause.SOURCE_CHANGE, state(1, {"legal_name": "Acme"}, {1})),
    (
        Kind.LINKED,
        HistoryCause.SOURCE_CHANGE,
        state(2, {"legal_name": "Acme", "tax_id": "DE1"}, {1, 2}),
    ),
    (
        Kind.PINNED,
        HistoryCause.STEWARD_ACTION,
        state(3, {"legal_name": "Acme AG", "tax_id": "DE1"}, {1, 2}, pins={"legal_name": PIN}),
    ),
    (
        Kind.UPDATED,
        HistoryCause.SOURCE_CHANGE,
        state(4, {"legal_name": "Acme AG"}, {1, 2}, pins={"legal_name": PIN}),
    ),
    (
        Kind.MERGED,
        HistoryCause.STEWARD_ACTION,
        state(5, {"legal_name": "Acme AG"}, set(), GoldenStatus.MERGED, 3, {"legal_name": PIN}),
    ),
]


def story_events() -> list[HistoryEvent]:
    events = []
    before: GoldenSnapshot | None = None
    for index, (kind, cause, after) in enumerate(STORY):
        event = build_event(
            before,
            after,
            kind=kind,
            cause=cause,
            actor="steward:ann" if cause is HistoryCause.STEWARD_ACTION else "cdc",
            occurred_at=T0 + timedelta(hours=index),
            details={"step": index},
        )
        events.append(replace(event, sequence=100 + 10 * index))
        before = after
    return events


def test_events_say_what_changed() -> None:
    created, linked, pinned, updated, merged = story_events()

    assert created.snapshot == {"legal_name": "Acme"}
    assert created.sources_added == {1}
    assert linked.diff == {"tax_id": {"old": None, "new": "DE1"}}
    assert linked.sources_added == {2}
    assert pinned.pins_set == {"legal_name": PIN}
    assert pinned.diff == {"legal_name": {"old": "Acme", "new": "Acme AG"}}
    assert updated.diff == {"tax_id": {"old": "DE1", "new": None}}
    assert updated.status is None
    assert (merged.status, merged.merged_into) == (GoldenStatus.MERGED, 3)
    assert merged.sources_removed == {1, 2}


def test_reconstruct_gives_the_state_after_each_event() -> None:
    events = story_events()
    shuffled = random.Random(4).sample(events, len(events))

    assert reconstruct(shuffled, T0 - timedelta(seconds=1)) is None
    for index, (_, _, expected) in enumerate(STORY):
        at = T0 + timedelta(hours=index)
        assert reconstruct(shuffled, at) == expected
        assert reconstruct(shuffled, at + timedelta(minutes=59)) == expected


def test_a_merged_away_record_reconstructs_as_merged_into_its_survivor() -> None:
    later = reconstruct(story_events(), T0 + timedelta(days=1))

    assert later is not None
    assert (later.status, later.merged_into, later.source_record_ids) == (
        GoldenStatus.MERGED,
        3,
        frozenset(),
    )


def test_stored_payload_round_trips_through_json() -> None:
    for event in story_events():
        data = json.loads(json.dumps(event.data()))
        assert event.sequence is not None
        restored = HistoryEvent.from_data(
            golden_id=event.golden_id,
            kind=event.kind.value,
            cause=event.cause.value,
            actor=event.actor,
            occurred_at=event.occurred_at,
            version=event.version,
            sequence=event.sequence,
            data=data,
        )
        assert restored == event


def test_the_fold_stops_at_the_first_event_after_as_of() -> None:
    created, linked, pinned, *_ = story_events()
    # The pin's clock ran behind: it is stamped before the link it followed.
    pinned = replace(pinned, occurred_at=created.occurred_at + timedelta(minutes=30))

    at = created.occurred_at + timedelta(minutes=45)

    assert reconstruct([created, linked, pinned], at) == STORY[0][2]


def test_history_of_another_record_is_refused() -> None:
    created, linked, *_ = story_events()

    with pytest.raises(InconsistentHistoryError) as caught:
        reconstruct([created, replace(linked, golden_id=8)], T0 + timedelta(days=1))
    assert caught.value.golden_id == 7


def test_history_must_start_with_a_creation() -> None:
    _, linked, *_ = story_events()

    with pytest.raises(InconsistentHistoryError):
        reconstruct([linked], T0 + timedelta(days=1))


def test_unnumbered_events_cannot_be_folded() -> None:
    created = replace(story_events()[0], sequence=None)

    with pytest.raises(InconsistentHistoryError):
        reconstruct([created], T0)


def test_a_created_event_needs_no_before_state_and_others_need_one() -> None:
    after = STORY[0][2]
    with pytest.raises(ValueError, match="created"):
        build_event(
            after,
            after,
            kind=Kind.CREATED,
            cause=HistoryCause.SOURCE_CHANGE,
            actor="cdc",
            occurred_at=T0,
        )
    with pytest.raises(ValueError, match="created"):
        build_event(
            None,
            after,
            kind=Kind.UPDATED,
            cause=HistoryCause.SOURCE_CHANGE,
            actor="cdc",
            occurred_at=T0,
        )


def test_a_merged_state_names_its_survivor() -> None:
    with pytest.raises(ValueError, match="merged_into"):
        state(1, {}, set(), GoldenStatus.MERGED)


# --- invariant: reconstruct after each event equals the state right after it --------------------

attribute_values = st.dictionaries(
    st.sampled_from(["legal_name", "tax_id", "emails", "currency", "extra_note"]),
    st.one_of(
        st.sampled_from(["Acme", "Globex", "", "DE1"]),
        st.lists(st.sampled_from(["a@x.io", "b@x.io"]), max_size=2),
        st.none(),
    ),
    max_size=4,
)
pin_lists = st.lists(
    st.builds(
        Pin,
        attribute=st.sampled_from(["legal_name", "tax_id"]),
        value=st.sampled_from(["Pinned", None]),
        pinned_by=st.sampled_from(["ann", "bob"]),
        reason=st.just("checked"),
        pinned_at=st.just(T0),
    ),
    max_size=2,
)


@st.composite
def states(draw: st.DrawFn, version: int) -> GoldenSnapshot:
    status = draw(st.sampled_from(GoldenStatus))
    return GoldenSnapshot(
        golden_id=7,
        version=version,
        status=status,
        attributes=draw(attribute_values),
        source_record_ids=frozenset(draw(st.sets(st.integers(1, 6), max_size=4))),
        merged_into=draw(st.integers(1, 5)) if status is GoldenStatus.MERGED else None,
        pins={pin.attribute: pin for pin in draw(pin_lists)},
    )


@settings(max_examples=200, deadline=None)
@given(data=st.data(), length=st.integers(1, 8), through_json=st.booleans())
def test_reconstruct_after_each_event_equals_the_state_right_after_it(
    data: st.DataObject, length: int, through_json: bool
) -> None:
    history = [data.draw(states(version)) for version in range(1, length + 1)]
    gaps = data.draw(st.lists(st.integers(1, 120), min_size=length, max_size=length))
    events: list[HistoryEvent] = []
    before: GoldenSnapshot | None = None
    at = T0
    for index, (after, gap) in enumerate(zip(history, gaps, strict=True)):
        at += timedelta(seconds=gap)
        kind = Kind.CREATED if before is None else data.draw(st.sampled_from(list(Kind)[1:]))
        event = build_event(
            before, after, kind=kind, cause=HistoryCause.SOURCE_CHANGE, actor="cdc", occurred_at=at
        )
        event = replace(event, sequence=index + 1)
        if through_json:
            event = HistoryEvent.from_data(
                golden_id=event.golden_id,
                kind=event.kind.value,
                cause=event.cause.value,
                actor=event.actor,
                occurred_at=event.occurred_at,
                version=event.version,
                sequence=event.sequence,
                data=json.loads(json.dumps(event.data())),
            )
        assert apply_event(before, event) == after
        events.append(event)
        before = after

    for event, expected in zip(events, history, strict=True):
        assert reconstruct(events, event.occurred_at) == expected
    assert reconstruct(events, T0) is None
