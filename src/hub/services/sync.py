"""Publishing golden changes: outbox rows leased to relays in order, settled, and measured.

Apply writes one outbox row per golden change and target; ``cdc.relay`` delivers them through
``Publishing``. A row is *pending* while ``delivered_at`` and ``dead_at`` are both NULL; it ends
delivered (``acknowledged_at`` keeps the first acknowledgement), skipped (the target does not
take that kind of event) or dead (given up, ``last_error`` says why; ``retry`` revives it).

Per golden record, versions reach a target in order, and several relays may share a target.
That depends on these steps:

1. ``claim`` is one transaction: it picks due pending rows whose earlier versions (same
   golden record, same target) are all settled, those of recently changed golden records
   first and then in id order, locking them ``FOR UPDATE SKIP LOCKED`` so a row another relay
   is claiming at this instant is passed over (the second pick leaves out the rows of the
   first), and leases them: ``next_attempt_at`` becomes the lease's end, ``claimed_by`` a
   fresh token, ``attempts`` + 1. At most one version per golden record: each pick takes
   only earliest pending versions, and a version the first pick locked keeps the next one
   from being the earliest.
2. A leased, backing-off or failing row is still pending, so the next version of its golden
   record is not claimable until it is delivered, skipped or dead: the probe of step 1 reads
   committed state, and the earlier row leaves the pending state only by a committed settle.
3. Every settle (delivered, failed, dead, skipped, released) names the lease token. Once a
   lease has run out and another relay claimed the row, the first relay's settle changes
   nothing: the holder of the current lease decides.
4. The relay delivers inside the lease (target timeouts are shorter than the lease, and rows
   not started when the lease nears its end are released), so no row is delivered by two
   relays at the same time. After a crash the lease runs out and the row is delivered again:
   the idempotency key (``golden_id:version:target``) lets the target drop the repeat.

Sync latency (``measure_sync_latency``, the one definition every report uses):
``source_committed_at`` (the source commit of the change behind the golden change; None for
steward actions), ``golden_committed_at`` (written just before the golden change commits) and
``acknowledged_at`` give per target the percentiles of source to golden, golden to target and
source to target over the acknowledged rows; skipped and dead rows are not deliveries.

Retention (``prune``): settled rows superseded by a later acknowledged version of their golden
record are deleted once older than the retention; pending and dead rows, and each golden
record's latest acknowledged version per target, stay.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.engine import Engine
from sqlmodel import Session

from hub.errors import GoldenRecordNotFoundError
from hub.model import GoldenStatus
from hub.services._tx import run_in_transaction

T = TypeVar("T")

_PENDING = "delivered_at IS NULL AND dead_at IS NULL"

DEFAULT_RETENTION = timedelta(days=7)
"""How long settled outbox rows are kept for the KPI and ``replay --all-versions``."""


@dataclass(frozen=True)
class Delivery:
    """A leased outbox row: one golden change for one target."""

    id: int
    golden_id: int
    version: int
    target: str
    idempotency_key: str
    payload: Mapping[str, Any]
    event: str | None
    """The kind of the golden history event behind it (``created``, ``merged``...)."""
    attempts: int
    """Including this one."""
    created_at: datetime
    lease_token: str
    lease_until: datetime


@dataclass(frozen=True)
class DeadDelivery:
    id: int
    golden_id: int
    version: int
    target: str
    idempotency_key: str
    attempts: int
    last_error: str | None
    created_at: datetime
    dead_at: datetime


@dataclass(frozen=True)
class TargetStatus:
    """Where the outbox rows of one target stand."""

    target: str
    pending: int
    """Not yet delivered, skipped or dead (in flight and backing off included)."""
    in_flight: int
    """Leased to a relay right now."""
    retrying: int
    """Failed at least once, waiting for the next attempt."""
    delivered: int
    skipped: int
    dead: int
    oldest_pending_at: datetime | None
    last_error: str | None
    """The error of the most recent failed attempt still on record."""


@dataclass(frozen=True)
class RetryResult:
    revived: int
    superseded: int
    """Dead rows left dead because a later version of their golden record was delivered."""


@dataclass(frozen=True)
class Percentiles:
    """Milliseconds; None when nothing was measured."""

    count: int
    p50: float | None
    p95: float | None
    p99: float | None
    max: float | None


@dataclass(frozen=True)
class TargetSyncLatency:
    """The sync-latency KPI of one target over the acknowledgements in a window."""

    target: str
    delivered: int
    source_to_golden: Percentiles
    """Source commit to golden commit (changes from sources only)."""
    golden_to_target: Percentiles
    """Golden commit to the target's acknowledgement (steward actions included)."""
    source_to_target: Percentiles
    """Source commit to the target's acknowledgement: what a user of the target waits."""


@dataclass(frozen=True)
class LinkedSourceRow:
    """A source row that is, or once was, linked to a golden record, as the hub knows it now."""

    table: str
    pk: str
    golden_id: int | None
    """The active golden record it is linked to now (merges followed); None: not linked."""
    deleted: bool


@dataclass(frozen=True)
class WritebackState:
    """What a write-back needs of a golden record: its state now and the source rows of one
    system that are, or once were, linked to it."""

    golden_id: int
    version: int
    status: GoldenStatus
    attributes: Mapping[str, Any]
    """Current attributes (empty unless active)."""
    rows: tuple[LinkedSourceRow, ...]


def _ids(values: Sequence[int]) -> Any:
    return sa.bindparam("ids", list(values), type_=ARRAY(sa.BigInteger))


_DUE = (
    "o.target = :target AND o.delivered_at IS NULL AND o.dead_at IS NULL"
    " AND o.next_attempt_at <= :now"
)

_CLAIM_RECENT = sa.text(
    f"""
    SELECT o.id FROM outbox o
    WHERE {_DUE} AND o.id = ANY(ARRAY(
      SELECT h.id
      FROM (SELECT DISTINCT r.golden_id FROM (
              SELECT golden_id FROM outbox WHERE target = :target ORDER BY id DESC LIMIT :limit
            ) r) g
      CROSS JOIN LATERAL (
        SELECT e.id FROM outbox e
        WHERE e.target = :target AND e.golden_id = g.golden_id
          AND e.delivered_at IS NULL AND e.dead_at IS NULL
        ORDER BY e.version LIMIT 1) h))
    ORDER BY o.id
    LIMIT :limit
    FOR UPDATE OF o SKIP LOCKED
    """
)
"""Step 1, recent changes: the earliest pending version of each golden record among the
target's newest ``limit`` rows, if it is due (one index probe per golden record)."""

_CLAIM_IN_ORDER = sa.text(
    f"""
    SELECT o.id FROM outbox o
    WHERE {_DUE} AND o.id <> ALL(:ids)
      AND o.version = (
        SELECT min(e.version) FROM outbox e
        WHERE e.target = o.target AND e.golden_id = o.golden_id
          AND e.delivered_at IS NULL AND e.dead_at IS NULL)
    ORDER BY o.id
    LIMIT :limit
    FOR UPDATE OF o SKIP LOCKED
    """
)
"""Step 1, the rest: due rows in id order that are the earliest pending version of their
golden record (a scalar subquery per row: see ``Publishing.claim``)."""

_LEASE = sa.text(
    """
    UPDATE outbox o
    SET attempts = o.attempts + 1, next_attempt_at = :lease_until, claimed_by = :token
    WHERE o.id = ANY(:ids)
    RETURNING o.id, o.golden_id, o.version, o.target, o.idempotency_key, o.payload,
      o.attempts, o.created_at,
      (SELECT h.kind FROM golden_history h
        WHERE h.golden_id = o.golden_id AND h.version = o.version
        ORDER BY h.sequence DESC LIMIT 1) AS event
    """
)
"""Step 1, the lease of the rows both statements locked."""


class Publishing:
    """The outbox as the relay and ``mdh publish`` see it; each method is one transaction.

    Args:
        engine: the hub database (READ COMMITTED).
        clock: the hub's clock (timezone-aware UTC).
        attempts: re-runs of a transaction after a deadlock or serialization failure.
    """

    def __init__(self, engine: Engine, clock: Callable[[], datetime], attempts: int = 5) -> None:
        self.engine = engine
        self.clock = clock
        self.attempts = attempts
        self._single_statement = engine.execution_options(isolation_level="AUTOCOMMIT")

    def _write(self, operation: str, work: Callable[[Session], T]) -> T:
        return run_in_transaction(self.engine, operation, work, attempts=self.attempts)

    def _read(self, operation: str, work: Callable[[Session], T]) -> T:
        return run_in_transaction(
            self.engine, operation, work, attempts=self.attempts, read_only=True
        )

    # --- the relay -----------------------------------------------------------------------

    def claim(
        self, target: str, *, limit: int, lease: timedelta, owner: str = "relay"
    ) -> list[Delivery]:
        """Lease up to ``limit`` due rows of ``target`` whose earlier versions are settled
        (steps 1 and 2 of the module docstring), returned in id order.

        Recent changes first: the golden records of the target's newest ``limit`` rows get
        their earliest pending version leased ahead of the backlog, then the backlog follows
        in id order. So a live change does not wait behind an initial load's write-back
        still in the outbox (with 10,000 demo customers it waited 26 to 67 s), and a backlog
        still drains: every claim takes the rest in id order.

        "No earlier pending version" is asked as "the earliest pending version", looked up by
        golden id in ``ix_outbox_golden_pending``: as a NOT EXISTS anti-join, the planner,
        with statistics from when the outbox was small (an initial load fills it faster than
        autovacuum analyses it), scanned every pending row of the target for each candidate,
        and claims took 5 to 35 s in ``mdh demo``.
        """
        now = self.clock()
        lease_until = now + lease
        token = f"{owner}:{secrets.token_hex(6)}"
        params = {"target": target, "now": now, "limit": limit}

        def work(session: Session) -> list[Delivery]:
            taken = [int(i) for i in session.execute(_CLAIM_RECENT, params).scalars()]
            if len(taken) < limit:
                rest = session.execute(
                    _CLAIM_IN_ORDER.bindparams(_ids(taken)),
                    {**params, "limit": limit - len(taken)},
                ).scalars()
                taken += [int(i) for i in rest]
            if not taken:
                return []
            rows = session.execute(
                _LEASE.bindparams(_ids(taken)), {"lease_until": lease_until, "token": token}
            ).all()
            return sorted(
                (
                    Delivery(
                        id=r.id,
                        golden_id=r.golden_id,
                        version=r.version,
                        target=r.target,
                        idempotency_key=r.idempotency_key,
                        payload=r.payload,
                        event=r.event,
                        attempts=r.attempts,
                        created_at=r.created_at,
                        lease_token=token,
                        lease_until=lease_until,
                    )
                    for r in rows
                ),
                key=lambda d: d.id,
            )

        return self._write("claim outbox", work)

    def mark_delivered(self, delivery: Delivery, acknowledged_at: datetime) -> bool:
        """Record the target's acknowledgement; False when the lease was lost (step 3)."""
        return self.mark_all_delivered([(delivery, acknowledged_at)]) == 1

    def mark_all_delivered(self, acknowledged: Sequence[tuple[Delivery, datetime]]) -> int:
        """Record several acknowledgements in one statement; returns how many still held
        their lease (the others belong to another relay now, step 3)."""
        if not acknowledged:
            return 0
        statement = sa.text(
            "UPDATE outbox o SET delivered_at = a.at,"
            " acknowledged_at = coalesce(o.acknowledged_at, a.at), last_error = NULL,"
            " claimed_by = NULL"
            " FROM unnest(:ids, :tokens, :ats) AS a(id, token, at)"
            " WHERE o.id = a.id AND o.claimed_by = a.token"
            " AND o.delivered_at IS NULL AND o.dead_at IS NULL"
        ).bindparams(
            _ids([d.id for d, _ in acknowledged]),
            sa.bindparam("tokens", [d.lease_token for d, _ in acknowledged], type_=ARRAY(sa.Text)),
            sa.bindparam(
                "ats", [at for _, at in acknowledged], type_=ARRAY(sa.DateTime(timezone=True))
            ),
        )

        def work(session: Session) -> int:
            return _count(session.execute(statement))

        return self._write("mark delivered", work)

    def mark_skipped(self, delivery: Delivery) -> bool:
        """The target does not take this event: settled without sending anything."""
        return self._settle(
            "mark skipped", "delivered_at = :at, skipped = true", delivery, at=self.clock()
        )

    def mark_failed(self, delivery: Delivery, error: str, *, retry_at: datetime) -> bool:
        """A failed attempt; the row comes due again at ``retry_at``."""
        return self._settle(
            "mark failed",
            "last_error = :error, next_attempt_at = :retry_at",
            delivery,
            error=error,
            retry_at=retry_at,
        )

    def mark_dead(self, delivery: Delivery, error: str) -> bool:
        """Give up on the row (the last attempt failed, or the target rejected it for good);
        later versions of its golden record are claimable from now on."""
        return self._settle(
            "mark dead",
            "last_error = :error, dead_at = :at",
            delivery,
            error=error,
            at=self.clock(),
        )

    def release(self, deliveries: Sequence[Delivery], *, retry_at: datetime) -> int:
        """Hand back leased rows that were not attempted (the attempt is not counted)."""
        if not deliveries:
            return 0
        tokens = {d.lease_token for d in deliveries}
        statement = sa.text(
            "UPDATE outbox SET attempts = attempts - 1, next_attempt_at = :retry_at,"
            " claimed_by = NULL WHERE id = ANY(:ids) AND claimed_by = ANY(:tokens)"
            f" AND {_PENDING}"
        ).bindparams(
            _ids([d.id for d in deliveries]),
            sa.bindparam("tokens", sorted(tokens), type_=ARRAY(sa.Text)),
        )

        def work(session: Session) -> int:
            return _count(session.execute(statement, {"retry_at": retry_at}))

        return self._write("release outbox", work)

    def _settle(self, operation: str, assignments: str, delivery: Delivery, **params: Any) -> bool:
        statement = sa.text(
            f"UPDATE outbox SET {assignments}, claimed_by = NULL"
            f" WHERE id = :id AND claimed_by = :token AND {_PENDING}"
        )

        def work(session: Session) -> bool:
            result = session.execute(
                statement, {"id": delivery.id, "token": delivery.lease_token, **params}
            )
            return _count(result) == 1

        return self._write(operation, work)

    def writeback_state(self, golden_id: int, system: str) -> WritebackState:
        """A golden record's current state and every source row of ``system`` that is, or
        once was, linked to it, each with its current link (merges followed).

        Raises:
            GoldenRecordNotFoundError: no golden record ever had this id.
        """
        found = self.writeback_states([golden_id], system).get(golden_id)
        if found is None:
            raise GoldenRecordNotFoundError(golden_id)
        return found

    def writeback_states(self, golden_ids: Sequence[int], system: str) -> dict[int, WritebackState]:
        """``writeback_state`` of several golden records in one statement (one snapshot);
        an id no golden record ever had is left out."""
        if not golden_ids:
            return {}
        # One statement sees one snapshot: no transaction round trips needed.
        return run_in_transaction(
            self._single_statement,
            "writeback state",
            lambda s: _writeback_states(s, golden_ids, system),
            attempts=self.attempts,
        )

    # --- operators (mdh publish) ---------------------------------------------------------

    def status(self) -> list[TargetStatus]:
        """Per target: pending, in flight, retrying, delivered, skipped and dead rows."""
        now = self.clock()
        return self._read("publish status", lambda s: target_statuses(s, now))

    def dead(self, target: str | None = None, limit: int = 100) -> list[DeadDelivery]:
        """Dead rows, newest first."""
        statement = sa.text(
            "SELECT id, golden_id, version, target, idempotency_key, attempts, last_error,"
            " created_at, dead_at FROM outbox WHERE dead_at IS NOT NULL"
            " AND (CAST(:target AS text) IS NULL OR target = :target)"
            " ORDER BY id DESC LIMIT :limit"
        )

        def work(session: Session) -> list[DeadDelivery]:
            rows = session.execute(statement, {"target": target, "limit": limit})
            return [DeadDelivery(**r._mapping) for r in rows]

        return self._read("dead deliveries", work)

    def retry_dead(
        self,
        *,
        target: str | None = None,
        ids: Sequence[int] = (),
        include_superseded: bool = False,
    ) -> RetryResult:
        """Revive dead rows (all of ``target``'s, or the ones named) with fresh attempts.

        A dead row whose golden record has a later version delivered to the same target is
        *superseded*: sending it now would put an old state after a newer one (a compacted
        topic would keep the old one). It stays dead unless ``include_superseded``.
        """
        superseded = (
            "EXISTS (SELECT 1 FROM outbox n WHERE n.target = o.target"
            " AND n.golden_id = o.golden_id AND n.version > o.version"
            " AND n.delivered_at IS NOT NULL AND NOT n.skipped)"
        )
        where = (
            "o.dead_at IS NOT NULL AND (CAST(:target AS text) IS NULL OR o.target = :target)"
            " AND (cardinality(:ids) = 0 OR o.id = ANY(:ids))"
        )
        revive = sa.text(
            "UPDATE outbox o SET dead_at = NULL, attempts = 0, next_attempt_at = :now,"
            f" claimed_by = NULL WHERE {where}"
            + ("" if include_superseded else f" AND NOT {superseded}")
        ).bindparams(_ids(ids))
        left = sa.text(f"SELECT count(*) FROM outbox o WHERE {where} AND {superseded}").bindparams(
            _ids(ids)
        )

        def work(session: Session) -> RetryResult:
            params = {"target": target, "now": self.clock()}
            revived = _count(session.execute(revive, params))
            remaining = 0 if include_superseded else int(session.execute(left, params).scalar_one())
            return RetryResult(revived=revived, superseded=remaining)

        return self._write("retry dead deliveries", work)

    def discard_dead(
        self, *, reason: str, target: str | None = None, ids: Sequence[int] = ()
    ) -> int:
        """Give up on dead rows for good (all of ``target``'s, or the ones named): they are
        settled as skipped (nothing was sent, so they count as no delivery in the KPI), their
        last error kept behind ``reason``. Returns how many."""
        statement = sa.text(
            "UPDATE outbox o SET dead_at = NULL, skipped = true, delivered_at = :now,"
            " claimed_by = NULL,"
            " last_error = 'discarded: ' || :reason || coalesce(' (last error: '"
            " || o.last_error || ')', '')"
            " WHERE o.dead_at IS NOT NULL"
            " AND (CAST(:target AS text) IS NULL OR o.target = :target)"
            " AND (cardinality(:ids) = 0 OR o.id = ANY(:ids))"
        ).bindparams(_ids(ids))

        def work(session: Session) -> int:
            params = {"target": target, "reason": reason, "now": self.clock()}
            return _count(session.execute(statement, params))

        return self._write("discard dead deliveries", work)

    def replay(
        self,
        target: str,
        *,
        golden_ids: Sequence[int] = (),
        since: datetime | None = None,
        all_versions: bool = False,
    ) -> int:
        """Deliver delivered rows of ``target`` again (a target that lost its copy); returns
        how many. By default only each golden record's latest version (its current state);
        ``all_versions`` replays every version, in order. Pending rows are left alone, and
        a golden record whose latest version is still pending gets nothing replayed."""
        statement = sa.text(
            "UPDATE outbox o SET delivered_at = NULL, attempts = 0, next_attempt_at = :now,"
            " claimed_by = NULL, last_error = NULL"
            " WHERE o.target = :target AND o.delivered_at IS NOT NULL AND NOT o.skipped"
            " AND (cardinality(:ids) = 0 OR o.golden_id = ANY(:ids))"
            " AND (CAST(:since AS timestamptz) IS NULL OR o.created_at >= :since)"
            + (
                ""
                if all_versions
                else " AND NOT EXISTS (SELECT 1 FROM outbox n WHERE n.target = o.target"
                " AND n.golden_id = o.golden_id AND n.version > o.version)"
            )
        ).bindparams(_ids(golden_ids))

        def work(session: Session) -> int:
            params = {"target": target, "since": since, "now": self.clock()}
            return _count(session.execute(statement, params))

        return self._write("replay deliveries", work)

    def prune(self, *, older_than: timedelta = DEFAULT_RETENTION) -> int:
        """Delete rows settled more than ``older_than`` ago that a later version of their
        golden record has superseded at the same target; returns how many.

        Kept whatever their age: pending and dead rows (a dead row stays until it is retried
        and delivered), and per golden record and target the latest acknowledged version and
        the latest settled one, which are what ``replay`` sends (a replay reaching back past
        the retention sends each golden record's current state) and what ``retry_dead``
        compares a dead row with. The KPI and ``replay --all-versions`` see every row settled
        within the retention.
        """
        cutoff = self.clock() - older_than

        def work(session: Session) -> int:
            return _count(session.execute(_PRUNE, {"cutoff": cutoff}))

        return self._write("prune outbox", work)

    def sync_latency(
        self,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        changed_since: datetime | None = None,
    ) -> list[TargetSyncLatency]:
        """Per target, percentiles (ms) of the three spans (module docstring) over the rows
        first acknowledged in [``since``, ``until``) (``measure_sync_latency``)."""
        return self._read(
            "sync latency",
            lambda s: measure_sync_latency(
                s, since=since, until=until, changed_since=changed_since
            ),
        )


def _count(result: Any) -> int:
    return int(result.rowcount)


def _percentiles(
    count: int, quantiles: Sequence[float] | None, maximum: float | None
) -> Percentiles:
    if not count or quantiles is None:
        return Percentiles(count=0, p50=None, p95=None, p99=None, max=None)
    p50, p95, p99 = (round(float(q), 3) for q in quantiles)
    return Percentiles(
        count=int(count),
        p50=p50,
        p95=p95,
        p99=p99,
        max=None if maximum is None else round(float(maximum), 3),
    )


_STATUS = sa.text(
    f"""
    SELECT target,
      count(*) FILTER (WHERE {_PENDING}) AS pending,
      count(*) FILTER (WHERE {_PENDING} AND claimed_by IS NOT NULL
                       AND next_attempt_at > :now) AS in_flight,
      count(*) FILTER (WHERE {_PENDING} AND claimed_by IS NULL
                       AND last_error IS NOT NULL) AS retrying,
      count(*) FILTER (WHERE delivered_at IS NOT NULL AND NOT skipped) AS delivered,
      count(*) FILTER (WHERE skipped) AS skipped,
      count(*) FILTER (WHERE dead_at IS NOT NULL) AS dead,
      min(created_at) FILTER (WHERE {_PENDING}) AS oldest_pending_at,
      (SELECT e.last_error FROM outbox e
        WHERE e.target = outbox.target AND e.last_error IS NOT NULL
          AND e.delivered_at IS NULL
        ORDER BY e.id DESC LIMIT 1) AS last_error
    FROM outbox GROUP BY target ORDER BY target
    """
)


def target_statuses(session: Session, now: datetime) -> list[TargetStatus]:
    """Per target, where its outbox rows stand (``Publishing.status`` and the report)."""
    return [
        TargetStatus(
            target=r.target,
            pending=int(r.pending),
            in_flight=int(r.in_flight),
            retrying=int(r.retrying),
            delivered=int(r.delivered),
            skipped=int(r.skipped),
            dead=int(r.dead),
            oldest_pending_at=r.oldest_pending_at,
            last_error=r.last_error,
        )
        for r in session.execute(_STATUS, {"now": now})
    ]


def _span(start: str, end: str) -> str:
    # Times from different clocks (source database, hub database, relay host) may disagree
    # by a little: a negative span counts as 0 rather than pulling the percentiles down.
    return (
        f"CASE WHEN {start} IS NOT NULL AND {end} IS NOT NULL"
        f" THEN greatest(extract(epoch FROM {end} - {start}) * 1000.0, 0) END"
    )


_SYNC_LATENCY = sa.text(
    f"""
    WITH d AS (
      SELECT target,
        {_span("source_committed_at", "golden_committed_at")} AS s2g,
        {_span("golden_committed_at", "acknowledged_at")} AS g2t,
        {_span("source_committed_at", "acknowledged_at")} AS s2t
      FROM outbox
      WHERE acknowledged_at IS NOT NULL AND NOT skipped AND dead_at IS NULL
        AND (CAST(:since AS timestamptz) IS NULL OR acknowledged_at >= :since)
        AND (CAST(:until AS timestamptz) IS NULL OR acknowledged_at < :until)
        AND (CAST(:changed_since AS timestamptz) IS NULL
             OR golden_committed_at >= :changed_since)
    )
    SELECT target, count(*) AS delivered,
      count(s2g) AS n_s2g,
      percentile_cont(ARRAY[0.5, 0.95, 0.99]) WITHIN GROUP (ORDER BY s2g) AS q_s2g,
      max(s2g) AS max_s2g,
      count(g2t) AS n_g2t,
      percentile_cont(ARRAY[0.5, 0.95, 0.99]) WITHIN GROUP (ORDER BY g2t) AS q_g2t,
      max(g2t) AS max_g2t,
      count(s2t) AS n_s2t,
      percentile_cont(ARRAY[0.5, 0.95, 0.99]) WITHIN GROUP (ORDER BY s2t) AS q_s2t,
      max(s2t) AS max_s2t
    FROM d GROUP BY target ORDER BY target
    """
)


def measure_sync_latency(
    session: Session,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    changed_since: datetime | None = None,
) -> list[TargetSyncLatency]:
    """The sync-latency KPI, the one definition ``Publishing.sync_latency``, ``mdh publish
    status`` and the duplicate-rate report share.

    Measured: rows a target acknowledged (``acknowledged_at``, its first acknowledgement,
    kept through replays) in [``since``, ``until``). Not measured: skipped rows (nothing was
    sent), dead rows (given up on, superseded or not: the target does not have them, even
    if an earlier attempt of a replay had been acknowledged) and pending ones. Percentiles
    are ``percentile_cont`` (linear interpolation) in milliseconds. ``changed_since`` keeps
    only golden changes committed at or after it: the live changes after an initial load,
    whose backlog would otherwise dominate every percentile.
    """
    rows = session.execute(
        _SYNC_LATENCY, {"since": since, "until": until, "changed_since": changed_since}
    )
    return [
        TargetSyncLatency(
            target=r.target,
            delivered=int(r.delivered),
            source_to_golden=_percentiles(r.n_s2g, r.q_s2g, r.max_s2g),
            golden_to_target=_percentiles(r.n_g2t, r.q_g2t, r.max_g2t),
            source_to_target=_percentiles(r.n_s2t, r.q_s2t, r.max_s2t),
        )
        for r in rows
    ]


_PRUNE = sa.text(
    """
    WITH latest AS (
      SELECT target, golden_id,
        max(version) FILTER (WHERE delivered_at IS NOT NULL AND NOT skipped) AS acknowledged,
        max(version) FILTER (WHERE delivered_at IS NOT NULL) AS settled
      FROM outbox GROUP BY target, golden_id
    )
    DELETE FROM outbox o USING latest l
    WHERE o.target = l.target AND o.golden_id = l.golden_id
      AND o.delivered_at IS NOT NULL AND o.delivered_at < :cutoff
      AND (o.version < l.acknowledged OR (o.skipped AND o.version < l.settled))
    """
)
"""Settled rows (delivered or skipped; never pending or dead ones) settled before the cutoff
whose golden record has a later version acknowledged by the same target (or, for a skipped
row, a later version settled): per golden record and target the latest acknowledged version
and the latest settled one stay, whatever their age."""


_WRITEBACK_STATES = sa.text(
    """
    WITH RECURSIVE
    wanted AS (SELECT DISTINCT unnest(CAST(:ids AS bigint[])) AS gid),
    ever AS (
      SELECT DISTINCT h.golden_id AS gid, CAST(e AS bigint) AS id
      FROM golden_history h,
           jsonb_array_elements_text(coalesce(h.data -> 'sources_added', '[]'::jsonb)
                                     || coalesce(h.data -> 'sources_removed', '[]'::jsonb)) AS e
      WHERE h.golden_id IN (SELECT gid FROM wanted)
    ),
    linked AS (
      SELECT w.gid, s.source_table, s.pk, s.golden_id, s.deleted
      FROM wanted w JOIN source_records s ON s.golden_id = w.gid
      WHERE s.system = :system AND s.pk IS NOT NULL
      UNION
      SELECT e.gid, s.source_table, s.pk, s.golden_id, s.deleted
      FROM ever e JOIN source_records s ON s.id = e.id
      WHERE s.system = :system AND s.pk IS NOT NULL
    ),
    chain (start, id, status, merged_into, depth) AS (
      SELECT g.id, g.id, g.status, g.merged_into, 0 FROM golden_records g
      WHERE g.id IN (SELECT golden_id FROM linked)
      UNION ALL
      SELECT c.start, g.id, g.status, g.merged_into, c.depth + 1
      FROM chain c JOIN golden_records g ON g.id = c.merged_into
      WHERE c.status = 'merged' AND c.depth < 1000
    )
    SELECT g.id, g.version, g.status, g.attributes,
      (SELECT coalesce(jsonb_agg(jsonb_build_array(l.source_table, l.pk,
                 CASE WHEN l.deleted THEN NULL ELSE c.id END, l.deleted)
               ORDER BY l.source_table, l.pk), '[]'::jsonb)
       FROM linked l LEFT JOIN chain c ON c.start = l.golden_id AND c.status = 'active'
       WHERE l.gid = g.id) AS rows
    FROM golden_records g WHERE g.id IN (SELECT gid FROM wanted)
    """
)
"""One statement (one snapshot): each golden record asked for, and the rows of the system
that are or once were linked to it (its history's sources added and removed), each with its
active golden record now (merges followed; NULL when deleted, unlinked or retired)."""


def _writeback_states(
    session: Session, golden_ids: Sequence[int], system: str
) -> dict[int, WritebackState]:
    found: dict[int, WritebackState] = {}
    for r in session.execute(_WRITEBACK_STATES, {"ids": list(golden_ids), "system": system}):
        status = GoldenStatus(r.status)
        found[int(r.id)] = WritebackState(
            golden_id=int(r.id),
            version=r.version,
            status=status,
            attributes=dict(r.attributes) if status is GoldenStatus.ACTIVE else {},
            rows=tuple(
                LinkedSourceRow(table=table, pk=pk, golden_id=linked, deleted=deleted)
                for table, pk, linked, deleted in r.rows
            ),
        )
    return found


__all__ = [
    "DEFAULT_RETENTION",
    "DeadDelivery",
    "Delivery",
    "LinkedSourceRow",
    "Percentiles",
    "Publishing",
    "RetryResult",
    "TargetStatus",
    "TargetSyncLatency",
    "WritebackState",
    "measure_sync_latency",
    "target_statuses",
]
