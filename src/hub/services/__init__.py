"""The hub's services: each public method is one transaction over the golden-record store.

``HubServices`` is built in an entry point with an engine and its collaborators (matcher,
survivorship rules, outbox targets, clock) and passed to whoever needs it; nothing here reads
the environment or holds global state.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from sqlalchemy.engine import Engine
from sqlmodel import Session

from hub import repositories as repo
from hub.errors import GoldenRecordNotFoundError
from hub.history import GoldenSnapshot, HistoryCause, HistoryEvent
from hub.matcher import Matcher
from hub.model import BatchPosition, SnapshotEnd, SourceChange, SourceKey
from hub.records import (
    ApplyResult,
    DeadLetter,
    GoldenRecord,
    OutboxMessage,
    RebuildResult,
    ReviewDecision,
    ReviewTask,
    SourceRecord,
)
from hub.rules import SurvivorshipRules
from hub.services import hot_reads, keys, queue, reads, reports, search, steward
from hub.services._golden_work import GoldenWork
from hub.services._tx import run_in_transaction
from hub.services.apply import BatchApply
from hub.services.desk import StewardDesk
from hub.services.keys import ApiKey, AuditContext, AuditEntry
from hub.services.queue import DeadLetterView, QueuePage, QueueQuery, TaskDetail, UnmergePreview
from hub.services.rebuild import rebuild_all
from hub.services.reports import DuplicateReport, ReportQuery, StoreStatus
from hub.services.search import SearchHit, SearchQuery
from hub.services.steward import SourceRef
from hub.services.sync import Publishing, TargetSyncLatency

__all__ = ["HubServices", "SourceRef", "utc_now"]

T = TypeVar("T")


def utc_now() -> datetime:
    return datetime.now(UTC)


class HubServices:
    """The golden-record store's services.

    Args:
        engine: an engine from ``hub.db.create_engine`` (READ COMMITTED).
        matcher: standardizes, blocks and scores (``matching.MatchModel`` in production).
        rules: survivorship rules; their version goes into every lineage entry.
        targets: outbox target names; every golden change gets one outbox row per target.
        clock: the time recorded for history, links and outbox rows (timezone-aware UTC).
        attempts: how often a transaction is re-run after a deadlock or serialization failure.
    """

    def __init__(
        self,
        engine: Engine,
        *,
        matcher: Matcher,
        rules: SurvivorshipRules,
        targets: Sequence[str] = (),
        clock: Callable[[], datetime] = utc_now,
        attempts: int = 5,
    ) -> None:
        self.engine = engine
        self.matcher = matcher
        self.rules = rules
        self.targets = tuple(targets)
        self.clock = clock
        self.attempts = attempts

    def _work(self, session: Session, cause: HistoryCause, actor: str) -> GoldenWork:
        now = self.clock()
        if now.tzinfo is None:
            raise ValueError("the clock must return timezone-aware times")
        return GoldenWork(
            session, rules=self.rules, targets=self.targets, now=now, cause=cause, actor=actor
        )

    # --- source changes ------------------------------------------------------------------

    def apply_changes(
        self,
        changes: Sequence[SourceChange],
        position: BatchPosition | None = None,
        *,
        dead_letters: Sequence[DeadLetter] = (),
        snapshot_ends: Sequence[SnapshotEnd] = (),
    ) -> ApplyResult:
        """Apply a batch of source changes, its position and its dead letters atomically.

        A batch whose position is already applied is skipped; a change that is not newer than
        what is stored for its row is ignored; an invalid change is kept with its errors and
        the rest of the batch applies. For each of ``snapshot_ends`` (a table whose snapshot
        completed with this batch), the table's live rows older than the snapshot and not in
        the batch are marked deleted in the same transaction. See ``hub.services.apply`` for
        the steps.

        Raises:
            InvalidChangeError: a change without a timezone-aware source commit time.
            ConcurrentUpdateError, StoreUnavailableError: transient; retry the batch.
        """
        systems = sorted({change.key.system for change in changes})
        actor = ",".join(systems) or "apply"

        def work(session: Session) -> ApplyResult:
            golden_work = self._work(session, HistoryCause.SOURCE_CHANGE, actor)
            batch = BatchApply(session, golden_work, matcher=self.matcher, now=golden_work.now)
            return batch.run(changes, position, dead_letters, snapshot_ends)

        return run_in_transaction(self.engine, "apply changes", work, attempts=self.attempts)

    def record_dead_letters(self, letters: Sequence[DeadLetter]) -> None:
        """Store poison messages on their own (when there is no batch to carry them)."""

        def work(session: Session) -> None:
            repo.record_dead_letters(session, letters, self.clock())

        run_in_transaction(self.engine, "record dead letters", work, attempts=self.attempts)

    # --- steward actions -----------------------------------------------------------------

    def _steward(
        self, operation: str, actor: str, action: Callable[[GoldenWork], Sequence[int]]
    ) -> list[GoldenRecord]:
        """Run a steward action, save, and read back the golden records it names, all in one
        transaction."""

        def work(session: Session) -> list[GoldenRecord]:
            golden_work = self._work(session, HistoryCause.STEWARD_ACTION, actor)
            golden_ids = action(golden_work)
            golden_work.save()
            session.flush()
            return [reads.get_golden(session, golden_work.resolve(i)) for i in golden_ids]

        return run_in_transaction(self.engine, operation, work, attempts=self.attempts)

    def link(self, source: SourceRef, golden_id: int, *, actor: str, reason: str) -> GoldenRecord:
        """Link a source record (by key or id) to a golden record, as a steward decision.

        When it was the only source of its former golden record, that record becomes merged
        into ``golden_id``. Cannot-link constraints between the record and ``golden_id``'s
        sources are lifted; a must-link keeps it there if it is deleted and re-created.
        """
        [golden] = self._steward(
            "link",
            actor,
            lambda w: [
                steward.link_source_record(w, source, golden_id, actor=actor, reason=reason)
            ],
        )
        return golden

    def unlink(self, source: SourceRef, *, actor: str, reason: str) -> GoldenRecord:
        """Detach a source record into a new golden record; returns the new record. The
        record is kept apart from its former golden record's sources by cannot-links."""
        [golden] = self._steward(
            "unlink",
            actor,
            lambda w: [steward.unlink_source_record(w, source, actor=actor, reason=reason)],
        )
        return golden

    def merge_golden(
        self,
        survivor_id: int,
        merged_id: int,
        *,
        actor: str,
        reason: str,
        expected_versions: dict[int, int] | None = None,
    ) -> GoldenRecord:
        """Merge ``merged_id`` into ``survivor_id`` (which keeps its id); ``merged_id`` then
        resolves to the survivor. ``expected_versions`` are optimistic checks.

        Raises:
            GoldenRecordNotFoundError, GoldenRecordNotActiveError, StaleVersionError,
            InvalidStewardActionError.
        """
        [golden] = self._steward(
            "merge",
            actor,
            lambda w: [
                steward.merge_golden_records(
                    w,
                    survivor_id,
                    merged_id,
                    actor=actor,
                    reason=reason,
                    expected_versions=expected_versions,
                )
            ],
        )
        return golden

    def unmerge(
        self, golden_id: int, source_record_ids: Collection[int], *, actor: str, reason: str
    ) -> tuple[GoldenRecord, GoldenRecord]:
        """Split source records off a golden record: returns (the part that kept the id, the
        part with the new id). The majority keeps the id; cannot-link constraints recorded.

        Raises:
            InvalidStewardActionError: nothing to detach, records not linked to it, or all.
        """
        kept, split = self._steward(
            "unmerge",
            actor,
            lambda w: steward.unmerge_golden_record(
                w, golden_id, source_record_ids, actor=actor, reason=reason
            ),
        )
        return kept, split

    def pin_attribute(
        self,
        golden_id: int,
        attribute: str,
        value: object,
        *,
        actor: str,
        reason: str,
        expected_version: int | None = None,
    ) -> GoldenRecord:
        """Pin a golden attribute to a value; it survives source changes until unpinned.

        Raises:
            InvalidPinError: not a golden attribute, or not a valid value for it.
            StaleVersionError: ``expected_version`` is not the current version.
        """
        [golden] = self._steward(
            "pin",
            actor,
            lambda w: [
                steward.pin_golden_attribute(
                    w,
                    golden_id,
                    attribute,
                    value,
                    actor=actor,
                    reason=reason,
                    expected_version=expected_version,
                )
            ],
        )
        return golden

    def unpin_attribute(
        self,
        golden_id: int,
        attribute: str,
        *,
        actor: str,
        reason: str,
        expected_version: int | None = None,
    ) -> GoldenRecord:
        """Lift a pin; survivorship rules decide the attribute again."""
        [golden] = self._steward(
            "unpin",
            actor,
            lambda w: [
                steward.unpin_golden_attribute(
                    w,
                    golden_id,
                    attribute,
                    actor=actor,
                    reason=reason,
                    expected_version=expected_version,
                )
            ],
        )
        return golden

    def decide_review_task(
        self, task_id: int, decision: ReviewDecision, *, actor: str, reason: str = ""
    ) -> ReviewTask:
        """Decide a review task: ``match`` links/merges, ``no_match`` records cannot-link."""

        def work(session: Session) -> ReviewTask:
            golden_work = self._work(session, HistoryCause.STEWARD_ACTION, actor)
            task = steward.decide_review(golden_work, task_id, decision, actor=actor, reason=reason)
            golden_work.save()
            return reads.review_task_view(task)

        return run_in_transaction(self.engine, "decide review", work, attempts=self.attempts)

    def rebuild_golden_records(
        self, *, actor: str = "rebuild", restandardize: bool = True
    ) -> RebuildResult:
        """Recompute every golden record from source records and steward decisions.

        Derived state (attributes, lineage, and with ``restandardize`` match features and
        blocking keys) is recomputed; decisions (links, merges, constraints, pins) are kept.
        Golden records whose result differs get a new version, history and outbox rows.
        """

        def work(session: Session) -> RebuildResult:
            golden_work = self._work(session, HistoryCause.STEWARD_ACTION, actor)
            return rebuild_all(golden_work, self.matcher if restandardize else None)

        return run_in_transaction(self.engine, "rebuild", work, attempts=self.attempts)

    # --- reads ---------------------------------------------------------------------------

    def _read(self, operation: str, work: Callable[[Session], T]) -> T:
        return run_in_transaction(
            self.engine, operation, work, attempts=self.attempts, read_only=True
        )

    def get_golden(self, golden_id: int) -> GoldenRecord:
        """The golden record, following merges to the survivor.

        Raises:
            GoldenRecordNotFoundError: no golden record ever had this id.
        """
        return self._read("get golden", lambda s: reads.get_golden(s, golden_id))

    def find_golden(self, golden_id: int) -> GoldenRecord | None:
        return self._read("find golden", lambda s: reads.find_golden(s, golden_id))

    def get_golden_by_source(self, key: SourceKey) -> GoldenRecord:
        """The golden record a source row is linked to.

        Raises:
            SourceRecordNotFoundError: no such source row.
            SourceRecordNotLinkedError: the row is deleted or failed validation.
        """
        return self._read("get golden by source", lambda s: reads.get_golden_by_source(s, key))

    def find_golden_by_source(self, key: SourceKey) -> GoldenRecord | None:
        return self._read("find golden by source", lambda s: reads.find_golden_by_source(s, key))

    def get_source_record(self, key: SourceKey) -> SourceRecord:
        return self._read("get source record", lambda s: reads.get_source_record(s, key))

    def golden_history(self, golden_id: int) -> list[HistoryEvent]:
        return self._read("golden history", lambda s: reads.history(s, golden_id))

    def golden_as_of(self, golden_id: int, as_of: datetime) -> GoldenSnapshot | None:
        """The golden record as it was at ``as_of``, reconstructed from its history."""
        return self._read("golden as of", lambda s: reads.golden_as_of(s, golden_id, as_of))

    def changes_after(self, cursor: int = 0, limit: int = 500) -> list[HistoryEvent]:
        """Golden changes with a history sequence above ``cursor``, in commit order.

        A consumer that passes the last sequence it saw as the next cursor sees every change
        exactly once: sequence order is commit order (see ``repositories.append_history``).
        """
        return self._read("changes after", lambda s: reads.changes_after(s, cursor, limit))

    def invalid_source_records(self, *, after_id: int = 0, limit: int = 100) -> list[SourceRecord]:
        """Source records kept with validation errors (unlinked), for stewards to follow up."""
        return self._read(
            "invalid source records",
            lambda s: [
                reads.source_record_view(r) for r in repo.invalid_source_records(s, after_id, limit)
            ],
        )

    # --- outbox --------------------------------------------------------------------------

    def claim_outbox(
        self, target: str, *, limit: int = 100, lease: timedelta = timedelta(seconds=60)
    ) -> list[OutboxMessage]:
        """Claim due outbox messages of ``target`` (id order) for ``lease``; a relay delivers
        them and marks each delivered or failed. Unmarked ones come due again after the lease.
        """

        def work(session: Session) -> list[OutboxMessage]:
            now = self.clock()
            rows = repo.claim_outbox(session, target, limit, now, now + lease)
            return [reads.outbox_message(row) for row in rows]

        return run_in_transaction(self.engine, "claim outbox", work, attempts=self.attempts)

    def mark_outbox_delivered(self, outbox_ids: Sequence[int]) -> int:
        """Record delivery; returns how many were still undelivered."""
        return run_in_transaction(
            self.engine,
            "mark outbox delivered",
            lambda s: repo.mark_outbox_delivered(s, outbox_ids, self.clock()),
            attempts=self.attempts,
        )

    def mark_outbox_failed(self, outbox_id: int, error: str, *, retry_at: datetime) -> bool:
        """Record a failed delivery and when to try again."""
        return run_in_transaction(
            self.engine,
            "mark outbox failed",
            lambda s: repo.mark_outbox_failed(s, outbox_id, error, retry_at),
            attempts=self.attempts,
        )

    def publishing(self) -> Publishing:
        """The outbox as relays and ``mdh publish`` use it: claim in order per golden record,
        settle, status, retry and replay (``hub.services.sync``)."""
        return Publishing(self.engine, self.clock, self.attempts)

    def sync_latency(
        self,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        changed_since: datetime | None = None,
    ) -> list[TargetSyncLatency]:
        """Per target, p50/p95/p99 in ms of source commit to golden commit, golden commit to
        target acknowledgement and source commit to acknowledgement, over the outbox rows
        first acknowledged in [``since``, ``until``) whose golden change committed at or after
        ``changed_since``."""
        return self.publishing().sync_latency(since=since, until=until, changed_since=changed_since)

    def open_review_tasks(self, limit: int = 100) -> list[ReviewTask]:
        """Open review tasks, highest priority first."""
        return self._read(
            "open review tasks",
            lambda s: [reads.review_task_view(t) for t in repo.open_review_tasks(s, limit)],
        )

    # --- API: keys, audit, search, queue, reports (services/{keys,desk,search,queue,reports}) --

    def desk(self, context: AuditContext) -> StewardDesk:
        """Steward and admin actions of one actor, each audited in its own transaction."""
        return StewardDesk(self, context)

    def authenticate(self, token: str) -> ApiKey | None:
        """The active API key of this token, or None."""
        return self._read("authenticate", lambda s: keys.authenticate(s, token))

    def api_keys(self, *, include_revoked: bool = True) -> list[ApiKey]:
        return self._read("api keys", lambda s: keys.list_keys(s, include_revoked=include_revoked))

    def audit_log(
        self,
        *,
        actor: str | None = None,
        target: str | None = None,
        action: str | None = None,
        before_id: int | None = None,
        limit: int = 100,
    ) -> list[AuditEntry]:
        return self._read(
            "audit log",
            lambda s: keys.audit_entries(
                s, actor=actor, target=target, action=action, before_id=before_id, limit=limit
            ),
        )

    def search_golden(self, query: SearchQuery) -> list[SearchHit]:
        """Golden records whose source records the matcher finds closest to the query."""
        return self._read("search", lambda s: search.search_golden(s, self.matcher, query))

    def review_queue(self, query: QueueQuery) -> QueuePage:
        """Review tasks by filter, sorted by priority (uncertainty x impact), age or score."""
        now = self.clock()
        return self._read("review queue", lambda s: queue.review_queue(s, query, now))

    def review_task_detail(self, task_id: int) -> TaskDetail:
        """A task with both sides, their differences and the score waterfall."""
        now = self.clock()
        return self._read("review task", lambda s: queue.task_detail(s, task_id, now))

    def unmerge_preview(self, golden_id: int, source_record_ids: Collection[int]) -> UnmergePreview:
        """What ``unmerge`` would do (parts, records per system, attributes), without doing it."""
        return self._read(
            "unmerge preview",
            lambda s: queue.unmerge_preview(
                s, golden_id, source_record_ids, self.rules, self.targets
            ),
        )

    def dead_letters(
        self,
        *,
        status: str | None = None,
        source: str | None = None,
        after_id: int = 0,
        limit: int = 100,
    ) -> list[DeadLetterView]:
        return self._read(
            "dead letters",
            lambda s: queue.dead_letters(
                s, status=status, source=source, after_id=after_id, limit=limit
            ),
        )

    def dead_letter(self, dead_letter_id: int) -> DeadLetterView:
        return self._read("dead letter", lambda s: queue.dead_letter_view(s, dead_letter_id))

    def duplicate_report(self, query: ReportQuery) -> DuplicateReport:
        """The duplicate-rate report (pandera-validated frames)."""
        now = self.clock()
        return self._read("duplicate report", lambda s: reports.duplicate_report(s, query, now))

    def store_status(self) -> StoreStatus:
        """Counts and capture positions for readiness and metrics."""
        return self._read("store status", reports.store_status)

    def read_golden(self, golden_id: int) -> GoldenRecord:
        """``get_golden`` in one statement (the same record, fewer round trips).

        Raises:
            GoldenRecordNotFoundError: no golden record ever had this id.
        """

        def work(session: Session) -> GoldenRecord:
            found = hot_reads.read_golden(session, golden_id)
            if found is None:
                raise GoldenRecordNotFoundError(golden_id)
            return found

        return run_in_transaction(self._single_statement, "read golden", work)

    @property
    def _single_statement(self) -> Engine:
        # One statement sees one snapshot by itself: no BEGIN/COMMIT round trips needed.
        return self.engine.execution_options(isolation_level="AUTOCOMMIT")

    def change_records_after(self, cursor: int = 0, limit: int = 500) -> list[dict[str, Any]]:
        """``changes_after`` as JSON-ready dicts (the changes feed's hot path)."""
        return run_in_transaction(
            self._single_statement,
            "change records after",
            lambda s: hot_reads.change_records_after(s, cursor, limit),
        )
