"""Fixtures for the cdc tests: recorded Debezium messages and the source mappings that fit them."""

from __future__ import annotations

from pathlib import Path

import pytest

from cdc.envelope import ChangeEnvelope, Operation, parse_message
from cdc.mapping import ChangeMapper, SourceMappings, load_source_mappings
from cdc.raw import RawMessage
from cdc.replay import read_replay

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


@pytest.fixture(params=sorted(RECORDED))
def recording(request: pytest.FixtureRequest) -> str:
    """Each recorded fixture file in turn."""
    return str(request.param)


@pytest.fixture(scope="session")
def crm_mappings() -> SourceMappings:
    return load_source_mappings(SOURCES_YAML)


@pytest.fixture
def mapper(crm_mappings: SourceMappings) -> ChangeMapper:
    return ChangeMapper(crm_mappings)
