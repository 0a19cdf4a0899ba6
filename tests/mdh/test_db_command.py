"""`mdh db`: the commands a user types, run as real subprocesses against a real server."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest


def _mdh(
    home: Path, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    full_env = {k: v for k, v in os.environ.items() if k != "MDH_DATABASE_URL"}
    full_env.update({"MDH_HOME": str(home), **(env or {})})
    return subprocess.run(
        [sys.executable, "-m", "mdh", *args],
        capture_output=True,
        text=True,
        env=full_env,
        timeout=180,
        stdin=subprocess.DEVNULL,
    )


@pytest.mark.slow
def test_start_migrate_status_stop(tmp_path: Path) -> None:
    home = tmp_path / "home"
    try:
        first = _mdh(home, "db", "start")
        assert first.returncode == 0, first.stderr
        assert "started" in first.stdout
        second = _mdh(home, "db", "start")
        assert second.returncode == 0, second.stderr
        assert "already running" in second.stdout

        migrated = _mdh(home, "db", "migrate")
        assert migrated.returncode == 0, migrated.stderr + migrated.stdout
        assert "schema at revision" in migrated.stdout

        status = _mdh(home, "db", "status")
        assert status.returncode == 0
        assert "running" in status.stdout
        assert "127.0.0.1" in status.stdout
        assert "***" in status.stdout, "the password is never printed by default"

        url = _mdh(home, "db", "url", "--show-password").stdout.strip()
        libpq = url.replace("postgresql+psycopg://", "postgresql://")
        with psycopg.connect(libpq) as conn:
            tables = {
                row[0]
                for row in conn.execute(
                    "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'"
                )
            }
        assert "alembic_version" in tables
        assert len(tables) > 5
    finally:
        _mdh(home, "db", "stop")
    stopped = _mdh(home, "db", "status")
    assert stopped.returncode == 1
    assert "stopped" in stopped.stdout


def test_external_url_is_used_and_no_server_is_started(tmp_path: Path) -> None:
    home = tmp_path / "home"
    result = _mdh(
        home, "db", "start", env={"MDH_DATABASE_URL": "postgresql://u:secret@127.0.0.1:1/x"}
    )
    assert result.returncode == 1
    assert "cannot reach" in result.stderr
    assert "secret" not in result.stderr + result.stdout
    assert not (home / "pg").exists(), "no embedded server may be created when a URL is set"
