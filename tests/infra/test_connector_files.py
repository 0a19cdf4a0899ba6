"""infra/connectors/*.json: every key is a real property of the Debezium 3.x PostgreSQL
connector or of Kafka Connect (checked against the lists in infra/reference, each naming its
source), and the settings the hub depends on are there: pgoutput with a publication and a
slot per source, the demo tables, the primary key as the message key (so a row's changes stay
in one partition), schemaless JSON with decimals as strings, and topics the workers read."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from connect_reference import (
    CONNECT_CONNECTOR,
    CONNECT_IMAGE_ENV,
    CONNECT_WORKER,
    KAFKA_BROKER,
    POSTGRES_CONNECTOR,
    is_known,
    reference_lines,
    source_of,
    unknown_connector_keys,
)

from mdh.config import load_config
from mdh.demo.schemas import PRIMARY_KEYS, SOURCE_TABLES

ROOT = Path(__file__).resolve().parents[2]
CONNECTORS = sorted((ROOT / "infra" / "connectors").glob("*.json"))
DEMO_TABLES = {(t.system, t.name) for t in SOURCE_TABLES}


def _config(path: Path) -> dict[str, str]:
    document = json.loads(path.read_text(encoding="utf-8"))
    assert set(document) == {"name", "config"}
    config: dict[str, str] = document["config"]
    return config


@pytest.fixture(scope="module")
def configs() -> dict[str, dict[str, str]]:
    assert [p.stem for p in CONNECTORS] == ["billing", "crm", "erp"]
    return {path.stem: _config(path) for path in CONNECTORS}


@pytest.mark.parametrize(
    "name", [POSTGRES_CONNECTOR, CONNECT_CONNECTOR, CONNECT_WORKER, CONNECT_IMAGE_ENV, KAFKA_BROKER]
)
def test_every_reference_list_names_its_source(name: str) -> None:
    header = source_of(name)
    assert "Source:" in header
    assert re.search(r"https?://|github\.com/", header)
    names = reference_lines(name)
    assert len(names) == len(set(names)), "a name listed twice"
    assert len(names) > 10


def test_the_lists_hold_what_the_docs_say_and_nothing_made_up() -> None:
    # a few properties from each source, and look-alikes that no source has
    assert is_known("decimal.handling.mode", POSTGRES_CONNECTOR)
    assert is_known("publication.autocreate.mode", POSTGRES_CONNECTOR)
    assert is_known("column.truncate.to.20.chars", POSTGRES_CONNECTOR)
    assert not is_known("column.truncate.to.twenty.chars", POSTGRES_CONNECTOR)
    assert not is_known("decimal.handling", POSTGRES_CONNECTOR)
    assert not is_known("database.server.name", POSTGRES_CONNECTOR)  # removed in Debezium 2.0
    assert is_known("topic.creation.default.cleanup.policy", CONNECT_CONNECTOR)
    assert not is_known("topic.creation.default.cleanup", CONNECT_CONNECTOR)
    assert is_known("transforms.unwrap.type", CONNECT_CONNECTOR)
    assert is_known("offset.storage.replication.factor", CONNECT_WORKER)
    assert not is_known("offset.storage.replicas", CONNECT_WORKER)


def test_every_key_is_a_real_property(configs: dict[str, dict[str, str]]) -> None:
    for system, config in configs.items():
        assert unknown_connector_keys(config) == [], system


def test_each_source_is_captured_with_pgoutput_its_own_slot_and_publication(
    configs: dict[str, dict[str, str]],
) -> None:
    slots = {c["slot.name"] for c in configs.values()}
    publications = {c["publication.name"] for c in configs.values()}
    assert len(slots) == len(publications) == len(configs) == 3
    for system, config in configs.items():
        assert config["connector.class"] == "io.debezium.connector.postgresql.PostgresConnector"
        assert config["plugin.name"] == "pgoutput"
        assert re.fullmatch(r"[a-z0-9_]+", config["slot.name"]), "PostgreSQL slot naming"
        assert config["publication.autocreate.mode"] == "filtered"
        assert config["topic.prefix"] == system
        assert config["database.dbname"] == system
        assert config["tasks.max"] == "1"
        assert config["database.password"].startswith("${"), "secrets come from the environment"


def test_the_demo_tables_are_captured_keyed_by_primary_key(
    configs: dict[str, dict[str, str]],
) -> None:
    captured = set()
    for system, config in configs.items():
        tables = [t.removeprefix("public.") for t in config["table.include.list"].split(",")]
        captured |= {(system, t) for t in tables}
        keys = dict(entry.split(":") for entry in config["message.key.columns"].split(";"))
        assert keys == {f"public.{t}": PRIMARY_KEYS[(system, t)] for t in tables}
    assert captured == DEMO_TABLES


def test_messages_are_schemaless_json_with_decimals_as_strings(
    configs: dict[str, dict[str, str]],
) -> None:
    for config in configs.values():
        assert config["key.converter"] == "org.apache.kafka.connect.json.JsonConverter"
        assert config["value.converter"] == "org.apache.kafka.connect.json.JsonConverter"
        assert config["key.converter.schemas.enable"] == "false"
        assert config["value.converter.schemas.enable"] == "false"
        assert config["decimal.handling.mode"] == "string"
        assert config["tombstones.on.delete"] == "true"


def test_the_workers_read_exactly_the_topics_the_connectors_write(
    configs: dict[str, dict[str, str]],
) -> None:
    config = load_config(ROOT / "infra" / "mdh.yaml", {})
    kafka = config.capture.kafka
    assert kafka is not None
    assert kafka.topic_pattern is not None
    pattern = re.compile(kafka.topic_pattern)
    assert config.mappings is not None
    written = {
        f"{c['topic.prefix']}.{table}"
        for c in configs.values()
        for table in c["table.include.list"].split(",")
    }
    for topic in written:
        assert pattern.fullmatch(topic), topic
        system, schema, table = topic.split(".")
        assert f"{schema}.{table}" in config.mappings.sources[system].tables or (
            table in config.mappings.sources[system].tables
        ), topic
    # nothing else: not the heartbeat topics, not Connect's own
    for other in ("__debezium-heartbeat.crm", "mdh_connect_offsets", "crm.public.orders"):
        assert not pattern.fullmatch(other)


def test_topic_creation_settings_are_real_topic_configs(
    configs: dict[str, dict[str, str]],
) -> None:
    compose = yaml.safe_load((ROOT / "infra" / "compose.yaml").read_text())
    env: dict[str, Any] = compose["services"]["connect"]["environment"]
    assert str(env["CONNECT_TOPIC_CREATION_ENABLE"]) == "true"
    for config in configs.values():
        assert config["topic.creation.default.cleanup.policy"] in ("delete", "compact")
        assert "topic.creation.default.partitions" in config
        assert "topic.creation.default.replication.factor" in config
