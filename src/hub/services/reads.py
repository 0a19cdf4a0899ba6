"""Reading golden records, source records, history and review tasks (inside a transaction)."""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Session

from hub import repositories as repo
from hub.errors import (
    GoldenRecordNotFoundError,
    SourceRecordNotFoundError,
    SourceRecordNotLinkedError,
)
from hub.history import GoldenSnapshot, HistoryEvent, reconstruct
from hub.model import AttributeLineage, DecidedBy, GoldenStatus, SourceKey, SourcePosition
from hub.records import (
    GoldenRecord,
    OutboxMessage,
    ReviewDecision,
    ReviewKind,
    ReviewStatus,
    ReviewTask,
    SourceLink,
    SourceRecord,
)
from hub.services._golden_work import record_key, record_position
from hub.tables import GoldenHistoryRow, OutboxRow, ReviewTaskRow, SourceRecordRow


def find_golden(session: Session, golden_id: int) -> GoldenRecord | None:
    """The golden record ``golden_id``, following ``merged_into`` to the survivor."""
    resolved = repo.resolve_golden_id(session, golden_id)
    row = None if resolved is None else repo.golden_record(session, resolved)
    if row is None:
        return None
    members = repo.members_of(session, [row.id])
    lineage_rows = repo.lineage_of(session, row.id)
    lineage_sources = repo.source_records(
        session, [r.source_record_id for r in lineage_rows if r.source_record_id is not None]
    )
    lineage = {
        r.attribute: AttributeLineage(
            attribute=r.attribute,
            value=r.value,
            rule=r.rule,
            rule_set_version=r.rule_set_version,
            source_record_id=r.source_record_id,
            source_key=(
                record_key(lineage_sources[r.source_record_id])
                if r.source_record_id in lineage_sources
                else None
            ),
            position=(
                SourcePosition(lsn=r.lsn, tx_id=r.tx_id, committed_at=r.committed_at)
                if r.committed_at is not None
                else None
            ),
            pinned=r.pinned,
            pin_reason=r.pin_reason,
            pinned_by=r.pinned_by,
        )
        for r in lineage_rows
    }
    return GoldenRecord(
        id=row.id,
        requested_id=golden_id,
        version=row.version,
        status=GoldenStatus(row.status),
        merged_into=row.merged_into,
        attributes=row.attributes,
        lineage=lineage,
        sources=tuple(_source_link(m) for m in members),
        pins=repo.pins_of(session, [row.id])[row.id],
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


def get_golden(session: Session, golden_id: int) -> GoldenRecord:
    found = find_golden(session, golden_id)
    if found is None:
        raise GoldenRecordNotFoundError(golden_id)
    return found


def _source_link(row: SourceRecordRow) -> SourceLink:
    assert row.link_decided_by is not None
    assert row.link_decided_at is not None
    return SourceLink(
        source_record_id=row.id,
        key=record_key(row),
        position=record_position(row),
        score=row.link_score,
        decided_by=DecidedBy(row.link_decided_by),
        decided_at=row.link_decided_at,
        matcher_version=row.matcher_version,
        explanation=row.link_explanation,
    )


def source_record_view(row: SourceRecordRow) -> SourceRecord:
    return SourceRecord(
        id=row.id,
        key=None if row.pk is None else record_key(row),
        system=row.system,
        table=row.source_table,
        attributes=row.attributes,
        raw=row.raw,
        validation_errors=None if row.validation_errors is None else tuple(row.validation_errors),
        position=record_position(row),
        deleted=row.deleted,
        golden_id=row.golden_id,
        link_score=row.link_score,
        link_decided_by=None if row.link_decided_by is None else DecidedBy(row.link_decided_by),
    )


def get_source_record(session: Session, key: SourceKey) -> SourceRecord:
    row = repo.source_record_by_key(session, key)
    if row is None:
        raise SourceRecordNotFoundError(key)
    return source_record_view(row)


def find_golden_by_source(session: Session, key: SourceKey) -> GoldenRecord | None:
    row = repo.source_record_by_key(session, key)
    if row is None or row.golden_id is None:
        return None
    return find_golden(session, row.golden_id)


def get_golden_by_source(session: Session, key: SourceKey) -> GoldenRecord:
    row = repo.source_record_by_key(session, key)
    if row is None:
        raise SourceRecordNotFoundError(key)
    if row.golden_id is None:
        reason = "deleted at the source" if row.deleted else "failed validation"
        raise SourceRecordNotLinkedError(key, reason)
    return get_golden(session, row.golden_id)


def _event(row: GoldenHistoryRow) -> HistoryEvent:
    return HistoryEvent.from_data(
        golden_id=row.golden_id,
        kind=row.kind,
        cause=row.cause,
        actor=row.actor,
        occurred_at=row.occurred_at,
        version=row.version,
        sequence=row.sequence,
        data=row.data,
    )


def changes_after(session: Session, cursor: int, limit: int) -> list[HistoryEvent]:
    """Every golden change after ``cursor`` (a history sequence number), in commit order."""
    return [_event(row) for row in repo.history_after(session, cursor, limit)]


def history(session: Session, golden_id: int) -> list[HistoryEvent]:
    """The history events of exactly this golden record (no merge chain followed), in order."""
    if repo.golden_record(session, golden_id) is None:
        raise GoldenRecordNotFoundError(golden_id)
    return [_event(row) for row in repo.history_of(session, golden_id)]


def golden_as_of(session: Session, golden_id: int, as_of: datetime) -> GoldenSnapshot | None:
    """This golden record as it was at ``as_of``, folded from its history (None: not yet
    created then). The record itself, not its survivor: a merged record reads as it was."""
    return reconstruct(history(session, golden_id), as_of)


def review_task_view(row: ReviewTaskRow) -> ReviewTask:
    return ReviewTask(
        id=row.id,
        kind=ReviewKind(row.kind),
        source_record_id=row.source_record_id,
        golden_id=row.golden_id,
        candidate_golden_id=row.candidate_golden_id,
        candidate_source_record_id=row.candidate_source_record_id,
        score=row.score,
        explanation=row.explanation,
        priority=row.priority,
        status=ReviewStatus(row.status),
        decision=None if row.decision is None else ReviewDecision(row.decision),
        decided_by=row.decided_by,
        decided_at=row.decided_at,
        created_at=row.created_at,
    )


def outbox_message(row: OutboxRow) -> OutboxMessage:
    return OutboxMessage(
        id=row.id,
        golden_id=row.golden_id,
        version=row.version,
        target=row.target,
        idempotency_key=row.idempotency_key,
        payload=row.payload,
        attempts=row.attempts,
        created_at=row.created_at,
    )
