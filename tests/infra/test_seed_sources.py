"""infra/seed_sources.py, the compose deployment's demo seeding, against real PostgreSQL
databases: it creates and fills the demo tables, runs traffic, and a second run keeps the
world instead of loading it twice."""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import psycopg
import pytest

from mdh.embedded_pg import EmbeddedPostgres

SCRIPT = Path(__file__).resolve().parents[2] / "infra" / "seed_sources.py"


def _script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("seed_sources", SCRIPT)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def environ(pg_server: EmbeddedPostgres) -> dict[str, str]:
    names = {
        "MDH_DEMO_CRM_URL": "infra_seed_crm",
        "MDH_DEMO_BILLING_URL": "infra_seed_billing",
        "MDH_DEMO_ERP_URL": "infra_seed_erp",
        "MDH_DEMO_TRUTH_URL": "infra_seed_truth",
    }
    with psycopg.connect(pg_server.url("postgres", driver="postgresql"), autocommit=True) as c:
        for name in names.values():
            c.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            c.execute(f'CREATE DATABASE "{name}"')
    return {var: pg_server.url(name, driver="postgresql") for var, name in names.items()}


def _count(url: str, table: str) -> int:
    with psycopg.connect(url) as conn:
        row = conn.execute(f"SELECT count(*) FROM {table}").fetchone()
        assert row is not None
        return int(row[0])


def test_seeds_once_then_keeps_the_world_and_runs_traffic(
    environ: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    main: Callable[..., int] = _script().main
    assert main(["--customers", "25", "--seed", "3"], environ) == 0
    assert "demo sources seeded" in capsys.readouterr().out
    accounts = _count(environ["MDH_DEMO_CRM_URL"], "account")
    assert accounts > 0
    assert _count(environ["MDH_DEMO_ERP_URL"], "kna1") > 0
    assert _count(environ["MDH_DEMO_TRUTH_URL"], "truth.source_entity") > 0

    args = ["--customers", "25", "--seed", "3", "--rate", "100", "--max-transactions", "10"]
    assert main(args, environ) == 0
    out = capsys.readouterr().out
    assert "demo sources kept" in out
    assert "traffic stopped" in out
    total = sum(
        _count(environ[var], table)
        for var, table in (("MDH_DEMO_CRM_URL", "account"), ("MDH_DEMO_BILLING_URL", "account"))
    )
    assert total >= accounts  # traffic changed the world, the seed was not loaded twice


def test_other_settings_on_a_seeded_world_are_refused(
    environ: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    main: Callable[..., int] = _script().main
    assert main(["--customers", "10", "--seed", "3"], environ) == 0
    assert main(["--customers", "11", "--seed", "3"], environ) == 1
    assert "another configuration" in capsys.readouterr().err


def test_missing_urls_are_named(capsys: pytest.CaptureFixture[str]) -> None:
    main: Callable[..., int] = _script().main
    assert main(["--customers", "1"], {"MDH_DEMO_CRM_URL": "postgresql://x"}) == 1
    err = capsys.readouterr().err
    assert "MDH_DEMO_BILLING_URL" in err
    assert "MDH_DEMO_CRM_URL" not in err
