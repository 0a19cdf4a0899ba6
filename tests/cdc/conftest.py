"""Fixtures for the cdc tests: recorded Debezium messages and the source mappings that fit them."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from cdc_testkit import (
    RECORDED,
    SOURCES_YAML,
    empty_hub,
    fresh_hub_database,
    make_hub,
)
from sqlalchemy.engine import Engine

from cdc.mapping import ChangeMapper, SourceMappings, load_source_mappings
from hub.db import create_engine
from hub.services import HubServices
from mdh.embedded_pg import EmbeddedPostgres


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


# --- a hub database for the apply-loop tests -------------------------------------------------

CDC_HUB_DATABASE = "cdc_hub_tests"


@pytest.fixture(scope="session")
def cdc_hub_url(pg_server: EmbeddedPostgres) -> str:
    """URL of a fresh hub database (migrated to head) for the cdc tests."""
    return fresh_hub_database(pg_server, CDC_HUB_DATABASE)


@pytest.fixture(scope="session")
def cdc_hub_engine(cdc_hub_url: str) -> Iterator[Engine]:
    engine = create_engine(cdc_hub_url)
    try:
        yield engine
    finally:
        engine.dispose()


@pytest.fixture
def hub(cdc_hub_engine: Engine) -> HubServices:
    """Hub services with the real (untrained) match model, on empty tables."""
    empty_hub(cdc_hub_engine)
    return make_hub(cdc_hub_engine)
