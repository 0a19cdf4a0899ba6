"""Every part of `mdh demo` in one process: database, sources, capture, hub, API and traffic.

``DemoRunner`` is what the command (and ``bench/end_to_end.py``) drives. Its life, in order:

1. ``prepare``: start the embedded PostgreSQL (unless ``MDH_DATABASE_URL`` names a server),
   then with ``reset`` drop the capture state (replication slots, publications, offsets) and
   empty the hub; create and seed the source databases once (a seeded world is resumed, never
   seeded again); migrate the hub; load the demo config with the sources' URLs.
2. ``start``: one Debezium engine per source system, each feeding its own apply loop (the
   hub worker) in its own thread, exactly as ``mdh cdc run`` wires them; the API
   (``api.app.create_app`` under uvicorn, in a thread); the outbox relay writing golden
   records back to the three systems (their write-backs come back through CDC and are
   recognised as echoes). A source whose offsets are stored streams on from them: no second
   snapshot.
3. ``poll``, every second or so: reads progress (rows applied per system, golden records,
   review queue, duplicate rates, lag), starts the live traffic once every source's rows have
   reached the hub, and raises ``DemoPartFailedError`` when a part died.
4. ``drain`` (bounded runs): stops the traffic, waits until the outbox relay has delivered
   every golden change, then until a marker written into each source database after that has
   come through its apply loop, so the final report sees every change.
5. ``close``: traffic, API, outbox relay (deliveries in flight finish), capture engines (the
   batch in flight finishes; offsets flushed), connections, and last the embedded server if
   this run started it. Safe to call at any
   point, also after a failure half-way through ``prepare``.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
import sqlalchemy as sa
import uvicorn

from api.app import create_app
from cdc.apply import ApplyInterruptedError, ApplyLoop
from cdc.debezium import DebeziumSource
from cdc.debezium import reset as reset_capture
from cdc.envelope import ChangeEnvelope, Operation
from cdc.metrics import CaptureMetrics
from cdc.relay import OutboxRelay, RelayFailedError, build_relays
from cdc.targets import TargetSetupError, TargetUnavailableError
from hub.db import create_engine, migrate
from hub.errors import HubError
from hub.matcher import Matcher
from hub.model import SourceChange
from hub.services import HubServices
from hub.services.keys import ApiRole, AuditContext
from hub.services.reports import ReportQuery
from hub.tables import HUB_TABLES
from matching import MatchModel
from mdh.config import MdhConfig, SourceConnection
from mdh.demo.config import demo_config_path, load_demo_config
from mdh.demo.evaluation import QualityReport, evaluate
from mdh.demo.generator import GeneratorConfig, SeedResult, count_rows, find_dataset, seed_sources
from mdh.demo.mapping import DemoChangeMapper, ReferenceData
from mdh.demo.schemas import SYSTEMS, TRUTH_DATABASE, TRUTH_SCHEMA, DemoDatabases, DemoError
from mdh.demo.schemas import create_sources as create_source_databases
from mdh.demo.traffic import TrafficConfig, TrafficCounts, run_traffic
from mdh.demo.training import with_prior_for
from mdh.embedded_pg import EmbeddedPostgres
from mdh.runtime import embedded_server, resolve_database
from mdh.settings import Settings

logger = logging.getLogger("mdh.demo")

DEFAULT_CUSTOMERS = 10_000
DEFAULT_SEED = 42
STATUS_FILE = "status.json"
REPORT_FILE = "report.json"
_DRAIN_PREFIX = "mdh.demo.drain"
_COUNT_INTERVAL = 10.0
"""Seconds between counts of the hub for the progress display (estimated in between)."""
_TRUTH_INTERVAL = 60.0
_DEMO_ACTOR = AuditContext(actor="mdh-demo", role=ApiRole.ADMIN)


class DemoPartFailedError(DemoError):
    """One part of the demo stopped; the others are stopped too."""

    def __init__(self, part: str, detail: str) -> None:
        self.part = part
        self.detail = detail
        super().__init__(f"{part}: {detail}")


@dataclass(frozen=True)
class DemoOptions:
    customers: int | None = None
    """None: the seeded world's size when there is one, else ``DEFAULT_CUSTOMERS``."""
    seed: int | None = None
    rate: float = 5.0
    """Traffic transactions per second (0: no traffic)."""
    reset: bool = False
    api: bool = True
    publish: bool = True
    """Run the outbox relay: golden records written back to CRM, billing and ERP."""
    api_host: str = "127.0.0.1"
    api_port: int = 8000


@dataclass(frozen=True)
class SystemStatus:
    name: str
    rows: int
    """Rows in the system's tables when capture started (the snapshot's size)."""
    applied: int
    """Live source records of the system in the hub."""
    events: int
    events_per_second: float
    lag_p50_ms: float | None
    lag_p95_ms: float | None
    dead_letters: int

    @property
    def snapshot_done(self) -> bool:
        return self.applied >= self.rows


@dataclass(frozen=True)
class DemoStatus:
    phase: str
    """"snapshot" until every source's rows are in the hub, then "live"; "draining"."""
    elapsed: float
    snapshot_seconds: float | None
    systems: tuple[SystemStatus, ...]
    source_records: int
    golden_records: int
    open_review_tasks: int
    duplicate_rate: float | None
    true_duplicate_rate: float | None
    traffic: dict[str, int]
    api_url: str | None

    def to_json(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["written_at"] = datetime.now(UTC).isoformat()
        return data


@dataclass
class _Part:
    """A thread-backed part (traffic, API) and the error it died with, if any."""

    name: str
    thread: threading.Thread | None = None
    error: BaseException | None = None
    stop: Callable[[], None] | None = None


@dataclass(frozen=True)
class _Counts:
    """The hub counted at ``at`` (monotonic), and the applied changes per system then."""

    at: float | None = None
    applied: dict[str, int] = field(default_factory=dict)
    changes: dict[str, int] = field(default_factory=dict)
    linked: int = 0
    golden: int = 0
    review: int = 0


@dataclass
class _Drain:
    """Markers written into the sources and whether each came through its apply loop."""

    token: str = ""
    seen: dict[str, bool] = field(default_factory=dict)


def external_databases(url: str) -> DemoDatabases:
    """The demo databases on the server of an external hub URL (same host and credentials).

    The server needs ``wal_level=logical`` and a user allowed to create databases,
    publications and replication slots.
    """
    hub = sa.engine.make_url(url).set(drivername="postgresql")

    def on(database: str) -> str:
        return hub.set(database=database).render_as_string(hide_password=False)

    return DemoDatabases(
        crm=on("crm"),
        billing=on("billing"),
        erp=on("erp"),
        truth=on(TRUTH_DATABASE),
        admin=on("postgres"),
    )


class _Tracker(DemoChangeMapper):
    """The demo mapper, also noticing drain markers (logical messages) as they pass."""

    def __init__(self, runner: DemoRunner, system: str, *args: Any) -> None:
        super().__init__(*args)
        self._runner = runner
        self._system = system

    def map_change(self, envelope: ChangeEnvelope) -> SourceChange | None:
        message = envelope.message
        if (
            envelope.op is Operation.MESSAGE
            and message is not None
            and message.prefix == _DRAIN_PREFIX
        ):
            self._runner.marker_seen(self._system, message.content.decode("utf-8", "replace"))
        return super().map_change(envelope)


class DemoRunner:
    """The demo's parts and their life (see the module docstring).

    Args:
        settings: where things live (``MDH_HOME``, ``MDH_DATABASE_URL``...).
        options: what to run.
        say: receives one line per step of ``prepare`` (the command prints them).
    """

    def __init__(
        self, settings: Settings, options: DemoOptions, say: Callable[[str], None] = logger.info
    ) -> None:
        self.settings = settings
        self.options = options
        self.say = say
        self.home = settings.home.expanduser().absolute()
        self.state_dir = self.home / "demo"
        self.started_at = time.monotonic()
        self.server: EmbeddedPostgres | None = None
        self._stop_server = False
        self.hub_url = ""
        self.databases: DemoDatabases | None = None
        self.config: MdhConfig | None = None
        self.generator: GeneratorConfig | None = None
        self.seed_result: SeedResult | None = None
        self.hub: HubServices | None = None
        self.metrics = CaptureMetrics()
        self.references: ReferenceData | None = None
        self.engines: list[DebeziumSource] = []
        self.loops: dict[str, ApplyLoop] = {}
        self.snapshot_rows: dict[str, int] = {}
        self.snapshot_seconds: float | None = None
        self.capture_resumed = False
        """True when every source streams on from stored offsets (no snapshot this run)."""
        self._offsets_stored = False
        self._first_poll = True
        self.traffic_counts = TrafficCounts()
        self._traffic_stop = threading.Event()
        self._stop = threading.Event()
        self._traffic = _Part("traffic")
        self._api = _Part("API")
        self.relays: list[OutboxRelay] = []
        self._relay_stop = threading.Event()
        self.api_url: str | None = None
        self._status_engine: sa.Engine | None = None
        self._truth_rate: tuple[float, float | None] = (0.0, None)
        self._counts = _Counts()
        self._drain = _Drain()
        self._drain_lock = threading.Lock()
        self.live_since: datetime | None = None
        """When the snapshot was in and live traffic began (wall clock)."""
        self._phase = "starting"

    # --- 1. prepare ----------------------------------------------------------------------

    def prepare(self) -> None:
        """Database, sources (seeded once), hub schema and config; see the module docstring."""
        self.state_dir.mkdir(parents=True, exist_ok=True)
        if self.settings.database_url is None:
            server = embedded_server(self.settings)
            self._stop_server = not server.status().running
            self.say(f"starting PostgreSQL ({server.root})")
        target = resolve_database(self.settings, start=True)
        self.server, self.hub_url = target.server, target.url
        databases = (
            DemoDatabases.on_server(target.server)
            if target.server is not None
            else external_databases(target.url)
        )
        self.databases = databases
        create_source_databases(databases)  # the databases must exist for the config and reset
        self.config = load_demo_config(databases)
        if self.options.reset:
            self.say("reset: dropping capture state, emptying hub and sources")
            self._reset_capture()
        self.generator = self._generator_config(databases)
        self.say(
            f"sources: {self.generator.customers:,} customers (seed {self.generator.seed}),"
            " CRM, billing and ERP"
        )
        self.seed_result = seed_sources(databases, self.generator, reset=self.options.reset)
        if self.seed_result.resumed:
            self.say("sources already seeded: resuming")
        else:
            rows = sum(self.seed_result.rows.values())
            self.say(f"seeded {rows:,} source rows in {self.seed_result.seconds:.1f}s")
        migrate(self.hub_url)
        engine = create_engine(self.hub_url, pool_size=4)
        if self.options.reset:
            with engine.begin() as conn:
                conn.execute(sa.text(f"TRUNCATE {', '.join(HUB_TABLES)} CASCADE"))
        self.hub = HubServices(
            engine,
            matcher=self._matcher(),
            rules=self.config.survivorship,
            targets=self.config.targets,
        )
        self._status_engine = sa.create_engine(
            self.hub_url, poolclass=sa.pool.NullPool, connect_args={"connect_timeout": 10}
        )

    def _matcher(self) -> Matcher:
        """The demo config's model, its prior scaled to the world's size (``with_prior_for``)."""
        assert self.config is not None
        assert self.seed_result is not None
        matcher = self.config.build_matcher()
        if isinstance(matcher, MatchModel):
            return with_prior_for(matcher, sum(self.seed_result.rows.values()))
        return matcher

    def _generator_config(self, databases: DemoDatabases) -> GeneratorConfig:
        existing = None if self.options.reset else find_dataset(databases)
        if existing is not None:
            seeded = GeneratorConfig.from_json(existing)
            customers = self.options.customers or seeded.customers
            seed = self.options.seed if self.options.seed is not None else seeded.seed
            if (customers, seed) == (seeded.customers, seeded.seed):
                return seeded
            raise DemoError(
                f"the demo sources hold {seeded.customers:,} customers of seed {seeded.seed};"
                f" asked for {customers:,} of seed {seed}: run with --reset to start over"
            )
        return GeneratorConfig(
            customers=self.options.customers or DEFAULT_CUSTOMERS,
            seed=self.options.seed if self.options.seed is not None else DEFAULT_SEED,
        )

    def _reset_capture(self) -> None:
        assert self.config is not None
        for connection in self._connections():
            result = reset_capture(
                connection.postgres_source(), self._capture_dir(connection.name), force=True
            )
            logger.info("reset %s: %s", connection.name, result)
        for name in (STATUS_FILE, REPORT_FILE, "traffic_runs"):
            (self.state_dir / name).unlink(missing_ok=True)

    def _connections(self) -> list[SourceConnection]:
        assert self.config is not None
        return [self.config.connections[name] for name in SYSTEMS]

    def _capture_dir(self, name: str) -> Path:
        # Where `mdh cdc run` keeps a source's offsets, so `mdh cdc reset` works on it too.
        return self.home / "cdc" / name

    # --- 2. start ------------------------------------------------------------------------

    def start(self) -> None:
        """Capture (one engine and apply loop per source) and the API."""
        assert self.config is not None
        assert self.databases is not None
        assert self.hub is not None
        assert self.config.mappings is not None
        self.snapshot_rows = self._source_rows()
        self._offsets_stored = all(
            (self._capture_dir(c.name) / "offsets.dat").exists() for c in self._connections()
        )
        self.references = ReferenceData({s: self.databases.url(s) for s in SYSTEMS})
        log_dir = self.home / "logs"
        for connection in self._connections():
            mapper = _Tracker(self, connection.name, self.config.mappings, self.references)
            source = connection.postgres_source()
            loop = ApplyLoop(
                self.hub,
                mapper,
                label=connection.name,
                metrics=self.metrics,
                stop=self._stop,
                max_message_bytes=self.config.capture.max_message_bytes,
                reconcile_snapshots=source.snapshots_whole_tables,
                snapshot_delete_limit=source.snapshot_delete_limit,
            )
            engine = DebeziumSource(
                source,
                self._capture_dir(connection.name),
                loop,
                log_dir=log_dir,
            )
            engine.start()
            self.engines.append(engine)
            self.loops[connection.name] = loop
        self.say(f"capturing {', '.join(SYSTEMS)} with Debezium (logs in {log_dir})")
        if self.options.publish:
            self._start_relay()
        if self.options.api:
            self._start_api()
        self._phase = "snapshot"

    def _source_rows(self) -> dict[str, int]:
        assert self.databases is not None
        rows: dict[str, int] = dict.fromkeys(SYSTEMS, 0)
        for table, count in count_rows(self.databases).items():
            rows[table.split(".", 1)[0]] += count
        return rows

    def _start_relay(self) -> None:
        """The outbox relay (``cdc.relay``): one worker thread per write-back target."""
        assert self.config is not None
        assert self.hub is not None
        if not self.config.target_specs:
            return
        self.relays = build_relays(self.hub, self.config.target_specs, self._relay_stop)
        for adapter in (a for relay in self.relays for a in relay.adapters):
            try:
                adapter.open()
            except TargetSetupError as exc:
                raise DemoPartFailedError(f"write-back to {exc.target}", exc.detail) from exc
            except TargetUnavailableError as exc:
                logger.warning("%s not reachable yet (%s); will keep trying", exc.target, exc)
        for relay in self.relays:
            relay.start()
        self.say(f"publishing golden records to {', '.join(self.config.target_specs)}")

    def _start_api(self) -> None:
        """Serve the API (``api.app.create_app``) on ``api_host:api_port`` in a thread."""
        assert self.hub is not None
        app = create_app(self.hub, capture_status=self.metrics.snapshot)
        server = uvicorn.Server(
            uvicorn.Config(
                app,
                host=self.options.api_host,
                port=self.options.api_port,
                log_level="warning",
                access_log=False,
            )
        )

        def serve() -> None:
            try:
                server.run()
            except BaseException as exc:  # SystemExit when the port is taken
                self._api.error = exc
            else:
                if not server.should_exit:
                    self._api.error = RuntimeError("stopped by itself")

        def stop() -> None:
            server.should_exit = True

        self._api.thread = threading.Thread(target=serve, name="mdh-demo-api", daemon=True)
        self._api.stop = stop
        self._api.thread.start()
        deadline = time.monotonic() + 30
        while not server.started and self._api.thread.is_alive() and time.monotonic() < deadline:
            time.sleep(0.05)
        if not server.started:
            self._api.thread.join(1)
            detail = self._api.error or "did not start within 30s"
            if isinstance(detail, SystemExit):
                detail = f"could not listen on {self.options.api_host}:{self.options.api_port}"
            raise DemoPartFailedError("API", str(detail))
        self.api_url = f"http://{self.options.api_host}:{self.options.api_port}"
        # A steward key for this run, shown once, as `mdh keys create` shows it.
        issued = self.hub.desk(_DEMO_ACTOR).create_api_key("mdh-demo", ApiRole.STEWARD)
        self.say(
            f"API on {self.api_url} (docs at {self.api_url}/docs); steward key for this run:"
            f" {issued.token}"
        )

    def _start_traffic(self) -> None:
        assert self.databases is not None
        assert self.generator is not None
        if self.options.rate <= 0:
            return
        config = TrafficConfig(rate=self.options.rate, seed=self._traffic_seed())
        databases = self.databases

        def drive() -> None:
            try:
                run_traffic(databases, config, self._traffic_stop, counts=self.traffic_counts)
            except BaseException as exc:
                self._traffic.error = exc

        self._traffic.thread = threading.Thread(target=drive, name="mdh-demo-traffic")
        self._traffic.thread.start()

    def _traffic_seed(self) -> int:
        """A seed per run of the traffic: the world's seed and how many runs came before.

        The same seed twice would draw the same Zuora ids (random, not a sequence) again on a
        resumed world and collide with the rows the previous run inserted; each run counted
        in ``traffic_runs`` gets its own, and a rerun of the same history the same ones.
        """
        assert self.generator is not None
        counter = self.state_dir / "traffic_runs"
        try:
            runs = int(counter.read_text().strip())
        except (OSError, ValueError):
            runs = 0
        counter.write_text(str(runs + 1))
        return (self.generator.seed * 1_000_003 + runs) % 2**32

    # --- 3. poll -------------------------------------------------------------------------

    def poll(self) -> DemoStatus:
        """The current progress; starts the traffic once the snapshot is in.

        Raises:
            DemoPartFailedError: a capture engine, the traffic or the API stopped.
        """
        self._check_parts()
        status = self._status()
        complete = all(s.snapshot_done for s in status.systems)
        if self._first_poll:
            # Offsets alone do not say the snapshot finished: Debezium stores them during it.
            self.capture_resumed = self._offsets_stored and complete
            self._first_poll = False
        if self._phase == "snapshot" and complete:
            self.snapshot_seconds = time.monotonic() - self.started_at
            self.live_since = datetime.now(UTC)
            self._phase = "live"
            self._start_traffic()
            status = dataclasses.replace(
                status, phase=self._phase, snapshot_seconds=self.snapshot_seconds
            )
        self._write_json(STATUS_FILE, status.to_json())
        return status

    @property
    def phase(self) -> str:
        return self._phase

    @property
    def stops_server(self) -> bool:
        """True when ``close`` stops the embedded server (this run started it)."""
        return self.server is not None and self._stop_server

    def _check_parts(self) -> None:
        for engine in self.engines:
            if engine.running:
                continue
            try:
                engine.wait(0)
                detail = "the Debezium engine stopped by itself"
            except Exception as exc:
                detail = str(exc)
            raise DemoPartFailedError(f"capture of {engine.source.name}", detail)
        if self._relay_stop.is_set() and self._phase != "stopping":
            # A relay worker failed and stopped the others (cdc.relay): say why.
            for relay in self.relays:
                try:
                    relay.join(0)
                except RelayFailedError as exc:
                    raise DemoPartFailedError("write-back", str(exc)) from exc
            raise DemoPartFailedError("write-back", "the outbox relay stopped")
        for part in (self._traffic, self._api):
            if part.error is not None:
                raise DemoPartFailedError(part.name, f"{type(part.error).__name__}: {part.error}")
        if (
            self._traffic.thread is not None
            and not self._traffic.thread.is_alive()
            and not self._traffic_stop.is_set()
        ):
            raise DemoPartFailedError("traffic", "stopped by itself")

    def _status(self) -> DemoStatus:
        metrics = self.metrics.snapshot()
        changes = {name: int(metrics.get(name, {}).get("changes", 0)) for name in SYSTEMS}
        counts = self._counts
        estimate = {
            name: counts.applied.get(name, 0) + changes[name] - counts.changes.get(name, 0)
            for name in SYSTEMS
        }
        # Counting a large store takes a noticeable share of the database: count now and then,
        # estimate from the applied changes in between, count again to confirm a finish.
        finished = all(estimate[n] >= self.snapshot_rows.get(n, 0) for n in SYSTEMS)
        if (
            counts.at is None
            or time.monotonic() - counts.at >= _COUNT_INTERVAL
            or (finished and self._phase == "snapshot")
        ):
            counts = self._count(changes)
            estimate = dict(counts.applied)
        systems = []
        for name in SYSTEMS:
            m = metrics.get(name, {})
            latency = m.get("commit_to_golden_ms", {})
            systems.append(
                SystemStatus(
                    name=name,
                    rows=self.snapshot_rows.get(name, 0),
                    applied=estimate.get(name, 0),
                    events=int(m.get("events", 0)),
                    events_per_second=float(m.get("events_per_second", 0.0)),
                    lag_p50_ms=latency.get("p50"),
                    lag_p95_ms=latency.get("p95"),
                    dead_letters=int(m.get("dead_letters", 0)),
                )
            )
        return DemoStatus(
            phase=self._phase,
            elapsed=time.monotonic() - self.started_at,
            snapshot_seconds=self.snapshot_seconds,
            systems=tuple(systems),
            source_records=counts.linked,
            golden_records=counts.golden,
            open_review_tasks=counts.review,
            duplicate_rate=None if counts.linked == 0 else 1.0 - counts.golden / counts.linked,
            true_duplicate_rate=self._true_duplicate_rate(),
            traffic=dataclasses.asdict(self.traffic_counts),
            api_url=self.api_url,
        )

    def _count(self, changes: dict[str, int]) -> _Counts:
        """Count the hub: processed rows per system, linked records, golden records, tasks."""
        assert self._status_engine is not None
        with self._status_engine.connect() as conn:
            # A dead-lettered row was processed too: it counts towards the snapshot.
            applied: dict[str, int] = dict(
                conn.execute(
                    sa.text(
                        "SELECT system, sum(n)::bigint FROM ("
                        " SELECT system, count(*) AS n FROM source_records WHERE NOT deleted"
                        " GROUP BY system"
                        " UNION ALL SELECT source, count(*) FROM dead_letters GROUP BY source"
                        ") AS processed GROUP BY system"
                    )
                ).all()
            )
            linked, golden, review = conn.execute(
                sa.text(
                    "SELECT"
                    " (SELECT count(*) FROM source_records"
                    "   WHERE NOT deleted AND golden_id IS NOT NULL),"
                    " (SELECT count(*) FROM golden_records WHERE status = 'active'),"
                    " (SELECT count(*) FROM review_tasks WHERE status = 'open')"
                )
            ).one()
        self._counts = _Counts(
            time.monotonic(),
            {name: int(applied.get(name, 0)) for name in SYSTEMS},
            dict(changes),
            int(linked),
            int(golden),
            int(review),
        )
        return self._counts

    def _true_duplicate_rate(self) -> float | None:
        """``1 - parties / live rows`` from the truth store, refreshed every minute."""
        assert self.databases is not None
        checked, value = self._truth_rate
        if value is not None and time.monotonic() - checked < _TRUTH_INTERVAL:
            return value
        with psycopg.connect(self.databases.truth) as conn:
            row = conn.execute(
                f"SELECT count(*), count(DISTINCT entity_id) FROM {TRUTH_SCHEMA}.source_entity"
                " WHERE deleted_at IS NULL"
            ).fetchone()
        rows, parties = (int(row[0]), int(row[1])) if row else (0, 0)
        value = None if rows == 0 else 1.0 - parties / rows
        self._truth_rate = (time.monotonic(), value)
        return value

    # --- 4. drain ------------------------------------------------------------------------

    def drain(self, timeout: float = 60.0) -> bool:
        """Stop the traffic and wait until every change before now has reached the hub, and
        every golden change the sources (when the relay runs). Returns False when ``timeout``
        passed first.

        1. Markers through every apply loop: the hub has every change of the traffic.
        2. The outbox relay has delivered every golden change those made.
        3. Markers again: the write-backs' echoes are through as well.
        """
        self._stop_traffic()
        self._phase = "draining"
        deadline = time.monotonic() + timeout
        if not self._markers_through(deadline):
            return False
        if not self.relays:
            return True
        while self._outbox_pending():
            if time.monotonic() >= deadline:
                return False
            self._check_parts()
            time.sleep(0.2)
        return self._markers_through(deadline)

    def _markers_through(self, deadline: float) -> bool:
        """Write a logical-decoding message (``pg_logical_emit_message``) into each source and
        wait until each has come through its apply loop and the batch that carried it is
        committed: it travels the same stream as the changes, after every one before it."""
        assert self.databases is not None
        token = f"{os.getpid()}-{time.time_ns()}"
        with self._drain_lock:
            self._drain = _Drain(token, dict.fromkeys(SYSTEMS, False))
        batches = {name: self._batches(name) for name in SYSTEMS}
        for system in SYSTEMS:
            with psycopg.connect(self.databases.url(system), autocommit=True) as conn:
                conn.execute("SELECT pg_logical_emit_message(true, %s, %s)", (_DRAIN_PREFIX, token))
        while time.monotonic() < deadline:
            self._check_parts()
            with self._drain_lock:
                seen = dict(self._drain.seen)
            # The marker's batch is recorded in the metrics after its commit.
            if all(seen.values()) and all(self._batches(n) > batches[n] for n in SYSTEMS):
                return True
            time.sleep(0.1)
        return False

    def _outbox_pending(self) -> int:
        assert self.hub is not None
        return sum(target.pending for target in self.hub.publishing().status())

    def marker_seen(self, system: str, token: str) -> None:
        with self._drain_lock:
            if token == self._drain.token:
                self._drain.seen[system] = True

    def _batches(self, name: str) -> int:
        return int(self.metrics.snapshot().get(name, {}).get("batches", 0))

    # --- 5. close ------------------------------------------------------------------------

    def _stop_traffic(self) -> None:
        self._traffic_stop.set()
        if self._traffic.thread is not None:
            self._traffic.thread.join(30)

    def stop_parts(self) -> None:
        """Stop traffic, API and capture (the databases stay up, for the final report).
        Never raises."""
        self._phase = "stopping"
        self._run_steps(
            [
                ("traffic", self._stop_traffic),
                ("API", self._stop_api),
                ("write-back", self._stop_relay),
                ("capture", self._stop_capture),
            ]
        )

    def close(self) -> None:
        """Stop every part that runs, in order (see the module docstring), and the embedded
        server if this run started it. Never raises."""
        self.stop_parts()
        steps: list[tuple[str, Callable[[], None]]] = [("connections", self._close_connections)]
        if self.server is not None and self._stop_server:
            steps.append(("PostgreSQL", self._stop_server_now))
        self._run_steps(steps)

    def _stop_server_now(self) -> None:
        if self.server is not None:
            self.server.stop()

    def _run_steps(self, steps: list[tuple[str, Callable[[], None]]]) -> None:
        for name, step in steps:
            try:
                step()
            except Exception as exc:  # keep stopping the rest
                logger.error("stopping %s failed: %s", name, exc)

    def _stop_relay(self) -> None:
        self._relay_stop.set()
        for relay in self.relays:
            try:
                relay.join(30)
            except RelayFailedError as exc:
                logger.error("the outbox relay ended with: %s", exc)

    def _stop_api(self) -> None:
        if self._api.stop is not None:
            self._api.stop()
        if self._api.thread is not None:
            self._api.thread.join(10)

    def _stop_capture(self) -> None:
        self._stop.set()
        # Each engine finishes its batch in flight: stop them side by side, not one by one.
        stoppers = [
            threading.Thread(target=engine.stop, name=f"stop-{engine.source.name}")
            for engine in self.engines
        ]
        for stopper in stoppers:
            stopper.start()
        for stopper in stoppers:
            stopper.join()
        for engine in self.engines:
            try:
                engine.wait(0)
            except ApplyInterruptedError:
                pass  # stopped while retrying: that batch comes again next time
            except Exception as exc:
                logger.error("capture of %s ended with: %s", engine.source.name, exc)
        self.engines.clear()

    def _close_connections(self) -> None:
        if self.references is not None:
            self.references.close()
        if self.hub is not None:
            self.hub.engine.dispose()
        if self._status_engine is not None:
            self._status_engine.dispose()

    def lingering_java_threads(self) -> list[str]:
        """Non-daemon JVM threads still alive after ``close`` (none when capture never ran).

        Debezium leaves its snapshot threads blocked on a full event queue when an engine is
        stopped in the middle of a snapshot; they are not daemons, so the JVM's shutdown at
        interpreter exit would wait for them forever.
        """
        if not self.loops:
            return []
        import jpype

        if not jpype.isJVMStarted():
            return []
        thread_class = jpype.JClass("java.lang.Thread")
        current = thread_class.currentThread()
        return sorted(
            str(thread.getName())
            for thread in thread_class.getAllStackTraces().keySet()
            if thread.isAlive()
            and not thread.isDaemon()
            and not thread.equals(current)
            and str(thread.getName()) not in ("main", "DestroyJavaVM")
        )

    # --- reports -------------------------------------------------------------------------

    def quality(self) -> QualityReport:
        """The hub's golden records against the truth (``evaluation.evaluate``)."""
        assert self.databases is not None
        return evaluate(self.hub_url, self.databases.truth)

    def sync_latency(self) -> list[dict[str, Any]]:
        """Per write-back target, how long the live changes (golden changes committed after
        the snapshot was in) took from the source commit to the target's acknowledgement,
        and from the golden commit; the initial load's backlog is left out."""
        assert self.hub is not None
        if self.live_since is None:
            return []
        return [
            {
                "target": t.target,
                "delivered": t.delivered,
                "source_to_target_ms": dataclasses.asdict(t.source_to_target),
                "golden_to_target_ms": dataclasses.asdict(t.golden_to_target),
            }
            for t in self.hub.sync_latency(changed_since=self.live_since)
        ]

    def hub_duplicate_rate(self) -> float | None:
        """The overall duplicate rate of the hub's own duplicate-rate report."""
        assert self.hub is not None
        try:
            report = self.hub.duplicate_report(ReportQuery(since=datetime(1970, 1, 1, tzinfo=UTC)))
            return float(report.frames["overall"]["duplicate_rate"].iloc[0])
        except HubError as exc:  # the quality report is printed all the same
            logger.warning("the hub's duplicate-rate report failed: %s", exc)
            return None

    def write_report(self, report: QualityReport, extra: Mapping[str, Any]) -> Path:
        data = {
            "written_at": datetime.now(UTC).isoformat(),
            "quality": report.summary(),
            "worst_tables": report.worst_tables(),
            **extra,
        }
        return self._write_json(REPORT_FILE, data)

    def _write_json(self, name: str, data: Mapping[str, Any]) -> Path:
        path = self.state_dir / name
        temporary = path.with_suffix(".tmp")
        temporary.write_text(json.dumps(data, indent=2, default=str), encoding="utf-8")
        temporary.replace(path)
        return path


__all__ = [
    "DEFAULT_CUSTOMERS",
    "DemoOptions",
    "DemoPartFailedError",
    "DemoRunner",
    "DemoStatus",
    "SystemStatus",
    "demo_config_path",
    "load_demo_config",
]
