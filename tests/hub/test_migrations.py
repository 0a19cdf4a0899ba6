"""The schema comes from Alembic, matches the table classes, and history is append-only."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy.engine import Engine
from sqlmodel import SQLModel

import hub.tables
from hub.db import current_revision, head_revision, migrate


def test_migrate_is_idempotent_and_reports_head(hub_url: str) -> None:
    assert current_revision(hub_url) == head_revision()
    assert migrate(hub_url) == head_revision()
    assert current_revision(hub_url) == head_revision()


def test_table_classes_match_the_migrated_schema(hub_engine: Engine) -> None:
    with hub_engine.connect() as conn:
        context = MigrationContext.configure(
            conn, opts={"compare_type": True, "compare_server_default": True}
        )
        differences = compare_metadata(context, SQLModel.metadata)
    hub_tables = set(hub.tables.HUB_TABLES)
    relevant = [d for d in differences if _table_of(d) in hub_tables or _table_of(d) is None]
    assert relevant == []


def _table_of(diff: object) -> str | None:
    item = diff[0] if isinstance(diff, list) else diff
    assert isinstance(item, tuple)
    for part in item[1:]:
        if isinstance(part, sa.Table):
            return part.name
        if isinstance(part, (sa.Index, sa.UniqueConstraint, sa.ForeignKeyConstraint)):
            table = part.table
            return table.name if isinstance(table, sa.Table) else None
        if isinstance(part, str):
            return part if part in hub.tables.HUB_TABLES else None
    return None


def test_golden_history_refuses_update_and_delete(engine: Engine) -> None:
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                "INSERT INTO golden_records (attributes, version, status, created_at, updated_at)"
                " VALUES ('{}', 1, 'active', now(), now())"
            )
        )
        conn.execute(
            sa.text(
                "INSERT INTO golden_history (golden_id, kind, version, cause, actor, occurred_at,"
                " data) VALUES (1, 'created', 1, 'source_change', 'test', now(), '{}')"
            )
        )
    for statement in ("UPDATE golden_history SET actor = 'x'", "DELETE FROM golden_history"):
        with pytest.raises(sa.exc.DBAPIError, match="append-only"), engine.begin() as conn:
            conn.execute(sa.text(statement))
