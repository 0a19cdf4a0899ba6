"""The apply loop: a batch of raw Debezium messages in, one hub transaction out.

Every source (embedded engine, Kafka consumer, JSONL replay) hands its batches to
``ApplyLoop.apply`` and acknowledges upstream only when it returns. Correctness under
at-least-once delivery depends on this order:

1. The source delivers a batch and waits; nothing of it is acknowledged yet.
2. Each message is parsed (``cdc.envelope``) and mapped (``cdc.mapping``). A poison message
   (unparseable, unmappable, failing a mapping) becomes a ``DeadLetter`` carrying its raw key
   and value bytes, the reason code, the error class, its source and its position. Messages
   without a row change (tombstones, heartbeats, logical messages, unmapped tables under
   ``ignore``) are counted and dropped.
3. Snapshot reads are dated to the earliest read of their snapshot seen here (see *Positions*).
4. One ``HubServices.apply_changes`` call stores the changes, the batch position (when the
   source has one) and the dead letters in one database transaction: a dead letter is stored
   exactly when the batch that carried it is. With ``reconcile_snapshots``, the batch that
   carries a table's last snapshot read also hands over a ``SnapshotEnd``: the hub marks the
   table's rows the snapshot no longer read deleted in that transaction.
5. A transient failure (database unreachable, serialization failure or deadlock the hub could
   not resolve) re-runs step 4 after an exponential backoff with jitter, for as long as it
   takes; nothing is acknowledged meanwhile. A stop request during the wait raises
   ``ApplyInterruptedError``: the batch stays unacknowledged and comes again after a restart.
6. ``apply`` returns after the commit; only then does the source acknowledge (the engine marks
   the records processed, the Kafka consumer commits its offsets).
7. Metrics are recorded for the committed batch.

Any other exception is a bug: it propagates, the batch is not acknowledged and the worker
stops. That is safe because delivery is at-least-once and applying is idempotent.

Positions. Idempotency rests on the per-row position the hub stores with each source record
(LSN, txId, source commit time, and whether it is a snapshot read): a redelivered change is not
newer than what is stored and is ignored (``hub.model.SourcePosition.supersedes`` says what
newer is). A *batch* position lets the hub skip a whole redelivered batch, but only an offset that
strictly grows with every message is safe for that, because redelivered batches are cut
differently from the original ones and a batch is skipped whole when its offset is not beyond
the stored one. Kafka offsets qualify (one position per topic-partition). Debezium's
PostgreSQL positions do not: the event LSN goes backwards between interleaved transactions
(a transaction that wrote first may commit last), the commit LSN of the event's own transaction
is not in the event (``sequence`` carries the previous commit's), one statement can emit two
events at one LSN (a primary-key change) and all snapshot reads share the snapshot's LSN. So
embedded-engine and replay batches carry no batch position and rely on per-row positions,
which a restart mid-snapshot cannot fool: a re-run snapshot has a larger LSN, an interrupted
one's rows are simply applied when they come.

Snapshot reads. Debezium 3 gives every read of one snapshot the same ``source``: the LSN of
the snapshot's consistent point (where its replication slot became consistent), the txId of
the snapshot's transaction, ``sequence`` [null, that LSN], and one time, taken when the
snapshot's transaction started, after the consistent point (tests/cdc/test_ordering_capture.py
shows it on a real capture). A change committed after the consistent point is not in the
snapshot and is streamed, but it may have committed before that time: ordered by time, it
would look older than the snapshot row and be lost. So the hub orders a streamed change
against a snapshot read by LSN: it is newer when its own LSN, or the commit streamed before
its transaction (``sequence[0]``), is at or past the snapshot's LSN; only a transaction that
wrote before the consistent point and was the first to commit after it falls back to its
commit time (see ``SourcePosition.streamed_after``). Step 3 dates the reads of a snapshot to
the earliest one this loop has seen: a no-op for Debezium 3, which dates them all alike, and
the snapshot's start for connectors that date each read when it was read.
"""

from __future__ import annotations

import dataclasses
import logging
import random
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

import psycopg
from sqlalchemy import exc as sa_exc

from cdc.envelope import DEFAULT_MAX_MESSAGE_BYTES, ChangeEnvelope, parse_message
from cdc.errors import CdcError, PoisonMessageError
from cdc.mapping import ChangeMapper
from cdc.metrics import CaptureMetrics
from cdc.raw import RawMessage
from hub.errors import ConcurrentUpdateError, StoreUnavailableError, TransactionTooLargeError
from hub.model import BatchPosition, SnapshotEnd, SourceChange, SourcePosition
from hub.records import ApplyResult, DeadLetter
from hub.services import HubServices

logger = logging.getLogger(__name__)

TRANSIENT_ERRORS: Final = (
    StoreUnavailableError,
    ConcurrentUpdateError,
    sa_exc.OperationalError,
    psycopg.OperationalError,
)
"""Failures that go away by themselves: retry the batch, acknowledge nothing."""


class ApplyInterruptedError(CdcError):
    """A stop was requested while a batch waited to be retried; it was not applied."""

    def __init__(self, source: str, attempts: int) -> None:
        self.source = source
        self.attempts = attempts
        super().__init__(f"{source}: stopped after {attempts} failed attempts; batch not applied")


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff with jitter for transient failures.

    The n-th retry waits between half and all of ``min(max_seconds, initial * multiplier**n)``
    (so workers that failed together do not come back together). ``max_attempts`` None retries
    until the dependency returns or a stop is requested.
    """

    initial_seconds: float = 0.2
    max_seconds: float = 30.0
    multiplier: float = 2.0
    max_attempts: int | None = None

    def delay(self, failures: int, rng: random.Random) -> float:
        cap = min(self.max_seconds, self.initial_seconds * self.multiplier ** (failures - 1))
        return cap / 2 + rng.uniform(0, cap / 2)


@dataclass(frozen=True)
class BatchOutcome:
    """What one ``ApplyLoop.apply`` call did."""

    messages: int
    changes: int
    dead_letters: int
    ignored: int
    attempts: int
    result: ApplyResult | None
    """None when there was nothing to store (only heartbeats, tombstones...)."""


@dataclass(frozen=True)
class ParsedBatch:
    """A batch after steps 2 and 3 (``ApplyLoop.prepare``), ready to be applied."""

    messages: int
    changes: list[SourceChange]
    streamed: list[datetime]
    """Commit times of the changes captured while streaming (the latency samples)."""
    dead_letters: list[DeadLetter]
    ignored: int
    snapshot_ends: list[SnapshotEnd] = dataclasses.field(default_factory=list)
    """Tables whose snapshot completed in this batch (``reconcile_snapshots`` only)."""


@dataclass
class _SnapshotSeen:
    """The snapshot being delivered: its position, the tables it read so far (in order) and
    those whose end was seen."""

    position: SourcePosition
    tables: dict[tuple[str, str], None] = dataclasses.field(default_factory=dict)
    ended: set[tuple[str, str]] = dataclasses.field(default_factory=set)


def utc_now() -> datetime:
    return datetime.now(UTC)


class ApplyLoop:
    """Turns batches of raw messages into hub transactions (see the module docstring).

    Args:
        hub: the hub services (their engine decides which database).
        mapper: the validated source mappings.
        label: names this loop in logs and metrics (``crm``, ``kafka:mdh``...).
        metrics: where committed batches are accounted, if anywhere.
        retry: the backoff for transient failures.
        stop: set to interrupt retries (the batch is then left unacknowledged).
        max_message_bytes: larger messages are dead-lettered unparsed.
        reconcile_snapshots: when a table's snapshot completes, rows of it the hub holds from
            before the snapshot that the snapshot did not read are marked deleted
            (``hub.model.SnapshotEnd``). Only for a capture that delivers each snapshot whole
            and in order, one source per loop: the embedded engine. Off for Kafka, where a
            worker sees a share of the partitions.
        snapshot_delete_limit: the largest share of a table's live rows one completed snapshot
            may delete (``SnapshotEnd.max_absent_fraction``); above it nothing is deleted and
            an error is logged.
    """

    def __init__(
        self,
        hub: HubServices,
        mapper: ChangeMapper,
        *,
        label: str,
        metrics: CaptureMetrics | None = None,
        retry: RetryPolicy | None = None,
        stop: threading.Event | None = None,
        max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES,
        clock: Callable[[], datetime] = utc_now,
        seed: int | None = None,
        reconcile_snapshots: bool = False,
        snapshot_delete_limit: float = 0.5,
    ) -> None:
        self.hub = hub
        self.mapper = mapper
        self.label = label
        self.metrics = metrics
        self.retry = retry or RetryPolicy()
        self.stop = stop or threading.Event()
        self.max_message_bytes = max_message_bytes
        self.clock = clock
        self._rng = random.Random(seed)
        self._snapshot_started: dict[str, datetime] = {}
        self.reconcile_snapshots = reconcile_snapshots
        self.snapshot_delete_limit = snapshot_delete_limit
        self._snapshot: _SnapshotSeen | None = None
        self._dead_since_streamed = 0
        """Messages dead-lettered since the last streamed change (any snapshot's among them)."""

    def __call__(self, messages: list[RawMessage]) -> None:
        """The embedded engine's batch callback: apply, without a batch position."""
        self.apply(messages)

    def prepare(self, messages: Sequence[RawMessage]) -> ParsedBatch:
        """Steps 2 and 3: parse and map a batch, without touching the hub.

        A source that overlaps capture with apply calls it for the next batch while the one
        before is applied, then ``apply_prepared``; batches must be prepared in delivery order
        (snapshot reads are dated by the snapshot's first read seen here).
        """
        changes: list[SourceChange] = []
        streamed: list[datetime] = []
        letters: list[DeadLetter] = []
        ends: list[SnapshotEnd] = []
        ignored = 0
        for message in messages:
            envelope: ChangeEnvelope | None = None
            try:
                envelope = parse_message(message, max_message_bytes=self.max_message_bytes)
                change = self.mapper.map_change(envelope)
            except PoisonMessageError as exc:
                letters.append(self._dead_letter(message, envelope, exc))
                self._dead_since_streamed += 1
                continue
            if change is None:
                ignored += 1
                continue
            source = envelope.source
            assert source is not None  # map_change returns changes only for row events
            if source.in_snapshot:
                change = self._at_snapshot_start(source.name, source.snapshot, change)
                if self.reconcile_snapshots:
                    ends.extend(self._snapshot_read(source.snapshot, change))
            else:
                self._snapshot_started.pop(source.name, None)
                self._snapshot = None
                self._dead_since_streamed = 0
                streamed.append(change.position.committed_at)
            changes.append(change)
        return ParsedBatch(len(messages), changes, streamed, letters, ignored, ends)

    @staticmethod
    def merge(parsed: Sequence[ParsedBatch]) -> ParsedBatch:
        """Batches prepared one after another, as one (their changes in delivery order)."""
        return ParsedBatch(
            messages=sum(p.messages for p in parsed),
            changes=[c for p in parsed for c in p.changes],
            streamed=[t for p in parsed for t in p.streamed],
            dead_letters=[d for p in parsed for d in p.dead_letters],
            ignored=sum(p.ignored for p in parsed),
            snapshot_ends=[e for p in parsed for e in p.snapshot_ends],
        )

    def apply(
        self, messages: Sequence[RawMessage], position: BatchPosition | None = None
    ) -> BatchOutcome:
        """Apply one batch; returns once it is committed.

        Raises:
            ApplyInterruptedError: ``stop`` was set while a transient failure was retried.
            Exception: anything that is neither poison nor transient (a bug).
        """
        return self.apply_prepared(self.prepare(messages), position)

    def apply_prepared(
        self, parsed: ParsedBatch, position: BatchPosition | None = None
    ) -> BatchOutcome:
        """Steps 4 to 7 for a batch ``prepare`` parsed; returns once it is committed.

        Raises:
            ApplyInterruptedError: ``stop`` was set while a transient failure was retried.
            Exception: anything that is neither poison nor transient (a bug).
        """
        messages, changes, letters = parsed.messages, parsed.changes, parsed.dead_letters
        streamed, ignored, ends = parsed.streamed, parsed.ignored, parsed.snapshot_ends
        if not changes and not letters and not ends:
            self._record(messages, [], [], 0, ignored)
            return BatchOutcome(messages, 0, 0, ignored, 0, None)

        # 4. one transaction (split when too large for the lock table); 5. transient failures
        # retried, nothing acknowledged meanwhile
        result, attempts = self._apply_split(changes, position, letters, ends)
        if result.absent_from_snapshot:
            logger.info(
                "%s: %d source rows absent from the completed snapshot marked deleted",
                self.label,
                result.absent_from_snapshot,
            )
        for refused in result.absent_refused:
            logger.error(
                "%s: a completed snapshot no longer has %s, more than %.0f%% of the table:"
                " none was marked deleted. If the source really lost them, raise"
                " capture.snapshot_delete_limit for this source, then `mdh cdc reset` and"
                " restart to snapshot again.",
                self.label,
                refused,
                self.snapshot_delete_limit * 100,
            )

        # 7. metrics of the committed batch
        self._record(messages, changes, streamed, len(letters), ignored)
        return BatchOutcome(messages, len(changes), len(letters), ignored, attempts, result)

    # --- helpers -------------------------------------------------------------------------

    def _apply_split(
        self,
        changes: Sequence[SourceChange],
        position: BatchPosition | None,
        letters: Sequence[DeadLetter],
        ends: Sequence[SnapshotEnd] = (),
    ) -> tuple[ApplyResult, int]:
        """Apply as one transaction; a batch whose locks overflow the server's lock table is
        applied in two halves, recursively. Only the last part carries the batch position, the
        dead letters and the snapshot ends, so a crash between parts redelivers the whole
        batch, whose applied part is then ignored row by row (not newer)."""
        try:
            return self._apply_retrying(changes, position, letters, ends)
        except TransactionTooLargeError as exc:
            if len(changes) < 2:
                raise
            half = len(changes) // 2
            logger.warning(
                "%s: batch of %d changes too large for one transaction (%s); applying it in"
                " two parts",
                self.label,
                len(changes),
                exc.detail,
            )
            first, tried = self._apply_split(changes[:half], None, ())
            last, more = self._apply_split(changes[half:], position, letters, ends)
            return _combined(first, last), tried + more

    def _apply_retrying(
        self,
        changes: Sequence[SourceChange],
        position: BatchPosition | None,
        letters: Sequence[DeadLetter],
        ends: Sequence[SnapshotEnd],
    ) -> tuple[ApplyResult, int]:
        attempts = 0
        while True:
            attempts += 1
            try:
                result = self.hub.apply_changes(
                    changes, position, dead_letters=letters, snapshot_ends=ends
                )
                break
            except TRANSIENT_ERRORS as exc:
                if self.retry.max_attempts is not None and attempts >= self.retry.max_attempts:
                    raise
                pause = self.retry.delay(attempts, self._rng)
                logger.warning(
                    "%s: batch of %d changes not applied (attempt %d: %s); retrying in %.1fs",
                    self.label,
                    len(changes),
                    attempts,
                    exc,
                    pause,
                )
                if self.stop.wait(pause):
                    raise ApplyInterruptedError(self.label, attempts) from exc
        if attempts > 1:
            logger.info("%s: batch applied after %d attempts", self.label, attempts)
        return result, attempts

    def _at_snapshot_start(self, source: str, marker: str, change: SourceChange) -> SourceChange:
        committed_at = change.position.committed_at
        started = self._snapshot_started.get(source)
        if started is None or marker == "first" or committed_at < started:
            started = self._snapshot_started[source] = committed_at
        if started == committed_at:
            return change
        position = dataclasses.replace(change.position, committed_at=started)
        return dataclasses.replace(change, position=position)

    def _snapshot_read(self, marker: str, change: SourceChange) -> list[SnapshotEnd]:
        """Follow the snapshot being delivered; the tables whose snapshot this read ends.

        Debezium marks the last read of each table ``last_in_data_collection`` and the last
        read of the snapshot ``last`` (which ends every table read and not yet ended: a table
        whose only read was the snapshot's first carries ``first`` instead). A table of the
        snapshot with no rows at all has no read to end it and is not reconciled.
        """
        seen = self._snapshot
        if seen is None or seen.position.lsn != change.position.lsn or marker == "first":
            seen = self._snapshot = _SnapshotSeen(change.position)
        table = (change.key.system, change.key.table)
        seen.tables.setdefault(table)
        if marker == "last_in_data_collection":
            done = [table]
        elif marker == "last":
            done = [t for t in seen.tables if t not in seen.ended]
            self._snapshot = None
        else:
            return []
        seen.ended.update(done)
        if self._dead_since_streamed:
            logger.warning(
                "%s: rows missing from the snapshot of %s are not marked deleted: %d of its"
                " messages were dead-lettered, so a missing row may only have failed",
                self.label,
                ", ".join(f"{system}/{name}" for system, name in done),
                self._dead_since_streamed,
            )
            return []
        return [
            SnapshotEnd(system, name, change.position, self.snapshot_delete_limit)
            for system, name in done
        ]

    def _dead_letter(
        self, message: RawMessage, envelope: ChangeEnvelope | None, exc: PoisonMessageError
    ) -> DeadLetter:
        position: dict[str, Any] = {}
        if message.topic:
            position["topic"] = message.topic
        if message.partition is not None:
            position["partition"] = message.partition
        if message.offset is not None:
            position["offset"] = message.offset
        source_name = ""
        if envelope is not None and envelope.source is not None:
            info = envelope.source
            source_name = info.name
            position.update(
                {
                    k: v
                    for k, v in (("lsn", info.lsn), ("tx_id", info.tx_id), ("ts_ms", info.ts_ms))
                    if v is not None
                }
            )
        if not source_name and message.topic:
            source_name = message.topic.split(".", 1)[0]
        logger.warning("%s: dead-lettered a message (%s)", self.label, exc)
        return DeadLetter(
            source=source_name or self.label,
            raw_key=message.key,
            raw_value=message.value,
            reason=str(exc),
            error_class=type(exc).__name__,
            position=position or None,
        )

    def _record(
        self,
        events: int,
        changes: Sequence[SourceChange],
        streamed: Sequence[datetime],
        dead_letters: int,
        ignored: int,
    ) -> None:
        if self.metrics is None:
            return
        self.metrics.record_batch(
            self.label,
            events=events,
            changes=len(changes),
            dead_letters=dead_letters,
            ignored=ignored,
            applied_at=self.clock(),
            commit_times=[c.position.committed_at for c in changes],
            streamed_commit_times=streamed,
        )


def _combined(first: ApplyResult, last: ApplyResult) -> ApplyResult:
    """The result of a batch applied in two parts."""
    return ApplyResult(
        batch_skipped=last.batch_skipped,
        applied=first.applied + last.applied,
        stale=first.stale + last.stale,
        invalid=first.invalid + last.invalid,
        deleted=first.deleted + last.deleted,
        goldens_created=first.goldens_created + last.goldens_created,
        goldens_changed=first.goldens_changed + last.goldens_changed,
        review_tasks_opened=first.review_tasks_opened + last.review_tasks_opened,
        dead_letters=first.dead_letters + last.dead_letters,
    )
