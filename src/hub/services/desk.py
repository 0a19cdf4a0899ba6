"""Steward and admin actions with their audit entry: each is one transaction that carries out
the action (through ``hub.services.steward``), saves the golden records it touched and appends
who did what, to what, when and why to the audit log.

The actor also goes into the golden history of every record the action changed, so history
and audit name the same person.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Any, TypeVar

from sqlmodel import Session

from hub import repositories as repo
from hub.errors import HubError, InvalidStewardActionError, ReviewTaskNotFoundError
from hub.history import HistoryCause
from hub.model import SourceKey
from hub.records import GoldenRecord, ReviewDecision, ReviewTask
from hub.services import keys, queue, reads, steward
from hub.services._golden_work import GoldenWork
from hub.services._tx import run_in_transaction
from hub.services.keys import ApiKey, ApiRole, AuditContext, IssuedApiKey

if TYPE_CHECKING:
    from hub.services import HubServices

T = TypeVar("T")
R = TypeVar("R")


class StewardDecision(StrEnum):
    MATCH = "match"
    NO_MATCH = "no_match"
    DEFER = "defer"
    """Put the task aside (status ``deferred``); it stays decidable."""


@dataclass(frozen=True)
class BulkDecision:
    task_id: int
    decision: StewardDecision
    reason: str = ""


@dataclass(frozen=True)
class BulkOutcome:
    task_id: int
    task: ReviewTask | None
    error: HubError | None


def _goldens(work: GoldenWork, golden_ids: Sequence[int]) -> list[GoldenRecord]:
    return [reads.get_golden(work.session, work.resolve(i)) for i in golden_ids]


def _first(work: GoldenWork, golden_ids: Sequence[int]) -> GoldenRecord:
    return _goldens(work, golden_ids)[0]


def _same(work: GoldenWork, value: T) -> T:
    return value


def _source_target(ref: steward.SourceRef) -> str:
    return f"source:{ref}" if isinstance(ref, SourceKey) else f"source_record:{ref}"


class StewardDesk:
    """The audited actions of one actor (see ``HubServices.desk``)."""

    def __init__(self, services: HubServices, context: AuditContext) -> None:
        self.services = services
        self.context = context

    @property
    def actor(self) -> str:
        return self.context.actor

    def _run(
        self,
        operation: str,
        action: Callable[[GoldenWork], R],
        present: Callable[[GoldenWork, R], T],
        audit: Callable[[T], tuple[str, str, str, Mapping[str, Any]]],
    ) -> T:
        """Act, save the golden records, read the result, audit (action, target, reason,
        details), all in one transaction."""
        services = self.services

        def work(session: Session) -> T:
            golden_work = services._work(session, HistoryCause.STEWARD_ACTION, self.actor)
            done = action(golden_work)
            golden_work.save()
            session.flush()
            result = present(golden_work, done)
            name, target, reason, details = audit(result)
            keys.record_audit(session, self.context, name, target, reason, golden_work.now, details)
            return result

        return run_in_transaction(services.engine, operation, work, attempts=services.attempts)

    # --- golden records ------------------------------------------------------------------

    def link(self, source: steward.SourceRef, golden_id: int, *, reason: str) -> GoldenRecord:
        return self._run(
            "link",
            lambda w: [
                steward.link_source_record(w, source, golden_id, actor=self.actor, reason=reason)
            ],
            _first,
            lambda g: ("source.link", _source_target(source), reason, {"golden_id": g.id}),
        )

    def unlink(self, source: steward.SourceRef, *, reason: str) -> GoldenRecord:
        return self._run(
            "unlink",
            lambda w: [steward.unlink_source_record(w, source, actor=self.actor, reason=reason)],
            _first,
            lambda g: ("source.unlink", _source_target(source), reason, {"new_golden_id": g.id}),
        )

    def merge_golden(
        self,
        survivor_id: int,
        merged_id: int,
        *,
        reason: str,
        expected_versions: dict[int, int] | None = None,
    ) -> GoldenRecord:
        return self._run(
            "merge",
            lambda w: [
                steward.merge_golden_records(
                    w,
                    survivor_id,
                    merged_id,
                    actor=self.actor,
                    reason=reason,
                    expected_versions=expected_versions,
                )
            ],
            _first,
            lambda g: (
                "golden.merge",
                f"golden:{survivor_id}",
                reason,
                {"survivor_id": survivor_id, "merged_id": merged_id, "version": g.version},
            ),
        )

    def unmerge(
        self, golden_id: int, source_record_ids: Collection[int], *, reason: str
    ) -> tuple[GoldenRecord, GoldenRecord]:
        def present(w: GoldenWork, ids: tuple[int, int]) -> tuple[GoldenRecord, GoldenRecord]:
            kept, split = _goldens(w, list(ids))
            return kept, split

        return self._run(
            "unmerge",
            lambda w: steward.unmerge_golden_record(
                w, golden_id, source_record_ids, actor=self.actor, reason=reason
            ),
            present,
            lambda r: (
                "golden.unmerge",
                f"golden:{golden_id}",
                reason,
                {"detached": sorted(source_record_ids), "kept_id": r[0].id, "split_id": r[1].id},
            ),
        )

    def pin_attribute(
        self,
        golden_id: int,
        attribute: str,
        value: object,
        *,
        reason: str,
        expected_version: int | None = None,
    ) -> GoldenRecord:
        return self._run(
            "pin",
            lambda w: [
                steward.pin_golden_attribute(
                    w,
                    golden_id,
                    attribute,
                    value,
                    actor=self.actor,
                    reason=reason,
                    expected_version=expected_version,
                )
            ],
            _first,
            lambda g: (
                "golden.pin",
                f"golden:{golden_id}",
                reason,
                {"attribute": attribute, "value": g.pins[attribute].value},
            ),
        )

    def unpin_attribute(
        self, golden_id: int, attribute: str, *, reason: str, expected_version: int | None = None
    ) -> GoldenRecord:
        return self._run(
            "unpin",
            lambda w: [
                steward.unpin_golden_attribute(
                    w,
                    golden_id,
                    attribute,
                    actor=self.actor,
                    reason=reason,
                    expected_version=expected_version,
                )
            ],
            _first,
            lambda g: ("golden.unpin", f"golden:{golden_id}", reason, {"attribute": attribute}),
        )

    # --- review tasks --------------------------------------------------------------------

    def decide_review_task(
        self, task_id: int, decision: StewardDecision, *, reason: str = ""
    ) -> ReviewTask:
        """Match, not a match, or defer. A deferred task stays decidable.

        Raises:
            ReviewTaskNotFoundError, InvalidStewardActionError (the task is not open).
        """

        def action(w: GoldenWork) -> ReviewTask:
            if decision is StewardDecision.DEFER:
                row = repo.review_task(w.session, task_id, lock=True)
                if row is None:
                    raise ReviewTaskNotFoundError(task_id)
                if row.status != "open":
                    raise InvalidStewardActionError(
                        "defer review task", f"task {task_id} is {row.status}, not open"
                    )
                row.status = "deferred"
                return reads.review_task_view(row)
            task = steward.decide_review(
                w, task_id, ReviewDecision(decision.value), actor=self.actor, reason=reason
            )
            return reads.review_task_view(task)

        return self._run(
            "decide review",
            action,
            _same,
            lambda t: (
                f"review.{decision.value}",
                f"task:{task_id}",
                reason,
                {
                    "golden_id": t.golden_id,
                    "candidate_golden_id": t.candidate_golden_id,
                    "score": t.score,
                },
            ),
        )

    def decide_review_tasks(self, decisions: Sequence[BulkDecision]) -> list[BulkOutcome]:
        """Each decision in its own transaction, in order; a failed one does not stop the
        others (its error is returned in its place)."""
        outcomes: list[BulkOutcome] = []
        for item in decisions:
            try:
                task = self.decide_review_task(item.task_id, item.decision, reason=item.reason)
            except (ReviewTaskNotFoundError, InvalidStewardActionError) as exc:
                outcomes.append(BulkOutcome(item.task_id, None, exc))
            else:
                outcomes.append(BulkOutcome(item.task_id, task, None))
        return outcomes

    # --- dead letters --------------------------------------------------------------------

    def set_dead_letter_status(
        self,
        dead_letter_id: int,
        status: str,
        *,
        reason: str,
        details: Mapping[str, Any] | None = None,
    ) -> queue.DeadLetterView:
        """Mark a dead letter ``replayed`` (its change was applied) or ``discarded``."""
        if status not in ("replayed", "discarded"):
            raise InvalidStewardActionError("set dead letter status", f"unknown status {status!r}")

        def action(w: GoldenWork) -> queue.DeadLetterView:
            row = queue.dead_letter(w.session, dead_letter_id, lock=True)
            row.status = status
            w.session.flush()
            return queue.dead_letter_view(w.session, dead_letter_id)

        return self._run(
            "dead letter status",
            action,
            _same,
            lambda d: (
                f"dead_letter.{status}",
                f"dead_letter:{dead_letter_id}",
                reason,
                dict(details or {}),
            ),
        )

    # --- keys ----------------------------------------------------------------------------

    def create_api_key(self, name: str, role: ApiRole) -> IssuedApiKey:
        return self._run(
            "create api key",
            lambda w: keys.create_key(w.session, name, role, created_by=self.actor, now=w.now),
            _same,
            lambda issued: (
                "key.create",
                f"key:{issued.key.id}",
                "",
                {"name": name, "role": role.value, "prefix": issued.key.prefix},
            ),
        )

    def revoke_api_key(self, key_id: int, *, reason: str = "") -> ApiKey:
        return self._run(
            "revoke api key",
            lambda w: keys.revoke_key(w.session, key_id, revoked_by=self.actor, now=w.now),
            _same,
            lambda key: ("key.revoke", f"key:{key_id}", reason, {"name": key.name}),
        )
