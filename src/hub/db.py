"""Connections to the hub database and its schema migrations.

Nothing here reads the environment: callers pass the URL (``postgresql+psycopg://...``).
"""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Engine

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"


def create_engine(url: str, *, pool_size: int = 5, echo: bool = False) -> Engine:
    """An engine for the hub database (READ COMMITTED, pre-pinged pooled connections).

    The services rely on READ COMMITTED: a statement that ran after an advisory lock was
    granted sees everything committed by the transaction that held the lock before. Sessions
    run in UTC, so timestamps come back timezone-aware UTC whatever the server's default.
    """
    return sa.create_engine(
        url,
        connect_args={"options": "-c TimeZone=UTC"},
        pool_size=pool_size,
        max_overflow=pool_size,
        pool_pre_ping=True,
        isolation_level="READ COMMITTED",
        echo=echo,
    )


def alembic_config(url: str) -> Config:
    """The Alembic config of the hub schema; the URL travels in ``attributes``, not the ini."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.attributes["url"] = url
    return config


def head_revision() -> str:
    """The newest revision the code knows."""
    head = ScriptDirectory.from_config(alembic_config("postgresql://")).get_current_head()
    if head is None:  # pragma: no cover - the package always ships revisions
        raise RuntimeError(f"no Alembic revisions under {MIGRATIONS_DIR}")
    return head


def migrate(url: str) -> str:
    """Upgrade the database at ``url`` to the newest revision; returns that revision."""
    command.upgrade(alembic_config(url), "head")
    return head_revision()


def current_revision(url: str) -> str | None:
    """The revision the database at ``url`` is at (None when it was never migrated)."""
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as connection:
            return MigrationContext.configure(connection).get_current_revision()
    finally:
        engine.dispose()
