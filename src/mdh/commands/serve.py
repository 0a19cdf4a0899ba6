"""`mdh serve`: the JSON API and the stewards' pages (uvicorn), wired to the hub here.

The composition root builds the hub services from the settings and the config file, gives the
app the capture's live lag metrics (``MDH_HOME/cdc/metrics.json``, written by `mdh cdc run`)
and a dead-letter replayer made of the CDC parser and source mappings: the API package itself
never imports cdc.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from typing import Annotated, Any

import typer
import uvicorn
from rich.console import Console

from api.app import create_app
from api.context import ApiSettings, ReplayOutcome
from cdc.envelope import parse_message
from cdc.errors import PoisonMessageError
from cdc.mapping import ChangeMapper, SourceMappings
from cdc.raw import RawMessage
from hub.db import create_engine, migrate
from hub.errors import HubError
from hub.services import HubServices
from hub.services.queue import DeadLetterView
from mdh.config import ConfigFileError, MdhConfig, find_config_file, load_config
from mdh.embedded_pg import EmbeddedPostgresError
from mdh.runtime import resolve_database, setup_logging
from mdh.settings import Settings

err = Console(stderr=True)
logger = logging.getLogger("mdh.serve")


def load_mdh_config(settings: Settings) -> MdhConfig:
    try:
        return load_config(find_config_file(settings.config_file))
    except ConfigFileError as exc:
        err.print(f"[bold red]config error:[/] {exc}", highlight=False)
        raise typer.Exit(2) from exc


def build_hub(settings: Settings, config: MdhConfig, *, pool_size: int = 10) -> HubServices:
    """Start the embedded database if needed, migrate it, and build the hub services."""
    try:
        matcher = config.build_matcher()
    except ConfigFileError as exc:
        err.print(f"[bold red]config error:[/] {exc}", highlight=False)
        raise typer.Exit(2) from exc
    try:
        target = resolve_database(settings, start=True)
    except EmbeddedPostgresError as exc:
        err.print(f"[bold red]error:[/] {exc}", highlight=False)
        raise typer.Exit(1) from exc
    migrate(target.url)
    engine = create_engine(target.url, pool_size=pool_size)
    return HubServices(engine, matcher=matcher, rules=config.survivorship, targets=config.targets)


def capture_metrics_reader(settings: Settings) -> Any:
    """A function returning the capture's metrics file (None when no capture ever ran)."""
    path = settings.home.expanduser().absolute() / "cdc" / "metrics.json"

    def read() -> Mapping[str, Any] | None:
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        return data if isinstance(data, dict) else None

    return read


class DeadLetterReplayer:
    """Parses and maps a dead letter's raw message with the current source mappings and
    applies the change (idempotent: a change not newer than the stored row changes nothing)."""

    def __init__(self, hub: HubServices, mappings: SourceMappings) -> None:
        self.hub = hub
        self.mappings = mappings

    def __call__(self, letter: DeadLetterView) -> ReplayOutcome:
        topic = ""
        if letter.position is not None and isinstance(letter.position.get("topic"), str):
            topic = letter.position["topic"]
        message = RawMessage(key=letter.raw_key, value=letter.raw_value, topic=topic)
        try:
            envelope = parse_message(message)
            change = ChangeMapper(self.mappings).map_change(envelope)
        except PoisonMessageError as exc:
            return ReplayOutcome(applied=False, detail=f"still not applicable: {exc}")
        if change is None:
            return ReplayOutcome(applied=True, detail="nothing to apply (no row change)")
        try:
            result = self.hub.apply_changes([change])
        except HubError as exc:
            return ReplayOutcome(applied=False, detail=f"hub refused the change: {exc}")
        return ReplayOutcome(
            applied=True,
            detail=f"{change.key}: applied={result.applied} stale={result.stale} "
            f"invalid={result.invalid}",
        )


def serve(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port.", min=1, max=65535)] = 8000,
    sla_hours: Annotated[
        float, typer.Option(help="Review SLA shown in the queue and reports.", min=0.01)
    ] = 48.0,
    auth_cache_seconds: Annotated[
        float, typer.Option(help="Trust a checked key this long before asking the database.")
    ] = 5.0,
    secure_cookies: Annotated[
        bool, typer.Option(help="Mark the steward pages' cookie Secure (behind HTTPS).")
    ] = False,
    pool_size: Annotated[int, typer.Option(help="Database connections.", min=1)] = 10,
) -> None:
    """Serve the JSON API (/v1, OpenAPI at /docs) and the steward pages (/ui)."""
    settings = Settings()
    setup_logging(settings)
    config = load_mdh_config(settings)
    hub = build_hub(settings, config, pool_size=pool_size)
    replayer = None if config.mappings is None else DeadLetterReplayer(hub, config.mappings)
    app = create_app(
        hub,
        ApiSettings(
            auth_cache_seconds=auth_cache_seconds,
            review_sla_hours=sla_hours,
            secure_cookies=secure_cookies,
        ),
        capture_status=capture_metrics_reader(settings),
        replayer=replayer,
    )
    logger.info("serving on http://%s:%d (API /v1, docs /docs, pages /ui)", host, port)
    uvicorn.run(app, host=host, port=port, log_level=settings.log_level.lower(), access_log=False)
