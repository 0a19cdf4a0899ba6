"""`mdh cdc run` end to end: embedded PostgreSQL, the real Debezium engine, the hub.

A source database is snapshotted, then inserts, updates and deletes stream into golden
records; a restart resumes without a new snapshot; a worker killed with SIGKILL mid-stream and
restarted ends in exactly the state of a clean run, with no duplicate history or outbox rows.
The worker runs as a subprocess (`python -m mdh cdc run`): JPype allows one JVM per process.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest
import sqlalchemy as sa
from cdc_testkit import fresh_hub_database

from mdh.embedded_pg import EmbeddedPostgres

pytestmark = pytest.mark.slow

SOURCE = "e2e"
TARGETS = ("crm", "billing")
SNAPSHOT_ROWS = 20
INSERTS = range(21, 81)
UPDATES = range(1, 21, 2)
DELETES = range(2, 21, 4)


def _config(port: int, database: str) -> str:
    return f"""
sources:
  {SOURCE}:
    connection: postgresql://postgres:${{E2E_PG_PASSWORD}}@127.0.0.1:{port}/{database}
    capture: {{heartbeat_interval_ms: 1000}}
    tables:
      public.customer:
        primary_key: id
        fields:
          legal_name: company_name
          emails: {{columns: [email]}}
          addresses[0].city: city
          extra.notes: notes
targets: [{", ".join(TARGETS)}]
"""


def _prepare_source(pg_server: EmbeddedPostgres, database: str) -> str:
    """A source database with SNAPSHOT_ROWS customers, each distinct (nothing matches)."""
    pg_server.ensure_database(database)
    url = pg_server.url(database, driver="postgresql")
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("DROP TABLE IF EXISTS customer")
        conn.execute(
            "CREATE TABLE customer (id integer PRIMARY KEY, company_name text, email text,"
            " city text, notes text)"
        )
        for i in range(1, SNAPSHOT_ROWS + 1):
            conn.execute(
                "INSERT INTO customer VALUES (%s, %s, %s, %s, %s)",
                (i, f"Company {_word(i)} Ltd", f"ap{i}@company{i}.example", "Berlin", "x" * 3000),
            )
    return url


def _workload(url: str, pause: float = 0.0) -> None:
    """The streamed changes: each row changes at most once after the snapshot."""
    with psycopg.connect(url, autocommit=True) as conn:
        for i in INSERTS:
            conn.execute(
                "INSERT INTO customer VALUES (%s, %s, %s, %s, NULL)",
                (i, f"Company {_word(i)} Ltd", f"ap{i}@company{i}.example", "Munich"),
            )
            time.sleep(pause)
        for i in UPDATES:  # notes untouched: TOASTed, not sent by Debezium
            conn.execute("UPDATE customer SET city = 'Hamburg' WHERE id = %s", (i,))
            time.sleep(pause)
        for i in DELETES:
            conn.execute("DELETE FROM customer WHERE id = %s", (i,))
            time.sleep(pause)


def _word(i: int) -> str:
    # distinct, unrelated names so no two customers match
    syllables = ["ka", "lo", "mi", "ne", "pu", "ro", "si", "tu", "va", "ze"]
    return "".join(syllables[int(d)] for d in f"{i:03d}").capitalize() + f"x{i}"


EXPECTED_LIVE = SNAPSHOT_ROWS + len(INSERTS) - len(DELETES)


@dataclass
class Capture:
    """Everything one run of `mdh cdc run` needs, and the process while it runs."""

    home: Path
    config: Path
    hub_url: str
    password: str
    process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        env = {
            **os.environ,
            "MDH_HOME": str(self.home),
            "MDH_CONFIG_FILE": str(self.config),
            "MDH_DATABASE_URL": self.hub_url,
            "E2E_PG_PASSWORD": self.password,
        }
        log = (self.home / "worker.log").open("ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "mdh", "cdc", "run"],
            env=env,
            cwd=self.home,
            stdout=log,
            stderr=subprocess.STDOUT,
        )

    def stop(self, timeout: float = 60) -> int:
        assert self.process is not None
        self.process.send_signal(signal.SIGTERM)
        code = self.process.wait(timeout)
        self.process = None
        return code

    def reset(self, *options: str) -> subprocess.CompletedProcess[str]:
        """``mdh cdc reset --yes``: drop the slot and the offsets."""
        return subprocess.run(
            [sys.executable, "-m", "mdh", "cdc", "reset", "--yes", *options],
            env={
                **os.environ,
                "MDH_HOME": str(self.home),
                "MDH_CONFIG_FILE": str(self.config),
                "MDH_DATABASE_URL": self.hub_url,
                "E2E_PG_PASSWORD": self.password,
            },
            capture_output=True,
            text=True,
            timeout=60,
        )

    def kill(self) -> None:
        assert self.process is not None
        self.process.kill()
        self.process.wait(30)
        self.process = None

    def wait_for(self, what: str, condition: Callable[[], bool], timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if condition():
                return
            if self.process is not None and self.process.poll() is not None:
                raise AssertionError(f"the worker exited ({self.process.returncode}):\n{self.log}")
            time.sleep(0.2)
        raise AssertionError(f"timed out waiting for {what}:\n{self.log}")

    @property
    def log(self) -> str:
        worker = (self.home / "worker.log").read_text(errors="replace")[-4000:]
        debezium = self.home / "logs" / "debezium.log"
        if not debezium.exists():
            return worker
        interesting = [
            line
            for line in debezium.read_text(errors="replace").splitlines()
            if any(word in line for word in ("WARN", "ERROR", "napshot", "offset", "LSN"))
        ]
        return (
            worker
            + "\n--- debezium.log (warnings, snapshot, offsets, LSNs) ---\n"
            + ("\n".join(interesting[-40:]))
        )


def _scalar(engine: sa.Engine, sql: str) -> Any:
    with engine.connect() as conn:
        return conn.execute(sa.text(sql)).scalar_one()


def _rows(engine: sa.Engine, sql: str) -> list[tuple[Any, ...]]:
    with engine.connect() as conn:
        return [tuple(r) for r in conn.execute(sa.text(sql))]


def _live(engine: sa.Engine) -> int:
    return int(_scalar(engine, "SELECT count(*) FROM source_records WHERE NOT deleted"))


def _final_state(engine: sa.Engine) -> dict[str, Any]:
    """The store as readers see it, keyed by source rows (golden ids depend on timing)."""
    goldens = _rows(
        engine,
        "SELECT string_agg(s.pk, ',' ORDER BY s.pk), g.status, g.version, g.attributes::text"
        " FROM golden_records g LEFT JOIN source_records s ON s.golden_id = g.id"
        " GROUP BY g.id",
    )
    goldens.sort(key=str)
    return {
        "goldens": goldens,
        "sources": _rows(
            engine,
            "SELECT pk, deleted, attributes::text FROM source_records ORDER BY pk::int",
        ),
        "history_count": _scalar(engine, "SELECT count(*) FROM golden_history"),
        "history_by_kind": _rows(
            engine, "SELECT kind, count(*) FROM golden_history GROUP BY kind ORDER BY kind"
        ),
        "outbox_count": _scalar(engine, "SELECT count(*) FROM outbox"),
    }


def _assert_no_doubles(engine: sa.Engine) -> None:
    duplicated_versions = _rows(
        engine,
        "SELECT golden_id, version FROM golden_history GROUP BY 1, 2 HAVING count(*) > 1",
    )
    assert not duplicated_versions
    gaps = _rows(
        engine,
        "SELECT golden_id FROM golden_history GROUP BY 1 HAVING max(version) <> count(*)",
    )
    assert not gaps
    duplicated_outbox = _rows(
        engine, "SELECT golden_id, version, target FROM outbox GROUP BY 1, 2, 3 HAVING count(*) > 1"
    )
    assert not duplicated_outbox
    assert _scalar(engine, "SELECT count(*) FROM outbox") == len(TARGETS) * _scalar(
        engine, "SELECT count(*) FROM golden_history"
    )


@pytest.fixture(scope="module")
def clean_run(
    pg_server: EmbeddedPostgres, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, Any]]:
    """A clean run: snapshot, stream, stop, restart (no new snapshot), stop, reset."""
    source_url = _prepare_source(pg_server, "cdc_e2e_clean")
    hub_url = fresh_hub_database(pg_server, "cdc_e2e_clean_hub")
    home = tmp_path_factory.mktemp("clean-home")
    config = home / "mdh.yaml"
    config.write_text(_config(pg_server.port, "cdc_e2e_clean"))
    capture = Capture(home, config, hub_url, pg_server.password)
    engine = sa.create_engine(hub_url, poolclass=sa.pool.NullPool)
    facts: dict[str, Any] = {"source_url": source_url, "engine": engine, "capture": capture}
    try:
        capture.start()
        capture.wait_for("the snapshot", lambda: _live(engine) == SNAPSHOT_ROWS)
        facts["snapshot_lsns"] = _rows(engine, "SELECT pk, lsn FROM source_records ORDER BY pk")
        _workload(source_url)
        capture.wait_for("the stream", lambda: _live(engine) == EXPECTED_LIVE)
        capture.wait_for(
            "the updates",
            lambda: (
                _scalar(
                    engine,
                    "SELECT count(*) FROM source_records WHERE attributes::text LIKE '%Hamburg%'",
                )
                == len([i for i in UPDATES if i not in DELETES])
            ),
        )
        facts["first_exit"] = capture.stop()
        facts["before_restart"] = _final_state(engine)
        facts["positions_before_restart"] = _rows(
            engine, "SELECT pk, lsn, committed_at FROM source_records ORDER BY pk"
        )
        facts["metrics"] = json.loads((home / "cdc" / "metrics.json").read_text())

        capture.start()
        time.sleep(8)  # long enough for a snapshot to show, were one taken
        with psycopg.connect(source_url, autocommit=True) as conn:
            conn.execute("UPDATE customer SET company_name = 'Renamed Ltd' WHERE id = 21")
        capture.wait_for(
            "the change after the restart",
            lambda: (
                _scalar(
                    engine,
                    "SELECT count(*) FROM source_records WHERE pk = '21'"
                    " AND attributes->>'legal_name' = 'Renamed Ltd'",
                )
                == 1
            ),
        )
        facts["second_exit"] = capture.stop()
        facts["positions_after_restart"] = _rows(
            engine, "SELECT pk, lsn, committed_at FROM source_records ORDER BY pk"
        )
        facts["final"] = _final_state(engine)
        facts["reset"] = capture.reset()

        # After the reset the capture starts over with a new snapshot. A row deleted while
        # nothing captured sends no event: the snapshot, which no longer reads it, retires it.
        with psycopg.connect(source_url, autocommit=True) as conn:
            conn.execute("DELETE FROM customer WHERE id = 3")
        before = _final_state(engine)
        capture.start()
        capture.wait_for(
            "the new snapshot",
            lambda: _scalar(engine, "SELECT deleted FROM source_records WHERE pk = '3'") is True,
        )
        facts["third_exit"] = capture.stop()
        after = _final_state(engine)
        facts["resnapshot"] = {
            "history_added": after["history_count"] - before["history_count"],
            "outbox_added": after["outbox_count"] - before["outbox_count"],
            "live": _live(engine),
            "reset": capture.reset(),
        }
        yield facts
    finally:
        if capture.process is not None:
            capture.kill()
        engine.dispose()


def test_snapshot_then_stream_become_golden_records(clean_run: dict[str, Any]) -> None:
    engine = clean_run["engine"]
    assert clean_run["first_exit"] == 0, "SIGTERM stops cleanly"
    state = clean_run["before_restart"]
    live = [(pk, attributes) for pk, deleted, attributes in state["sources"] if not deleted]
    deleted = sorted(int(pk) for pk, is_deleted, _ in state["sources"] if is_deleted)
    assert len(live) == EXPECTED_LIVE
    assert deleted == list(DELETES)
    # one golden record per live customer (nothing matches), deleted ones retired
    active = [g for g in state["goldens"] if g[1] == "active"]
    assert len(active) == EXPECTED_LIVE
    hamburg = {pk for pk, attributes in live if '"Hamburg"' in attributes}
    assert hamburg == {str(i) for i in UPDATES if i not in DELETES}
    # the update did not send the TOASTed notes: the snapshot's value is kept
    notes = _scalar(
        engine, "SELECT attributes->'extra'->>'notes' FROM source_records WHERE pk = '1'"
    )
    assert notes == "x" * 3000
    _assert_no_doubles(engine)
    metrics = clean_run["metrics"]["sources"][SOURCE]
    assert metrics["changes"] >= SNAPSHOT_ROWS + len(INSERTS) + len(UPDATES) + len(DELETES)
    assert metrics["commit_to_golden_ms"]["samples"] > 0
    assert metrics["last_commit_at"] is not None


def test_a_restart_resumes_without_a_new_snapshot(clean_run: dict[str, Any]) -> None:
    assert clean_run["second_exit"] == 0
    before = {pk: (lsn, at) for pk, lsn, at in clean_run["positions_before_restart"]}
    after = {pk: (lsn, at) for pk, lsn, at in clean_run["positions_after_restart"]}
    changed = {pk for pk in after if after[pk] != before.get(pk)}
    assert changed == {"21"}, "only the row changed after the restart was applied again"


def test_reset_drops_the_slot_and_the_offsets(clean_run: dict[str, Any]) -> None:
    reset = clean_run["reset"]
    assert reset.returncode == 0, reset.stderr
    assert "slot dropped" in reset.stdout
    assert "offsets deleted" in reset.stdout


def test_a_new_snapshot_after_a_reset_retires_rows_deleted_meanwhile(
    clean_run: dict[str, Any],
) -> None:
    assert clean_run["third_exit"] == 0
    resnapshot = clean_run["resnapshot"]
    assert resnapshot["live"] == EXPECTED_LIVE - 1
    # one new version (the retired golden record) published to each target; the rows read
    # again unchanged add nothing
    assert resnapshot["history_added"] == 1
    assert resnapshot["outbox_added"] == len(TARGETS)
    assert resnapshot["reset"].returncode == 0, resnapshot["reset"].stderr


def test_a_worker_killed_mid_stream_converges_to_the_clean_run(
    clean_run: dict[str, Any],
    pg_server: EmbeddedPostgres,
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    source_url = _prepare_source(pg_server, "cdc_e2e_crash")
    hub_url = fresh_hub_database(pg_server, "cdc_e2e_crash_hub")
    home = tmp_path_factory.mktemp("crash-home")
    config = home / "mdh.yaml"
    config.write_text(_config(pg_server.port, "cdc_e2e_crash"))
    capture = Capture(home, config, hub_url, pg_server.password)
    engine = sa.create_engine(hub_url, poolclass=sa.pool.NullPool)
    try:
        capture.start()
        capture.wait_for("the snapshot", lambda: _live(engine) == SNAPSHOT_ROWS)
        workload = threading.Thread(target=_workload, args=(source_url, 0.02))
        workload.start()
        capture.wait_for("part of the stream", lambda: _live(engine) >= SNAPSHOT_ROWS + 15)
        capture.kill()  # SIGKILL: no clean stop, offsets not flushed for what was applied
        killed_at = _live(engine)
        workload.join(60)
        assert killed_at < EXPECTED_LIVE, "the kill must land mid-stream"

        capture.start()
        capture.wait_for("the stream", lambda: _live(engine) == EXPECTED_LIVE)
        with psycopg.connect(source_url, autocommit=True) as conn:
            conn.execute("UPDATE customer SET company_name = 'Renamed Ltd' WHERE id = 21")
        capture.wait_for(
            "the last change",
            lambda: (
                _scalar(
                    engine,
                    "SELECT count(*) FROM source_records WHERE pk = '21'"
                    " AND attributes->>'legal_name' = 'Renamed Ltd'",
                )
                == 1
            ),
        )
        assert capture.stop() == 0
        crashed = _final_state(engine)
        _assert_no_doubles(engine)
    finally:
        if capture.process is not None:
            capture.kill()
        engine.dispose()
        capture.reset("--force")
    clean = clean_run["final"]
    for part in ("goldens", "sources", "history_count", "history_by_kind", "outbox_count"):
        assert crashed[part] == clean[part], part
