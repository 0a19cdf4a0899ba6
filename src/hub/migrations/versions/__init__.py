"""Alembic revisions of the hub schema, oldest first."""
