"""The frozen values hub services take and return (besides the canonical model in hub.model)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from hub.model import AttributeLineage, DecidedBy, GoldenStatus, Pin, SourceKey, SourcePosition


@dataclass(frozen=True)
class DeadLetter:
    """A message cdc could not parse or map, stored raw with the reason (never re-parsed here)."""

    source: str
    raw_key: bytes | None
    raw_value: bytes | None
    reason: str
    error_class: str
    position: Mapping[str, Any] | None = None


@dataclass(frozen=True)
class SourceLink:
    """How a source record belongs to its golden record: score, explanation, who decided."""

    source_record_id: int
    key: SourceKey
    position: SourcePosition
    score: float | None
    decided_by: DecidedBy
    decided_at: datetime
    matcher_version: str | None
    explanation: Mapping[str, Any] | None


@dataclass(frozen=True)
class GoldenRecord:
    """A golden record as readers see it.

    ``requested_id`` is the id that was asked for; ``id`` differs from it when the requested
    record was merged away (the chain of ``merged_into`` was followed to the survivor).
    """

    id: int
    requested_id: int
    version: int
    status: GoldenStatus
    merged_into: int | None
    attributes: Mapping[str, Any]
    lineage: Mapping[str, AttributeLineage]
    sources: tuple[SourceLink, ...]
    pins: Mapping[str, Pin]
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True)
class SourceRecord:
    """A source record (crosswalk row) as stewards see it, including validation failures."""

    id: int
    key: SourceKey | None
    """None for a change that arrived without a primary key."""
    system: str
    table: str
    attributes: Mapping[str, Any]
    raw: Mapping[str, Any] | None
    validation_errors: tuple[Mapping[str, Any], ...] | None
    position: SourcePosition
    deleted: bool
    golden_id: int | None
    link_score: float | None
    link_decided_by: DecidedBy | None


class ReviewStatus(StrEnum):
    OPEN = "open"
    DECIDED = "decided"
    DEFERRED = "deferred"
    SUPERSEDED = "superseded"


class ReviewKind(StrEnum):
    SOURCE_VS_GOLDEN = "source_vs_golden"
    GOLDEN_VS_GOLDEN = "golden_vs_golden"


class ReviewDecision(StrEnum):
    MATCH = "match"
    NO_MATCH = "no_match"


@dataclass(frozen=True)
class ReviewTask:
    id: int
    kind: ReviewKind
    source_record_id: int | None
    golden_id: int
    candidate_golden_id: int
    candidate_source_record_id: int | None
    score: float
    explanation: Mapping[str, Any]
    priority: int
    status: ReviewStatus
    decision: ReviewDecision | None
    decided_by: str | None
    decided_at: datetime | None
    created_at: datetime


@dataclass(frozen=True)
class ApplyResult:
    """What one ``apply_changes`` call did."""

    batch_skipped: bool = False
    """The batch position was already applied: nothing was done."""
    applied: int = 0
    stale: int = 0
    """Changes older than (or as old as) what is stored for their source row: ignored."""
    invalid: int = 0
    """Changes kept with validation errors, unlinked."""
    deleted: int = 0
    goldens_created: tuple[int, ...] = ()
    goldens_changed: tuple[int, ...] = ()
    """Golden records that got a new version (created ones included)."""
    review_tasks_opened: tuple[int, ...] = ()
    dead_letters: int = 0
    absent_from_snapshot: int = 0
    """Live source rows a completed snapshot no longer had: marked deleted (also counted in
    ``deleted``)."""
    absent_refused: tuple[str, ...] = ()
    """Tables whose rows absent from a completed snapshot were too many to delete
    (``SnapshotEnd.max_absent_fraction``), each as ``system/table: N of M live rows``."""


@dataclass(frozen=True)
class RebuildResult:
    goldens_checked: int
    goldens_changed: tuple[int, ...] = field(default_factory=tuple)


@dataclass(frozen=True)
class OutboxMessage:
    """One golden change to deliver to one target; ``idempotency_key`` lets the target drop
    a repeat (golden id + version + target)."""

    id: int
    golden_id: int
    version: int
    target: str
    idempotency_key: str
    payload: Mapping[str, Any]
    attempts: int
    created_at: datetime
