"""Fixtures of the API tests: a migrated throwaway hub database, hub services with the real
matching engine, an app per test, and one API key per role."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest
import sqlalchemy as sa
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine

from api.app import create_app
from api.context import ApiSettings
from hub.db import create_engine, migrate
from hub.model import ChangeOp, SourceChange, SourceKey, SourcePosition
from hub.rules import default_rules
from hub.services import HubServices
from hub.services.keys import ApiRole, AuditContext
from hub.tables import API_TABLES, HUB_TABLES
from matching import MatchModel, default_spec
from mdh.embedded_pg import EmbeddedPostgres

API_TEST_DATABASE = "api_tests"
T0 = datetime(2026, 1, 1, tzinfo=UTC)
ROLES = (ApiRole.READER, ApiRole.STEWARD, ApiRole.ADMIN)


@pytest.fixture(scope="session")
def api_db_url(pg_server: EmbeddedPostgres) -> str:
    with psycopg.connect(pg_server.url("postgres", driver="postgresql"), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{API_TEST_DATABASE}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{API_TEST_DATABASE}"')
    url = pg_server.url(API_TEST_DATABASE)
    migrate(url)
    return url


@pytest.fixture(scope="session")
def api_engine(api_db_url: str) -> Iterator[Engine]:
    engine = create_engine(api_db_url, pool_size=8)
    try:
        yield engine
    finally:
        engine.dispose()


@pytest.fixture(scope="session")
def matcher() -> MatchModel:
    return MatchModel.untrained(default_spec())


def truncate_all(engine: Engine) -> None:
    with engine.begin() as conn:
        tables = ", ".join((*HUB_TABLES, *API_TABLES))
        conn.execute(sa.text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))


@pytest.fixture
def hub(api_engine: Engine, matcher: MatchModel) -> HubServices:
    """Hub services on empty tables, with the real matcher and two outbox targets."""
    truncate_all(api_engine)
    return HubServices(
        api_engine, matcher=matcher, rules=default_rules(), targets=("crm", "billing")
    )


@dataclass(frozen=True)
class Keys:
    reader: str
    steward: str
    admin: str

    def of(self, role: ApiRole) -> str:
        return str(getattr(self, role.value))

    def headers(self, role: ApiRole) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.of(role)}"}


@pytest.fixture
def keys(hub: HubServices) -> Keys:
    desk = hub.desk(AuditContext(actor="test-setup", role=ApiRole.ADMIN))
    tokens = {role: desk.create_api_key(f"{role.value}-1", role).token for role in ROLES}
    return Keys(
        reader=tokens[ApiRole.READER], steward=tokens[ApiRole.STEWARD], admin=tokens[ApiRole.ADMIN]
    )


@pytest.fixture
def app(hub: HubServices) -> FastAPI:
    return create_app(
        hub, ApiSettings(auth_cache_seconds=0, changes_max_wait=2.0, review_sla_hours=48)
    )


@pytest.fixture
def client(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app) as test_client:
        yield test_client


# --- source changes ------------------------------------------------------------------------


def change(
    system: str, pk: str, seconds: float, table: str = "customers", **attributes: Any
) -> SourceChange:
    """An upsert of one source row committed ``seconds`` after T0."""
    return SourceChange(
        key=SourceKey(system, table, pk),
        op=ChangeOp.UPSERT,
        attributes=attributes,
        raw={"id": pk, **{k: str(v) for k, v in attributes.items()}},
        position=SourcePosition(
            lsn=int(seconds * 1000) + 1, tx_id=None, committed_at=T0 + timedelta(seconds=seconds)
        ),
    )


def acme(system: str, pk: str, seconds: float, **extra: Any) -> SourceChange:
    attributes: dict[str, Any] = {
        "kind": "organization",
        "legal_name": "Acme Corporation",
        "emails": ["billing@acme.example"],
        "phones": ["+1 415 555 0100"],
        "tax_id": "US-12-3456789",
        "addresses": [
            {
                "lines": ["1 Market St"],
                "city": "San Francisco",
                "postal_code": "94105",
                "country": "US",
            }
        ],
    }
    attributes.update(extra)
    return change(system, pk, seconds, **attributes)
