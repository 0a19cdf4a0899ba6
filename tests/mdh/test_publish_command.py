"""`mdh publish run | status | retry | replay`, run as real subprocesses against a real hub
database and a real HTTP receiver: the relay delivers and stops cleanly on SIGTERM, status
shows where every target stands with its sync latency, a dead delivery is revived by retry,
replay sends again, and a broken targets section is refused naming file, key and expectation.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import psycopg
import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from hub.db import create_engine, migrate
from hub.model import ChangeOp, SourceChange, SourceKey, SourcePosition
from hub.rules import default_rules
from hub.services import HubServices
from matching import MatchModel, default_spec
from mdh.embedded_pg import EmbeddedPostgres

pytestmark = pytest.mark.slow

SECRET = "command-test-secret-0123"


class Receiver:
    """A real HTTP server recording the idempotency keys it acknowledged; refuses (422) the
    golden records named in ``refuse``."""

    def __init__(self) -> None:
        self.keys: list[str] = []
        self.refuse: set[int] = set()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                status = 422 if body["golden_id"] in receiver.refuse else 200
                if status == 200:
                    receiver.keys.append(self.headers["Idempotency-Key"])
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/mdh"


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    receiver = Receiver()
    try:
        yield receiver
    finally:
        receiver.server.shutdown()
        receiver.server.server_close()


@pytest.fixture(scope="module")
def hub_url(pg_server: EmbeddedPostgres) -> str:
    name = "publish_command_tests"
    with psycopg.connect(pg_server.url("postgres", driver="postgresql"), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    url = pg_server.url(name)
    migrate(url)
    return url


@pytest.fixture
def engine(hub_url: str) -> Iterator[Engine]:
    engine = create_engine(hub_url)
    try:
        yield engine
    finally:
        engine.dispose()


def _hub(engine: Engine) -> HubServices:
    return HubServices(
        engine,
        matcher=MatchModel.untrained(default_spec()),
        rules=default_rules(),
        targets=("hooks",),
    )


def _change(pk: str, name: str, lsn: int) -> SourceChange:
    return SourceChange(
        key=SourceKey("crm", "customers", pk),
        op=ChangeOp.UPSERT,
        attributes={"legal_name": name},
        raw={"id": pk},
        position=SourcePosition(lsn, lsn, datetime.now(UTC)),
    )


def _config(path: Path, url: str) -> Path:
    path.write_text(
        f"""
targets:
  hooks:
    kind: webhook
    url: {url}
    secret: ${{HOOK_SECRET}}
    delivery: {{max_attempts: 2, initial_backoff_seconds: 0.05, max_backoff_seconds: 0.1}}
""",
        encoding="utf-8",
    )
    return path


def _env(tmp_path: Path, hub_url: str, config: Path) -> dict[str, str]:
    return {
        **os.environ,
        "MDH_HOME": str(tmp_path / "home"),
        "MDH_DATABASE_URL": hub_url,
        "MDH_CONFIG_FILE": str(config),
        "HOOK_SECRET": SECRET,
    }


def _mdh(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mdh", "publish", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        stdin=subprocess.DEVNULL,
    )


def _run_until(env: dict[str, str], done: Any, timeout: float = 60) -> str:
    """``mdh publish run`` until ``done()``, then SIGTERM; returns its stderr (exit 0)."""
    process = subprocess.Popen(
        [sys.executable, "-m", "mdh", "publish", "run"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    deadline = time.monotonic() + timeout
    try:
        while not done():
            assert process.poll() is None, process.communicate()[1]
            assert time.monotonic() < deadline, "not delivered in time"
            time.sleep(0.1)
    finally:
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=60)
    assert process.returncode == 0, stderr
    return stderr


def test_run_status_retry_replay(
    tmp_path: Path, hub_url: str, engine: Engine, receiver: Receiver
) -> None:
    hub = _hub(engine)
    hub.apply_changes([_change("1", "Aldergrove Timber", 1), _change("2", "Brightwater", 2)])
    env = _env(tmp_path, hub_url, _config(tmp_path / "mdh.yaml", receiver.url))

    stderr = _run_until(env, lambda: len(receiver.keys) == 2)
    assert "hooks: 2 delivered" in stderr
    assert sorted(receiver.keys) == ["1:1:hooks", "2:1:hooks"]

    status = _mdh(env, "status", "--json")
    assert status.returncode == 0, status.stderr
    hooks = json.loads(status.stdout)["targets"]["hooks"]
    assert hooks["status"]["delivered"] == 2
    assert hooks["status"]["pending"] == 0
    assert hooks["latency_ms"]["source_to_target"]["count"] == 2

    # The receiver refuses Brightwater's next version: dead after its attempts.
    receiver.refuse = {2}
    hub.apply_changes([_change("2", "Brightwater Optics", 3)])
    _run_until(env, lambda: hub.publishing().status()[0].dead == 1)
    dead = _mdh(env, "status", "--json", "--dead")
    assert dead.returncode == 0, dead.stderr
    [row] = json.loads(dead.stdout)["dead"]
    assert (row["golden_id"], row["version"], row["attempts"]) == (2, 2, 1)
    assert "HTTP 422" in row["last_error"]
    table = _mdh({**env, "COLUMNS": "200"}, "status")
    assert table.returncode == 0, table.stderr
    assert "hooks" in table.stdout
    assert "HTTP 422" in table.stdout

    receiver.refuse = set()
    retried = _mdh(env, "retry", "--target", "hooks")
    assert retried.returncode == 0, retried.stderr
    assert "revived 1 dead deliveries" in retried.stdout
    _run_until(env, lambda: "2:2:hooks" in receiver.keys)

    # dead again, then given up for good: off the dead list, never sent, not a delivery
    receiver.refuse = {2}
    hub.apply_changes([_change("2", "Brightwater Optics GmbH", 4)])
    _run_until(env, lambda: hub.publishing().status()[0].dead == 1)
    refused = _mdh(env, "discard", "--reason", "obsolete", "--yes")
    assert refused.returncode == 2, refused.stdout
    assert "--target" in refused.stderr
    discarded = _mdh(env, "discard", "--target", "hooks", "--reason", "customer closed", "--yes")
    assert discarded.returncode == 0, discarded.stderr
    assert "discarded 1 dead deliveries" in discarded.stdout
    [hooks_status] = hub.publishing().status()
    assert (hooks_status.dead, hooks_status.pending) == (0, 0)
    assert hub.publishing().dead() == []
    assert "2:3:hooks" not in receiver.keys
    receiver.refuse = set()

    replayed = _mdh(env, "replay", "--target", "hooks", "--golden", "1", "--yes")
    assert replayed.returncode == 0, replayed.stderr
    assert "1 deliveries to hooks queued again" in replayed.stdout
    _run_until(env, lambda: receiver.keys.count("1:1:hooks") == 2)


@pytest.mark.parametrize(
    ("targets", "args", "message"),
    [
        ("{hooks: {kind: smtp}}", ["status"], "targets.hooks.kind: expected one of postgres"),
        ("[crm, billing]", ["run"], "targets: expected targets with settings"),
        ("[crm, billing]", ["run", "--target", "erp"], "targets.erp: expected a configured"),
    ],
)
def test_a_broken_targets_section_is_refused_naming_file_and_key(
    tmp_path: Path, hub_url: str, targets: str, args: list[str], message: str
) -> None:
    config = tmp_path / "broken.yaml"
    config.write_text(f"targets: {targets}\n", encoding="utf-8")
    result = _mdh(_env(tmp_path, hub_url, config), *args)
    assert result.returncode == 2, result.stdout + result.stderr
    output = " ".join(result.stderr.split())
    assert str(config) in output
    assert message in output


def test_prune_deletes_what_the_retention_lets_go(
    tmp_path: Path, hub_url: str, engine: Engine, receiver: Receiver
) -> None:
    hub = _hub(engine)
    with engine.begin() as conn:
        conn.execute(sa.text("TRUNCATE outbox"))
    hub.apply_changes([_change("7", "Cobalt Harbor", 10)])
    hub.apply_changes([_change("7", "Cobalt Harbor Freight", 11)])
    publishing = hub.publishing()
    for _ in range(2):  # version 1, then version 2
        [delivery] = publishing.claim("hooks", limit=10, lease=timedelta(minutes=1))
        publishing.mark_delivered(delivery, datetime.now(UTC))
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE outbox SET delivered_at = delivered_at - interval '3 days'"))
    env = _env(tmp_path, hub_url, _config(tmp_path / "mdh.yaml", receiver.url))

    kept = _mdh(env, "prune")  # the default retention, 7 days: nothing is old enough
    assert kept.returncode == 0, kept.stderr
    assert "pruned 0 outbox rows" in kept.stdout
    pruned = _mdh(env, "prune", "--older-than", "2d")
    assert pruned.returncode == 0, pruned.stderr
    assert "pruned 1 outbox rows" in pruned.stdout
    with engine.connect() as conn:
        left = conn.execute(sa.text("SELECT version FROM outbox")).scalars().all()
    assert left == [2]  # the latest delivered version stays: replay sends it
    bad = _mdh(env, "prune", "--older-than", "soon")
    assert bad.returncode == 2
    assert "--older-than: expected a duration like 7d" in " ".join(bad.stderr.split())
