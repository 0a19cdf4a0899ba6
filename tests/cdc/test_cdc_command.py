"""`mdh cdc replay | status` and the config file they read (mdh.config)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import sqlalchemy as sa
from cdc_testkit import FIXTURES, SOURCES_YAML, empty_hub
from typer.testing import CliRunner

from mdh.cli import app
from mdh.config import ConfigFileError, load_config

runner = CliRunner()


@pytest.fixture
def env(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, cdc_hub_url: str, cdc_hub_engine: sa.Engine
) -> Path:
    """MDH_* pointing at the cdc test hub database and a config file with the fixture sources."""
    empty_hub(cdc_hub_engine)
    config = tmp_path / "mdh.yaml"
    config.write_text(SOURCES_YAML.read_text() + "targets: [crm, billing]\n")
    monkeypatch.setenv("MDH_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("MDH_DATABASE_URL", cdc_hub_url)
    monkeypatch.setenv("MDH_CONFIG_FILE", str(config))
    return config


def _count(engine: sa.Engine, sql: str) -> int:
    with engine.connect() as conn:
        return int(conn.execute(sa.text(sql)).scalar_one())


def test_replay_applies_a_recorded_file(env: Path, cdc_hub_engine: sa.Engine) -> None:
    result = runner.invoke(app, ["cdc", "replay", str(FIXTURES / "pg_schemas_full.jsonl")])

    assert result.exit_code == 0, result.output
    assert "2 deleted" in result.output
    assert "1 dead-lettered" in result.output  # the truncate
    assert _count(cdc_hub_engine, "SELECT count(*) FROM source_records WHERE NOT deleted") == 3
    assert (
        _count(cdc_hub_engine, "SELECT count(*) FROM golden_records WHERE status = 'active'") == 3
    )
    history = _count(cdc_hub_engine, "SELECT count(*) FROM golden_history")
    outbox = _count(cdc_hub_engine, "SELECT count(*) FROM outbox")

    again = runner.invoke(
        app, ["cdc", "replay", "--batch-size", "3", str(FIXTURES / "pg_schemas_full.jsonl")]
    )

    assert again.exit_code == 0, again.output
    assert " 0 applied" in again.output
    assert _count(cdc_hub_engine, "SELECT count(*) FROM golden_history") == history
    assert _count(cdc_hub_engine, "SELECT count(*) FROM outbox") == outbox


def test_replay_of_a_missing_file_exits_2(env: Path, tmp_path: Path) -> None:
    result = runner.invoke(app, ["cdc", "replay", str(tmp_path / "nope.jsonl")])
    assert result.exit_code == 2
    assert "nope.jsonl" in result.output


def test_a_bad_config_file_exits_2_naming_file_and_key(env: Path) -> None:
    env.write_text(env.read_text().replace("primary_key: id", "primary_kee: id"))
    result = runner.invoke(app, ["cdc", "replay", str(FIXTURES / "pg_schemas_full.jsonl")])
    assert result.exit_code == 2
    assert str(env) in result.output
    assert "sources.crm.tables.public.customer" in result.output


def test_status_without_a_run_says_so(env: Path) -> None:
    result = runner.invoke(app, ["cdc", "status"])
    assert result.exit_code == 1
    assert "no capture has run" in result.output


def test_status_prints_the_metrics_a_run_left(env: Path, tmp_path: Path) -> None:
    metrics = tmp_path / "home" / "cdc" / "metrics.json"
    metrics.parent.mkdir(parents=True)
    metrics.write_text(
        json.dumps(
            {
                "written_at": "2026-01-01T00:00:00+00:00",
                "transport": "embedded",
                "sources": {
                    "crm": {
                        "events": 10,
                        "events_per_second": 2.5,
                        "dead_letters": 1,
                        "last_commit_at": "2026-01-01T00:00:00+00:00",
                        "commit_to_golden_ms": {"p50": 60.0, "p95": 80.0, "p99": 95.5},
                    }
                },
            }
        )
    )
    result = runner.invoke(app, ["cdc", "status"])
    assert result.exit_code == 0, result.output
    assert "crm" in result.output
    assert "95.5" in result.output
    as_json = runner.invoke(app, ["cdc", "status", "--json"])
    assert json.loads(as_json.output)["sources"]["crm"]["events"] == 10


# --- the config file --------------------------------------------------------------------------

FULL_CONFIG = """
sources:
  crm:
    connection: postgresql://mdh:${CRM_PASSWORD}@crm-db:5433/crm
    capture: {snapshot_mode: never, decimal_handling_mode: string, snapshot_delete_limit: 0.9}
    tables:
      customer:
        primary_key: id
        fields: {legal_name: company_name}
  erp:
    connection: {host: erp-db, database: erp, user: mdh, password: "${ERP_PASSWORD:-secret}"}
    tables:
      sales.partner:
        primary_key: [client, partner_id]
        fields: {legal_name: name1}
capture:
  transport: kafka
  kafka: {bootstrap_servers: "${KAFKA:-localhost:9092}", topic_pattern: 'crm\\..*'}
survivorship:
  attributes:
    legal_name: [{rule: source_priority, systems: [erp, crm]}]
matching: {match_probability: 0.9, review_probability: 0.4}
targets: [crm, erp]
"""


def test_a_full_config_file(tmp_path: Path) -> None:
    path = tmp_path / "mdh.yaml"
    path.write_text(FULL_CONFIG)

    config = load_config(path, {"CRM_PASSWORD": "p@ss"})

    crm = config.connections["crm"].postgres_source()
    assert (crm.host, crm.port, crm.database, crm.user) == ("crm-db", 5433, "crm", "mdh")
    assert crm.password.get_secret_value() == "p@ss"
    assert crm.tables == ("public.customer",)
    assert crm.snapshot_mode == "never"
    assert crm.snapshot_delete_limit == 0.9
    erp = config.connections["erp"].postgres_source()
    assert erp.snapshot_delete_limit == 0.5
    assert erp.password.get_secret_value() == "secret"
    assert erp.tables == ("sales.partner",)
    assert config.capture.transport == "kafka"
    assert config.capture.kafka is not None
    assert config.capture.kafka.bootstrap_servers == "localhost:9092"
    assert config.targets == ("crm", "erp")
    matcher = config.build_matcher()
    assert matcher.version.startswith("customers-")
    assert config.mappings is not None
    assert set(config.mappings.sources) == {"crm", "erp"}


def test_no_file_means_the_built_in_defaults() -> None:
    config = load_config(None)
    assert config.mappings is None
    assert config.capture.transport == "embedded"
    assert config.targets == ()


@pytest.mark.parametrize(
    ("edit", "key", "expected"),
    [
        (("targets: [crm, erp]", "target: [crm]"), "target", "one of the sections"),
        (("${CRM_PASSWORD}", "${CRM_SECRET}"), "sources.crm.connection", "CRM_SECRET"),
        (
            ("snapshot_mode: never", "snapshot: never"),
            "sources.crm.capture.snapshot",
            "no such key",
        ),
        (("transport: kafka", "transport: carrier-pigeon"), "capture.transport", "embedded"),
        (("topic_pattern: 'crm\\..*'", "topics: []"), "capture.kafka", "exactly one of"),
        (("rule: source_priority", "rule: loudest"), "survivorship.attributes.legal_name", ""),
        (("match_probability: 0.9", "match_probability: 9"), "matching.match_probability", "less"),
        (("targets: [crm, erp]", "targets: [crm, crm]"), "targets", "each target named once"),
        (("legal_name: name1", "legal_nam: name1"), "sources.erp.tables.sales.partner.fields", ""),
    ],
)
def test_config_errors_name_file_key_and_expectation(
    tmp_path: Path, edit: tuple[str, str], key: str | None, expected: str | None
) -> None:
    path = tmp_path / "mdh.yaml"
    assert edit[0] in FULL_CONFIG
    path.write_text(FULL_CONFIG.replace(*edit))
    if key is None:
        load_config(path, {"CRM_PASSWORD": "x"})
        return
    with pytest.raises(ConfigFileError) as raised:
        load_config(path, {"CRM_PASSWORD": "x"})
    error = raised.value
    assert error.file == str(path)
    assert error.key.startswith(key), error
    assert expected in error.expected, error
