"""Helpers of the cdc tests (recorded Debezium messages, the source mappings that fit them,
throwaway hub databases), imported by name; the fixtures live in conftest.py."""

from __future__ import annotations

from pathlib import Path

import psycopg
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from cdc.envelope import ChangeEnvelope, Operation, parse_message
from cdc.raw import RawMessage
from cdc.replay import read_replay
from hub.db import migrate
from hub.rules import default_rules
from hub.services import HubServices
from hub.tables import HUB_TABLES
from matching import MatchModel, default_spec
from mdh.embedded_pg import EmbeddedPostgres

FIXTURES = Path(__file__).parent / "fixtures"
SOURCES_YAML = FIXTURES / "sources.yaml"

# Recorded by tests/cdc/record_fixtures.py: (file, schemas enabled, REPLICA IDENTITY, decimals).
RECORDED = {
    "pg_schemas_default.jsonl": (True, "DEFAULT", "precise"),
    "pg_schemas_full.jsonl": (True, "FULL", "precise"),
    "pg_plain_default_string.jsonl": (False, "DEFAULT", "string"),
    "pg_plain_full_double.jsonl": (False, "FULL", "double"),
}

# The row events of every recording, in order (heartbeats left out: their timing varies).
RECORDED_OPS = [
    "r", "r", "r",          # snapshot of ids 1, 2, 3
    "c",                    # insert id 4
    "u",                    # id 1: city and credit_limit, notes (TOASTed) untouched
    "u",                    # id 1: notes changed
    "d", "tombstone", "c",  # id 2 -> 20: a primary-key change
    "u", "u",               # ids 4 and 20 in one transaction
    "d", "tombstone",       # delete id 3
    "m",                    # pg_logical_emit_message
    "t",                    # truncate
]  # fmt: skip


def recorded_messages(name: str) -> list[RawMessage]:
    return [message for batch in read_replay(FIXTURES / name) for message in batch]


def recorded_envelopes(name: str) -> list[ChangeEnvelope]:
    """The recording's envelopes without heartbeats (their number depends on timing)."""
    envelopes = [parse_message(m) for m in recorded_messages(name)]
    return [e for e in envelopes if e.op is not Operation.HEARTBEAT]


def fresh_hub_database(pg_server: EmbeddedPostgres, name: str) -> str:
    with psycopg.connect(pg_server.url("postgres", driver="postgresql"), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    url = pg_server.url(name)
    migrate(url)
    return url


def make_hub(engine: Engine) -> HubServices:
    return HubServices(
        engine,
        matcher=MatchModel.untrained(default_spec()),
        rules=default_rules(),
        targets=("crm", "billing"),
    )


def empty_hub(engine: Engine) -> None:
    with engine.begin() as conn:
        conn.execute(sa.text(f"TRUNCATE {', '.join(HUB_TABLES)} RESTART IDENTITY CASCADE"))
