"""Source records say whether their position is a snapshot read's.

``source_records.snapshot``: the stored position (``lsn``, ``tx_id``, ``committed_at``) is a
snapshot read's: its LSN is the snapshot's, shared by every row of that snapshot, and its
time the snapshot's (dated) start, not a commit. Ordering a streamed change against it
compares LSNs differently (see ``hub.model.SourcePosition.supersedes``).

Rows stored before this revision are marked streamed: which of them were snapshot reads was
not recorded. Every change streamed since their snapshot has a larger LSN and still wins;
only a transaction that was open at the consistent point of a snapshot running during the
upgrade could be ordered wrongly, so upgrade between snapshots.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.add_column(
        "source_records",
        sa.Column("snapshot", sa.Boolean, nullable=False, server_default=sa.false()),
    )


def downgrade() -> None:
    op.drop_column("source_records", "snapshot")
