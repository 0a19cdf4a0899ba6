"""The embedded server: idempotent start, truthful status, logical decoding ready for Debezium."""

from __future__ import annotations

import os
import signal
import socket
import time
from pathlib import Path

import psycopg
import pytest

from mdh.embedded_pg import EmbeddedPostgres


def test_session_server_is_ready_for_logical_decoding(pg_server: EmbeddedPostgres) -> None:
    with psycopg.connect(pg_server.url("postgres", driver="postgresql")) as conn:
        assert conn.execute("SHOW wal_level").fetchone() == ("logical",)
        slots = conn.execute("SHOW max_replication_slots").fetchone()
        assert slots is not None
        assert int(slots[0]) >= 10
        # TCP on loopback: the URL names 127.0.0.1, which is how Debezium will connect.
        assert conn.info.host == "127.0.0.1"


def test_start_twice_is_a_noop_and_status_survives_a_crash(tmp_path: Path) -> None:
    server = EmbeddedPostgres(tmp_path / "pg")
    assert server.status().state == "not initialised"
    first = server.start()
    assert first.running
    again = server.start()
    assert again.pid == first.pid, "a second start must not start another server"
    assert first.pid is not None
    # pg_ctl failing (here: a second postmaster refused by the first one's lock file) while
    # the server answers is a started server, not an error
    still = server._start(server._socket_dir(), timeout=10)
    assert still.running
    assert still.pid == first.pid

    os.kill(first.pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while server.status().state == "running" and time.monotonic() < deadline:
        time.sleep(0.05)
    assert server.status().state in ("crashed", "stopped")
    assert not server.status().running

    restarted = server.start()
    assert restarted.running
    assert restarted.port == first.port, "the port is remembered so URLs stay valid"
    server.ensure_database("mdh")
    with psycopg.connect(server.url("mdh", driver="postgresql")) as conn:
        assert conn.execute("SELECT 1").fetchone() == (1,)
    stopped = server.stop()
    assert stopped.state == "stopped"
    assert server.stop().state == "stopped"


def test_wrong_password_is_refused_over_tcp(pg_server: EmbeddedPostgres) -> None:
    url = f"postgresql://postgres:wrong@127.0.0.1:{pg_server.port}/postgres"
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(url, connect_timeout=5)


def test_a_first_start_whose_port_is_taken_meanwhile_chooses_another(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two first starts at once can both find the default port free; the loser of the race
    takes another port instead of failing (a CI run once failed so)."""
    import mdh.embedded_pg as embedded_pg

    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        busy = int(taken.getsockname()[1])
        choose = embedded_pg._free_port
        calls: list[int] = []

        def racing(preferred: int) -> int:  # the first choice is lost to another process
            calls.append(preferred)
            return busy if len(calls) == 1 else choose(preferred)

        monkeypatch.setattr(embedded_pg, "_free_port", racing)
        server = EmbeddedPostgres(tmp_path / "pg")
        try:
            status = server.start()
            assert status.running
            assert len(calls) == 2
            assert server.port != busy
            with psycopg.connect(server.url("postgres", driver="postgresql")) as conn:
                assert conn.info.port == server.port
        finally:
            server.stop()

    # a port the user asked for is never swapped behind their back
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        asked = EmbeddedPostgres(tmp_path / "pg2", port=int(taken.getsockname()[1]))
        with pytest.raises(embedded_pg.EmbeddedPostgresError, match="could not bind"):
            asked.start(timeout=20)
