"""Steward actions inside one transaction: link, unlink, merge, unmerge, pin, review decisions.

Each function takes a ``GoldenWork`` (which holds the session and locks golden records in id
order) and leaves saving to the caller. Stewards are not overridden by machines: links they
make are marked ``steward`` (apply never re-matches them) and backed by must-link constraints
(a record that is deleted and re-created goes back where the steward put it); the pairs they
separate become cannot-link constraints (apply never joins them again, nor suggests them for
review). A later steward decision lifts the earlier constraints it contradicts.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from typing import Any

import sqlalchemy as sa
from pydantic import ValidationError
from sqlmodel import col

from hub import repositories as repo
from hub.errors import (
    GoldenRecordNotActiveError,
    GoldenRecordNotFoundError,
    InvalidPinError,
    InvalidStewardActionError,
    ReviewTaskNotFoundError,
    SourceRecordNotFoundError,
    StaleVersionError,
)
from hub.history import HistoryEventKind
from hub.model import GOLDEN_ATTRIBUTES, CanonicalParty, DecidedBy, GoldenStatus, Pin, SourceKey
from hub.planning import GoldenSummary, plan_merge, plan_unmerge
from hub.records import ReviewDecision, ReviewKind
from hub.services._golden_work import GoldenWork
from hub.states import SourceRecordState
from hub.tables import ReviewTaskRow

SourceRef = SourceKey | int
"""A source record named by its key or by its id."""


def load_source_record(work: GoldenWork, ref: SourceRef) -> SourceRecordState:
    if isinstance(ref, SourceKey):
        row = repo.source_state_by_key(work.session, ref)
    else:
        row = repo.source_state(work.session, ref)
    if row is None:
        raise SourceRecordNotFoundError(ref)
    work.remember([row])
    return row


def lock_active(
    work: GoldenWork, golden_ids: Iterable[int], *, expected_versions: dict[int, int] | None = None
) -> None:
    """Lock these golden records (id order); each must exist and be active."""
    wanted = sorted(set(golden_ids))
    work.lock(wanted)
    for golden_id in wanted:
        if not work.is_locked(golden_id):
            raise GoldenRecordNotFoundError(golden_id)
        status = work.status(golden_id)
        if status is not GoldenStatus.ACTIVE:
            raise GoldenRecordNotActiveError(golden_id, status.value)
        expected = (expected_versions or {}).get(golden_id)
        actual = work.golden(golden_id).version
        if expected is not None and expected != actual:
            raise StaleVersionError(golden_id, expected, actual)


def _require_linkable(row: SourceRecordState, action: str) -> None:
    if row.deleted:
        raise InvalidStewardActionError(action, f"source record {row.id} is deleted")
    if row.validation_errors is not None:
        raise InvalidStewardActionError(
            action, f"source record {row.id} failed validation; fix it at the source first"
        )


def _supersede_tasks(
    work: GoldenWork, *, source_record_ids: Collection[int] = (), golden_ids: Collection[int] = ()
) -> list[int]:
    tasks = repo.open_review_tasks_for(
        work.session, source_record_ids=source_record_ids, golden_ids=golden_ids
    )
    for task in tasks:
        task.status = "superseded"
    return [task.id for task in tasks]


def _lift_cannot_links(work: GoldenWork, left: Iterable[int], right: Iterable[int]) -> list[int]:
    """Remove cannot-link constraints across two sets: a later steward decision overrides."""
    pairs = [(a, b) for a in set(left) for b in set(right)]
    removed = repo.remove_constraints(work.session, "cannot_link", pairs)
    return [record_id for pair in removed for record_id in pair]


def _must_link(
    work: GoldenWork, record_ids: Collection[int], golden_id: int, *, actor: str, reason: str
) -> None:
    """Record that these records belong with ``golden_id``: each gets a must-link to the
    record's oldest other source (its anchor), which brings them back together if one of them
    is deleted and re-created, or fails validation and is fixed."""
    others = work.members(golden_id) - set(record_ids)
    if not others:
        return
    anchor = min(others)
    repo.add_constraints(
        work.session, "must_link", [(r, anchor) for r in record_ids], actor, reason, work.now
    )


def link_source_record(
    work: GoldenWork, ref: SourceRef, golden_id: int, *, actor: str, reason: str
) -> int:
    """Link a source record to ``golden_id`` as a steward decision; returns ``golden_id``.

    When it was the only source record of its previous golden record, that record becomes
    merged into ``golden_id`` (its id keeps resolving).
    """
    row = load_source_record(work, ref)
    _require_linkable(row, "link")
    previous = row.golden_id
    lock_active(work, [golden_id] + ([previous] if previous is not None else []))
    lifted = _lift_cannot_links(work, [row.id], work.members(golden_id))
    _must_link(work, [row.id], golden_id, actor=actor, reason=reason)
    work.link(
        row,
        golden_id,
        decided_by=DecidedBy.STEWARD,
        explanation={"reason": reason, "actor": actor},
    )
    _supersede_tasks(work, source_record_ids=[row.id])
    work.note(
        golden_id,
        HistoryEventKind.LINKED,
        source_record_id=row.id,
        reason=reason,
        lifted_cannot_links=lifted,
    )
    if previous is not None and previous != golden_id:
        if not work.members(previous):
            work.mark_merged(previous, golden_id)
            work.note(previous, HistoryEventKind.MERGED, reason=reason)
        else:
            work.note(previous, HistoryEventKind.UNLINKED, source_record_id=row.id, reason=reason)
    return golden_id


def unlink_source_record(work: GoldenWork, ref: SourceRef, *, actor: str, reason: str) -> int:
    """Detach a source record into a new golden record of its own; returns the new id.

    The record is kept apart from every other record of its former golden record by
    cannot-link constraints.
    """
    row = load_source_record(work, ref)
    if row.golden_id is None:
        raise InvalidStewardActionError("unlink", f"source record {row.id} is not linked")
    previous = row.golden_id
    lock_active(work, [previous])
    others = work.members(previous) - {row.id}
    if not others:
        raise InvalidStewardActionError(
            "unlink", f"source record {row.id} is the only source of golden record {previous}"
        )
    apart = [(row.id, other) for other in others]
    repo.remove_constraints(work.session, "must_link", apart)
    repo.add_constraints(work.session, "cannot_link", apart, actor, reason, work.now)
    new_id = work.create()
    work.link(
        row, new_id, decided_by=DecidedBy.STEWARD, explanation={"reason": reason, "actor": actor}
    )
    _supersede_tasks(work, source_record_ids=[row.id])
    work.note(previous, HistoryEventKind.UNLINKED, source_record_id=row.id, reason=reason)
    work.note(new_id, None, unlinked_from=previous, source_record_id=row.id, reason=reason)
    return new_id


def merge_golden_records(
    work: GoldenWork,
    survivor_id: int,
    merged_id: int,
    *,
    actor: str,
    reason: str,
    expected_versions: dict[int, int] | None = None,
) -> int:
    """Merge ``merged_id`` into ``survivor_id``, which keeps its id; returns ``survivor_id``.

    The merged record's source records move to the survivor (as steward links), its pins
    move over where the survivor has none, and it becomes ``merged`` with ``merged_into``.
    Cannot-link constraints between the two sides are lifted: this decision is the newer one.
    """
    if survivor_id == merged_id:
        raise InvalidStewardActionError("merge", f"golden record {survivor_id} is the same record")
    lock_active(work, [survivor_id, merged_id], expected_versions=expected_versions)
    # Validation (same record, inactive, shared sources) is planning's; the survivor is the
    # steward's explicit choice.
    plan_merge(_summary(work, survivor_id), _summary(work, merged_id))
    moving = sorted(work.members(merged_id))
    lifted = _lift_cannot_links(work, moving, work.members(survivor_id))
    _must_link(work, moving, survivor_id, actor=actor, reason=reason)
    for record_id in moving:
        work.link(
            work.records[record_id],
            survivor_id,
            decided_by=DecidedBy.STEWARD,
            explanation={"reason": reason, "actor": actor, "merged_from": merged_id},
        )
    pins = work.pins(merged_id)
    pins.update(work.pins(survivor_id))
    work.set_pins(survivor_id, pins)
    work.set_pins(merged_id, {})
    work.mark_merged(merged_id, survivor_id)
    _supersede_tasks(work, golden_ids=[survivor_id, merged_id])
    work.note(
        survivor_id,
        HistoryEventKind.MERGED,
        merged_from=merged_id,
        reason=reason,
        lifted_cannot_links=lifted,
    )
    work.note(merged_id, HistoryEventKind.MERGED, reason=reason)
    return survivor_id


def unmerge_golden_record(
    work: GoldenWork,
    golden_id: int,
    source_record_ids: Collection[int],
    *,
    actor: str,
    reason: str,
) -> tuple[int, int]:
    """Split ``source_record_ids`` off ``golden_id``; returns (id kept, new id).

    The part holding the majority of the source records keeps ``golden_id`` (whichever part
    the steward selected); the other part gets a new id. Every pair across the parts becomes a
    cannot-link constraint, so the machine never joins them again.
    """
    lock_active(work, [golden_id])
    plan = plan_unmerge(golden_id, work.members(golden_id), source_record_ids)
    repo.remove_constraints(work.session, "must_link", plan.cannot_link)
    repo.add_constraints(work.session, "cannot_link", plan.cannot_link, actor, reason, work.now)
    new_id = work.create()
    for record_id in sorted(plan.split_source_record_ids):
        work.link(
            work.records[record_id],
            new_id,
            decided_by=DecidedBy.STEWARD,
            explanation={"reason": reason, "actor": actor, "unmerged_from": golden_id},
        )
    _supersede_tasks(work, golden_ids=[golden_id])
    work.note(
        golden_id,
        HistoryEventKind.UNMERGED,
        split_to=new_id,
        split_source_record_ids=sorted(plan.split_source_record_ids),
        reason=reason,
    )
    work.note(new_id, None, unmerged_from=golden_id, reason=reason)
    return golden_id, new_id


def _summary(work: GoldenWork, golden_id: int) -> GoldenSummary:
    row = work.golden(golden_id)
    return GoldenSummary(
        golden_id=golden_id,
        created_at=row.created_at,
        source_record_ids=work.members(golden_id),
        status=GoldenStatus(row.status),
    )


def pin_golden_attribute(
    work: GoldenWork,
    golden_id: int,
    attribute: str,
    value: Any,
    *,
    actor: str,
    reason: str,
    expected_version: int | None = None,
) -> int:
    """Pin ``attribute`` of ``golden_id`` to ``value`` (validated and normalised like a source
    value would be); it beats every survivorship rule until unpinned."""
    normalized = pin_value(attribute, value)
    lock_active(
        work,
        [golden_id],
        expected_versions=None if expected_version is None else {golden_id: expected_version},
    )
    pins = work.pins(golden_id)
    pins[attribute] = Pin(
        attribute=attribute, value=normalized, pinned_by=actor, reason=reason, pinned_at=work.now
    )
    work.set_pins(golden_id, pins)
    work.note(golden_id, HistoryEventKind.PINNED, attribute=attribute, reason=reason)
    return golden_id


def unpin_golden_attribute(
    work: GoldenWork,
    golden_id: int,
    attribute: str,
    *,
    actor: str,
    reason: str,
    expected_version: int | None = None,
) -> int:
    lock_active(
        work,
        [golden_id],
        expected_versions=None if expected_version is None else {golden_id: expected_version},
    )
    pins = work.pins(golden_id)
    if attribute not in pins:
        raise InvalidStewardActionError(
            "unpin", f"{attribute!r} of golden record {golden_id} is not pinned"
        )
    del pins[attribute]
    work.set_pins(golden_id, pins)
    work.note(golden_id, HistoryEventKind.UNPINNED, attribute=attribute, reason=reason, by=actor)
    return golden_id


def pin_value(attribute: str, value: Any) -> Any:
    """``value`` as the golden attribute would hold it; None pins the attribute empty."""
    if attribute not in GOLDEN_ATTRIBUTES:
        raise InvalidPinError(
            attribute, [f"not a golden attribute ({', '.join(GOLDEN_ATTRIBUTES)})"]
        )
    if value is None:
        return None
    try:
        party = CanonicalParty.model_validate({attribute: value})
    except ValidationError as exc:
        raise InvalidPinError(
            attribute, [str(error["msg"]) for error in exc.errors(include_url=False)]
        ) from exc
    return party.to_attributes().get(attribute)


def decide_review(
    work: GoldenWork,
    task_id: int,
    decision: ReviewDecision,
    *,
    actor: str,
    reason: str,
) -> ReviewTaskRow:
    """Carry out a steward's decision on a review task.

    ``match``: the source record is linked to the candidate golden record (or, for two golden
    records, they are merged; the one with more source records survives). ``no_match``: the
    pair becomes cannot-link constraints, so it never comes back as a suggestion or a merge.
    """
    task = repo.review_task(work.session, task_id, lock=True)
    if task is None:
        raise ReviewTaskNotFoundError(task_id)
    if task.status not in ("open", "deferred"):
        raise InvalidStewardActionError(
            "decide review task", f"task {task_id} is {task.status}, not open"
        )
    kind = ReviewKind(task.kind)
    # Either side may have been merged away since the task was opened: decide on survivors.
    left_golden = repo.resolve_golden_id(work.session, task.golden_id) or task.golden_id
    candidate_golden = (
        repo.resolve_golden_id(work.session, task.candidate_golden_id) or task.candidate_golden_id
    )
    if decision is ReviewDecision.MATCH:
        if kind is ReviewKind.SOURCE_VS_GOLDEN:
            assert task.source_record_id is not None
            link_source_record(
                work, task.source_record_id, candidate_golden, actor=actor, reason=reason
            )
        elif left_golden != candidate_golden:
            lock_active(work, [left_golden, candidate_golden])
            plan = plan_merge(_summary(work, left_golden), _summary(work, candidate_golden))
            merge_golden_records(work, plan.survivor_id, plan.merged_id, actor=actor, reason=reason)
    else:
        candidate = candidate_golden
        work.lock([candidate, left_golden])
        right = work.members(candidate) if work.is_locked(candidate) else frozenset()
        if task.candidate_source_record_id is not None:
            right = right | {task.candidate_source_record_id}
        if kind is ReviewKind.SOURCE_VS_GOLDEN:
            assert task.source_record_id is not None
            left: frozenset[int] = frozenset({task.source_record_id})
        else:
            left = work.members(left_golden) if work.is_locked(left_golden) else frozenset()
        repo.add_constraints(
            work.session,
            "cannot_link",
            [(a, b) for a in left for b in right],
            actor,
            reason,
            work.now,
        )
    # The decided pair, and any other open task about the same pair, are closed.
    work.session.execute(
        sa.update(ReviewTaskRow)
        .where(
            col(ReviewTaskRow.id) != task_id,
            col(ReviewTaskRow.status).in_(("open", "deferred")),
            col(ReviewTaskRow.golden_id) == task.golden_id,
            col(ReviewTaskRow.candidate_golden_id) == task.candidate_golden_id,
        )
        .values(status="superseded")
    )
    task.status = "decided"
    task.decision = decision.value
    task.decided_by = actor
    task.decided_at = work.now
    return task
