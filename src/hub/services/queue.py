"""The stewards' work lists: the review queue (filtered, prioritised), a task with both sides,
the preview of an unmerge, and the dead letters.

Priority is uncertainty times business impact. Uncertainty is the binary entropy of the match
probability (1 at 0.5, falling towards both thresholds); impact grows with the source records
and the source systems a decision moves (``1 + ln(1 + records) + systems``). Both are pure
functions of stored facts, so the queue order can be explained to a steward.
"""

from __future__ import annotations

import base64
import math
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, col, select

from hub import repositories as repo
from hub.errors import (
    GoldenRecordNotActiveError,
    GoldenRecordNotFoundError,
    HubError,
    ReviewTaskNotFoundError,
)
from hub.model import GoldenStatus
from hub.planning import plan_unmerge
from hub.records import GoldenRecord, ReviewKind, ReviewStatus, ReviewTask, SourceRecord
from hub.rules import SurvivorshipRules
from hub.services import reads
from hub.services._golden_work import record_snapshot
from hub.survivorship import survive
from hub.tables import DeadLetterRow, ReviewTaskRow, SourceRecordRow


class DeadLetterNotFoundError(HubError):
    def __init__(self, dead_letter_id: int) -> None:
        self.dead_letter_id = dead_letter_id
        super().__init__(f"dead letter {dead_letter_id} does not exist")


class QueueSort(StrEnum):
    PRIORITY = "priority"
    """Highest uncertainty x impact first."""
    OLDEST = "oldest"
    NEWEST = "newest"
    SCORE = "score"
    """Highest match probability first."""


@dataclass(frozen=True)
class QueueQuery:
    statuses: tuple[ReviewStatus, ...] = (ReviewStatus.OPEN,)
    kind: ReviewKind | None = None
    system: str | None = None
    """Only tasks that involve a source record of this system."""
    min_score: float | None = None
    max_score: float | None = None
    older_than: timedelta | None = None
    sort: QueueSort = QueueSort.PRIORITY
    limit: int = 50
    offset: int = 0


@dataclass(frozen=True)
class QueueItem:
    task: ReviewTask
    uncertainty: float
    impact: float
    priority_score: float
    records_affected: int
    systems: tuple[str, ...]
    age: timedelta


@dataclass(frozen=True)
class QueuePage:
    items: tuple[QueueItem, ...]
    total: int
    limit: int
    offset: int


@dataclass(frozen=True)
class TaskSide:
    """One side of a review task: the source record (if the side is one) and its golden."""

    source_record: SourceRecord | None
    golden: GoldenRecord | None


@dataclass(frozen=True)
class WaterfallStep:
    name: str
    label: str
    weight: float
    running_total: float


@dataclass(frozen=True)
class TaskDetail:
    item: QueueItem
    left: TaskSide
    right: TaskSide
    differences: Mapping[str, str]
    """Attribute -> ``same`` / ``different`` / ``left_only`` / ``right_only``."""
    waterfall: tuple[WaterfallStep, ...]


@dataclass(frozen=True)
class UnmergePart:
    golden_id: int | None
    """None for the part that will get a new id."""
    source_records: tuple[SourceRecord, ...]
    attributes: Mapping[str, Any]


@dataclass(frozen=True)
class UnmergePreview:
    golden_id: int
    version: int
    kept: UnmergePart
    split: UnmergePart
    detached_keep_id: bool
    cannot_link_pairs: int
    by_system: Mapping[str, Mapping[str, int]]
    """system -> {"kept": n, "split": n}: the records of each source system on each side."""
    open_tasks_superseded: int
    targets_notified: tuple[str, ...]


@dataclass(frozen=True)
class DeadLetterView:
    id: int
    source: str
    reason: str
    error_class: str
    status: str
    attempts: int
    first_seen_at: datetime
    last_seen_at: datetime
    position: Mapping[str, Any] | None
    raw_key: bytes | None = field(repr=False)
    raw_value: bytes | None = field(repr=False)

    @staticmethod
    def text(raw: bytes | None) -> str | None:
        return None if raw is None else raw.decode("utf-8", errors="replace")

    @staticmethod
    def b64(raw: bytes | None) -> str | None:
        return None if raw is None else base64.b64encode(raw).decode("ascii")


# --- priority ----------------------------------------------------------------------------


def uncertainty(probability: float) -> float:
    """Binary entropy of the match probability, in bits (0..1)."""
    p = min(max(probability, 1e-9), 1 - 1e-9)
    return -(p * math.log2(p) + (1 - p) * math.log2(1 - p))


def impact(records_affected: int, systems: int) -> float:
    return 1.0 + math.log1p(max(records_affected, 0)) + max(systems, 0)


def _members(session: Session, golden_ids: Collection[int]) -> dict[int, tuple[int, set[str]]]:
    wanted = sorted(set(golden_ids))
    if not wanted:
        return {}
    rows = session.execute(
        sa.select(
            col(SourceRecordRow.golden_id),
            sa.func.count(),
            sa.func.array_agg(sa.distinct(col(SourceRecordRow.system))),
        )
        .where(repo.any_of(col(SourceRecordRow.golden_id), wanted))
        .group_by(col(SourceRecordRow.golden_id))
    )
    return {int(g): (int(n), set(systems)) for g, n, systems in rows}


def _item(
    task: ReviewTask, members: Mapping[int, tuple[int, set[str]]], now: datetime
) -> QueueItem:
    records = 0
    systems: set[str] = set()
    for golden_id in {task.golden_id, task.candidate_golden_id}:
        n, s = members.get(golden_id, (0, set()))
        records += n
        systems |= s
    u = uncertainty(task.score)
    i = impact(records, len(systems))
    return QueueItem(
        task=task,
        uncertainty=u,
        impact=i,
        priority_score=u * i,
        records_affected=records,
        systems=tuple(sorted(systems)),
        age=max(now - task.created_at, timedelta(0)),
    )


def review_queue(session: Session, query: QueueQuery, now: datetime) -> QueuePage:
    """The tasks matching the filters, sorted, one page of them (with the total)."""
    statement = select(ReviewTaskRow).where(
        col(ReviewTaskRow.status).in_([s.value for s in query.statuses])
    )
    if query.kind is not None:
        statement = statement.where(col(ReviewTaskRow.kind) == query.kind.value)
    if query.min_score is not None:
        statement = statement.where(col(ReviewTaskRow.score) >= query.min_score)
    if query.max_score is not None:
        statement = statement.where(col(ReviewTaskRow.score) <= query.max_score)
    if query.older_than is not None:
        statement = statement.where(col(ReviewTaskRow.created_at) <= now - query.older_than)
    tasks = [reads.review_task_view(row) for row in session.exec(statement)]
    members = _members(session, {g for t in tasks for g in (t.golden_id, t.candidate_golden_id)})
    items = [_item(task, members, now) for task in tasks]
    if query.system is not None:
        items = [item for item in items if query.system in item.systems]
    if query.sort is QueueSort.PRIORITY:
        items.sort(key=lambda i: (-i.priority_score, i.task.created_at, i.task.id))
    elif query.sort is QueueSort.OLDEST:
        items.sort(key=lambda i: (i.task.created_at, i.task.id))
    elif query.sort is QueueSort.NEWEST:
        items.sort(key=lambda i: (i.task.created_at, i.task.id), reverse=True)
    else:
        items.sort(key=lambda i: (-i.task.score, i.task.id))
    page = items[query.offset : query.offset + query.limit]
    return QueuePage(items=tuple(page), total=len(items), limit=query.limit, offset=query.offset)


def _side(session: Session, source_record_id: int | None, golden_id: int) -> TaskSide:
    source = None
    if source_record_id is not None:
        row = repo.source_record(session, source_record_id)
        source = None if row is None else reads.source_record_view(row)
    return TaskSide(source_record=source, golden=reads.find_golden(session, golden_id))


def _compared(side: TaskSide) -> Mapping[str, Any]:
    if side.source_record is not None:
        return side.source_record.attributes
    return {} if side.golden is None else side.golden.attributes


def differences(left: Mapping[str, Any], right: Mapping[str, Any]) -> dict[str, str]:
    """How each attribute of the two sides compares (empty values count as absent)."""
    result: dict[str, str] = {}
    for name in sorted(left.keys() | right.keys()):
        a, b = left.get(name), right.get(name)
        if a in (None, "", [], {}) and b in (None, "", [], {}):
            continue
        if a in (None, "", [], {}):
            result[name] = "right_only"
        elif b in (None, "", [], {}):
            result[name] = "left_only"
        else:
            result[name] = "same" if a == b else "different"
    return result


def waterfall(explanation: Mapping[str, Any]) -> tuple[WaterfallStep, ...]:
    """The prior and each comparison's weight with the running total (Fellegi-Sunter
    explanations); empty for a matcher whose explanation has no weights."""
    prior = explanation.get("prior_weight")
    comparisons = explanation.get("comparisons")
    if not isinstance(prior, int | float) or not isinstance(comparisons, list):
        return ()
    running = float(prior)
    steps = [WaterfallStep("prior", "", float(prior), running)]
    for entry in comparisons:
        if not isinstance(entry, Mapping):
            continue
        weight = float(entry.get("weight") or 0.0)
        running += weight
        steps.append(
            WaterfallStep(str(entry.get("name", "?")), str(entry.get("label", "")), weight, running)
        )
    return tuple(steps)


def task_detail(session: Session, task_id: int, now: datetime) -> TaskDetail:
    row = repo.review_task(session, task_id)
    if row is None:
        raise ReviewTaskNotFoundError(task_id)
    task = reads.review_task_view(row)
    members = _members(session, {task.golden_id, task.candidate_golden_id})
    left = _side(session, task.source_record_id, task.golden_id)
    right = _side(session, task.candidate_source_record_id, task.candidate_golden_id)
    return TaskDetail(
        item=_item(task, members, now),
        left=left,
        right=right,
        differences=differences(_compared(left), _compared(right)),
        waterfall=waterfall(task.explanation),
    )


# --- unmerge preview ---------------------------------------------------------------------


def unmerge_preview(
    session: Session,
    golden_id: int,
    source_record_ids: Collection[int],
    rules: SurvivorshipRules,
    targets: Sequence[str],
) -> UnmergePreview:
    """What ``unmerge(golden_id, source_record_ids)`` would do, without doing it.

    Raises:
        GoldenRecordNotFoundError, GoldenRecordNotActiveError, InvalidStewardActionError.
    """
    row = repo.golden_record(session, golden_id)
    if row is None:
        raise GoldenRecordNotFoundError(golden_id)
    if row.status != GoldenStatus.ACTIVE.value:
        raise GoldenRecordNotActiveError(golden_id, row.status)
    members = {m.id: m for m in repo.members_of(session, [golden_id])}
    plan = plan_unmerge(golden_id, members.keys(), source_record_ids)
    pins = repo.pins_of(session, [golden_id])[golden_id]

    def part(ids: frozenset[int], keeps_id: bool) -> UnmergePart:
        rows = [members[i] for i in sorted(ids)]
        survived = survive([record_snapshot(r) for r in rows], rules, pins if keeps_id else {})
        return UnmergePart(
            golden_id=golden_id if keeps_id else None,
            source_records=tuple(reads.source_record_view(r) for r in rows),
            attributes=survived.attributes,
        )

    by_system: dict[str, dict[str, int]] = {}
    for side, ids in (
        ("kept", plan.kept_source_record_ids),
        ("split", plan.split_source_record_ids),
    ):
        for record_id in ids:
            counts = by_system.setdefault(members[record_id].system, {"kept": 0, "split": 0})
            counts[side] += 1
    open_tasks = session.execute(
        sa.select(sa.func.count())
        .select_from(ReviewTaskRow)
        .where(
            col(ReviewTaskRow.status).in_(("open", "deferred")),
            sa.or_(
                col(ReviewTaskRow.golden_id) == golden_id,
                col(ReviewTaskRow.candidate_golden_id) == golden_id,
            ),
        )
    ).scalar_one()
    return UnmergePreview(
        golden_id=golden_id,
        version=row.version,
        kept=part(plan.kept_source_record_ids, True),
        split=part(plan.split_source_record_ids, False),
        detached_keep_id=plan.detached_keep_id,
        cannot_link_pairs=len(plan.cannot_link),
        by_system={k: by_system[k] for k in sorted(by_system)},
        open_tasks_superseded=int(open_tasks),
        targets_notified=tuple(targets),
    )


# --- dead letters ------------------------------------------------------------------------


def _dead_letter_view(row: DeadLetterRow) -> DeadLetterView:
    return DeadLetterView(
        id=row.id,
        source=row.source,
        reason=row.reason,
        error_class=row.error_class,
        status=row.status,
        attempts=row.attempts,
        first_seen_at=row.first_seen_at,
        last_seen_at=row.last_seen_at,
        position=row.position,
        raw_key=row.raw_key,
        raw_value=row.raw_value,
    )


def dead_letters(
    session: Session,
    *,
    status: str | None = None,
    source: str | None = None,
    after_id: int = 0,
    limit: int = 100,
) -> list[DeadLetterView]:
    statement = (
        select(DeadLetterRow)
        .where(col(DeadLetterRow.id) > after_id)
        .order_by(col(DeadLetterRow.id))
        .limit(limit)
    )
    if status is not None:
        statement = statement.where(col(DeadLetterRow.status) == status)
    if source is not None:
        statement = statement.where(col(DeadLetterRow.source) == source)
    return [_dead_letter_view(row) for row in session.exec(statement)]


def dead_letter(session: Session, dead_letter_id: int, *, lock: bool = False) -> DeadLetterRow:
    statement = select(DeadLetterRow).where(col(DeadLetterRow.id) == dead_letter_id)
    if lock:
        statement = statement.with_for_update()
    row = session.exec(statement).first()
    if row is None:
        raise DeadLetterNotFoundError(dead_letter_id)
    return row


def dead_letter_view(session: Session, dead_letter_id: int) -> DeadLetterView:
    return _dead_letter_view(dead_letter(session, dead_letter_id))
