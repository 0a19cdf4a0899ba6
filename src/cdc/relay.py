"""The outbox relay: golden changes from the hub's outbox to every configured target.

One worker thread per target, so a slow or failing target never holds up another. Each
worker repeats, and its correctness depends on this order:

1. Claim up to ``batch_size`` due rows of its target (``Publishing.claim``): id order, only
   the earliest pending version of each golden record, leased to this worker.
2. Skip the rows whose event the target does not take (settled, nothing sent). A target that
   takes batches (the PostgreSQL write-back) gets the others in one delivery, all or nothing;
   when it refuses the batch (rejected or deferred), and for the other targets, they go one by
   one in id order, so a row that fails alone is settled alone. Before an attempt, if the
   lease does not leave room for a whole one, the rows not attempted are handed back.
3. Settle each row: a failure at once, due again after an exponential backoff with jitter
   computed from the row's attempts, or dead when that was its last attempt
   (``max_attempts``) or the target rejected the payload; acknowledgements (each with its own
   time) together, every ``ack_batch`` rows or ``ack_wait`` seconds and before the next claim.
   Only a settled row lets the next version of its golden record be claimed, so versions
   reach each target in order (a claim holds at most one version per golden record).
4. When the target is unavailable, hand back the rows not yet attempted (their attempt is not
   counted) and pause the whole target for a backoff that grows while it stays unavailable;
   one probe per pause, not one failure per row.
5. When the hub cannot be reached, pause and try again. A delivery whose settle was lost comes
   due again when its lease ends and is delivered again: targets drop the repeat by its
   idempotency key (``golden_id:version:target``).

6. Retention: one relay per process (the first of ``build_relays``) deletes, every
   ``prune_interval`` seconds, the settled rows older than ``retention`` that a later version
   of their golden record has superseded (``Publishing.prune``: pending and dead rows stay,
   and so does each golden record's latest acknowledged version per target).

Anything else (a bug) stops the relay: ``run`` raises ``RelayFailedError``.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import random
import socket
import threading
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from cdc.apply import TRANSIENT_ERRORS, RetryPolicy
from cdc.errors import CdcError
from cdc.targets import (
    AnyTargetSpec,
    DeliveryDeferredError,
    DeliveryRejectedError,
    DeliveryTarget,
    TargetError,
    TargetUnavailableError,
    build_targets,
)
from hub.services import HubServices
from hub.services.sync import DEFAULT_RETENTION, Delivery, Publishing

logger = logging.getLogger(__name__)


def utc_now() -> datetime:
    return datetime.now(UTC)


class RelayFailedError(CdcError):
    """A relay worker stopped on an unexpected error (a bug); the relay stopped with it."""

    def __init__(self, target: str, error: BaseException) -> None:
        self.target = target
        self.error = error
        super().__init__(f"relay worker for {target!r} failed: {type(error).__name__}: {error}")


@dataclass(frozen=True)
class RelaySettings:
    """How the relay claims work (per-target retries are in the target's ``delivery:``)."""

    batch_size: int = 100
    lease: timedelta = timedelta(seconds=60)
    """How long a claimed row is this relay's; deliveries must finish well inside it."""
    idle_wait: float = 0.1
    """Seconds between claims while nothing is due (the pick-up delay of a new change)."""
    ack_batch: int = 50
    ack_wait: float = 0.1
    """Acknowledgements are recorded together, at most this many or this late (seconds)."""
    hub_retry: RetryPolicy = field(
        default_factory=lambda: RetryPolicy(initial_seconds=0.5, max_seconds=30.0)
    )
    owner: str = field(default_factory=lambda: f"{socket.gethostname()}:{os.getpid()}")
    """Names this relay in lease tokens (``mdh publish status`` shows who holds what)."""
    retention: timedelta | None = DEFAULT_RETENTION
    """Settled rows older than this are pruned (step 6); None keeps every row."""
    prune_interval: float | None = 3600.0
    """Seconds between prunes (the first at start); None: this relay does not prune."""


@dataclass
class TargetCounts:
    """What one target's worker did since the relay started."""

    delivered: int = 0
    skipped: int = 0
    failed: int = 0
    dead: int = 0
    released: int = 0
    batches_split: int = 0
    """Batches a target refused as a whole, delivered again row by row."""
    last_error: str | None = None
    last_delivered_at: datetime | None = None


class _Worker:
    """Delivers one target's rows (steps 1-5 of the module docstring)."""

    def __init__(self, relay: OutboxRelay, target: DeliveryTarget, rng: random.Random) -> None:
        self.relay = relay
        self.target = target
        self.rng = rng
        self.counts = TargetCounts()
        self.backoff = RetryPolicy(
            initial_seconds=target.delivery.initial_backoff_seconds,
            max_seconds=target.delivery.max_backoff_seconds,
        )
        self.unavailable = 0
        """Consecutive times the target was found unavailable (the pause grows with it)."""
        self.hub_failures = 0
        self._acknowledged: list[tuple[Delivery, datetime]] = []

    @property
    def publishing(self) -> Publishing:
        return self.relay.publishing

    def run(self) -> None:
        stop = self.relay.stop
        while not stop.is_set():
            try:
                handled = self.deliver_due()
            except TRANSIENT_ERRORS as exc:
                self.hub_failures += 1
                pause = self.relay.settings.hub_retry.delay(self.hub_failures, self.rng)
                logger.warning(
                    "%s: hub unavailable (%s); retrying in %.1fs", self.target.name, exc, pause
                )
                stop.wait(pause)
                continue
            self.hub_failures = 0
            if handled == 0:
                stop.wait(self.relay.settings.idle_wait)

    def deliver_due(self) -> int:
        """One claim and its deliveries; returns how many rows were claimed."""
        try:
            return self._deliver_claimed()
        finally:
            self._record_acknowledged()

    def _deliver_claimed(self) -> int:
        settings = self.relay.settings
        deliveries = self.publishing.claim(
            self.target.name,
            limit=settings.batch_size,
            lease=settings.lease,
            owner=f"{settings.owner}:{self.target.name}",
        )
        wanted: list[Delivery] = []
        for delivery in deliveries:
            if delivery.event is not None and delivery.event not in self.target.events:
                self.publishing.mark_skipped(delivery)
                self.counts.skipped += 1
            else:
                wanted.append(delivery)
        batch = len(wanted) > 1 and self.target.delivers_batches
        if batch and self._deliver_batch(wanted):
            return len(deliveries)
        for index, delivery in enumerate(wanted):
            if not self._time_left(delivery):
                self._release(wanted[index:], self.relay.clock())
                break
            try:
                self._deliver(delivery)
            except TargetUnavailableError as exc:
                self._unavailable(delivery, wanted[index + 1 :], exc)
                break
        return len(deliveries)

    def _time_left(self, delivery: Delivery) -> bool:
        """Whether the lease leaves room for a whole attempt (step 2)."""
        margin = timedelta(seconds=self.target.delivery.timeout_seconds * 1.5)
        return not self.relay.stop.is_set() and self.relay.clock() + margin <= delivery.lease_until

    def _deliver_batch(self, deliveries: Sequence[Delivery]) -> bool:
        """Step 2 for a target that takes batches: all rows at once. True when they are
        settled (acknowledged, or the target unavailable); False when the batch failed and
        the rows are to be delivered one by one (one of them may fail alone)."""
        if not self._time_left(deliveries[0]):
            self._release(deliveries, self.relay.clock())
            return True
        try:
            self.target.deliver_batch(deliveries)
        except TargetUnavailableError as exc:
            self._unavailable(deliveries[0], deliveries[1:], exc)
            return True
        except (DeliveryRejectedError, DeliveryDeferredError) as exc:
            logger.info(
                "%s: a batch of %d failed (%s: %s); delivering them one by one",
                self.target.name,
                len(deliveries),
                exc.kind,
                exc.detail,
            )
            self.counts.batches_split += 1
            return False
        acknowledged_at = self.relay.clock()
        self.unavailable = 0
        self._acknowledged.extend((d, acknowledged_at) for d in deliveries)
        self.counts.delivered += len(deliveries)
        self.counts.last_delivered_at = acknowledged_at
        self._record_acknowledged()
        return True

    def _unavailable(
        self, delivery: Delivery, rest: Sequence[Delivery], error: TargetUnavailableError
    ) -> None:
        """Step 4: the attempt fails, the rest go back unattempted, the target pauses."""
        self._failed(delivery, error)
        self.unavailable += 1
        pause = self.backoff.delay(self.unavailable, self.rng)
        self._release(rest, self.relay.clock() + timedelta(seconds=pause))
        logger.warning("%s unavailable (%s); pausing %.1fs", self.target.name, error.detail, pause)
        self.relay.stop.wait(pause)

    def _deliver(self, delivery: Delivery) -> None:
        try:
            self.target.deliver(delivery)
        except DeliveryRejectedError as exc:
            logger.warning(
                "%s rejected %s: %s", self.target.name, delivery.idempotency_key, exc.detail
            )
            self._dead(delivery, exc)
            return
        except DeliveryDeferredError as exc:
            logger.info(
                "%s deferred %s: %s", self.target.name, delivery.idempotency_key, exc.detail
            )
            self._failed(delivery, exc)
            return
        acknowledged_at = self.relay.clock()
        self.unavailable = 0
        self._acknowledged.append((delivery, acknowledged_at))
        self.counts.delivered += 1
        self.counts.last_delivered_at = acknowledged_at
        settings = self.relay.settings
        oldest = self._acknowledged[0][1]
        if len(self._acknowledged) >= settings.ack_batch or (
            (acknowledged_at - oldest).total_seconds() >= settings.ack_wait
        ):
            self._record_acknowledged()

    def _record_acknowledged(self) -> None:
        if not self._acknowledged:
            return
        batch, self._acknowledged = self._acknowledged, []
        recorded = self.publishing.mark_all_delivered(batch)
        if recorded < len(batch):
            logger.warning(
                "%s: %d deliveries finished after their lease ran out; another relay has them",
                self.target.name,
                len(batch) - recorded,
            )

    def _failed(self, delivery: Delivery, error: TargetError) -> None:
        if delivery.attempts >= self.target.delivery.max_attempts:
            self._dead(delivery, error)
            return
        pause = self.backoff.delay(delivery.attempts, self.rng)
        self.publishing.mark_failed(
            delivery, _error_text(error), retry_at=self.relay.clock() + timedelta(seconds=pause)
        )
        self.counts.failed += 1
        self.counts.last_error = _error_text(error)

    def _dead(self, delivery: Delivery, error: TargetError) -> None:
        text = _error_text(error)
        self.publishing.mark_dead(delivery, text)
        self.counts.dead += 1
        self.counts.last_error = text
        logger.warning(
            "%s: %s dead after %d attempt(s): %s",
            self.target.name,
            delivery.idempotency_key,
            delivery.attempts,
            text,
        )

    def _release(self, deliveries: Sequence[Delivery], retry_at: datetime) -> None:
        if deliveries:
            self.counts.released += self.publishing.release(deliveries, retry_at=retry_at)


class OutboxRelay:
    """Delivers the outbox to targets until stopped (module docstring).

    Several relays (threads or processes) may run against one hub: leases keep them from
    delivering the same row at the same time.

    Args:
        hub: the hub services (the outbox is read through ``hub.publishing()``).
        targets: the adapters, one worker thread each.
        settings: batch size, lease, idle wait, owner name.
        stop: set it to stop (``run`` returns once every worker finished its delivery).
        clock: acknowledgement and retry times (timezone-aware UTC).
        seed: the jitter's random seed (tests).
    """

    def __init__(
        self,
        hub: HubServices,
        targets: Sequence[DeliveryTarget],
        *,
        settings: RelaySettings | None = None,
        stop: threading.Event | None = None,
        clock: Callable[[], datetime] = utc_now,
        seed: int | None = None,
    ) -> None:
        names = [t.name for t in targets]
        if len(set(names)) != len(names):
            raise ValueError(f"each target once, got {names}")
        self.publishing = hub.publishing()
        self.settings = settings or RelaySettings()
        self.stop = stop or threading.Event()
        self.clock = clock
        rng = random.Random(seed)
        self._workers = [_Worker(self, t, random.Random(rng.random())) for t in targets]
        self._threads: list[threading.Thread] = []
        self._failure: RelayFailedError | None = None
        self.pruned = 0
        """Outbox rows this relay's prunes deleted."""

    @property
    def targets(self) -> list[str]:
        return [w.target.name for w in self._workers]

    @property
    def adapters(self) -> list[DeliveryTarget]:
        return [w.target for w in self._workers]

    def counts(self) -> dict[str, TargetCounts]:
        """Per target, what its worker did (a snapshot; counters only grow)."""
        return {w.target.name: TargetCounts(**vars(w.counts)) for w in self._workers}

    def deliver_due(self, target: str | None = None) -> int:
        """One claim-and-deliver pass in the calling thread (every target, or one); returns
        how many rows were claimed. For tests and one-shot runs; ``run`` loops."""
        return sum(
            w.deliver_due() for w in self._workers if target is None or w.target.name == target
        )

    def start(self) -> None:
        """Start one thread per target (and one for the prunes) and return."""
        for worker in self._workers:
            thread = threading.Thread(
                target=self._guard, args=(worker,), name=f"mdh-relay-{worker.target.name}"
            )
            thread.start()
            self._threads.append(thread)
        if self.settings.retention is not None and self.settings.prune_interval is not None:
            thread = threading.Thread(target=self._guard_prunes, name="mdh-relay-prune")
            thread.start()
            self._threads.append(thread)

    def prune(self) -> int:
        """Delete the settled rows past the retention (step 6) now; returns how many."""
        if self.settings.retention is None:
            return 0
        pruned = self.publishing.prune(older_than=self.settings.retention)
        self.pruned += pruned
        if pruned:
            logger.info(
                "outbox: %d settled rows older than %s pruned", pruned, self.settings.retention
            )
        return pruned

    def _guard_prunes(self) -> None:
        interval = self.settings.prune_interval or 0.0
        wait = 0.0
        try:
            while not self.stop.wait(wait):
                try:
                    self.prune()
                    wait = interval
                except TRANSIENT_ERRORS as exc:
                    wait = min(interval, 60.0)
                    logger.warning("outbox prune: hub unavailable (%s); again in %.0fs", exc, wait)
        except BaseException as exc:
            logger.exception("outbox prune failed")
            self._failure = RelayFailedError("(prune)", exc)
            self.stop.set()

    def join(self, timeout: float | None = None) -> None:
        """Wait for the workers to finish (after ``stop`` is set); raise if one failed.

        Raises:
            RelayFailedError: a worker stopped on an unexpected error.
        """
        for thread in self._threads:
            thread.join(timeout)
        if self._failure is not None:
            raise self._failure

    def run(self) -> None:
        """Deliver until ``stop`` is set; returns after every worker has stopped.

        Raises:
            RelayFailedError: a worker stopped on an unexpected error (the others stop too).
        """
        self.start()
        self.join()

    def _guard(self, worker: _Worker) -> None:
        try:
            worker.run()
        except BaseException as exc:
            logger.exception("relay worker for %s failed", worker.target.name)
            self._failure = RelayFailedError(worker.target.name, exc)
            self.stop.set()
        finally:
            try:
                worker.target.close()
            except Exception as exc:  # closing must not hide why the worker ended
                logger.warning("closing %s failed: %s", worker.target.name, exc)


def build_relays(
    hub: HubServices,
    specs: Mapping[str, AnyTargetSpec],
    stop: threading.Event,
    *,
    workers: int = 1,
    only: Collection[str] | None = None,
    settings: RelaySettings | None = None,
) -> list[OutboxRelay]:
    """``workers`` relays over the targets of ``specs`` (each with adapters of its own),
    sharing ``stop``; not started. More than one delivers a target's backlog in parallel:
    leases keep them apart and order per golden record holds (``Publishing``)."""
    settings = settings or RelaySettings()
    publishing = hub.publishing()
    return [
        OutboxRelay(
            hub,
            build_targets(
                specs,
                writeback_state=publishing.writeback_state,
                writeback_states=publishing.writeback_states,
                only=only,
            ),
            settings=dataclasses.replace(
                settings,
                owner=f"{settings.owner}/{index}",
                prune_interval=settings.prune_interval if index == 0 else None,
            ),
            stop=stop,
        )
        for index in range(workers)
    ]


def run_relay(
    hub: HubServices,
    specs: Mapping[str, AnyTargetSpec],
    stop: threading.Event,
    *,
    workers: int = 1,
    only: Collection[str] | None = None,
    settings: RelaySettings | None = None,
) -> list[OutboxRelay]:
    """Build the targets of ``specs`` and deliver until ``stop`` is set (blocking).

    The building block of ``mdh publish run``; ``mdh demo`` runs it in a thread::

        threading.Thread(target=run_relay, args=(hub, config.target_specs, stop)).start()

    Returns the relays once stopped (their ``counts()`` say what they did).

    Raises:
        RelayFailedError: a worker stopped on an unexpected error (all stop with it).
    """
    relays = build_relays(hub, specs, stop, workers=workers, only=only, settings=settings)
    for relay in relays:
        relay.start()
    failure: RelayFailedError | None = None
    for relay in relays:
        try:
            relay.join()
        except RelayFailedError as exc:
            failure = failure or exc
    if failure is not None:
        raise failure
    return relays


def _error_text(error: TargetError) -> str:
    return f"{error.kind}: {error.detail}"[:2000]


__all__ = [
    "OutboxRelay",
    "RelayFailedError",
    "RelaySettings",
    "TargetCounts",
    "build_relays",
    "run_relay",
]
