"""Merge and unmerge planning: which golden id survives and where each source record goes.

Pure decisions over frozen values; the store services lock the records, call these, and carry
the plan out in one transaction. The rule behind both is the same, so that merging and then
undoing the merge gives the ids back: the side holding more of the source records keeps its id.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime

from hub.errors import GoldenRecordNotActiveError, InvalidStewardActionError
from hub.model import GoldenStatus


@dataclass(frozen=True)
class GoldenSummary:
    """What planning needs to know about a golden record."""

    golden_id: int
    created_at: datetime
    source_record_ids: frozenset[int]
    status: GoldenStatus = GoldenStatus.ACTIVE


@dataclass(frozen=True)
class MergePlan:
    """Merge ``merged_id`` into ``survivor_id``."""

    survivor_id: int
    merged_id: int
    source_record_ids: frozenset[int]
    """Every source record linked to the survivor afterwards (the union of both sides)."""
    moved_source_record_ids: frozenset[int]
    """The merged record's source records, to relink to the survivor."""


@dataclass(frozen=True)
class UnmergePlan:
    """Split golden ``golden_id``: one part keeps the id, the other gets a new golden record."""

    golden_id: int
    kept_source_record_ids: frozenset[int]
    """Stay linked to ``golden_id``."""
    split_source_record_ids: frozenset[int]
    """Go to a new golden record."""
    detached_keep_id: bool
    """True when the records the steward detached were the majority and keep the id."""
    cannot_link: tuple[tuple[int, int], ...]
    """Every (lower id, higher id) pair across the two parts, sorted: recorded so that no
    automatic match ever joins them again."""


def plan_merge(a: GoldenSummary, b: GoldenSummary) -> MergePlan:
    """Decide which of two active golden records survives a merge.

    The survivor is the one with more source records; on a tie, the one holding the oldest
    source record (the lowest id), which is how ``plan_unmerge`` breaks ties, so that undoing a
    merge gives both records their ids back; then the older record, then the lower id. The
    decision does not depend on the order of the arguments.

    Raises:
        InvalidStewardActionError: the same record twice, or records sharing a source record.
        GoldenRecordNotActiveError: either record is merged or retired.
    """
    if a.golden_id == b.golden_id:
        raise InvalidStewardActionError("merge", f"golden record {a.golden_id} is the same record")
    for summary in (a, b):
        if summary.status is not GoldenStatus.ACTIVE:
            raise GoldenRecordNotActiveError(summary.golden_id, summary.status.value)
    shared = a.source_record_ids & b.source_record_ids
    if shared:
        raise InvalidStewardActionError(
            "merge",
            f"source records {sorted(shared)} are linked to both {a.golden_id} and {b.golden_id}",
        )

    def precedence(summary: GoldenSummary) -> tuple[int, float, datetime, int]:
        sources = summary.source_record_ids
        oldest = min(sources) if sources else float("inf")
        return (-len(sources), oldest, summary.created_at, summary.golden_id)

    survivor, merged = sorted((a, b), key=precedence)
    return MergePlan(
        survivor_id=survivor.golden_id,
        merged_id=merged.golden_id,
        source_record_ids=survivor.source_record_ids | merged.source_record_ids,
        moved_source_record_ids=merged.source_record_ids,
    )


def plan_unmerge(
    golden_id: int, linked_source_ids: Collection[int], detach_ids: Collection[int]
) -> UnmergePlan:
    """Split the source records ``detach_ids`` off golden ``golden_id``.

    The part with more source records keeps the golden id, whichever part the steward
    selected; on a tie, the part holding the oldest source record (the lowest id) keeps it.
    The other part goes to a new golden record, and every pair across the parts becomes a
    cannot-link constraint.

    Raises:
        InvalidStewardActionError: nothing to detach, records not linked to this golden, or
            every linked record detached (nothing would be left to split from).
    """
    linked = frozenset(linked_source_ids)
    detached = frozenset(detach_ids)
    if not detached:
        raise InvalidStewardActionError("unmerge", "no source records to detach were given")
    foreign = detached - linked
    if foreign:
        raise InvalidStewardActionError(
            "unmerge", f"source records {sorted(foreign)} are not linked to golden {golden_id}"
        )
    remaining = linked - detached
    if not remaining:
        raise InvalidStewardActionError(
            "unmerge",
            f"detaching every source record of golden {golden_id} leaves nothing to split from",
        )

    detached_keeps = (len(detached), -min(detached)) > (len(remaining), -min(remaining))
    kept, split = (detached, remaining) if detached_keeps else (remaining, detached)
    pairs = sorted((min(x, y), max(x, y)) for x in kept for y in split)
    return UnmergePlan(
        golden_id=golden_id,
        kept_source_record_ids=kept,
        split_source_record_ids=split,
        cannot_link=tuple(pairs),
        detached_keep_id=detached_keeps,
    )
