"""Fixtures of the hub tests: one throwaway database migrated by Alembic per session,
emptied (TRUNCATE ... RESTART IDENTITY) before each test that uses it."""

from __future__ import annotations

from collections.abc import Iterator

import psycopg
import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from hub.db import create_engine, migrate
from hub.tables import HUB_TABLES
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


def truncate_hub(engine: Engine) -> None:
    """Empty every hub table and restart the id sequences (golden ids start at 1 again)."""
    with engine.begin() as conn:
        conn.execute(sa.text(f"TRUNCATE {', '.join(HUB_TABLES)} RESTART IDENTITY CASCADE"))


@pytest.fixture
def engine(hub_engine: Engine) -> Engine:
    """The session's hub engine, on empty tables."""
    truncate_hub(hub_engine)
    return hub_engine
