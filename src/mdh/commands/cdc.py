"""`mdh cdc`: capture changes into the hub (run), replay a JSONL file, reset capture, show lag.

State lives under MDH_HOME, never in the current directory: ``cdc/<source>/offsets.dat``
(Debezium offsets), ``logs/debezium.log``, ``cdc/metrics.json`` (lag metrics, rewritten every
second by ``run``) and ``cdc/run.pid``.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from cdc.apply import ApplyInterruptedError, ApplyLoop
from cdc.debezium import DebeziumSource, SlotInUseError
from cdc.debezium import reset as reset_source
from cdc.kafka import KafkaSource, KafkaSourceSettings
from cdc.mapping import ChangeMapper
from cdc.metrics import CaptureMetrics
from cdc.replay import read_replay
from hub.db import create_engine, migrate
from hub.services import HubServices
from mdh.config import ConfigFileError, MdhConfig, SourceConnection, find_config_file, load_config
from mdh.embedded_pg import EmbeddedPostgresError
from mdh.mappers import build_mapper
from mdh.runtime import resolve_database, setup_logging, stop_on_signals
from mdh.settings import Settings

app = typer.Typer(help="Change data capture: Debezium (embedded or via Kafka) into the hub.")
console = Console()
err = Console(stderr=True)
logger = logging.getLogger("mdh.cdc")

METRICS_FILE = "metrics.json"
PID_FILE = "run.pid"


# --- wiring -------------------------------------------------------------------------------


def _settings() -> Settings:
    return Settings()


def _config(settings: Settings) -> MdhConfig:
    path = find_config_file(settings.config_file)
    try:
        return load_config(path)
    except ConfigFileError as exc:
        err.print(f"[bold red]config error:[/] {exc}", highlight=False)
        raise typer.Exit(2) from exc


def _fail(message: str, code: int = 1) -> typer.Exit:
    err.print(f"[bold red]error:[/] {message}", highlight=False)
    return typer.Exit(code)


def cdc_dir(settings: Settings) -> Path:
    return settings.home.expanduser().absolute() / "cdc"


def _hub(settings: Settings, config: MdhConfig) -> HubServices:
    """Start the embedded database if needed, migrate it, and build the hub services."""
    try:
        matcher = config.build_matcher()
    except ConfigFileError as exc:
        err.print(f"[bold red]config error:[/] {exc}", highlight=False)
        raise typer.Exit(2) from exc
    try:
        target = resolve_database(settings, start=True)
    except EmbeddedPostgresError as exc:
        raise _fail(str(exc)) from exc
    migrate(target.url)
    engine = create_engine(target.url)
    return HubServices(engine, matcher=matcher, rules=config.survivorship, targets=config.targets)


def _mapper(config: MdhConfig) -> ChangeMapper:
    """The declarative mapping plus the config's enrichment joins (``mdh.mappers``)."""
    if config.mappings is None:
        raise _fail(f"{config.file}: sources: no source is configured", 2)
    return build_mapper(config)


def _connections(config: MdhConfig, names: list[str] | None) -> list[SourceConnection]:
    wanted = names or sorted(config.connections)
    unknown = [n for n in wanted if n not in config.connections]
    if unknown:
        raise _fail(
            f"{config.file}: sources.{unknown[0]}.connection: expected a configured source "
            f"with a connection (configured: {', '.join(sorted(config.connections)) or 'none'})",
            2,
        )
    if not wanted:
        raise _fail(f"{config.file}: sources: expected a source with a 'connection:'", 2)
    return [config.connections[n] for n in wanted]


def _write_json(path: Path, data: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(".tmp")
    temporary.write_text(json.dumps(data, indent=2, sort_keys=True), encoding="utf-8")
    temporary.replace(path)


def _write_metrics(settings: Settings, metrics: CaptureMetrics, transport: str) -> None:
    _write_json(
        cdc_dir(settings) / METRICS_FILE,
        {
            "written_at": datetime.now(UTC).isoformat(),
            "pid": os.getpid(),
            "transport": transport,
            "sources": metrics.snapshot(),
        },
    )


# --- commands ------------------------------------------------------------------------------


@app.command()
def run(
    source: Annotated[
        list[str] | None,
        typer.Option("--source", "-s", help="Capture only these sources (default: all)."),
    ] = None,
) -> None:
    """Capture changes and apply them to the hub until Ctrl-C or SIGTERM."""
    settings = _settings()
    setup_logging(settings)
    config = _config(settings)
    _mapper(config)  # fail early (exit 2) when no source is configured
    transport = config.capture.transport
    connections = _connections(config, source) if transport == "embedded" else []
    hub = _hub(settings, config)
    metrics = CaptureMetrics()
    stop = threading.Event()
    state = cdc_dir(settings)
    state.mkdir(parents=True, exist_ok=True)
    (state / PID_FILE).write_text(str(os.getpid()))
    try:
        with stop_on_signals(stop, logger, "the batch in flight"):
            if transport == "kafka":
                code = _run_kafka(settings, config, hub, metrics, stop)
            else:
                code = _run_embedded(settings, config, connections, hub, metrics, stop)
    finally:
        _write_metrics(settings, metrics, transport)
        with contextlib.suppress(FileNotFoundError):
            (state / PID_FILE).unlink()
        hub.engine.dispose()
    if code:
        raise typer.Exit(code)


def _run_embedded(
    settings: Settings,
    config: MdhConfig,
    connections: list[SourceConnection],
    hub: HubServices,
    metrics: CaptureMetrics,
    stop: threading.Event,
) -> int:
    log_dir = settings.home.expanduser().absolute() / "logs"
    engines: list[DebeziumSource] = []
    for connection in connections:
        source = connection.postgres_source()
        loop = ApplyLoop(
            hub,
            _mapper(config),
            label=connection.name,
            metrics=metrics,
            stop=stop,
            max_message_bytes=config.capture.max_message_bytes,
            reconcile_snapshots=source.snapshots_whole_tables,
            snapshot_delete_limit=source.snapshot_delete_limit,
        )
        engine = DebeziumSource(
            source,
            cdc_dir(settings) / connection.name,
            loop,
            log_dir=log_dir,
        )
        engine.start()
        engines.append(engine)
        logger.info("capturing %s (%s)", connection.name, ", ".join(connection.tables))
    code = 0
    try:
        while not stop.wait(1.0):
            _write_metrics(settings, metrics, "embedded")
            for engine in engines:
                if engine.running:
                    continue
                try:
                    engine.wait(0)
                    logger.error("the engine for %s stopped by itself", engine.source.name)
                except Exception as exc:
                    logger.error("capture of %s failed: %s", engine.source.name, exc)
                code = 1
                stop.set()
    finally:
        for engine in engines:
            engine.stop()
        for engine in engines:
            try:
                engine.wait(0)
            except ApplyInterruptedError:
                pass  # stopped while retrying: that batch comes again next time
            except Exception as exc:
                if not code:
                    logger.error("capture of %s failed: %s", engine.source.name, exc)
                code = 1
    return code


def _run_kafka(
    settings: Settings,
    config: MdhConfig,
    hub: HubServices,
    metrics: CaptureMetrics,
    stop: threading.Event,
) -> int:
    kafka = config.capture.kafka
    assert kafka is not None  # validated with the config
    options = KafkaSourceSettings(
        bootstrap_servers=kafka.bootstrap_servers,
        group_id=kafka.group_id,
        topics=kafka.topics,
        topic_pattern=kafka.topic_pattern,
        batch_size=config.capture.batch_size,
        max_wait_seconds=config.capture.max_wait_ms / 1000,
        options=dict(kafka.options),
    )
    loop = ApplyLoop(
        hub,
        _mapper(config),
        label=options.position_source,
        metrics=metrics,
        stop=stop,
        max_message_bytes=config.capture.max_message_bytes,
    )

    def write_metrics_every_second() -> None:
        while not stop.wait(1.0):
            _write_metrics(settings, metrics, "kafka")

    writer = threading.Thread(target=write_metrics_every_second, daemon=True)
    writer.start()
    try:
        KafkaSource(options, loop, stop=stop).run()
    except ApplyInterruptedError:
        pass
    except Exception as exc:
        logger.error("Kafka capture failed: %s", exc)
        return 1
    finally:
        stop.set()
    return 0


@app.command()
def replay(
    file: Annotated[Path, typer.Argument(help="JSONL: one {key, value[, topic]} per line.")],
    batch_size: Annotated[
        int, typer.Option("--batch-size", min=1, help="Messages per transaction.")
    ] = 500,
) -> None:
    """Apply the Debezium messages of a JSONL file through the same apply loop as `run`."""
    settings = _settings()
    setup_logging(settings)
    config = _config(settings)
    if not file.is_file():
        raise _fail(f"{file}: expected a readable JSONL file", 2)
    mapper = _mapper(config)
    hub = _hub(settings, config)
    stop = threading.Event()
    loop = ApplyLoop(
        hub,
        mapper,
        label=f"replay:{file.name}",
        stop=stop,
        max_message_bytes=config.capture.max_message_bytes,
    )
    totals = {"messages": 0, "changes": 0, "applied": 0, "stale": 0, "invalid": 0}
    totals |= {"deleted": 0, "dead_letters": 0, "ignored": 0}
    began = time.monotonic()
    try:
        with stop_on_signals(stop, logger, "the batch in flight"):
            for batch in read_replay(file, batch_size):
                if stop.is_set():
                    break
                outcome = loop.apply(batch)
                totals["messages"] += outcome.messages
                totals["changes"] += outcome.changes
                totals["dead_letters"] += outcome.dead_letters
                totals["ignored"] += outcome.ignored
                if outcome.result is not None:
                    totals["applied"] += outcome.result.applied
                    totals["stale"] += outcome.result.stale
                    totals["invalid"] += outcome.result.invalid
                    totals["deleted"] += outcome.result.deleted
    except ApplyInterruptedError as exc:
        raise _fail(str(exc)) from exc
    finally:
        hub.engine.dispose()
    seconds = time.monotonic() - began
    console.print(
        f"replayed {file}: {totals['messages']} messages in {seconds:.1f}s; "
        f"{totals['applied']} applied, {totals['deleted']} deleted, {totals['stale']} already "
        f"applied or older, {totals['invalid']} invalid, {totals['dead_letters']} dead-lettered, "
        f"{totals['ignored']} without a row change",
        highlight=False,
        soft_wrap=True,
    )
    if mapper.unmapped:
        console.print(f"unmapped tables ignored: {dict(mapper.unmapped)}", highlight=False)


@app.command()
def reset(
    source: Annotated[
        list[str] | None, typer.Option("--source", "-s", help="Only these sources.")
    ] = None,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask to confirm.")] = False,
    force: Annotated[
        bool, typer.Option("--force", help="Terminate a backend still holding the slot.")
    ] = False,
) -> None:
    """Forget capture state: drop replication slots and publications, delete offsets.

    The next `mdh cdc run` snapshots the tables again (applying is idempotent, so the hub's
    golden records do not change for rows that did not change).
    """
    settings = _settings()
    setup_logging(settings)
    config = _config(settings)
    connections = _connections(config, source)
    names = ", ".join(c.name for c in connections)
    if not yes and not typer.confirm(f"Reset capture of {names}?"):
        raise typer.Exit(1)
    code = 0
    for connection in connections:
        try:
            result = reset_source(
                connection.postgres_source(), cdc_dir(settings) / connection.name, force=force
            )
        except SlotInUseError as exc:
            err.print(f"[bold red]{connection.name}:[/] {exc} (or pass --force)", highlight=False)
            code = 1
            continue
        except Exception as exc:
            err.print(f"[bold red]{connection.name}:[/] {exc}", highlight=False)
            code = 1
            continue
        console.print(
            f"{connection.name}: slot {'dropped' if result.slot_dropped else 'absent'}, "
            f"publication {'dropped' if result.publication_dropped else 'absent'}, "
            f"offsets {'deleted' if result.offsets_deleted else 'absent'}"
        )
    if code:
        raise typer.Exit(code)


@app.command()
def status(
    as_json: Annotated[bool, typer.Option("--json", help="Print the metrics as JSON.")] = False,
) -> None:
    """Per-source lag: last applied source commit, events/s, commit-to-golden percentiles."""
    settings = _settings()
    path = cdc_dir(settings) / METRICS_FILE
    if not path.is_file():
        console.print(f"no capture has run under {settings.home} yet")
        raise typer.Exit(1)
    data = json.loads(path.read_text(encoding="utf-8"))
    data["running"] = _running(cdc_dir(settings) / PID_FILE)
    if as_json:
        sys.stdout.write(json.dumps(data, indent=2, sort_keys=True) + "\n")
        return
    state = "running" if data["running"] else "not running"
    console.print(
        f"capture {state} ({data.get('transport')}); metrics of {data.get('written_at')}",
        highlight=False,
    )
    table = Table("source", "last source commit", "events", "events/s", "dead", "p50 ms")
    table.add_column("p95 ms")
    table.add_column("p99 ms")
    for name, m in sorted(data.get("sources", {}).items()):
        latency = m.get("commit_to_golden_ms", {})
        table.add_row(
            name,
            str(m.get("last_commit_at") or "-"),
            str(m.get("events", 0)),
            str(m.get("events_per_second", 0)),
            str(m.get("dead_letters", 0)),
            *(
                str(latency.get(p) if latency.get(p) is not None else "-")
                for p in ("p50", "p95", "p99")
            ),
        )
    console.print(table)


def _running(pid_file: Path) -> bool:
    try:
        pid = int(pid_file.read_text().strip())
    except (OSError, ValueError):
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
