"""Fixtures of the hub tests: one throwaway database migrated by Alembic per session,
emptied (TRUNCATE ... RESTART IDENTITY) before each test that uses it."""

from __future__ import annotations

from collections.abc import Iterator

import psycopg
import pytest
from hub_testkit import truncate_hub
from sqlalchemy.engine import Engine

from hub.db import create_engine, migrate
from mdh.embedded_pg import EmbeddedPostgres

HUB_TEST_DATABASE = "hub_tests"


@pytest.fixture(scope="session")
def hub_url(pg_server: EmbeddedPostgres) -> str:
    """URL of a fresh database migrated to head with the hub's Alembic migrations."""
    with psycopg.connect(pg_server.url("postgres", driver="postgresql"), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{HUB_TEST_DATABASE}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{HUB_TEST_DATABASE}"')
    url = pg_server.url(HUB_TEST_DATABASE)
    migrate(url)
    return url


@pytest.fixture(scope="session")
def hub_engine(hub_url: str) -> Iterator[Engine]:
    engine = create_engine(hub_url)
    try:
        yield engine
    finally:
        engine.dispose()


@pytest.fixture
def engine(hub_engine: Engine) -> Engine:
    """The session's hub engine, on empty tables."""
    truncate_hub(hub_engine)
    return hub_engine
