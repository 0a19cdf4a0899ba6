"""Alembic environment of the hub schema.

The database URL comes from the Alembic config's ``attributes["url"]`` (set by
``hub.db.migrate``), never from the environment or an ini file. Migrations run in one
transaction under an advisory lock, so two processes migrating at once take turns.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import context
from sqlmodel import SQLModel

import hub.tables  # noqa: F401  (registers the tables on the metadata)

MIGRATION_LOCK_ID = 0x6D64685F6D6967  # "mdh_mig"

config = context.config
target_metadata = SQLModel.metadata


def _url() -> str:
    url = config.attributes.get("url")
    if not isinstance(url, str) or not url:
        raise RuntimeError("hub migrations need config.attributes['url'] (use hub.db.migrate)")
    return url


def run_migrations_offline() -> None:
    context.configure(url=_url(), target_metadata=target_metadata, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    engine = sa.create_engine(_url(), poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as connection:
            context.configure(connection=connection, target_metadata=target_metadata)
            with context.begin_transaction():
                connection.execute(
                    sa.text("SELECT pg_advisory_xact_lock(:lock_id)"),
                    {"lock_id": MIGRATION_LOCK_ID},
                )
                context.run_migrations()
    finally:
        engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
