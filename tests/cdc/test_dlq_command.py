"""`mdh dlq`: dead letters listed, shown, discarded, and replayed after a mapping fix."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import sqlalchemy as sa
from cdc_testkit import FIXTURES, SOURCES_YAML, empty_hub
from typer.testing import CliRunner

from mdh.cli import app

runner = CliRunner()
RECORDING = FIXTURES / "pg_schemas_full.jsonl"


def _config(text: str) -> str:
    return text.replace("unmapped_tables: ignore", "unmapped_tables: dead_letter")


@pytest.fixture
def env(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, cdc_hub_url: str, cdc_hub_engine: sa.Engine
) -> Path:
    empty_hub(cdc_hub_engine)
    config = tmp_path / "mdh.yaml"
    monkeypatch.setenv("MDH_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("MDH_DATABASE_URL", cdc_hub_url)
    monkeypatch.setenv("MDH_CONFIG_FILE", str(config))
    return config


def _scalar(engine: sa.Engine, sql: str) -> int:
    with engine.connect() as conn:
        return int(conn.execute(sa.text(sql)).scalar_one())


def _listed(*args: str) -> list[dict[str, object]]:
    result = runner.invoke(app, ["dlq", "list", "--json", *args])
    assert result.exit_code == 0, result.output
    return [json.loads(line) for line in result.output.splitlines() if line.strip()]


def test_replay_after_a_mapping_fix_applies_the_dead_letters_in_order(
    env: Path, cdc_hub_engine: sa.Engine
) -> None:
    good = _config(SOURCES_YAML.read_text())
    # A mapping mistake: the table name is wrong, so every row of public.customer is unmapped.
    env.write_text(good.replace("public.customer:", "public.customers:"))
    captured = runner.invoke(app, ["cdc", "replay", str(RECORDING)])
    assert captured.exit_code == 0, captured.output
    assert _scalar(cdc_hub_engine, "SELECT count(*) FROM source_records") == 0

    letters = _listed()
    assert len(letters) >= 4, letters
    assert all(str(letter["reason"]).startswith("unmapped_table") for letter in letters)
    # The recording ends with a TRUNCATE: a mapping fix makes it a truncate, which the policy
    # refuses, so a steward discards it on purpose.
    truncate = letters[-1]

    shown = runner.invoke(app, ["dlq", "show", str(letters[0]["id"])])
    assert shown.exit_code == 0, shown.output
    assert '"raw_value"' in shown.output
    assert "public" in shown.output

    discarded = runner.invoke(
        app, ["dlq", "discard", str(truncate["id"]), "--reason", "truncate on purpose"]
    )
    assert discarded.exit_code == 0, discarded.output

    # Replaying with the broken mapping still fails and changes nothing.
    still = runner.invoke(app, ["dlq", "replay", "--all"])
    assert still.exit_code == 1, still.output
    assert "still failing" in still.output
    assert _scalar(cdc_hub_engine, "SELECT count(*) FROM source_records") == 0

    env.write_text(good)  # the fix
    fixed = runner.invoke(app, ["dlq", "replay", "--all"])
    assert fixed.exit_code == 0, fixed.output
    # The recording inserts five customers and deletes two: replayed in arrival order, the
    # deletes land after their inserts, so three live golden records remain.
    assert _scalar(cdc_hub_engine, "SELECT count(*) FROM source_records WHERE NOT deleted") == 3
    assert (
        _scalar(cdc_hub_engine, "SELECT count(*) FROM golden_records WHERE status = 'active'") == 3
    )
    assert _listed() == []
    statuses = {str(letter["status"]) for letter in _listed("--status", "all")}
    assert statuses == {"replayed", "discarded"}
    audited = _scalar(
        cdc_hub_engine, "SELECT count(*) FROM audit_log WHERE action LIKE 'dead_letter.%'"
    )
    assert audited == len(letters)


def test_replay_needs_ids_or_all(env: Path) -> None:
    env.write_text(SOURCES_YAML.read_text())
    result = runner.invoke(app, ["dlq", "replay"])
    assert result.exit_code == 2
    assert "--all" in result.output


def test_show_of_an_unknown_id_says_so(env: Path) -> None:
    env.write_text(SOURCES_YAML.read_text())
    result = runner.invoke(app, ["dlq", "show", "987654"])
    assert result.exit_code == 1
    assert "987654" in result.output
