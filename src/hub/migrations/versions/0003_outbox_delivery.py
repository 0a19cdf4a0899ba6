"""Outbox delivery state: leases, dead letters, skipped events and the sync-latency times.

- ``source_committed_at``: the source commit time of the change that made the golden change
  (None for steward actions); ``golden_committed_at``: when the golden change was written,
  just before its commit; ``acknowledged_at``: when the target first acknowledged it. The
  three make the sync-latency KPI (``hub.services.sync``).
- ``claimed_by``: the lease token of the relay delivering the row (``next_attempt_at`` is the
  lease's end); a relay whose lease ran out cannot settle the row any more.
- ``dead_at``: given up after the last attempt (``last_error`` says why); ``skipped``: the
  target does not take this kind of event, nothing was sent.
- ``ix_outbox_golden_pending``: the relay's "is an earlier version still undelivered?" probe.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-28
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.add_column("outbox", sa.Column("source_committed_at", sa.DateTime(timezone=True)))
    op.add_column("outbox", sa.Column("golden_committed_at", sa.DateTime(timezone=True)))
    op.execute("UPDATE outbox SET golden_committed_at = created_at")
    op.alter_column(
        "outbox",
        "golden_committed_at",
        nullable=False,
        server_default=sa.text("clock_timestamp()"),
    )
    op.add_column("outbox", sa.Column("acknowledged_at", sa.DateTime(timezone=True)))
    op.execute("UPDATE outbox SET acknowledged_at = delivered_at WHERE delivered_at IS NOT NULL")
    op.add_column("outbox", sa.Column("claimed_by", sa.Text))
    op.add_column("outbox", sa.Column("dead_at", sa.DateTime(timezone=True)))
    op.add_column(
        "outbox",
        sa.Column("skipped", sa.Boolean, nullable=False, server_default=sa.false()),
    )
    op.create_index(
        "ix_outbox_golden_pending",
        "outbox",
        ["target", "golden_id", "version"],
        postgresql_where=sa.text("delivered_at IS NULL AND dead_at IS NULL"),
    )


def downgrade() -> None:
    op.drop_index("ix_outbox_golden_pending", table_name="outbox")
    for column in (
        "skipped",
        "dead_at",
        "claimed_by",
        "acknowledged_at",
        "golden_committed_at",
        "source_committed_at",
    ):
        op.drop_column("outbox", column)
