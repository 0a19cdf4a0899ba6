"""Merge and unmerge plans: which golden id survives and where each source record goes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hub.errors import GoldenRecordNotActiveError, InvalidStewardActionError
from hub.model import GoldenStatus
from hub.planning import GoldenSummary, MergePlan, plan_merge, plan_unmerge

T0 = datetime(2024, 1, 1, tzinfo=UTC)


def golden(
    golden_id: int, sources: set[int], age_days: int = 0, status: GoldenStatus = GoldenStatus.ACTIVE
) -> GoldenSummary:
    """A golden record created ``age_days`` before T0."""
    return GoldenSummary(
        golden_id=golden_id,
        created_at=T0 - timedelta(days=age_days),
        source_record_ids=frozenset(sources),
        status=status,
    )


@pytest.mark.parametrize(
    ("a", "b", "survivor"),
    [
        pytest.param(golden(1, {10}), golden(2, {20, 21}), 2, id="more sources survive"),
        pytest.param(
            golden(1, {30}, age_days=9), golden(2, {20}), 2, id="tie: the oldest source record's"
        ),
        pytest.param(golden(1, set(), age_days=1), golden(2, set(), age_days=5), 2, id="older"),
        pytest.param(golden(9, set()), golden(4, set()), 4, id="same age: lower id"),
        pytest.param(
            golden(1, {10, 11}, age_days=0),
            golden(2, {20}, age_days=90),
            1,
            id="sources before age",
        ),
    ],
)
def test_plan_merge_picks_the_survivor(a: GoldenSummary, b: GoldenSummary, survivor: int) -> None:
    plan = plan_merge(a, b)
    merged = b if survivor == a.golden_id else a

    assert plan == MergePlan(
        survivor_id=survivor,
        merged_id=merged.golden_id,
        source_record_ids=a.source_record_ids | b.source_record_ids,
        moved_source_record_ids=merged.source_record_ids,
    )
    assert plan_merge(b, a) == plan


def test_a_record_cannot_merge_with_itself() -> None:
    with pytest.raises(InvalidStewardActionError):
        plan_merge(golden(1, {10}), golden(1, {10}))


@pytest.mark.parametrize("status", [GoldenStatus.MERGED, GoldenStatus.RETIRED])
def test_only_active_records_merge(status: GoldenStatus) -> None:
    with pytest.raises(GoldenRecordNotActiveError) as caught:
        plan_merge(golden(1, {10}), golden(2, {20}, status=status))
    assert caught.value.golden_id == 2


def test_records_sharing_a_source_record_are_refused() -> None:
    with pytest.raises(InvalidStewardActionError, match=r"\[10\]"):
        plan_merge(golden(1, {10, 11}), golden(2, {10}))


@pytest.mark.parametrize(
    ("linked", "detach", "kept", "split", "detached_keep_id"),
    [
        pytest.param({1, 2, 3}, {3}, {1, 2}, {3}, False, id="detach a minority"),
        pytest.param(
            {1, 2, 3}, {2, 3}, {2, 3}, {1}, True, id="detach the majority: it keeps the id"
        ),
        pytest.param(
            {1, 2, 3, 4}, {1, 4}, {1, 4}, {2, 3}, True, id="tie: the oldest record's side"
        ),
        pytest.param({1, 2, 3, 4}, {2, 3}, {1, 4}, {2, 3}, False, id="tie, oldest stays"),
        pytest.param({5, 9}, {9}, {5}, {9}, False, id="two records"),
    ],
)
def test_plan_unmerge_keeps_the_id_with_the_majority(
    linked: set[int], detach: set[int], kept: set[int], split: set[int], detached_keep_id: bool
) -> None:
    plan = plan_unmerge(42, linked, detach)

    assert plan.golden_id == 42
    assert plan.kept_source_record_ids == kept
    assert plan.split_source_record_ids == split
    assert plan.detached_keep_id is detached_keep_id


def test_plan_unmerge_records_cannot_link_across_the_split() -> None:
    plan = plan_unmerge(42, [4, 1, 2, 3, 5], [4, 2])

    assert plan.cannot_link == ((1, 2), (1, 4), (2, 3), (2, 5), (3, 4), (4, 5))


@pytest.mark.parametrize(
    ("linked", "detach", "message"),
    [
        pytest.param({1, 2}, set(), "no source records", id="nothing"),
        pytest.param({1, 2}, {3}, r"\[3\] are not linked to golden 42", id="foreign"),
        pytest.param({1, 2}, {1, 2}, "leaves nothing", id="everything"),
    ],
)
def test_plan_unmerge_refuses_a_split_that_is_not_one(
    linked: set[int], detach: set[int], message: str
) -> None:
    with pytest.raises(InvalidStewardActionError, match=message):
        plan_unmerge(42, linked, detach)


# --- invariants ----------------------------------------------------------------------------------


@st.composite
def splits(draw: st.DrawFn) -> tuple[frozenset[int], frozenset[int]]:
    linked = draw(st.sets(st.integers(1, 200), min_size=2, max_size=30))
    detach = draw(st.sets(st.sampled_from(sorted(linked)), min_size=1, max_size=len(linked) - 1))
    return frozenset(linked), frozenset(detach)


@settings(max_examples=300)
@given(split=splits())
def test_unmerge_never_changes_the_id_of_the_majority_side(
    split: tuple[frozenset[int], frozenset[int]],
) -> None:
    linked, detach = split
    rest = linked - detach

    plan = plan_unmerge(42, sorted(linked, reverse=True), detach)

    assert plan.kept_source_record_ids | plan.split_source_record_ids == linked
    assert not plan.kept_source_record_ids & plan.split_source_record_ids
    majority = detach if len(detach) > len(rest) else rest if len(rest) > len(detach) else None
    if majority is not None:
        assert plan.kept_source_record_ids == majority
    else:
        assert min(linked) in plan.kept_source_record_ids
    assert len(plan.cannot_link) == len(detach) * len(rest)
    assert plan_unmerge(42, linked, plan.split_source_record_ids).kept_source_record_ids == (
        plan.kept_source_record_ids
    )


@settings(max_examples=200)
@given(
    a_sources=st.sets(st.integers(1, 50), min_size=1, max_size=6),
    b_sources=st.sets(st.integers(51, 100), min_size=1, max_size=6),
    a_age=st.integers(0, 3),
    b_age=st.integers(0, 3),
)
def test_undoing_a_merge_gives_the_survivor_its_own_sources_back(
    a_sources: set[int], b_sources: set[int], a_age: int, b_age: int
) -> None:
    a, b = golden(1, a_sources, a_age), golden(2, b_sources, b_age)

    merge = plan_merge(a, b)
    assert merge == plan_merge(b, a)
    unmerge = plan_unmerge(
        merge.survivor_id, merge.source_record_ids, merge.moved_source_record_ids
    )

    survivor = a if merge.survivor_id == 1 else b
    assert unmerge.golden_id == survivor.golden_id
    assert unmerge.kept_source_record_ids == survivor.source_record_ids
    assert unmerge.split_source_record_ids == merge.moved_source_record_ids
