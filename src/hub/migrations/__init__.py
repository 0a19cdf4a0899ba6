"""Alembic migrations of the hub schema; run them through ``hub.db.migrate``."""
