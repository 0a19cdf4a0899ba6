"""Fixtures of the API tests: a migrated throwaway hub database, hub services with the real
matching engine, an app per test, and one API key per role."""

from __future__ import annotations

from collections.abc import Iterator

import psycopg
import pytest
from api_testkit import ROLES, Keys, truncate_all
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine

from api.app import create_app
from api.context import ApiSettings
from hub.db import create_engine, migrate
from hub.rules import default_rules
from hub.services import HubServices
from hub.services.keys import ApiRole, AuditContext
from matching import MatchModel, default_spec
from mdh.embedded_pg import EmbeddedPostgres

API_TEST_DATABASE = "api_tests"


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


@pytest.fixture
def hub(api_engine: Engine, matcher: MatchModel) -> HubServices:
    """Hub services on empty tables, with the real matcher and two outbox targets."""
    truncate_all(api_engine)
    return HubServices(
        api_engine, matcher=matcher, rules=default_rules(), targets=("crm", "billing")
    )


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
