"""The API's request and response schemas, and their conversion from hub values.

Request bodies forbid unknown fields and refuse text PostgreSQL cannot store (NUL characters,
lone surrogates), so bad input is a 422 and never reaches the database.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

from hub.history import GoldenSnapshot, HistoryEvent
from hub.model import AttributeLineage, Pin, SourceKey
from hub.records import GoldenRecord, ReviewTask, SourceLink, SourceRecord
from hub.services.desk import StewardDecision
from hub.services.keys import ApiKey, ApiRole, AuditEntry
from hub.services.queue import (
    DeadLetterView,
    QueueItem,
    TaskDetail,
    TaskSide,
    UnmergePart,
    UnmergePreview,
    WaterfallStep,
)
from hub.services.search import SearchHit

MAX_ID = 2**63 - 1
"""Ids are PostgreSQL bigints."""


def storable_text(value: str) -> str:
    if "\x00" in value:
        raise ValueError("text must not contain NUL characters")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise ValueError("text must be valid Unicode (no lone surrogates)") from exc
    return value


def _check_json(value: Any, depth: int = 0) -> None:
    if depth > 32:
        raise ValueError("value nests too deeply")
    if isinstance(value, str):
        storable_text(value)
    elif isinstance(value, Mapping):
        for key, item in value.items():
            storable_text(str(key))
            _check_json(item, depth + 1)
    elif isinstance(value, list | tuple):
        for item in value:
            _check_json(item, depth + 1)


Text = Annotated[str, AfterValidator(storable_text)]
Reason = Annotated[str, Field(max_length=2000), AfterValidator(storable_text)]
Id = Annotated[int, Field(ge=1, le=MAX_ID)]


class Body(BaseModel):
    model_config = ConfigDict(extra="forbid")

    @model_validator(mode="after")
    def _storable(self) -> Body:
        for value in self.__dict__.values():
            _check_json(value)
        return self


# --- golden records ----------------------------------------------------------------------


class SourceKeyPublic(BaseModel):
    system: str
    table: str
    pk: str

    @classmethod
    def of(cls, key: SourceKey) -> SourceKeyPublic:
        return cls(system=key.system, table=key.table, pk=key.pk)


class PinPublic(BaseModel):
    value: Any
    pinned_by: str
    reason: str
    pinned_at: datetime

    @classmethod
    def of(cls, pin: Pin) -> PinPublic:
        return cls(
            value=pin.value, pinned_by=pin.pinned_by, reason=pin.reason, pinned_at=pin.pinned_at
        )


class SourceLinkPublic(BaseModel):
    source_record_id: int
    source: SourceKeyPublic
    decided_by: str
    decided_at: datetime
    score: float | None
    matcher_version: str | None
    committed_at: datetime

    @classmethod
    def of(cls, link: SourceLink) -> SourceLinkPublic:
        return cls(
            source_record_id=link.source_record_id,
            source=SourceKeyPublic.of(link.key),
            decided_by=link.decided_by.value,
            decided_at=link.decided_at,
            score=link.score,
            matcher_version=link.matcher_version,
            committed_at=link.position.committed_at,
        )


class GoldenPublic(BaseModel):
    """A golden record. When the requested id was merged away, ``id`` is the survivor's,
    ``requested_id`` the one asked for and ``redirected`` is true."""

    id: int
    requested_id: int
    redirected: bool
    version: int
    status: str
    merged_into: int | None
    attributes: dict[str, Any]
    sources: list[SourceLinkPublic]
    pins: dict[str, PinPublic]
    created_at: datetime
    updated_at: datetime

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "id": 42,
                    "requested_id": 17,
                    "redirected": True,
                    "version": 3,
                    "status": "active",
                    "merged_into": None,
                    "attributes": {
                        "kind": "organization",
                        "legal_name": "Acme Corporation",
                        "emails": ["billing@acme.example"],
                    },
                    "sources": [
                        {
                            "source_record_id": 7,
                            "source": {"system": "crm", "table": "public.account", "pk": "A-1"},
                            "decided_by": "rule",
                            "decided_at": "2026-01-01T00:00:00Z",
                            "score": 0.998,
                            "matcher_version": "m-1a2b",
                            "committed_at": "2026-01-01T00:00:00Z",
                        }
                    ],
                    "pins": {},
                    "created_at": "2026-01-01T00:00:00Z",
                    "updated_at": "2026-01-02T00:00:00Z",
                }
            ]
        }
    )

    @classmethod
    def of(cls, golden: GoldenRecord) -> GoldenPublic:
        return cls(
            id=golden.id,
            requested_id=golden.requested_id,
            redirected=golden.id != golden.requested_id,
            version=golden.version,
            status=golden.status.value,
            merged_into=golden.merged_into,
            attributes=dict(golden.attributes),
            sources=[SourceLinkPublic.of(s) for s in golden.sources],
            pins={name: PinPublic.of(pin) for name, pin in golden.pins.items()},
            created_at=golden.created_at,
            updated_at=golden.updated_at,
        )


class LineagePublic(BaseModel):
    attribute: str
    value: Any
    rule: str
    rule_set_version: str
    source_record_id: int | None
    source: SourceKeyPublic | None
    lsn: int | None
    tx_id: int | None
    committed_at: datetime | None
    pinned: bool
    pin_reason: str | None
    pinned_by: str | None

    @classmethod
    def of(cls, entry: AttributeLineage) -> LineagePublic:
        position = entry.position
        return cls(
            attribute=entry.attribute,
            value=entry.value,
            rule=entry.rule,
            rule_set_version=entry.rule_set_version,
            source_record_id=entry.source_record_id,
            source=None if entry.source_key is None else SourceKeyPublic.of(entry.source_key),
            lsn=None if position is None else position.lsn,
            tx_id=None if position is None else position.tx_id,
            committed_at=None if position is None else position.committed_at,
            pinned=entry.pinned,
            pin_reason=entry.pin_reason,
            pinned_by=entry.pinned_by,
        )


class LineagePage(BaseModel):
    golden_id: int
    requested_id: int
    version: int
    lineage: list[LineagePublic]


class WaterfallStepPublic(BaseModel):
    name: str
    label: str
    weight: float
    running_total: float

    @classmethod
    def of(cls, step: WaterfallStep) -> WaterfallStepPublic:
        return cls(
            name=step.name, label=step.label, weight=step.weight, running_total=step.running_total
        )


class LinkExplanationPublic(BaseModel):
    source_record_id: int
    source: SourceKeyPublic
    decided_by: str
    decided_at: datetime
    score: float | None
    matcher_version: str | None
    explanation: dict[str, Any] | None
    waterfall: list[WaterfallStepPublic]


class LinksPage(BaseModel):
    golden_id: int
    requested_id: int
    links: list[LinkExplanationPublic]


class SnapshotPublic(BaseModel):
    golden_id: int
    version: int
    status: str
    merged_into: int | None
    attributes: dict[str, Any]
    source_record_ids: list[int]
    pins: dict[str, PinPublic]

    @classmethod
    def of(cls, snapshot: GoldenSnapshot) -> SnapshotPublic:
        return cls(
            golden_id=snapshot.golden_id,
            version=snapshot.version,
            status=snapshot.status.value,
            merged_into=snapshot.merged_into,
            attributes=dict(snapshot.attributes),
            source_record_ids=sorted(snapshot.source_record_ids),
            pins={name: PinPublic.of(pin) for name, pin in snapshot.pins.items()},
        )


class ChangeEventPublic(BaseModel):
    """One golden change. ``sequence`` orders every change of every golden record in commit
    order; pass the last one seen as the next ``after``."""

    sequence: int
    golden_id: int
    kind: str
    cause: str
    actor: str
    occurred_at: datetime
    version: int
    snapshot: dict[str, Any] | None = None
    diff: dict[str, dict[str, Any]] = Field(default_factory=dict)
    sources_added: list[int] = Field(default_factory=list)
    sources_removed: list[int] = Field(default_factory=list)
    status: str | None = None
    merged_into: int | None = None
    pins_set: dict[str, PinPublic] = Field(default_factory=dict)
    pins_removed: list[str] = Field(default_factory=list)
    details: dict[str, Any] = Field(default_factory=dict)

    @classmethod
    def of(cls, event: HistoryEvent) -> ChangeEventPublic:
        return cls(
            sequence=event.sequence or 0,
            golden_id=event.golden_id,
            kind=event.kind.value,
            cause=event.cause.value,
            actor=event.actor,
            occurred_at=event.occurred_at,
            version=event.version,
            snapshot=None if event.snapshot is None else dict(event.snapshot),
            diff={name: dict(change) for name, change in event.diff.items()},
            sources_added=sorted(event.sources_added),
            sources_removed=sorted(event.sources_removed),
            status=None if event.status is None else event.status.value,
            merged_into=event.merged_into,
            pins_set={name: PinPublic.of(pin) for name, pin in event.pins_set.items()},
            pins_removed=sorted(event.pins_removed),
            details=dict(event.details),
        )


class HistoryPage(BaseModel):
    """A golden record's history up to ``as_of`` (all of it without), and its state then."""

    golden_id: int
    as_of: datetime | None
    state: SnapshotPublic | None
    """None when the record did not exist yet at ``as_of``."""
    events: list[ChangeEventPublic]


class ChangesPage(BaseModel):
    events: list[ChangeEventPublic]
    next_cursor: int
    """Pass as ``after`` to get what follows (equal to ``after`` when nothing came)."""
    has_more: bool
    """True when the page is full: more events are waiting."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "events": [
                        {
                            "sequence": 1042,
                            "golden_id": 42,
                            "kind": "updated",
                            "cause": "source_change",
                            "actor": "crm",
                            "occurred_at": "2026-01-02T10:00:00Z",
                            "version": 4,
                            "diff": {"phones": {"old": None, "new": ["+14155550100"]}},
                        }
                    ],
                    "next_cursor": 1042,
                    "has_more": False,
                }
            ]
        }
    )


class SourceRecordPublic(BaseModel):
    id: int
    source: SourceKeyPublic | None
    attributes: dict[str, Any]
    raw: dict[str, Any] | None
    validation_errors: list[dict[str, Any]] | None
    committed_at: datetime
    lsn: int | None
    deleted: bool
    golden_id: int | None
    link_score: float | None
    link_decided_by: str | None

    @classmethod
    def of(cls, record: SourceRecord) -> SourceRecordPublic:
        return cls(
            id=record.id,
            source=None if record.key is None else SourceKeyPublic.of(record.key),
            attributes=dict(record.attributes),
            raw=None if record.raw is None else dict(record.raw),
            validation_errors=(
                None
                if record.validation_errors is None
                else [dict(e) for e in record.validation_errors]
            ),
            committed_at=record.position.committed_at,
            lsn=record.position.lsn,
            deleted=record.deleted,
            golden_id=record.golden_id,
            link_score=record.link_score,
            link_decided_by=None
            if record.link_decided_by is None
            else record.link_decided_by.value,
        )


class SourceRecordPage(BaseModel):
    items: list[SourceRecordPublic]
    next_after_id: int | None


class SearchHitPublic(BaseModel):
    golden: GoldenPublic
    probability: float
    weight: float
    source_record_id: int
    explanation: dict[str, Any]

    @classmethod
    def of(cls, hit: SearchHit) -> SearchHitPublic:
        return cls(
            golden=GoldenPublic.of(hit.golden),
            probability=hit.probability,
            weight=hit.weight,
            source_record_id=hit.source_record_id,
            explanation=dict(hit.explanation),
        )


class SearchPage(BaseModel):
    hits: list[SearchHitPublic]


# --- steward actions ---------------------------------------------------------------------


class MergeCreate(Body):
    survivor_id: Id
    merged_id: Id
    reason: Reason
    expected_versions: dict[str, Annotated[int, Field(ge=0, le=2**31 - 1)]] | None = Field(
        default=None,
        description="Optimistic checks: golden id (as a string key) -> version you read.",
    )

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [{"survivor_id": 42, "merged_id": 17, "reason": "same VAT number"}]
        },
    )


class UnmergeCreate(Body):
    source_record_ids: Annotated[list[Id], Field(min_length=1, max_length=1000)]
    reason: Reason

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"source_record_ids": [7], "reason": "different people"}]},
    )


class UnmergePreviewCreate(Body):
    source_record_ids: Annotated[list[Id], Field(min_length=1, max_length=1000)]


class UnmergePublic(BaseModel):
    kept: GoldenPublic
    split: GoldenPublic


class UnmergePartPublic(BaseModel):
    golden_id: int | None
    source_records: list[SourceRecordPublic]
    attributes: dict[str, Any]

    @classmethod
    def of(cls, part: UnmergePart) -> UnmergePartPublic:
        return cls(
            golden_id=part.golden_id,
            source_records=[SourceRecordPublic.of(r) for r in part.source_records],
            attributes=dict(part.attributes),
        )


class UnmergePreviewPublic(BaseModel):
    golden_id: int
    version: int
    kept: UnmergePartPublic
    split: UnmergePartPublic
    detached_keep_id: bool
    cannot_link_pairs: int
    by_system: dict[str, dict[str, int]]
    open_tasks_superseded: int
    targets_notified: list[str]

    @classmethod
    def of(cls, preview: UnmergePreview) -> UnmergePreviewPublic:
        return cls(
            golden_id=preview.golden_id,
            version=preview.version,
            kept=UnmergePartPublic.of(preview.kept),
            split=UnmergePartPublic.of(preview.split),
            detached_keep_id=preview.detached_keep_id,
            cannot_link_pairs=preview.cannot_link_pairs,
            by_system={k: dict(v) for k, v in preview.by_system.items()},
            open_tasks_superseded=preview.open_tasks_superseded,
            targets_notified=list(preview.targets_notified),
        )


class PinCreate(Body):
    value: Any = Field(description="The value, as the attribute holds it; null pins it empty.")
    reason: Reason
    expected_version: Annotated[int, Field(ge=0, le=2**31 - 1)] | None = None

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"value": "Acme Corporation", "reason": "legal name"}]},
    )


class LinkCreate(Body):
    golden_id: Id
    reason: Reason


class UnlinkCreate(Body):
    reason: Reason


# --- review ------------------------------------------------------------------------------


class ReviewTaskPublic(BaseModel):
    id: int
    kind: str
    status: str
    source_record_id: int | None
    golden_id: int
    candidate_golden_id: int
    candidate_source_record_id: int | None
    score: float
    decision: str | None
    decided_by: str | None
    decided_at: datetime | None
    created_at: datetime

    @classmethod
    def of(cls, task: ReviewTask) -> ReviewTaskPublic:
        return cls(
            id=task.id,
            kind=task.kind.value,
            status=task.status.value,
            source_record_id=task.source_record_id,
            golden_id=task.golden_id,
            candidate_golden_id=task.candidate_golden_id,
            candidate_source_record_id=task.candidate_source_record_id,
            score=task.score,
            decision=None if task.decision is None else task.decision.value,
            decided_by=task.decided_by,
            decided_at=task.decided_at,
            created_at=task.created_at,
        )


class QueueItemPublic(BaseModel):
    task: ReviewTaskPublic
    priority: float
    """Uncertainty x impact."""
    uncertainty: float
    impact: float
    records_affected: int
    systems: list[str]
    age_seconds: float
    sla_breached: bool

    @classmethod
    def of(cls, item: QueueItem, sla_seconds: float) -> QueueItemPublic:
        age = item.age.total_seconds()
        return cls(
            task=ReviewTaskPublic.of(item.task),
            priority=item.priority_score,
            uncertainty=item.uncertainty,
            impact=item.impact,
            records_affected=item.records_affected,
            systems=list(item.systems),
            age_seconds=age,
            sla_breached=age > sla_seconds,
        )


class QueuePagePublic(BaseModel):
    items: list[QueueItemPublic]
    total: int
    limit: int
    offset: int


class TaskSidePublic(BaseModel):
    source_record: SourceRecordPublic | None
    golden: GoldenPublic | None

    @classmethod
    def of(cls, side: TaskSide) -> TaskSidePublic:
        return cls(
            source_record=(
                None if side.source_record is None else SourceRecordPublic.of(side.source_record)
            ),
            golden=None if side.golden is None else GoldenPublic.of(side.golden),
        )


class TaskDetailPublic(BaseModel):
    item: QueueItemPublic
    left: TaskSidePublic
    right: TaskSidePublic
    differences: dict[str, str]
    explanation: dict[str, Any]
    waterfall: list[WaterfallStepPublic]

    @classmethod
    def of(cls, detail: TaskDetail, sla_seconds: float) -> TaskDetailPublic:
        return cls(
            item=QueueItemPublic.of(detail.item, sla_seconds),
            left=TaskSidePublic.of(detail.left),
            right=TaskSidePublic.of(detail.right),
            differences=dict(detail.differences),
            explanation=dict(detail.item.task.explanation),
            waterfall=[WaterfallStepPublic.of(s) for s in detail.waterfall],
        )


class DecisionCreate(Body):
    decision: StewardDecision
    reason: Reason = ""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"decision": "match", "reason": "same tax id"}]},
    )


class BulkDecisionItem(Body):
    task_id: Id
    decision: StewardDecision
    reason: Reason = ""


class BulkDecisionCreate(Body):
    decisions: Annotated[list[BulkDecisionItem], Field(min_length=1, max_length=200)]


class BulkOutcomePublic(BaseModel):
    task_id: int
    ok: bool
    task: ReviewTaskPublic | None
    error: dict[str, Any] | None


class BulkDecisionPage(BaseModel):
    results: list[BulkOutcomePublic]
    decided: int
    failed: int


# --- audit, keys, dead letters -----------------------------------------------------------


class AuditEntryPublic(BaseModel):
    id: int
    occurred_at: datetime
    actor: str
    role: str
    action: str
    target: str
    reason: str
    details: dict[str, Any]

    @classmethod
    def of(cls, entry: AuditEntry) -> AuditEntryPublic:
        return cls(
            id=entry.id,
            occurred_at=entry.occurred_at,
            actor=entry.actor,
            role=entry.role,
            action=entry.action,
            target=entry.target,
            reason=entry.reason,
            details=dict(entry.details),
        )


class AuditPage(BaseModel):
    items: list[AuditEntryPublic]


class ApiKeyPublic(BaseModel):
    id: int
    prefix: str
    name: str
    role: ApiRole
    created_by: str
    created_at: datetime
    revoked_at: datetime | None
    revoked_by: str | None

    @classmethod
    def of(cls, key: ApiKey) -> ApiKeyPublic:
        return cls(
            id=key.id,
            prefix=key.prefix,
            name=key.name,
            role=key.role,
            created_by=key.created_by,
            created_at=key.created_at,
            revoked_at=key.revoked_at,
            revoked_by=key.revoked_by,
        )


class ApiKeyCreate(Body):
    name: Annotated[
        str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9._@-]*$")
    ]
    role: ApiRole

    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"name": "alice", "role": "steward"}]}
    )


class ApiKeyIssued(BaseModel):
    key: ApiKeyPublic
    token: str
    """Shown once: store it now."""


class ApiKeyPage(BaseModel):
    items: list[ApiKeyPublic]


class DeadLetterPublic(BaseModel):
    id: int
    source: str
    reason: str
    error_class: str
    status: str
    attempts: int
    first_seen_at: datetime
    last_seen_at: datetime
    position: dict[str, Any] | None
    raw_key_text: str | None = None
    raw_value_text: str | None = None
    raw_key_base64: str | None = None
    raw_value_base64: str | None = None

    @classmethod
    def of(cls, letter: DeadLetterView, *, raw: bool) -> DeadLetterPublic:
        public = cls(
            id=letter.id,
            source=letter.source,
            reason=letter.reason,
            error_class=letter.error_class,
            status=letter.status,
            attempts=letter.attempts,
            first_seen_at=letter.first_seen_at,
            last_seen_at=letter.last_seen_at,
            position=None if letter.position is None else dict(letter.position),
        )
        if raw:
            public.raw_key_text = DeadLetterView.text(letter.raw_key)
            public.raw_value_text = DeadLetterView.text(letter.raw_value)
            public.raw_key_base64 = DeadLetterView.b64(letter.raw_key)
            public.raw_value_base64 = DeadLetterView.b64(letter.raw_value)
        return public


class DeadLetterPage(BaseModel):
    items: list[DeadLetterPublic]
    next_after_id: int | None


class DiscardCreate(Body):
    reason: Reason


class ReplayPublic(BaseModel):
    dead_letter: DeadLetterPublic
    replayed: bool
    detail: str


# --- health and reports ------------------------------------------------------------------


class LiveStatus(BaseModel):
    status: Literal["ok"]


class ReadyStatus(BaseModel):
    status: Literal["ready", "not_ready"]
    database: Literal["ok", "unreachable"]
    detail: str | None = None
    capture: dict[str, Any] = Field(default_factory=dict)
    """Per capture stream: last applied offset and how long ago (and the live lag metrics of
    a running ``mdh cdc run`` when this process can see them)."""


class ReportPublic(BaseModel):
    generated_at: datetime
    since: datetime
    bucket: str
    sla_hours: float
    sections: dict[str, list[dict[str, Any]]]
    """overall, per_system, coverage, trend, links, queue, unmerge, sync_latency."""
