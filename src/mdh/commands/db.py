"""`mdh db`: start, stop, inspect and migrate the hub database."""

from __future__ import annotations

import sys

import psycopg
import typer
from rich.console import Console

from mdh.embedded_pg import EmbeddedPostgresError
from mdh.runtime import embedded_server, resolve_database
from mdh.settings import Settings

app = typer.Typer(help="The hub database (embedded PostgreSQL unless MDH_DATABASE_URL is set).")
console = Console()
err = Console(stderr=True)


def _fail(message: str) -> None:
    err.print(f"[bold red]error:[/] {message}")
    raise typer.Exit(1)


def _redact(url: str) -> str:
    head, sep, tail = url.partition("@")
    if not sep or ":" not in head.split("//", 1)[-1]:
        return url
    scheme_user = head.rsplit(":", 1)[0]
    return f"{scheme_user}:***@{tail}"


@app.command()
def start() -> None:
    """Start the embedded server (a no-op when it already runs) and create the hub database."""
    settings = Settings()
    if settings.database_url is not None:
        target = resolve_database(settings, start=False)
        _check_reachable(target.url)
        console.print(f"using external database {_redact(target.url)}; nothing to start")
        return
    server = embedded_server(settings)
    before = server.status()
    try:
        target = resolve_database(settings, start=True)
    except EmbeddedPostgresError as exc:
        _fail(str(exc))
        return
    after = server.status()
    verb = "already running" if before.running else "started"
    console.print(f"PostgreSQL {verb} (pid {after.pid}, port {after.port}, data {after.data_dir})")
    console.print(f"url: {_redact(target.url)}")


@app.command()
def stop() -> None:
    """Stop the embedded server."""
    settings = Settings()
    if settings.database_url is not None:
        console.print("using an external database (MDH_DATABASE_URL); nothing to stop")
        return
    try:
        status = embedded_server(settings).stop()
    except EmbeddedPostgresError as exc:
        _fail(str(exc))
        return
    console.print(f"PostgreSQL {status.state}")


@app.command()
def status() -> None:
    """Tell whether the hub database is up; exit 1 when it is not."""
    settings = Settings()
    if settings.database_url is not None:
        target = resolve_database(settings, start=False)
        _check_reachable(target.url)
        console.print(f"external database reachable: {_redact(target.url)}")
        return
    server = embedded_server(settings)
    current = server.status()
    line = f"PostgreSQL {current.state}"
    if current.pid:
        line += f" (pid {current.pid}, port {current.port})"
    if current.detail:
        line += f": {current.detail}"
    console.print(line)
    console.print(f"data: {current.data_dir}")
    if current.running:
        console.print(f"url: {_redact(server.url(settings.database_name))}")
        return
    raise typer.Exit(1)


@app.command()
def url(
    show_password: bool = typer.Option(False, "--show-password", help="Print the password too."),
) -> None:
    """Print the hub database URL (SQLAlchemy form)."""
    settings = Settings()
    target = resolve_database(settings, start=False)
    if target.server is not None and not target.server.initialised:
        _fail(f"no embedded server under {target.server.root}: run `mdh db start` first")
    sys.stdout.write((target.url if show_password else _redact(target.url)) + "\n")


@app.command()
def migrate() -> None:
    """Bring the hub schema to the newest Alembic revision (starts the embedded server if needed)."""
    from hub.db import migrate as migrate_schema

    settings = Settings()
    try:
        target = resolve_database(settings, start=True)
    except EmbeddedPostgresError as exc:
        _fail(str(exc))
        return
    head = migrate_schema(target.url)
    console.print(f"schema at revision {head} on {_redact(target.url)}")


def _check_reachable(sqlalchemy_url: str) -> None:
    libpq_url = sqlalchemy_url.replace("postgresql+psycopg://", "postgresql://", 1)
    try:
        with psycopg.connect(libpq_url, connect_timeout=5) as conn:
            conn.execute("SELECT 1")
    except psycopg.Error as exc:
        _fail(f"cannot reach {_redact(sqlalchemy_url)}: {exc}".strip())
