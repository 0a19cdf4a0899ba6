"""The golden-record store: crosswalk, golden records, lineage, history, steward state, outbox.

Revision ID: 0001
Revises:
Create Date: 2026-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import BYTEA, JSONB

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | None = None
depends_on: str | None = None


def _ts(name: str, nullable: bool = False) -> sa.Column[object]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def _id() -> sa.Column[object]:
    return sa.Column("id", sa.BigInteger, sa.Identity(always=False), primary_key=True)


def upgrade() -> None:
    op.create_table(
        "golden_records",
        _id(),
        sa.Column("attributes", JSONB, nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("status", sa.Text, nullable=False),
        sa.Column(
            "merged_into",
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
        _ts("created_at"),
        _ts("updated_at"),
        sa.CheckConstraint(
            "status IN ('active', 'merged', 'retired')", name="ck_golden_records_status"
        ),
        sa.CheckConstraint(
            "(status = 'merged') = (merged_into IS NOT NULL)", name="ck_golden_records_merged_into"
        ),
    )

    op.create_table(
        "source_records",
        _id(),
        sa.Column("system", sa.Text, nullable=False),
        sa.Column("source_table", sa.Text, nullable=False),
        sa.Column("pk", sa.Text, nullable=True),
        sa.Column("raw", JSONB, nullable=True),
        sa.Column("attributes", JSONB, nullable=False),
        sa.Column("features", JSONB, nullable=False),
        sa.Column("validation_errors", JSONB, nullable=True),
        sa.Column("lsn", sa.BigInteger, nullable=True),
        sa.Column("tx_id", sa.BigInteger, nullable=True),
        _ts("committed_at"),
        sa.Column("deleted", sa.Boolean, nullable=False),
        sa.Column(
            "golden_id",
            sa.BigInteger,
            sa.ForeignKey("golden_records.id", name="fk_source_records_golden_id"),
            nullable=True,
        ),
        sa.Column("link_score", sa.Float, nullable=True),
        sa.Column("link_explanation", JSONB, nullable=True),
        sa.Column("link_decided_by", sa.Text, nullable=True),
        _ts("link_decided_at", nullable=True),
        sa.Column("matcher_version", sa.Text, nullable=True),
        _ts("created_at"),
        _ts("updated_at"),
        sa.UniqueConstraint("system", "source_table", "pk", name="uq_source_records_key"),
        sa.CheckConstraint(
            "link_decided_by IS NULL OR link_decided_by IN ('rule', 'steward')",
            name="ck_source_records_decided_by",
        ),
    )
    op.create_index("ix_source_records_golden_id", "source_records", ["golden_id"])
    op.create_index(
        "ix_source_records_invalid",
        "source_records",
        ["id"],
        postgresql_where=sa.text("validation_errors IS NOT NULL"),
    )

    op.create_table(
        "blocking_keys",
        sa.Column("key", sa.Text, primary_key=True),
        sa.Column(
            "source_record_id",
            sa.BigInteger,
            sa.ForeignKey(
                "source_records.id", name="fk_blocking_keys_source_record_id", ondelete="CASCADE"
            ),
            primary_key=True,
        ),
    )
    op.create_index("ix_blocking_keys_source_record_id", "blocking_keys", ["source_record_id"])

    op.create_table(
        "attribute_lineage",
        sa.Column(
            "golden_id",
            sa.BigInteger,
            sa.ForeignKey("golden_records.id", name="fk_attribute_lineage_golden_id"),
            primary_key=True,
        ),
        sa.Column("attribute", sa.Text, primary_key=True),
        sa.Column("value", JSONB, nullable=False),
        sa.Column(
            "source_record_id",
            sa.BigInteger,
            sa.ForeignKey("source_records.id", name="fk_attribute_lineage_source_record_id"),
            nullable=True,
        ),
        sa.Column("lsn", sa.BigInteger, nullable=True),
        sa.Column("tx_id", sa.BigInteger, nullable=True),
        _ts("committed_at", nullable=True),
        sa.Column("rule", sa.Text, nullable=False),
        sa.Column("rule_set_version", sa.Text, nullable=False),
        sa.Column("pinned", sa.Boolean, nullable=False),
        sa.Column("pin_reason", sa.Text, nullable=True),
        sa.Column("pinned_by", sa.Text, nullable=True),
    )

    op.create_table(
        "golden_pins",
        sa.Column(
            "golden_id",
            sa.BigInteger,
            sa.ForeignKey("golden_records.id", name="fk_golden_pins_golden_id"),
            primary_key=True,
        ),
        sa.Column("attribute", sa.Text, primary_key=True),
        sa.Column("value", JSONB, nullable=False),
        sa.Column("pinned_by", sa.Text, nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        _ts("pinned_at"),
    )

    op.create_table(
        "golden_history",
        sa.Column("sequence", sa.BigInteger, sa.Identity(always=True), primary_key=True),
        sa.Column(
            "golden_id",
            sa.BigInteger,
            sa.ForeignKey("golden_records.id", name="fk_golden_history_golden_id"),
            nullable=False,
        ),
        sa.Column("kind", sa.Text, nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("cause", sa.Text, nullable=False),
        sa.Column("actor", sa.Text, nullable=False),
        _ts("occurred_at"),
        sa.Column("data", JSONB, nullable=False),
        sa.CheckConstraint(
            "kind IN ('created', 'updated', 'linked', 'unlinked', 'merged', 'unmerged',"
            " 'retired', 'pinned', 'unpinned')",
            name="ck_golden_history_kind",
        ),
        sa.CheckConstraint(
            "cause IN ('source_change', 'steward_action')", name="ck_golden_history_cause"
        ),
    )
    op.create_index(
        "ix_golden_history_golden_id_sequence", "golden_history", ["golden_id", "sequence"]
    )
    # Append-only: history is the record of what happened, so rows are never changed.
    op.execute(
        """
        CREATE FUNCTION golden_history_is_append_only() RETURNS trigger
        LANGUAGE plpgsql AS $$
        BEGIN
            RAISE EXCEPTION 'golden_history is append-only (% refused)', TG_OP
                USING ERRCODE = 'restrict_violation';
        END;
        $$
        """
    )
    op.execute(
        """
        CREATE TRIGGER golden_history_append_only
        BEFORE UPDATE OR DELETE ON golden_history
        FOR EACH ROW EXECUTE FUNCTION golden_history_is_append_only()
        """
    )

    op.create_table(
        "match_constraints",
        _id(),
        sa.Column("kind", sa.Text, nullable=False),
        sa.Column(
            "left_source_record_id",
            sa.BigInteger,
            sa.ForeignKey("source_records.id", name="fk_match_constraints_left"),
            nullable=False,
        ),
        sa.Column(
            "right_source_record_id",
            sa.BigInteger,
            sa.ForeignKey("source_records.id", name="fk_match_constraints_right"),
            nullable=False,
        ),
        sa.Column("created_by", sa.Text, nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        _ts("created_at"),
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
    )
    op.create_index("ix_match_constraints_right", "match_constraints", ["right_source_record_id"])

    op.create_table(
        "review_tasks",
        _id(),
        sa.Column("kind", sa.Text, nullable=False),
        sa.Column(
            "source_record_id",
            sa.BigInteger,
            sa.ForeignKey("source_records.id", name="fk_review_tasks_source_record_id"),
            nullable=True,
        ),
        sa.Column(
            "golden_id",
            sa.BigInteger,
            sa.ForeignKey("golden_records.id", name="fk_review_tasks_golden_id"),
            nullable=False,
        ),
        sa.Column(
            "candidate_golden_id",
            sa.BigInteger,
            sa.ForeignKey("golden_records.id", name="fk_review_tasks_candidate_golden_id"),
            nullable=False,
        ),
        sa.Column(
            "candidate_source_record_id",
            sa.BigInteger,
            sa.ForeignKey("source_records.id", name="fk_review_tasks_candidate_source_record_id"),
            nullable=True,
        ),
        sa.Column("score", sa.Float, nullable=False),
        sa.Column("explanation", JSONB, nullable=False),
        sa.Column("matcher_version", sa.Text, nullable=False),
        sa.Column("priority", sa.Integer, nullable=False),
        sa.Column("status", sa.Text, nullable=False),
        sa.Column("assignee", sa.Text, nullable=True),
        sa.Column("decision", sa.Text, nullable=True),
        sa.Column("decided_by", sa.Text, nullable=True),
        _ts("decided_at", nullable=True),
        _ts("created_at"),
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
    )
    op.create_index(
        "ix_review_tasks_queue", "review_tasks", ["status", sa.text("priority DESC"), "id"]
    )
    op.create_index("ix_review_tasks_source_record_id", "review_tasks", ["source_record_id"])
    op.create_index("ix_review_tasks_golden_id", "review_tasks", ["golden_id"])
    op.create_index("ix_review_tasks_candidate_golden_id", "review_tasks", ["candidate_golden_id"])

    op.create_table(
        "outbox",
        _id(),
        sa.Column(
            "golden_id",
            sa.BigInteger,
            sa.ForeignKey("golden_records.id", name="fk_outbox_golden_id"),
            nullable=False,
        ),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("target", sa.Text, nullable=False),
        sa.Column("idempotency_key", sa.Text, nullable=False),
        sa.Column("payload", JSONB, nullable=False),
        _ts("created_at"),
        sa.Column("attempts", sa.Integer, nullable=False),
        _ts("next_attempt_at"),
        _ts("delivered_at", nullable=True),
        sa.Column("last_error", sa.Text, nullable=True),
        sa.UniqueConstraint("idempotency_key", name="uq_outbox_idempotency_key"),
    )
    op.create_index(
        "ix_outbox_pending",
        "outbox",
        ["target", "next_attempt_at", "id"],
        postgresql_where=sa.text("delivered_at IS NULL"),
    )

    op.create_table(
        "dead_letters",
        _id(),
        sa.Column("fingerprint", sa.Text, nullable=False),
        sa.Column("source", sa.Text, nullable=False),
        sa.Column("raw_key", BYTEA, nullable=True),
        sa.Column("raw_value", BYTEA, nullable=True),
        sa.Column("position", JSONB, nullable=True),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("error_class", sa.Text, nullable=False),
        _ts("first_seen_at"),
        _ts("last_seen_at"),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("status", sa.Text, nullable=False),
        sa.UniqueConstraint("fingerprint", name="uq_dead_letters_fingerprint"),
        sa.CheckConstraint(
            "status IN ('open', 'replayed', 'discarded')", name="ck_dead_letters_status"
        ),
    )
    op.create_index("ix_dead_letters_status", "dead_letters", ["status", "id"])

    op.create_table(
        "applied_positions",
        sa.Column("source", sa.Text, primary_key=True),
        sa.Column("partition", sa.Text, primary_key=True),
        sa.Column("offset", sa.BigInteger, nullable=False),
        _ts("applied_at"),
    )


def downgrade() -> None:
    for table in (
        "applied_positions",
        "dead_letters",
        "outbox",
        "review_tasks",
        "match_constraints",
        "golden_history",
        "golden_pins",
        "attribute_lineage",
        "blocking_keys",
        "source_records",
        "golden_records",
    ):
        op.drop_table(table)
    op.execute("DROP FUNCTION golden_history_is_append_only()")
