"""The API's tables (keys, audit log) come from the migration and match their table classes;
the audit log is append-only."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy.engine import Engine
from sqlmodel import SQLModel

import hub.tables
from hub.services import HubServices
from hub.services.keys import ApiRole, AuditContext


def _tables_of(diff: object) -> set[str]:
    text = repr(diff)
    return {name for name in hub.tables.API_TABLES if f"'{name}'" in text}


def test_api_tables_match_their_classes(api_engine: Engine) -> None:
    with api_engine.connect() as conn:
        context = MigrationContext.configure(
            conn, opts={"compare_type": True, "compare_server_default": True}
        )
        differences = compare_metadata(context, SQLModel.metadata)
    assert [d for d in differences if _tables_of(d)] == []


def test_audit_log_is_append_only(hub: HubServices) -> None:
    hub.desk(AuditContext("alice", ApiRole.ADMIN)).create_api_key("bob", ApiRole.READER)
    for statement in ("UPDATE audit_log SET actor = 'mallory'", "DELETE FROM audit_log"):
        with pytest.raises(sa.exc.DBAPIError, match="append-only"), hub.engine.begin() as conn:
            conn.execute(sa.text(statement))
    assert [e.actor for e in hub.audit_log()] == ["alice"]
