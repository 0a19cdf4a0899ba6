"""`mdh connectors register` against a local server that answers like the Kafka Connect REST
API (tests/infra/fake_connect.py): the shipped connector files are created, then left alone,
a changed file updates only its connector, Connect's refusals reach the user with Connect's
own message, and secrets come from the environment."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import Result
from fake_connect import ConnectState, fake_connect
from typer.testing import CliRunner

from mdh.cli import app
from mdh.connect_rest import ConnectorFileError, read_connector_file

CONNECTORS = Path(__file__).resolve().parents[2] / "infra" / "connectors"
SECRETS = {"CRM_DB_PASSWORD": "crm-secret", "BILLING_DB_PASSWORD": "b-secret"}
SECRETS |= {"ERP_DB_PASSWORD": "erp-secret"}
NAMES = ["mdh-billing-source", "mdh-crm-source", "mdh-erp-source"]


@pytest.fixture
def connect() -> Iterator[tuple[str, ConnectState]]:
    with fake_connect() as served:
        yield served


@pytest.fixture
def files(tmp_path: Path) -> Path:
    """A copy of infra/connectors the test may edit."""
    folder = tmp_path / "connectors"
    shutil.copytree(CONNECTORS, folder)
    return folder


def register(url: str, folder: Path, env: dict[str, str] | None = None, *extra: str) -> Result:
    runner = CliRunner()
    return runner.invoke(
        app, ["connectors", "register", url, "--dir", str(folder), *extra], env=env or SECRETS
    )


def test_first_run_creates_every_connector_with_secrets_from_the_environment(
    connect: tuple[str, ConnectState],
) -> None:
    url, state = connect
    result = register(url, CONNECTORS)
    assert result.exit_code == 0, result.output
    for name in NAMES:
        assert f"{name}: created (RUNNING)" in result.output
    assert sorted(state.connectors) == NAMES
    crm = state.connectors["mdh-crm-source"]
    assert crm["database.password"] == "crm-secret"
    assert crm["database.hostname"] == "crm-db"  # ${CRM_DB_HOST:-crm-db}
    assert crm["name"] == "mdh-crm-source"
    assert "crm-secret" not in result.output


def test_a_second_run_changes_nothing_and_sends_no_config(
    connect: tuple[str, ConnectState],
) -> None:
    url, state = connect
    assert register(url, CONNECTORS).exit_code == 0
    stored = json.loads(json.dumps(state.connectors))
    puts_before = len(state.puts())

    result = register(url, CONNECTORS)
    assert result.exit_code == 0, result.output
    for name in NAMES:
        assert f"{name}: unchanged (RUNNING)" in result.output
    assert len(state.puts()) == puts_before
    assert state.connectors == stored


def test_a_changed_file_or_secret_updates_only_its_connector(
    connect: tuple[str, ConnectState], files: Path
) -> None:
    url, state = connect
    assert register(url, files).exit_code == 0
    erp = json.loads((files / "erp.json").read_text())
    erp["config"]["snapshot.mode"] = "no_data"
    (files / "erp.json").write_text(json.dumps(erp))

    result = register(url, files, {**SECRETS, "CRM_DB_PASSWORD": "rotated"})
    assert result.exit_code == 0, result.output
    assert "mdh-erp-source: updated" in result.output
    assert "mdh-crm-source: updated" in result.output
    assert "mdh-billing-source: unchanged" in result.output
    assert state.connectors["mdh-erp-source"]["snapshot.mode"] == "no_data"
    assert state.connectors["mdh-crm-source"]["database.password"] == "rotated"
    assert state.puts()[-2:] == [
        "/connectors/mdh-crm-source/config",
        "/connectors/mdh-erp-source/config",
    ]


def test_a_key_connect_does_not_know_fails_with_connects_message_and_the_rest_goes_on(
    connect: tuple[str, ConnectState], files: Path
) -> None:
    url, state = connect
    crm = json.loads((files / "crm.json").read_text())
    crm["config"]["decimal.handling"] = "string"  # a typo of decimal.handling.mode
    (files / "crm.json").write_text(json.dumps(crm))

    result = register(url, files)
    assert result.exit_code == 1
    assert "mdh-crm-source: failed" in result.output
    assert "HTTP 400" in result.output
    assert "Unknown configuration 'decimal.handling'" in result.output
    assert sorted(state.connectors) == ["mdh-billing-source", "mdh-erp-source"]


def test_a_server_error_is_reported_with_its_message(
    connect: tuple[str, ConnectState],
) -> None:
    url, state = connect
    state.fail_next.append((500, "Request timed out"))
    result = register(url, CONNECTORS)
    assert result.exit_code == 1
    assert "mdh-billing-source: failed" in result.output
    assert "HTTP 500: Request timed out" in result.output
    assert sorted(state.connectors) == ["mdh-crm-source", "mdh-erp-source"]


def test_a_rebalancing_cluster_is_waited_for(connect: tuple[str, ConnectState]) -> None:
    url, state = connect
    state.rebalancing = 2
    result = register(url, CONNECTORS, SECRETS, "--wait", "20")
    assert result.exit_code == 0, result.output
    assert sorted(state.connectors) == NAMES
    assert [m for m, _ in state.requests[:3]] == ["GET", "GET", "GET"]

    state.rebalancing = 100
    result = register(url, CONNECTORS)
    assert result.exit_code == 1
    assert "HTTP 409" in result.output


def test_a_failed_connector_shows_its_trace(connect: tuple[str, ConnectState]) -> None:
    url, state = connect
    assert register(url, CONNECTORS).exit_code == 0
    state.states["mdh-erp-source"] = "FAILED"
    state.traces["mdh-erp-source"] = (
        "org.apache.kafka.connect.errors.ConnectException: replication slot"
        ' "mdh_erp" is active for PID 123\n\tat io.debezium...'
    )
    result = register(url, CONNECTORS)
    assert result.exit_code == 0
    assert "mdh-erp-source: unchanged (FAILED)" in result.output
    assert 'replication slot "mdh_erp" is active for PID 123' in result.output


def test_unreachable_connect_is_a_clear_error(files: Path) -> None:
    with fake_connect() as (url, _):
        pass  # the port is free again: nothing listens there
    result = register(url, files)
    assert result.exit_code == 1
    assert "cannot reach Kafka Connect" in result.output


def test_a_missing_secret_stops_before_any_request(
    connect: tuple[str, ConnectState],
) -> None:
    url, state = connect
    result = register(url, CONNECTORS, {"CRM_DB_PASSWORD": "x", "ERP_DB_PASSWORD": "y"})
    assert result.exit_code == 2
    assert "billing.json: config.database.password" in result.output
    assert "BILLING_DB_PASSWORD" in result.output
    assert state.requests == []


@pytest.mark.parametrize(
    ("document", "expected"),
    [
        ({"name": "x"}, '"name" and "config" only'),
        ({"name": "x", "config": {"tasks.max": 1}}, "a string"),
        ({"name": "bad name", "config": {"a": "b"}}, "a connector name"),
        ({"name": "x", "config": {"name": "y"}}, "the connector's name 'x'"),
        ({"name": "x", "config": {}}, "an object of connector properties"),
    ],
)
def test_bad_connector_files_name_the_key(
    tmp_path: Path, document: dict[str, object], expected: str
) -> None:
    path = tmp_path / "c.json"
    path.write_text(json.dumps(document))
    with pytest.raises(ConnectorFileError) as error:
        read_connector_file(path, {})
    assert expected in str(error.value)
    assert str(path) in str(error.value)


def test_connect_config_provider_references_pass_through(tmp_path: Path) -> None:
    path = tmp_path / "c.json"
    config = {
        "database.password": "${file:/secrets/crm.properties:password}",
        "database.user": "${DB_USER:-debezium}",
        "topic.prefix": "${PREFIX}",
    }
    path.write_text(json.dumps({"name": "c", "config": config}))
    spec = read_connector_file(path, {"PREFIX": "crm"})
    assert spec.config == {
        "database.password": "${file:/secrets/crm.properties:password}",
        "database.user": "debezium",
        "topic.prefix": "crm",
    }
