"""The hub's tables as SQLModel classes; the Alembic migrations in hub/migrations create them.

These classes describe the schema for queries; they never create it (no ``create_all`` outside
throwaway checks). A test compares them with the migrated database so the two cannot drift.
Constraint and index names are explicit so migrations can refer to them.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import BYTEA, JSONB
from sqlmodel import Field, SQLModel


def _tz(nullable: bool = False, **kwargs: Any) -> Any:
    return Field(sa_column=sa.Column(sa.DateTime(timezone=True), nullable=nullable, **kwargs))


def _json(nullable: bool = False) -> Any:
    # A nullable JSON column stores Python None as SQL NULL (so ``IS NULL`` means "none"); a
    # NOT NULL one stores it as JSON null (a pinned empty value).
    return Field(sa_column=sa.Column(JSONB(none_as_null=nullable), nullable=nullable))


class GoldenRecordRow(SQLModel, table=True):
    """One real-world party. The id comes from the table's identity sequence and is never reused."""

    __tablename__ = "golden_records"
    __table_args__ = (
        sa.CheckConstraint(
            "status IN ('active', 'merged', 'retired')", name="ck_golden_records_status"
        ),
        sa.CheckConstraint(
            "(status = 'merged') = (merged_into IS NOT NULL)", name="ck_golden_records_merged_into"
        ),
    )

    id: int = Field(sa_column=sa.Column(sa.BigInteger, sa.Identity(always=False), primary_key=True))
    attributes: dict[str, Any] = _json()
    version: int = Field(sa_column=sa.Column(sa.Integer, nullable=False))
    status: str = Field(sa_column=sa.Column(sa.Text, nullable=False))
    merged_into: int | None = Field(
        default=None,
        sa_column=sa.Column(
            sa.BigInteger,
            sa.ForeignKey(
                "golden_records.id",
                name="fk_golden_records_merged_into",
                # Checked at commit: a record can be merged into one created in the same
                # transaction, whatever order the rows are written in.
                deferrable=True,
                initially="DEFERRED",
            ),
            nullable=True,
        ),
    )
    created_at: datetime = _tz()
    updated_at: datetime = _tz()


class SourceRecordRow(SQLModel, table=True):
    """The crosswalk: one row per source row, with its latest image and its golden link."""

    __tablename__ = "source_records"
    __table_args__ = (
        # NULL primary keys (a change that arrived without one) are distinct, so each is kept.
        sa.UniqueConstraint("system", "source_table", "pk", name="uq_source_records_key"),
        sa.CheckConstraint(
            "link_decided_by IS NULL OR link_decided_by IN ('rule', 'steward')",
            name="ck_source_records_decided_by",
        ),
        sa.Index("ix_source_records_golden_id", "golden_id"),
        sa.Index(
            "ix_source_records_invalid",
            "id",
            postgresql_where=sa.text("validation_errors IS NOT NULL"),
        ),
    )

    id: int = Field(sa_column=sa.Column(sa.BigInteger, sa.Identity(always=False), primary_key=True))
    system: str = Field(sa_column=sa.Column(sa.Text, nullable=False))
    source_table: str = Field(sa_column=sa.Column(sa.Text, nullable=False))
    pk: str | None = Field(default=None, sa_column=sa.Column(sa.Text, nullable=True))
    raw: dict[str, Any] | None = _json(nullable=True)
    attributes: dict[str, Any] = _json()
    features: dict[str, Any] = _json()
    validation_errors: list[dict[str, Any]] | None = _json(nullable=True)
    lsn: int | None = Field(default=None, sa_column=sa.Column(sa.BigInteger, nullable=True))
    tx_id: int | None = Field(default=None, sa_column=sa.Column(sa.BigInteger, nullable=True))
    committed_at: datetime = _tz()
    snapshot: bool = Field(
        default=False,
        sa_column=sa.Column(sa.Boolean, nullable=False, server_default=sa.false()),
    )
    """The position is a snapshot read's (LSN: the snapshot's; see ``SourcePosition``)."""
    deleted: bool = Field(sa_column=sa.Column(sa.Boolean, nullable=False))
    golden_id: int | None = Field(
        default=None,
        sa_column=sa.Column(
            sa.BigInteger,
            sa.ForeignKey("golden_records.id", name="fk_source_records_golden_id"),
            nullable=True,
        ),
    )
    link_score: float | None = Field(default=None, sa_column=sa.Column(sa.Float, nullable=True))
    link_explanation: dict[str, Any] | None = _json(nullable=True)
    link_decided_by: str | None = Field(default=None, sa_column=sa.Column(sa.Text, nullable=True))
    link_decided_at: datetime | None = _tz(nullable=True)
    matcher_version: str | None = Field(default=None, sa_column=sa.Column(sa.Text, nullable=True))
    created_at: datetime = _tz()
    updated_at: datetime = _tz()


class BlockingKeyRow(SQLModel, table=True):
    """The blocking keys of each valid, live source record: the index of candidate look-ups."""

    __tablename__ = "blocking_keys"
    __table_args__ = (sa.Index("ix_blocking_keys_source_record_id", "source_record_id"),)

    key: str = Field(sa_column=sa.Column(sa.Text, primary_key=True))
    source_record_id: int = Field(
        sa_column=sa.Column(
            sa.BigInteger,
            sa.ForeignKey(
                "source_records.id", name="fk_blocking_keys_source_record_id", ondelete="CASCADE"
            ),
            primary_key=True,
        )
    )


class AttributeLineageRow(SQLModel, table=True):
    """Why each golden attribute has its value: source, position, commit time, rule, pin."""

    __tablename__ = "attribute_lineage"

    golden_id: int = Field(
        sa_column=sa.Column(
            sa.BigInteger,
            sa.ForeignKey("golden_records.id", name="fk_attribute_lineage_golden_id"),
            primary_key=True,
        )
    )
    attribute: str = Field(sa_column=sa.Column(sa.Text, primary_key=True))
    value: Any = _json()
    source_record_id: int | None = Field(
        default=None,
        sa_column=sa.Column(
            sa.BigInteger,
            sa.ForeignKey("source_records.id", name="fk_attribute_lineage_source_record_id"),
            nullable=True,
        ),
    )
    lsn: int | None = Field(default=None, sa_column=sa.Column(sa.BigInteger, nullable=True))
    tx_id: int | None = Field(default=None, sa_column=sa.Column(sa.BigInteger, nullable=True))
    committed_at: datetime | None = _tz(nullable=True)
    rule: str = Field(sa_column=sa.Column(sa.Text, nullable=False))
    rule_set_version: str = Field(sa_column=sa.Column(sa.Text, nullable=False))
    pinned: bool = Field(sa_column=sa.Column(sa.Boolean, nullable=False))
    pin_reason: str | None = Field(default=None, sa_column=sa.Column(sa.Text, nullable=True))
    pinned_by: str | None = Field(default=None, sa_column=sa.Column(sa.Text, nullable=True))


class GoldenPinRow(SQLModel, table=True):
    """A steward's pinned value. Kept apart from lineage, which is derived and rewritten."""

    __tablename__ = "golden_pins"

    golden_id: int = Field(
        sa_column=sa.Column(
            sa.BigInteger,
            sa.ForeignKey("golden_records.id", name="fk_golden_pins_golden_id"),
            primary_key=True,
        )
    )
    attribute: str = Field(sa_column=sa.Column(sa.Text, primary_key=True))
    value: Any = _json()
    pinned_by: str = Field(sa_column=sa.Column(sa.Text, nullable=False))
    reason: str = Field(sa_column=sa.Column(sa.Text, nullable=False))
    pinned_at: datetime = _tz()


class GoldenHistoryRow(SQLModel, table=True):
    """Append-only golden history. ``sequence`` is global, only grows, and follows commit
    order (``repositories.append_history`` serialises appends), so a changes feed reading
    "sequence > cursor" never skips an event. A trigger rejects UPDATE and DELETE.
    """

    __tablename__ = "golden_history"
    __table_args__ = (
        sa.CheckConstraint(
            "kind IN ('created', 'updated', 'linked', 'unlinked', 'merged', 'unmerged',"
            " 'retired', 'pinned', 'unpinned')",
            name="ck_golden_history_kind",
        ),
        sa.CheckConstraint(
            "cause IN ('source_change', 'steward_action')", name="ck_golden_history_cause"
        ),
        sa.Index("ix_golden_history_golden_id_sequence", "golden_id", "sequence"),
    )

    sequence: int = Field(
        sa_column=sa.Column(sa.BigInteger, sa.Identity(always=True), primary_key=True)
    )
    golden_id: int = Field(
        sa_column=sa.Column(
            sa.BigInteger,
            sa.ForeignKey("golden_records.id", name="fk_golden_history_golden_id"),
            nullable=False,
        )
    )
    kind: str = Field(sa_column=sa.Column(sa.Text, nullable=False))
    version: int = Field(sa_column=sa.Column(sa.Integer, nullable=False))
    cause: str = Field(sa_column=sa.Column(sa.Text, nullable=False))
    actor: str = Field(sa_column=sa.Column(sa.Text, nullable=False))
    occurred_at: datetime = _tz()
    data: dict[str, Any] = _json()


class MatchConstraintRow(SQLModel, table=True):
    """A steward's must-link or cannot-link between two source records (stored low id first)."""

    __tablename__ = "match_constraints"
    __table_args__ = (
        sa.CheckConstraint(
            "kind IN ('must_link', 'cannot_link')", name="ck_match_constraints_kind"
        ),
        sa.CheckConstraint(
            "left_source_record_id < right_source_record_id", name="ck_match_constraints_order"
        ),
        sa.UniqueConstraint(
            "left_source_record_id",
            "right_source_record_id",
            "kind",
            name="uq_match_constraints_pair",
        ),
        sa.Index("ix_match_constraints_right", "right_source_record_id"),
    )

    id: int = Field(sa_column=sa.Column(sa.BigInteger, sa.Identity(always=False), primary_key=True))
    kind: str = Field(sa_column=sa.Column(sa.Text, nullable=False))
    left_source_record_id: int = Field(
        sa_column=sa.Column(
            sa.BigInteger,
            sa.ForeignKey("source_records.id", name="fk_match_constraints_left"),
            nullable=False,
        )
    )
    right_source_record_id: int = Field(
        sa_column=sa.Column(
            sa.BigInteger,
            sa.ForeignKey("source_records.id", name="fk_match_constraints_right"),
            nullable=False,
        )
    )
    created_by: str = Field(sa_column=sa.Column(sa.Text, nullable=False))
    reason: str = Field(sa_column=sa.Column(sa.Text, nullable=False))
    created_at: datetime = _tz()


class ReviewTaskRow(SQLModel, table=True):
    """A candidate pair the machine was unsure about: a source record vs a golden record
    (``source_record_id`` set) or two golden records; ``golden_id`` is the left side's golden.
    """

    __tablename__ = "review_tasks"
    __table_args__ = (
        sa.CheckConstraint(
            "kind IN ('source_vs_golden', 'golden_vs_golden')", name="ck_review_tasks_kind"
        ),
        sa.CheckConstraint(
            "status IN ('open', 'decided', 'deferred', 'superseded')",
            name="ck_review_tasks_status",
        ),
        sa.CheckConstraint(
            "decision IS NULL OR decision IN ('match', 'no_match')",
            name="ck_review_tasks_decision",
        ),
        sa.Index("ix_review_tasks_queue", "status", sa.text("priority DESC"), "id"),
        sa.Index("ix_review_tasks_source_record_id", "source_record_id"),
        sa.Index("ix_review_tasks_golden_id", "golden_id"),
        sa.Index("ix_review_tasks_candidate_golden_id", "candidate_golden_id"),
    )

    id: int = Field(sa_column=sa.Column(sa.BigInteger, sa.Identity(always=False), primary_key=True))
    kind: str = Field(sa_column=sa.Column(sa.Text, nullable=False))
    source_record_id: int | None = Field(
        default=None,
        sa_column=sa.Column(
            sa.BigInteger,
            sa.ForeignKey("source_records.id", name="fk_review_tasks_source_record_id"),
            nullable=True,
        ),
    )
    golden_id: int = Field(
        sa_column=sa.Column(
            sa.BigInteger,
            sa.ForeignKey("golden_records.id", name="fk_review_tasks_golden_id"),
            nullable=False,
        )
    )
    candidate_golden_id: int = Field(
        sa_column=sa.Column(
            sa.BigInteger,
            sa.ForeignKey("golden_records.id", name="fk_review_tasks_candidate_golden_id"),
            nullable=False,
        )
    )
    candidate_source_record_id: int | None = Field(
        default=None,
        sa_column=sa.Column(
            sa.BigInteger,
            sa.ForeignKey("source_records.id", name="fk_review_tasks_candidate_source_record_id"),
            nullable=True,
        ),
    )
    score: float = Field(sa_column=sa.Column(sa.Float, nullable=False))
    explanation: dict[str, Any] = _json()
    matcher_version: str = Field(sa_column=sa.Column(sa.Text, nullable=False))
    priority: int = Field(sa_column=sa.Column(sa.Integer, nullable=False))
    status: str = Field(sa_column=sa.Column(sa.Text, nullable=False))
    assignee: str | None = Field(default=None, sa_column=sa.Column(sa.Text, nullable=True))
    decision: str | None = Field(default=None, sa_column=sa.Column(sa.Text, nullable=True))
    decided_by: str | None = Field(default=None, sa_column=sa.Column(sa.Text, nullable=True))
    decided_at: datetime | None = _tz(nullable=True)
    created_at: datetime = _tz()


class OutboxRow(SQLModel, table=True):
    """One golden change for one target, written in the transaction that made the change.

    Pending while ``delivered_at`` and ``dead_at`` are both NULL; ``hub.services.sync`` leases,
    settles and measures the rows.
    """

    __tablename__ = "outbox"
    __table_args__ = (
        sa.UniqueConstraint("idempotency_key", name="uq_outbox_idempotency_key"),
        sa.Index(
            "ix_outbox_pending",
            "target",
            "next_attempt_at",
            "id",
            postgresql_where=sa.text("delivered_at IS NULL"),
        ),
        sa.Index(
            "ix_outbox_golden_pending",
            "target",
            "golden_id",
            "version",
            postgresql_where=sa.text("delivered_at IS NULL AND dead_at IS NULL"),
        ),
    )

    id: int = Field(sa_column=sa.Column(sa.BigInteger, sa.Identity(always=False), primary_key=True))
    golden_id: int = Field(
        sa_column=sa.Column(
            sa.BigInteger,
            sa.ForeignKey("golden_records.id", name="fk_outbox_golden_id"),
            nullable=False,
        )
    )
    version: int = Field(sa_column=sa.Column(sa.Integer, nullable=False))
    target: str = Field(sa_column=sa.Column(sa.Text, nullable=False))
    idempotency_key: str = Field(sa_column=sa.Column(sa.Text, nullable=False))
    payload: dict[str, Any] = _json()
    created_at: datetime = _tz()
    attempts: int = Field(sa_column=sa.Column(sa.Integer, nullable=False))
    next_attempt_at: datetime = _tz()
    delivered_at: datetime | None = _tz(nullable=True)
    last_error: str | None = Field(default=None, sa_column=sa.Column(sa.Text, nullable=True))
    # Delivery state and the sync-latency times (migration 0003 says what each means).
    source_committed_at: datetime | None = _tz(nullable=True)
    golden_committed_at: datetime | None = _tz(
        nullable=False, server_default=sa.text("clock_timestamp()")
    )
    acknowledged_at: datetime | None = _tz(nullable=True)
    claimed_by: str | None = Field(default=None, sa_column=sa.Column(sa.Text, nullable=True))
    dead_at: datetime | None = _tz(nullable=True)
    skipped: bool = Field(
        default=False,
        sa_column=sa.Column(sa.Boolean, nullable=False, server_default=sa.false()),
    )


class DeadLetterRow(SQLModel, table=True):
    """A message that could not be parsed, mapped or applied, kept raw with the reason.

    ``fingerprint`` (a hash of source, key, value and position) makes a re-delivered poison
    message bump ``attempts`` and ``last_seen_at`` instead of adding a row.
    """

    __tablename__ = "dead_letters"
    __table_args__ = (
        sa.UniqueConstraint("fingerprint", name="uq_dead_letters_fingerprint"),
        sa.CheckConstraint(
            "status IN ('open', 'replayed', 'discarded')", name="ck_dead_letters_status"
        ),
        sa.Index("ix_dead_letters_status", "status", "id"),
    )

    id: int = Field(sa_column=sa.Column(sa.BigInteger, sa.Identity(always=False), primary_key=True))
    fingerprint: str = Field(sa_column=sa.Column(sa.Text, nullable=False))
    source: str = Field(sa_column=sa.Column(sa.Text, nullable=False))
    raw_key: bytes | None = Field(default=None, sa_column=sa.Column(BYTEA, nullable=True))
    raw_value: bytes | None = Field(default=None, sa_column=sa.Column(BYTEA, nullable=True))
    position: dict[str, Any] | None = _json(nullable=True)
    reason: str = Field(sa_column=sa.Column(sa.Text, nullable=False))
    error_class: str = Field(sa_column=sa.Column(sa.Text, nullable=False))
    first_seen_at: datetime = _tz()
    last_seen_at: datetime = _tz()
    attempts: int = Field(sa_column=sa.Column(sa.Integer, nullable=False))
    status: str = Field(sa_column=sa.Column(sa.Text, nullable=False))


class AppliedPositionRow(SQLModel, table=True):
    """How far each (source, partition) stream has been applied; written with the effects."""

    __tablename__ = "applied_positions"

    source: str = Field(sa_column=sa.Column(sa.Text, primary_key=True))
    partition: str = Field(sa_column=sa.Column(sa.Text, primary_key=True))
    offset: int = Field(sa_column=sa.Column(sa.BigInteger, nullable=False))
    applied_at: datetime = _tz()


HUB_TABLES: tuple[str, ...] = (
    "golden_records",
    "source_records",
    "blocking_keys",
    "attribute_lineage",
    "golden_pins",
    "golden_history",
    "match_constraints",
    "review_tasks",
    "outbox",
    "dead_letters",
    "applied_positions",
)
"""Every table the hub owns, in dependency order (tests truncate them)."""


class ApiKeyRow(SQLModel, table=True):
    """An API key: its public ``prefix`` finds the row, the sha256 of the whole token proves it.

    The token itself is shown once, at creation, and never stored.
    """

    __tablename__ = "api_keys"
    __table_args__ = (
        sa.CheckConstraint("role IN ('reader', 'steward', 'admin')", name="ck_api_keys_role"),
        sa.UniqueConstraint("prefix", name="uq_api_keys_prefix"),
    )

    id: int = Field(sa_column=sa.Column(sa.BigInteger, sa.Identity(always=False), primary_key=True))
    prefix: str = Field(sa_column=sa.Column(sa.Text, nullable=False))
    secret_hash: str = Field(sa_column=sa.Column(sa.Text, nullable=False))
    name: str = Field(sa_column=sa.Column(sa.Text, nullable=False))
    role: str = Field(sa_column=sa.Column(sa.Text, nullable=False))
    created_by: str = Field(sa_column=sa.Column(sa.Text, nullable=False))
    created_at: datetime = _tz()
    revoked_at: datetime | None = _tz(nullable=True)
    revoked_by: str | None = Field(default=None, sa_column=sa.Column(sa.Text, nullable=True))


class AuditEntryRow(SQLModel, table=True):
    """One steward or admin action: who, what, on what, when and why (append-only)."""

    __tablename__ = "audit_log"
    __table_args__ = (
        sa.Index("ix_audit_log_target", "target", "id"),
        sa.Index("ix_audit_log_actor", "actor", "id"),
    )

    id: int = Field(sa_column=sa.Column(sa.BigInteger, sa.Identity(always=True), primary_key=True))
    occurred_at: datetime = _tz()
    actor: str = Field(sa_column=sa.Column(sa.Text, nullable=False))
    role: str = Field(sa_column=sa.Column(sa.Text, nullable=False))
    action: str = Field(sa_column=sa.Column(sa.Text, nullable=False))
    target: str = Field(sa_column=sa.Column(sa.Text, nullable=False))
    reason: str = Field(sa_column=sa.Column(sa.Text, nullable=False))
    details: dict[str, Any] = _json()


API_TABLES: tuple[str, ...] = ("api_keys", "audit_log")
"""Tables of API access and auditing (not part of the golden-record store's truncation set)."""
