"""The Debezium embedded engine as a source: PostgreSQL connector properties, run, stop, reset.

One ``DebeziumSource`` captures the tables of one source database (``crm``, ``billing``...)
through its own publication and replication slot, both named after the source. The engine
runs in a background thread of this process and hands each batch, as ``RawMessage``s, to a
callback. Delivery contract, in order:

1. the engine polls a batch (at most ``max_batch_size`` records, every ``poll_interval_ms``)
   and, on its own thread, the batch is turned into ``RawMessage``s (and, for a
   ``StagedBatchCallback``, prepared: parsed and mapped);
2. the batch is handed to the apply thread, where up to ``pipeline_depth`` batches may wait
   while it is busy, and the engine goes on polling (and converting) meanwhile; when that many
   wait, the engine waits;
3. the apply thread takes the batches waiting, in delivery order, as many as fit together in
   ``max_batch_size`` messages, and calls the callback once with them as one batch (a
   ``StagedBatchCallback`` merges its prepared batches); the callback returns only once that
   batch is durably applied;
4. only then are the records of each of those batches marked processed (by the apply thread,
   which alone uses the engine's committer), so their offsets may be flushed (every
   ``offset_flush_interval_ms``, into a file under the caller's state directory) and the
   slot's confirmed LSN may advance;
5. if the callback raises, nothing of what it was given or of what waits behind it is marked:
   the engine is closed, the error comes back from ``wait()``, and the batches are delivered
   again after a restart.

Offsets are flushed after, never before, the callback has returned, so delivery is
at-least-once: the apply side must be idempotent (it is: positions are stored with effects).
Batches are applied one after another in the order the engine polled them, so the changes of
one row arrive in commit order, as without the hand-off; what waited while the apply thread
was busy goes in one transaction, as one larger poll would have (the hub keeps the newest
change per row of a batch). ``stop()`` lets the batch being applied finish and be marked;
batches still waiting in the hand-off are dropped unmarked and come again after a restart.
``pipeline_depth=0`` applies each batch on the engine's thread instead, capture and apply
taking turns.
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import re
import threading
import time
import weakref
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Protocol, runtime_checkable
from urllib.parse import unquote, urlsplit

import psycopg
from psycopg import sql
from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

from cdc.errors import CdcError, EngineFailedError
from cdc.java import JavaRuntime, java_method, start_jvm
from cdc.raw import RawMessage

logger = logging.getLogger(__name__)

BatchCallback = Callable[[list[RawMessage]], None]
"""Receives each batch; returns once it is applied; raises to leave it unacknowledged."""


@runtime_checkable
class StagedBatchCallback(Protocol):
    """A batch callback in two stages (``cdc.apply.ApplyLoop`` is one): ``prepare`` runs on
    the engine's thread, in delivery order, while the batch before is applied (it must not
    touch what ``apply_prepared`` uses); ``apply_prepared`` then gets its result (or the
    ``merge`` of the results of the batches that waited together) on the apply thread, with
    the contract of a ``BatchCallback``."""

    def prepare(self, messages: Sequence[RawMessage], /) -> Any: ...

    def merge(self, prepared: Sequence[Any], /) -> Any:
        """Prepared batches, in delivery order, as one prepared batch."""
        ...

    def apply_prepared(self, prepared: Any, /) -> Any: ...


DEFAULT_PIPELINE_DEPTH = 4
"""Batches that may wait, converted and prepared, while the apply thread is busy; it takes
them together (up to ``max_batch_size`` messages) when it is done."""

OFFSETS_FILE = "offsets.dat"
_SOURCE_NAME = re.compile(r"^[a-z][a-z0-9_]{0,39}$")


class PostgresSource(BaseModel):
    """How to capture one PostgreSQL source database with Debezium.

    ``name`` is the source system (``crm``): it is Debezium's topic prefix, hence
    ``source.name`` in every message, and it names the slot and publication
    (``mdh_crm``). ``tables`` are schema-qualified (``public.customer``).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    host: str = "127.0.0.1"
    port: int = 5432
    database: str
    user: str = "postgres"
    password: SecretStr = SecretStr("")
    tables: tuple[str, ...] = Field(min_length=1)
    snapshot_mode: str = "initial"
    decimal_handling_mode: Literal["precise", "string", "double"] = "precise"
    schemas_enabled: bool = True
    poll_interval_ms: int = Field(default=50, ge=1, le=50)
    max_batch_size: int = Field(default=2048, ge=1)
    max_queue_size: int = Field(default=8192, ge=2)
    offset_flush_interval_ms: int = Field(default=1000, ge=0)
    heartbeat_interval_ms: int = Field(default=10_000, ge=0)
    extra_properties: Mapping[str, str] = Field(default_factory=dict)
    """Any other Debezium property; these win over the ones built here."""
    snapshot_delete_limit: float = Field(default=0.5, ge=0, le=1)
    """Not Debezium's: the largest share of a table's live rows one completed snapshot may
    mark deleted in the hub (``cdc.apply.ApplyLoop``)."""

    @property
    def snapshots_whole_tables(self) -> bool:
        """Whether a snapshot reads every row of its tables (no select override), so rows it
        does not read were deleted."""
        mode = self.extra_properties.get("snapshot.mode", self.snapshot_mode)
        return mode != "custom" and not any(
            key.startswith("snapshot.select.statement.overrides") for key in self.extra_properties
        )

    @field_validator("name")
    @classmethod
    def _slot_safe_name(cls, value: str) -> str:
        if not _SOURCE_NAME.match(value):
            raise ValueError(
                "a source name is lower-case letters, digits and '_', starting with a letter "
                f"(it names a replication slot), got {value!r}"
            )
        return value

    @field_validator("tables")
    @classmethod
    def _qualified(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for table in value:
            if table.count(".") != 1:
                raise ValueError(f"expected schema.table, got {table!r}")
        return value

    @classmethod
    def from_url(cls, name: str, url: str, tables: Sequence[str], **options: Any) -> PostgresSource:
        """Build from ``postgresql://user:password@host:port/database``."""
        parts = urlsplit(url)
        return cls(
            name=name,
            host=parts.hostname or "127.0.0.1",
            port=parts.port or 5432,
            database=unquote(parts.path.lstrip("/")),
            user=unquote(parts.username or "postgres"),
            password=SecretStr(unquote(parts.password or "")),
            tables=tuple(tables),
            **options,
        )

    @property
    def slot_name(self) -> str:
        return f"mdh_{self.name}"

    @property
    def publication_name(self) -> str:
        return f"mdh_{self.name}"

    def connect(self) -> psycopg.Connection[Any]:
        """A plain (non-replication) connection to the source database, autocommit."""
        return psycopg.connect(
            host=self.host,
            port=self.port,
            dbname=self.database,
            user=self.user,
            password=self.password.get_secret_value(),
            autocommit=True,
            connect_timeout=10,
        )


def connector_properties(source: PostgresSource, state_dir: Path) -> dict[str, str]:
    """The Debezium engine properties for ``source``, offsets under ``state_dir``."""
    offsets = state_dir.expanduser().absolute() / OFFSETS_FILE
    include = ",".join(re.escape(table) for table in source.tables)
    properties = {
        "name": f"mdh-{source.name}",
        "connector.class": "io.debezium.connector.postgresql.PostgresConnector",
        "topic.prefix": source.name,
        "database.hostname": source.host,
        "database.port": str(source.port),
        "database.user": source.user,
        "database.password": source.password.get_secret_value(),
        "database.dbname": source.database,
        "plugin.name": "pgoutput",
        "slot.name": source.slot_name,
        "publication.name": source.publication_name,
        "publication.autocreate.mode": "filtered",
        "table.include.list": include,
        "snapshot.mode": source.snapshot_mode,
        # Debezium skips truncates by default; the hub wants to see them (and refuse them).
        "skipped.operations": "none",
        "tombstones.on.delete": "true",
        "decimal.handling.mode": source.decimal_handling_mode,
        "converter.schemas.enable": "true" if source.schemas_enabled else "false",
        "offset.storage": "org.apache.kafka.connect.storage.FileOffsetBackingStore",
        "offset.storage.file.filename": str(offsets),
        "offset.flush.interval.ms": str(source.offset_flush_interval_ms),
        "offset.flush.timeout.ms": "10000",
        "poll.interval.ms": str(source.poll_interval_ms),
        "max.batch.size": str(source.max_batch_size),
        "max.queue.size": str(max(source.max_queue_size, source.max_batch_size + 1)),
        "heartbeat.interval.ms": str(source.heartbeat_interval_ms),
    }
    properties.update(source.extra_properties)
    return properties


class DebeziumSource:
    """The embedded Debezium engine for one source, running in a background thread.

    Args:
        source: what to capture.
        state_dir: this source's durable state (``offsets.dat``); created if missing.
        on_batch: the callback (see the module docstring for the contract); a staged one is
            prepared on the engine's thread, overlapped with the apply of the batch before.
        log_dir: where the JVM writes ``debezium.log`` if this source starts the JVM;
            ``state_dir / "logs"`` when None. The JVM is per process, so the first source
            to start decides.
        java: the Java runtime, if this source starts the JVM; ``find_java()`` when None.
        pipeline_depth: batches that may wait in the hand-off while the apply thread is busy
            (the engine captures meanwhile); 0 applies on the engine's thread, capture waiting.
    """

    def __init__(
        self,
        source: PostgresSource,
        state_dir: Path,
        on_batch: BatchCallback | StagedBatchCallback,
        *,
        log_dir: Path | None = None,
        java: JavaRuntime | None = None,
        pipeline_depth: int = DEFAULT_PIPELINE_DEPTH,
    ) -> None:
        if pipeline_depth < 0:
            raise ValueError(f"pipeline_depth must be >= 0, got {pipeline_depth}")
        self.source = source
        self.state_dir = state_dir.expanduser().absolute()
        if isinstance(on_batch, StagedBatchCallback):
            self._prepare: Callable[[list[RawMessage]], Any] = on_batch.prepare
            self._merge: Callable[[list[Any]], Any] = on_batch.merge
            self._apply_prepared: Callable[[Any], Any] = on_batch.apply_prepared
        else:
            self._prepare = _unprepared
            self._merge = _concatenated
            self._apply_prepared = on_batch
        self._log_dir = log_dir or self.state_dir / "logs"
        self._java = java
        self._engine: Any = None
        self._thread: threading.Thread | None = None
        self._started = threading.Event()
        self._done = threading.Event()
        self._callback_error: BaseException | None = None
        self._engine_error: str | None = None
        self._stopping = False
        self._dropping = False  # handed batches are no longer applied (stop, or engine gone)
        self._pipeline_depth = pipeline_depth
        self._waiting: list[_Handed] = []
        self._handoff_changed = threading.Condition()
        self._applier: threading.Thread | None = None
        self.batches = 0
        self.messages = 0

    # ---- lifecycle ---------------------------------------------------------------------

    def start(self) -> None:
        """Start the JVM if needed, build the engine and run it in a background thread."""
        if self._thread is not None:
            raise CdcError(f"Debezium source {self.source.name!r} was already started")
        self.state_dir.mkdir(parents=True, exist_ok=True)
        start_jvm(self._log_dir, self._java)
        _register_exit_hook()
        self._engine = self._build_engine()
        if self._pipeline_depth:
            self._applier = threading.Thread(
                target=self._apply_handed, name=f"apply-{self.source.name}", daemon=True
            )
            self._applier.start()
        self._thread = threading.Thread(
            target=self._run, name=f"debezium-{self.source.name}", daemon=True
        )
        self._thread.start()
        _live_sources.add(self)

    def wait_started(self, timeout: float) -> bool:
        """True once the connector task runs (snapshot or streaming about to begin)."""
        return self._started.wait(timeout)

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the engine has stopped; re-raise the reason if it failed.

        Returns False if ``timeout`` passed with the engine still running.

        Raises:
            Exception: whatever the batch callback raised.
            EngineFailedError: the engine stopped on its own with an error.
        """
        if not self._done.wait(timeout):
            return False
        self._raise_failure()
        return True

    @property
    def running(self) -> bool:
        return self._thread is not None and not self._done.is_set()

    def stop(self, timeout: float = 30.0) -> None:
        """Stop the engine: the batch being applied finishes and is marked, batches waiting
        behind it are dropped unmarked, offsets are flushed, threads end."""
        self._stopping = True
        deadline = time.monotonic() + timeout
        self._stop_applier(deadline)
        if self._engine is not None and not self._done.is_set():
            self._close_engine(deadline)
        if self._thread is not None:
            self._thread.join(max(0.0, deadline - time.monotonic()))
        _live_sources.discard(self)

    def _close_engine(self, deadline: float) -> None:
        import jpype

        starting = jpype.JClass("java.lang.IllegalStateException")
        while True:
            try:
                self._engine.close()
                return
            except starting:
                # Debezium refuses to close while its tasks are still starting (it would leak
                # them); they are seconds from started, so wait for that.
                if time.monotonic() >= deadline or self._done.is_set():
                    break
                time.sleep(0.05)
            except Exception as exc:  # a failing close must not hide the engine's own error
                logger.warning(
                    "closing the Debezium engine for %s failed: %s", self.source.name, exc
                )
                return
        logger.warning("the Debezium engine for %s did not stop in time", self.source.name)

    def __enter__(self) -> DebeziumSource:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # ---- internals ---------------------------------------------------------------------

    def _raise_failure(self) -> None:
        if self._callback_error is not None:
            raise self._callback_error
        if self._engine_error is not None and not self._stopping:
            raise EngineFailedError(self.source.name, self._engine_error)

    def _run(self) -> None:
        try:
            self._engine.run()
        except Exception as exc:
            self._engine_error = self._engine_error or str(exc)
        finally:
            # The engine is gone: what waits in the hand-off is dropped (it comes again); the
            # batch being applied finishes (``stop`` waits for it).
            self._drop_waiting()
            self._done.set()

    def _deliver(self, batch: list[RawMessage], acknowledge: Callable[[], None]) -> None:
        """On the engine's thread: apply ``batch`` there, or prepare it and hand it to the
        apply thread.

        Raises:
            BaseException: the callback failed (now, or for an earlier batch): the engine stops.
        """
        try:
            prepared = self._prepare(batch)
        except BaseException as exc:
            self._callback_error = exc
            raise
        handed = _Handed(prepared, len(batch), acknowledge)
        if not self._pipeline_depth:
            self._apply([handed])
            return
        with self._handoff_changed:
            while len(self._waiting) >= self._pipeline_depth:
                if self._callback_error is not None or self._dropping:
                    break
                self._handoff_changed.wait(0.1)
            if self._callback_error is not None:
                raise self._callback_error
            if self._dropping:
                return  # not applied, not marked: it comes again after a restart
            self._waiting.append(handed)
            self._handoff_changed.notify_all()

    def _apply(self, handed: list[_Handed]) -> None:
        """Apply the handed batches as one (in order), then mark each processed."""
        if len(handed) == 1:
            prepared = handed[0].prepared
        else:
            prepared = self._merge([h.prepared for h in handed])
        try:
            self._apply_prepared(prepared)
        except BaseException as exc:
            self._callback_error = exc
            raise
        self.batches += len(handed)
        self.messages += sum(h.messages for h in handed)
        for batch in handed:
            try:
                batch.acknowledge()
            except Exception as exc:
                if not self._pipeline_depth:
                    raise
                # The engine stopped under the batch (its offset store is closed): the batch
                # is applied but comes again after a restart, and is then found stale.
                logger.warning("marking a batch of %s processed failed: %s", self.source.name, exc)

    def _apply_handed(self) -> None:
        """The apply thread: whatever waits in the hand-off, as one batch, in order."""
        while True:
            with self._handoff_changed:
                while not self._waiting and not self._dropping:
                    self._handoff_changed.wait()
                if self._dropping:
                    return
                handed = self._take_waiting()
                self._handoff_changed.notify_all()
            try:
                self._apply(handed)
            except BaseException:
                # Nothing more is applied or marked; the engine is closed from here (the
                # engine's thread may be idle, waiting for the source), and wait() re-raises.
                self._drop_waiting()
                if not self._stopping:
                    self._close_engine(time.monotonic() + 30.0)
                return

    def _take_waiting(self) -> list[_Handed]:
        """The first waiting batch and those after it that fit with it in ``max_batch_size``
        messages: a hub transaction stays as large as one poll at most (its locks are counted
        in the database's shared lock table)."""
        taken = [self._waiting[0]]
        size = taken[0].messages
        for handed in self._waiting[1:]:
            if size + handed.messages > self.source.max_batch_size:
                break
            taken.append(handed)
            size += handed.messages
        del self._waiting[: len(taken)]
        return taken

    def _drop_waiting(self) -> None:
        with self._handoff_changed:
            self._dropping = True
            self._handoff_changed.notify_all()

    def _stop_applier(self, deadline: float) -> None:
        self._drop_waiting()
        if self._applier is None or threading.current_thread() is self._applier:
            return
        self._applier.join(max(0.0, deadline - time.monotonic()))
        if self._applier.is_alive():
            logger.warning(
                "the batch being applied for %s did not finish in time", self.source.name
            )

    def _engine_finished(self, success: bool, message: str) -> None:
        if not success:
            self._engine_error = message
            if not self._stopping and self._callback_error is None:
                logger.error("Debezium engine for %s failed: %s", self.source.name, message)

    def _build_engine(self) -> Any:
        import jpype

        bridge = _bridge_classes()
        properties = jpype.JClass("java.util.Properties")()
        for key, value in connector_properties(self.source, self.state_dir).items():
            properties.setProperty(key, value)
        json_format = jpype.JClass("io.debezium.engine.format.Json")
        engine_api = jpype.JClass("io.debezium.engine.DebeziumEngine")
        return (
            engine_api.create(json_format)
            .using(properties)
            .using(bridge.completion(self._engine_finished))
            .using(bridge.connector(self._started.set))
            .notifying(bridge.consumer(self._deliver))
            .build()
        )


@dataclass(frozen=True)
class ResetResult:
    """What ``reset`` removed."""

    slot_dropped: bool
    publication_dropped: bool
    offsets_deleted: bool


class SlotInUseError(CdcError):
    """The replication slot is still used by a running engine (here or in another process)."""

    def __init__(self, slot: str, pid: int) -> None:
        self.slot = slot
        self.pid = pid
        super().__init__(f"replication slot {slot!r} is in use by backend {pid}; stop that engine")


def reset(
    source: PostgresSource, state_dir: Path, *, wait: float = 10.0, force: bool = False
) -> ResetResult:
    """Forget all capture state: drop the slot and publication, delete the offsets.

    The next start then snapshots again. Slots pin WAL on the source server for as long as
    they exist, so a source that is given up must be reset.

    Args:
        wait: seconds to wait for a slot that a just-stopped engine still holds.
        force: after ``wait``, terminate the backend holding the slot instead of failing.

    Raises:
        SlotInUseError: the slot stays active and ``force`` is False.
    """
    with source.connect() as conn:
        slot_dropped = _drop_slot(conn, source.slot_name, wait, force)
        existed = conn.execute(
            "SELECT 1 FROM pg_publication WHERE pubname = %s", (source.publication_name,)
        ).fetchone()
        if existed:
            conn.execute(
                sql.SQL("DROP PUBLICATION IF EXISTS {}").format(
                    sql.Identifier(source.publication_name)
                )
            )
    offsets = state_dir.expanduser().absolute() / OFFSETS_FILE
    offsets_deleted = offsets.exists()
    offsets.unlink(missing_ok=True)
    return ResetResult(slot_dropped, existed is not None, offsets_deleted)


def _drop_slot(conn: psycopg.Connection[Any], slot: str, wait: float, force: bool) -> bool:
    deadline = time.monotonic() + wait
    while True:
        row = conn.execute(
            "SELECT active_pid FROM pg_replication_slots WHERE slot_name = %s", (slot,)
        ).fetchone()
        if row is None:
            return False
        active_pid = row[0]
        if active_pid is None:
            with contextlib.suppress(psycopg.errors.UndefinedObject):
                conn.execute("SELECT pg_drop_replication_slot(%s)", (slot,))
            return True
        if time.monotonic() >= deadline:
            if not force:
                raise SlotInUseError(slot, int(active_pid))
            conn.execute("SELECT pg_terminate_backend(%s)", (active_pid,))
            deadline = time.monotonic() + wait
        time.sleep(0.1)


# ---- the Java side ----------------------------------------------------------------------

_live_sources: weakref.WeakSet[DebeziumSource] = weakref.WeakSet()
_exit_hook = threading.Lock()
_exit_hook_registered = False


def _stop_live_sources() -> None:
    for source in list(_live_sources):
        source.stop(timeout=10)


def _register_exit_hook() -> None:
    """Stop running engines at interpreter exit, before JPype shuts the JVM down.

    The engine's threads are not daemons, so JPype's shutdown would wait for them forever.
    atexit runs hooks last-registered-first; JPype registers its own when it is first
    imported, so this one, registered after the JVM started, runs before it.
    """
    global _exit_hook_registered
    with _exit_hook:
        if not _exit_hook_registered:
            atexit.register(_stop_live_sources)
            _exit_hook_registered = True


@dataclass(frozen=True)
class _Handed:
    """A prepared batch waiting for the apply thread, and how to mark it processed."""

    prepared: Any
    messages: int
    acknowledge: Callable[[], None]


def _unprepared(batch: list[RawMessage]) -> list[RawMessage]:
    return batch


def _concatenated(batches: list[list[RawMessage]]) -> list[RawMessage]:
    return [message for batch in batches for message in batch]


@dataclass(frozen=True)
class _Bridge:
    consumer: Callable[[Callable[[list[RawMessage], Callable[[], None]], None]], Any]
    completion: Callable[[Callable[[bool, str], None]], Any]
    connector: Callable[[Callable[[], None]], Any]


_bridge: _Bridge | None = None


def _bridge_classes() -> _Bridge:
    """Java interface implementations in Python; JPype needs a running JVM to define them."""
    global _bridge
    if _bridge is not None:
        return _bridge
    import jpype

    debezium_exception = jpype.JClass("io.debezium.DebeziumException")

    @jpype.JImplements("io.debezium.engine.DebeziumEngine$ChangeConsumer")
    class BatchConsumer:
        def __init__(self, deliver: Callable[[list[RawMessage], Callable[[], None]], None]) -> None:
            self._deliver = deliver

        @java_method
        def handleBatch(self, records: Any, committer: Any) -> None:  # noqa: N802 (Java's name)
            batch = [
                RawMessage(
                    key=_utf8(record.key()),
                    value=_utf8(record.value()),
                    topic=str(record.destination()),
                )
                for record in records
            ]

            def acknowledge() -> None:
                for record in records:
                    committer.markProcessed(record)
                committer.markBatchFinished()

            try:
                self._deliver(batch, acknowledge)
            except BaseException as exc:
                # Nothing of the batch is marked processed: the engine stops and the batch
                # comes again after a restart. A Java exception (not the Python one in
                # flight) keeps the engine's own error logging working.
                raise debezium_exception(
                    f"the batch callback raised {type(exc).__name__}: {exc}"
                ) from None

        @java_method
        def supportsTombstoneEvents(self) -> bool:  # noqa: N802 (Java's name)
            return True

    @jpype.JImplements("io.debezium.engine.DebeziumEngine$CompletionCallback")
    class Completion:
        def __init__(self, finished: Callable[[bool, str], None]) -> None:
            self._finished = finished

        @java_method
        def handle(self, success: Any, message: Any, error: Any) -> None:
            text = str(message) if message is not None else ""
            if error is not None:
                text = f"{text}: {error}" if text else str(error)
            self._finished(bool(success), text)

    @jpype.JImplements("io.debezium.engine.DebeziumEngine$ConnectorCallback")
    class Connector:
        def __init__(self, started: Callable[[], None]) -> None:
            self._started = started

        @java_method
        def taskStarted(self) -> None:  # noqa: N802 (Java's name)
            self._started()

    _bridge = _Bridge(consumer=BatchConsumer, completion=Completion, connector=Connector)
    return _bridge


def _utf8(value: Any) -> bytes | None:
    return None if value is None else str(value).encode("utf-8")
