"""`mdh publish`: deliver golden changes to the configured targets, and tend the outbox.

- ``run``: the outbox relay (``cdc.relay``) until Ctrl-C or SIGTERM; several may run at once.
- ``status``: per target, what is pending, in flight, retrying, delivered, skipped and dead,
  and the sync latency (source commit to target acknowledgement) percentiles.
- ``retry``: revive dead deliveries (after fixing what made the target refuse them).
- ``replay``: deliver again what a target already has (a target that lost its copy).
- ``prune``: delete settled rows past the retention (``run`` also does it every hour).
"""

from __future__ import annotations

import json
import logging
import math
import sys
import threading
from dataclasses import asdict
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from cdc.relay import OutboxRelay, RelayFailedError, RelaySettings, TargetCounts, build_relays
from cdc.targets import TargetSetupError, TargetUnavailableError
from hub.services import HubServices
from hub.services.sync import Percentiles
from mdh.commands.serve import build_hub, load_mdh_config
from mdh.config import MdhConfig
from mdh.runtime import setup_logging, stop_on_signals
from mdh.settings import Settings

app = typer.Typer(help="Publish golden records to CRM, billing, ERP, webhooks and Kafka.")
console = Console()
err = Console(stderr=True)
logger = logging.getLogger("mdh.publish")


def _fail(message: str, code: int = 1) -> typer.Exit:
    err.print(f"[bold red]error:[/] {message}", highlight=False)
    return typer.Exit(code)


def _setup(targets: list[str] | None) -> tuple[MdhConfig, HubServices]:
    settings = Settings()
    setup_logging(settings)
    config = load_mdh_config(settings)
    unknown = [t for t in targets or () if t not in config.targets]
    if unknown:
        raise _fail(
            f"{config.file}: targets.{unknown[0]}: expected a configured target"
            f" (configured: {', '.join(config.targets) or 'none'})",
            2,
        )
    return config, build_hub(settings, config, pool_size=4)


@app.command()
def run(
    target: Annotated[
        list[str] | None, typer.Option("--target", "-t", help="Only these targets (default: all).")
    ] = None,
    batch_size: Annotated[int, typer.Option(min=1, help="Rows claimed at a time.")] = 100,
    lease_seconds: Annotated[
        float, typer.Option(min=5, help="How long claimed rows are this relay's.")
    ] = 60.0,
    workers: Annotated[
        int, typer.Option(min=1, max=16, help="Parallel deliveries per target.")
    ] = 2,
    retention: Annotated[
        str,
        typer.Option(
            help="Prune settled rows older than this every hour (7d, 12h, 30m; 0: never).",
        ),
    ] = "7d",
) -> None:
    """Deliver the outbox to the targets until Ctrl-C or SIGTERM."""
    kept = _duration("--retention", retention)
    config, hub = _setup(target)
    specs = {n: s for n, s in config.target_specs.items() if not target or n in target}
    if not specs:
        raise _fail(
            f"{config.file}: targets: expected targets with settings (kind, connection...);"
            " a list of names only writes outbox rows",
            2,
        )
    too_slow = [n for n, s in specs.items() if s.delivery.timeout_seconds * 2 > lease_seconds]
    if too_slow:
        raise _fail(
            f"{config.file}: targets.{too_slow[0]}.delivery.timeout_seconds: expected at most"
            f" half the lease ({lease_seconds:g}s)",
            2,
        )
    stop = threading.Event()
    relays = build_relays(
        hub,
        specs,
        stop,
        workers=workers,
        settings=RelaySettings(
            batch_size=batch_size,
            lease=timedelta(seconds=lease_seconds),
            retention=kept if kept else None,
        ),
    )
    for adapter in (a for relay in relays for a in relay.adapters):
        try:
            adapter.open()
        except TargetSetupError as exc:
            raise _fail(f"{config.file}: targets.{exc.target}: {exc.detail}", 2) from exc
        except TargetUnavailableError as exc:
            logger.warning("%s is not reachable yet (%s); will keep trying", exc.target, exc.detail)
    logger.info("publishing to %s (%d workers each)", ", ".join(specs), workers)
    failure: RelayFailedError | None = None
    try:
        with stop_on_signals(stop, logger, "the deliveries in flight"):
            for relay in relays:
                relay.start()
            for relay in relays:
                try:
                    relay.join()
                except RelayFailedError as exc:
                    failure = failure or exc
    finally:
        hub.engine.dispose()
        _print_counts(relays)
    if failure is not None:
        raise _fail(str(failure))


def _print_counts(relays: list[OutboxRelay]) -> None:
    totals: dict[str, TargetCounts] = {}
    for relay in relays:
        for name, c in relay.counts().items():
            total = totals.setdefault(name, TargetCounts())
            total.delivered += c.delivered
            total.skipped += c.skipped
            total.failed += c.failed
            total.dead += c.dead
    for name, c in totals.items():
        err.print(
            f"{name}: {c.delivered} delivered, {c.skipped} skipped, {c.failed} failed attempts,"
            f" {c.dead} dead",
            highlight=False,
        )


@app.command()
def status(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    hours: Annotated[float, typer.Option(min=0.01, help="Latency window: the last N hours.")] = 24,
    dead: Annotated[bool, typer.Option("--dead", help="Also list the latest dead rows.")] = False,
) -> None:
    """Per target: pending, in flight, retrying, delivered, skipped, dead; sync latency."""
    config, hub = _setup(None)
    try:
        publishing = hub.publishing()
        rows = {s.target: s for s in publishing.status()}
        since = datetime.now(UTC) - timedelta(hours=hours)
        latency = {s.target: s for s in hub.sync_latency(since=since)}
        dead_rows = publishing.dead(limit=20) if dead else []
    finally:
        hub.engine.dispose()
    names = list(dict.fromkeys([*config.targets, *rows, *latency]))
    if as_json:
        data: dict[str, Any] = {
            "latency_since": since.isoformat(),
            "targets": {
                name: {
                    "status": _jsonable(asdict(rows[name])) if name in rows else None,
                    "latency_ms": _jsonable(asdict(latency[name])) if name in latency else None,
                }
                for name in names
            },
        }
        if dead:
            data["dead"] = [_jsonable(asdict(d)) for d in dead_rows]
        sys.stdout.write(json.dumps(data, indent=2, sort_keys=True) + "\n")
        return
    table = Table("target", "pending", "in flight", "retrying", "delivered", "skipped", "dead")
    for column in ("oldest pending", "p50 ms", "p95 ms", "p99 ms", "last error"):
        table.add_column(column)
    now = datetime.now(UTC)
    for name in names:
        s = rows.get(name)
        end_to_end = latency[name].source_to_target if name in latency else None
        table.add_row(
            name,
            *(
                str(getattr(s, f)) if s else "0"
                for f in ("pending", "in_flight", "retrying", "delivered", "skipped", "dead")
            ),
            _age(now, s.oldest_pending_at if s else None),
            *_percentile_cells(end_to_end),
            (s.last_error or "-")[:60] if s else "-",
        )
    console.print(table)
    console.print(
        f"latency: source commit to target acknowledgement, acknowledged in the last {hours:g} h",
        highlight=False,
    )
    if dead:
        listing = Table("id", "target", "golden", "version", "attempts", "dead at", "last error")
        for d in dead_rows:
            listing.add_row(
                str(d.id),
                d.target,
                str(d.golden_id),
                str(d.version),
                str(d.attempts),
                d.dead_at.isoformat(timespec="seconds"),
                (d.last_error or "")[:80],
            )
        console.print(listing)


def _percentile_cells(p: Percentiles | None) -> list[str]:
    if p is None or p.count == 0:
        return ["-", "-", "-"]
    return [f"{v:.0f}" if v is not None else "-" for v in (p.p50, p.p95, p.p99)]


def _age(now: datetime, at: datetime | None) -> str:
    if at is None:
        return "-"
    seconds = (now - at).total_seconds()
    return f"{seconds:.0f}s" if seconds < 120 else f"{seconds / 60:.0f}min"


def _jsonable(value: Any) -> Any:
    return json.loads(json.dumps(value, default=str))


@app.command()
def retry(
    target: Annotated[str | None, typer.Option("--target", "-t", help="Only this target.")] = None,
    ids: Annotated[
        list[int] | None, typer.Option("--id", help="Only these outbox rows (repeatable).")
    ] = None,
    include_superseded: Annotated[
        bool,
        typer.Option(
            help="Also rows whose golden record has a later version delivered (they would"
            " arrive after it)."
        ),
    ] = False,
) -> None:
    """Revive dead deliveries: they are attempted again by the running relays."""
    _, hub = _setup([target] if target else None)
    try:
        result = hub.publishing().retry_dead(
            target=target, ids=ids or (), include_superseded=include_superseded
        )
    finally:
        hub.engine.dispose()
    console.print(f"revived {result.revived} dead deliveries", highlight=False)
    if result.superseded:
        console.print(
            f"{result.superseded} left dead: a later version of their golden record was"
            " delivered (--include-superseded sends them anyway)",
            highlight=False,
        )


@app.command()
def discard(
    reason: Annotated[
        str, typer.Option("--reason", help="Why they are given up (kept with each row).")
    ],
    target: Annotated[str | None, typer.Option("--target", "-t", help="Only this target.")] = None,
    ids: Annotated[
        list[int] | None, typer.Option("--id", help="Only these outbox rows (repeatable).")
    ] = None,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask to confirm.")] = False,
) -> None:
    """Give up on dead deliveries for good: they leave the dead list, are never sent, and
    count as no delivery in the sync-latency KPI (``mdh publish status --dead`` first)."""
    if not reason.strip():
        raise _fail("--reason: say why the deliveries are given up", 2)
    if not (target or ids):
        raise _fail("name a --target or an --id (every target's dead rows at once: refused)", 2)
    _, hub = _setup([target] if target else None)
    scope = f"rows {', '.join(map(str, ids))}" if ids else f"every dead delivery to {target}"
    if not yes and not typer.confirm(f"Discard {scope} for good?"):
        hub.engine.dispose()
        raise typer.Exit(1)
    try:
        count = hub.publishing().discard_dead(reason=reason.strip(), target=target, ids=ids or ())
    finally:
        hub.engine.dispose()
    console.print(f"discarded {count} dead deliveries", highlight=False)


@app.command()
def replay(
    target: Annotated[str, typer.Option("--target", "-t", help="The target to send to again.")],
    golden: Annotated[
        list[int] | None, typer.Option("--golden", "-g", help="Only these golden ids.")
    ] = None,
    since: Annotated[
        datetime | None, typer.Option(help="Only changes made since (ISO time, UTC if naive).")
    ] = None,
    all_versions: Annotated[
        bool, typer.Option(help="Every version, in order (default: the latest of each).")
    ] = False,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask to confirm.")] = False,
) -> None:
    """Deliver again what a target already received (each golden record's latest version)."""
    _, hub = _setup([target])
    if since is not None and since.tzinfo is None:
        since = since.replace(tzinfo=UTC)
    scope = f"golden {', '.join(map(str, golden))}" if golden else "every golden record"
    if not yes and not typer.confirm(f"Replay {scope} to {target}?"):
        hub.engine.dispose()
        raise typer.Exit(1)
    try:
        count = hub.publishing().replay(
            target, golden_ids=golden or (), since=since, all_versions=all_versions
        )
    finally:
        hub.engine.dispose()
    console.print(f"{count} deliveries to {target} queued again", highlight=False)


_UNITS = {"d": 86400.0, "h": 3600.0, "m": 60.0, "s": 1.0}


def _duration(option: str, text: str) -> timedelta:
    """``7d``, ``12h``, ``30m``, ``45s`` or a number of days."""
    value = text.strip().lower()
    unit = _UNITS.get(value[-1:])
    number = value[:-1] if unit is not None else value
    try:
        amount = float(number)
    except ValueError:
        amount = -1.0
    if not math.isfinite(amount) or amount < 0:
        raise _fail(f"{option}: expected a duration like 7d, 12h or 30m, got {text!r}", 2)
    return timedelta(seconds=amount * (unit or _UNITS["d"]))


@app.command()
def prune(
    older_than: Annotated[
        str, typer.Option(help="Settled longer ago than this (7d, 12h, 30m).")
    ] = "7d",
) -> None:
    """Delete delivered and skipped rows settled before the retention that a later version of
    their golden record superseded; pending and dead rows, and each golden record's latest
    delivered version per target, stay (replay sends those)."""
    retention = _duration("--older-than", older_than)
    _, hub = _setup(None)
    try:
        count = hub.publishing().prune(older_than=retention)
    finally:
        hub.engine.dispose()
    console.print(f"pruned {count} outbox rows settled more than {retention} ago", highlight=False)
