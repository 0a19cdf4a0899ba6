"""Applying a batch of canonical source changes: crosswalk, matching, golden records.

``BatchApply.run`` runs inside the caller's transaction. Its correctness under at-least-once
delivery and concurrent workers depends on the order of these steps:

0. For a table whose snapshot completed with this batch (``SnapshotEnd``), add a deletion
   for each of its live rows stored before the snapshot and not in the batch: the snapshot
   read every row the table had, so those were deleted while nothing captured.
1. Lock the batch position (advisory lock on source + partition) and skip the whole batch if
   its offset is already applied. The position is written in step 8, in the same transaction
   as the effects, so a batch is applied exactly once however often it is delivered.
2. Keep the newest change per source row; take advisory locks on those rows (sorted), read
   them, and drop every change that is not newer than what is stored (per-key order, by LSN
   where both positions have one: ``SourcePosition.supersedes``; a delete is final until a
   newer create). An upsert naming ``unchanged`` attributes (unchanged
   TOASTed columns) gets their stored values here, under the row's lock.
3. Validate, standardize and compute blocking keys; take advisory locks on all blocking keys
   (sorted) before any candidate look-up: two workers applying records that share a key take
   turns, and the second sees the first's committed links (READ COMMITTED re-reads per
   statement), so one matching pair never gets two golden records. Every worker takes its
   locks in the same order (position, rows, keys, golden records), so none waits in a cycle.
4. Read the candidates sharing a key (and the golden ids of the batch's rows and their
   constraint partners), then lock their golden records ``FOR UPDATE`` in id order, loading
   their source records; re-read until no new golden record needs locking (a steward action
   that committed in between may have moved records). What is used afterwards was read after
   the locks that protect it.
5. For each change, in (source commit position, key) order: keep invalid ones with their
   errors, unlinked; link valid ones (steward decisions and constraints first, then the best
   automatic match, else a new golden record) and open review tasks for the pairs in the
   review band. A record that matches several golden records automatically bridges them:
   they are merged (``_bridge``; all are locked, step 4) unless a steward kept them apart or
   two of their members conflict, in which case the pair is reviewed instead.
6. Write the golden records and source records (survivorship recomputed for every golden
   record touched; version, outbox rows and lineage only where something visible changed, see
   ``_golden_work``), then rewrite the blocking keys of the records that changed (a record
   whose match features did not change keeps its keys and its link, and skipped the candidate
   look-up of step 4).
7. Write the review tasks.
8. Record the batch position and the batch's dead letters.
9. Append the history events. Last, because appending history takes the history lock, which
   is held until commit (see ``repositories.append_history``).
"""

from __future__ import annotations

import gc
import json
from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import datetime
from itertools import groupby
from typing import Any

from pydantic import ValidationError
from sqlmodel import Session

from hub import repositories as repo
from hub.errors import InvalidChangeError
from hub.history import HistoryEventKind
from hub.matcher import Matcher, MatchScore, PreparingMatcher
from hub.model import (
    ABSENT_FLOOR,
    BatchPosition,
    CanonicalParty,
    ChangeOp,
    DecidedBy,
    GoldenStatus,
    SnapshotEnd,
    SourceChange,
    SourceKey,
    SourcePosition,
)
from hub.planning import GoldenSummary, plan_merge
from hub.records import ApplyResult, DeadLetter
from hub.services._golden_work import GoldenWork, record_position
from hub.states import SourceRecordState, to_json

REVIEW_CANDIDATES_PER_RECORD = 3
"""At most this many review tasks are opened for one changed source record (best first)."""

SERVER_FOUND_LOCKS_MAX_KEYS = repo.PROBED_KEYS_MAX
"""Up to this many blocking keys, the first golden-record locks are found by the database."""


@dataclass(frozen=True)
class _Prepared:
    change: SourceChange
    attributes: dict[str, Any]
    errors: list[dict[str, Any]] | None
    features: dict[str, Any]
    keys: tuple[str, ...]

    @property
    def keyed(self) -> bool:
        return usable_pk(self.change.key)


@dataclass(frozen=True)
class _Scored:
    golden_id: int
    best: MatchScore
    best_record_id: int
    hard_conflict: bool


def newer(position: SourcePosition, row: SourceRecordState) -> bool:
    """True when ``position`` is later than the position stored for ``row`` (see
    ``SourcePosition.supersedes``); False for the same change delivered again."""
    return position.supersedes(record_position(row))


def json_safe(value: Any) -> Any:
    """``value`` as plain JSON types (a source may hand over dates or decimals), with NUL
    characters, which PostgreSQL cannot store in text or JSONB, shown as U+FFFD."""
    try:
        return _plain(value)
    except _NotPlainError:
        return _without_nul(json.loads(json.dumps(value, default=str)))


class _NotPlainError(Exception):
    """A value that only a JSON round trip makes plain."""


_SCALARS = frozenset({int, float, bool, type(None)})


def _plain(value: Any) -> Any:
    """What the JSON round trip of ``json_safe`` gives, for a value that is plain already
    (str-keyed dicts, lists, tuples, str, int, float, bool, None), without the round trip."""
    kind = type(value)
    if kind is str:
        return value.replace("\x00", "\ufffd") if "\x00" in value else value
    if kind in _SCALARS:
        return value
    if kind is dict:
        plain: dict[str, Any] = {}
        for key, item in value.items():
            if type(key) is not str:
                raise _NotPlainError
            plain[key.replace("\x00", "\ufffd") if "\x00" in key else key] = _plain(item)
        return plain
    if kind is list or kind is tuple:
        return [_plain(item) for item in value]
    raise _NotPlainError


def _explanation(score: MatchScore) -> tuple[dict[str, Any], str]:
    """The score's explanation as stored, and its JSON text. A matcher's explanation is plain
    JSON already, so it is encoded once and used as it is; only an odd one (other types, NUL
    characters) goes through ``json_safe``."""
    explanation = score.explain()
    try:
        text: str | None = to_json(explanation)
    except (TypeError, ValueError):
        text = None
    if text is None or "\\u0000" in text or type(explanation) is not dict:
        explanation = json_safe(explanation)
        text = to_json(explanation)
    return explanation, text


def _without_nul(value: Any) -> Any:
    if isinstance(value, str):
        return value.replace("\x00", "\ufffd") if "\x00" in value else value
    if isinstance(value, list):
        return [_without_nul(item) for item in value]
    if isinstance(value, dict):
        return {_without_nul(k): _without_nul(v) for k, v in value.items()}
    return value


def _id_of(row: SourceRecordState | None) -> int | None:
    return None if row is None else row.id


def usable_pk(key: SourceKey) -> bool:
    """A primary key the crosswalk can store: not blank, no NUL character."""
    return bool(key.pk.strip()) and "\x00" not in key.pk


class BatchApply:
    """One ``apply_changes`` call: the unit of work described in the module docstring."""

    def __init__(
        self,
        session: Session,
        work: GoldenWork,
        *,
        matcher: Matcher,
        now: datetime,
    ) -> None:
        self.session = session
        self.work = work
        self.matcher = matcher
        self.now = now
        self.records = work.records
        self.index: dict[str, set[int]] = defaultdict(set)
        self.indexed_keys: dict[int, set[str]] = defaultdict(set)
        self.constraints: list[repo.ConstraintPair] = []
        self.review_rows: list[dict[str, Any]] = []
        self.superseded: list[int] = []
        self.open_pairs: set[tuple[int, int]] = set()
        self.merged_into: dict[int, int] = {}
        self.held_back: dict[tuple[int, int], str] = {}
        """(source record, golden record) automatic matches not linked or merged, and why:
        the review task opened for the pair says it."""
        """Golden records merged by a bridging source record (``_bridge``), and into which."""
        self.changed_records: dict[int, SourceRecordState] = {}
        self.record_keys: dict[int, tuple[str, ...]] = {}
        self.unchanged_links: set[int] = set()
        self.stale = self.invalid = self.deleted = self.applied = 0
        self.absent: set[SourceKey] = set()
        """Rows a completed snapshot no longer had (their deletions were added to the batch)."""
        self.absent_deleted = 0
        self.absent_refused: list[str] = []
        self.preparing = matcher if isinstance(matcher, PreparingMatcher) else None
        # Prepared features by source record id, with the features they were prepared from.
        self.prepared: dict[int, tuple[dict[str, Any], Any]] = {}

    def run(
        self,
        changes: Sequence[SourceChange],
        position: BatchPosition | None,
        dead_letters: Sequence[DeadLetter],
        snapshot_ends: Sequence[SnapshotEnd] = (),
    ) -> ApplyResult:
        with _paused_gc():
            try:
                if snapshot_ends:
                    changes = [*changes, *self._absent_from_snapshots(changes, snapshot_ends)]
                return self._run(changes, position, dead_letters)
            finally:
                # Free the batch's objects now, while the collector is paused: the first
                # collection after it then has next to nothing young to walk.
                self.work.release()
                self.index.clear()
                self.indexed_keys.clear()
                self.prepared.clear()
                self.changed_records.clear()
                self.review_rows.clear()

    def _run(
        self,
        changes: Sequence[SourceChange],
        position: BatchPosition | None,
        dead_letters: Sequence[DeadLetter],
    ) -> ApplyResult:
        # 1. the batch position, and 2. the source rows: lock them, read them (one round trip)
        latest = _latest_per_key(changes)
        keys = [c.key for c in latest if usable_pk(c.key)]
        with repo.SqlBatch(self.session) as batch:
            done = None
            if position is not None:
                lock = repo.lock_id("position", f"{position.source}\0{position.partition}")
                repo.queue_advisory_lock(batch, [lock])
                done = repo.queue_applied_offset(batch, position.source, position.partition)
            repo.queue_advisory_lock(batch, [repo.lock_id("source", str(key)) for key in keys])
            pending_stored = repo.queue_source_states_by_keys(batch, keys)
        if position is not None and done is not None:
            offset = done.result()
            if offset is not None and position.offset <= offset:
                return ApplyResult(batch_skipped=True)
        stored = pending_stored.result()

        # 2. drop changes that are not newer
        fresh: list[SourceChange] = []
        for change in latest:
            if usable_pk(change.key):
                row = stored.get(change.key)
                is_new = row is None or newer(change.position, row)
            else:
                is_new = not self._keyless_redelivery(change)
            if is_new:
                fresh.append(self._with_stored_unchanged(change, stored.get(change.key)))
            else:
                self.stale += 1

        # 3. validate and standardize; lock the blocking keys of the records to be matched
        prepared = [self._prepare(change) for change in fresh]
        self.unchanged_links = {
            row.id
            for p in prepared
            if p.keyed
            and (row := stored.get(p.change.key)) is not None
            and self._keeps_link(row, p)
        }
        batch_keys = sorted(
            {
                key
                for p in prepared
                if not (p.keyed and _id_of(stored.get(p.change.key)) in self.unchanged_links)
                for key in p.keys
            }
        )
        new_count = sum(1 for p in prepared if not p.keyed or p.change.key not in stored)

        # 4. candidates sharing a key; golden records locked in id order
        existing, fresh_ids = self._lock_stable(prepared, batch_keys, new_count)
        existing_ids = [r.id for r in existing.values()]
        if existing_ids:
            with repo.SqlBatch(self.session) as batch:
                pending_pairs = repo.queue_open_review_pairs(batch, existing_ids)
            for source_record_id, candidate_golden_id in pending_pairs.result():
                if source_record_id is not None:
                    self.open_pairs.add((source_record_id, candidate_golden_id))

        # 5. each change in order
        for p in prepared:
            row = existing.get(p.change.key) if p.keyed else None
            if row is None:
                row = self._new_row(next(fresh_ids), p)
            self.changed_records[row.id] = row
            if p.change.op is ChangeOp.DELETE:
                self._apply_delete(row, p)
            else:
                self._apply_upsert(row, p)

        # 6.-9. every write in one round trip (``COPY`` for large inserts): golden records and
        # source records, blocking keys of the changed records (only live, valid, linked ones
        # are candidates), review tasks, position and dead letters, history last
        self.work.assign_provisional_ids()
        for review in self.review_rows:
            review["golden_id"] = self.work.resolve(review["golden_id"])
            review["candidate_golden_id"] = self.work.resolve(review["candidate_golden_id"])
        with repo.SqlBatch(self.session) as batch:
            self.work.flush(batch)
            repo.replace_blocking_keys(
                batch,
                {
                    record_id: list(self.record_keys.get(record_id, ()))
                    if self._is_candidate(row)
                    else []
                    for record_id, row in self.changed_records.items()
                    if record_id not in self.unchanged_links
                },
            )
            # Tasks computed from a record's old image are withdrawn before new ones open.
            repo.supersede_open_tasks(batch, self.superseded)
            repo.supersede_merged_pairs(batch, self._final_merges())
            opened = repo.queue_review_tasks(batch, self.review_rows) if self.review_rows else None
            if position is not None:
                repo.record_applied_position(
                    batch, position.source, position.partition, position.offset, self.now
                )
            repo.queue_dead_letters(batch, dead_letters, self.now)
            saved = self.work.queue_history(batch)
        return ApplyResult(
            applied=self.applied,
            stale=self.stale,
            invalid=self.invalid,
            deleted=self.deleted,
            goldens_created=saved.created,
            goldens_changed=saved.changed,
            review_tasks_opened=() if opened is None else tuple(opened.result()),
            dead_letters=len(dead_letters),
            absent_from_snapshot=self.absent_deleted,
            absent_refused=tuple(self.absent_refused),
        )

    # --- step 0 --------------------------------------------------------------------------

    def _absent_from_snapshots(
        self, changes: Sequence[SourceChange], ends: Sequence[SnapshotEnd]
    ) -> list[SourceChange]:
        """Deletions, at the snapshot's position, of each table's live rows stored before a
        snapshot that completed with this batch and not in the batch (see ``SnapshotEnd``).
        Step 2 locks them and drops any a newer change reached first."""
        deletions: list[SourceChange] = []
        for end in ends:
            if end.position.lsn is None:
                continue
            in_batch = {
                c.key.pk for c in changes if (c.key.system, c.key.table) == (end.system, end.table)
            }
            before, live = repo.live_pks_before(
                self.session, end.system, end.table, end.position.lsn
            )
            absent = [
                key
                for pk in before
                if pk not in in_batch
                and (key := SourceKey(end.system, end.table, pk)) not in self.absent
            ]
            if len(absent) > ABSENT_FLOOR and len(absent) > end.max_absent_fraction * live:
                self.absent_refused.append(
                    f"{end.system}/{end.table}: {len(absent)} of {live} live rows"
                )
                continue
            for key in absent:
                self.absent.add(key)
                deletions.append(
                    SourceChange(
                        key=key, op=ChangeOp.DELETE, attributes={}, raw=None, position=end.position
                    )
                )
        return deletions

    # --- step 2 --------------------------------------------------------------------------

    def _prepare(self, change: SourceChange) -> _Prepared:
        committed_at = change.position.committed_at
        if committed_at.tzinfo is None or committed_at.utcoffset() is None:
            raise InvalidChangeError(change.key, "source commit time is not timezone-aware")
        errors: list[dict[str, Any]] = []
        if not change.key.pk.strip():
            errors.append({"loc": "pk", "msg": "missing primary key", "type": "missing"})
        elif not usable_pk(change.key):
            errors.append(
                {"loc": "pk", "msg": "primary key contains a NUL character", "type": "value_error"}
            )
        if change.op is ChangeOp.DELETE:
            return _Prepared(change, json_safe(dict(change.attributes)), errors or None, {}, ())
        try:
            party = CanonicalParty.model_validate(change.attributes)
        except ValidationError as exc:
            errors.extend(
                {
                    "loc": ".".join(str(part) for part in error["loc"]),
                    "msg": error["msg"],
                    "type": error["type"],
                }
                for error in exc.errors(include_url=False, include_context=False)
            )
            party = None
        if errors or party is None:
            return _Prepared(change, json_safe(dict(change.attributes)), errors, {}, ())
        canonical = json_safe(party.to_attributes())
        features = json_safe(self.matcher.standardize(canonical))
        keys = tuple(sorted({_without_nul(k) for k in self.matcher.blocking_keys(features)}))
        return _Prepared(change, canonical, None, features, keys)

    def _keyless_redelivery(self, change: SourceChange) -> bool:
        raw = None if change.raw is None else json_safe(change.raw)
        duplicate = repo.find_keyless_duplicate(
            self.session, change.key.system, change.key.table, change.position, raw
        )
        return duplicate is not None

    @staticmethod
    def _with_stored_unchanged(change: SourceChange, row: SourceRecordState | None) -> SourceChange:
        """An upsert naming ``unchanged`` attributes (unchanged TOASTed columns the capture
        left out) gets their stored values, and the stored raw columns it lacks."""
        if not change.unchanged or change.op is not ChangeOp.UPSERT or row is None or row.deleted:
            return change
        attributes = dict(change.attributes)
        for name in change.unchanged:
            if name in row.attributes:
                attributes[name] = row.attributes[name]
        raw = None
        if change.raw is not None:
            old_raw = row.raw or {}
            raw = {**{k: v for k, v in old_raw.items() if k not in change.raw}, **change.raw}
        return replace(change, attributes=attributes, raw=raw)

    # --- step 4 --------------------------------------------------------------------------

    def _lock_stable(
        self, prepared: Sequence[_Prepared], batch_keys: Sequence[str], new_count: int
    ) -> tuple[dict[SourceKey, SourceRecordState], Iterator[int]]:
        """Lock the blocking keys, then the golden records of the batch's rows, of the
        candidates sharing a key and of constraint partners, reading them again until a read
        finds nothing that is not locked. Returns the batch's stored rows as read after those
        locks, and the ids of the new source records.

        Each pass is one round trip: the locks, then the reads that must follow them. For a
        small batch the first pass also locks the golden records the database finds.
        """
        keys = [p.change.key for p in prepared if p.keyed]
        with repo.SqlBatch(self.session) as batch:
            repo.queue_advisory_lock(batch, [repo.lock_id("block", key) for key in batch_keys])
            locking = None
            if len(batch_keys) <= SERVER_FOUND_LOCKS_MAX_KEYS:
                # A small batch saves a round trip: the database finds the golden records to
                # lock (looking up the candidates once more for each statement that needs
                # them, which a large batch would pay more for than for the round trip).
                locking = self.work.queue_lock(batch, repo.goldens_of_batch(keys, batch_keys))
            reads = self._queue_reads(batch, keys, batch_keys)
            ids = repo.queue_allocate_ids(batch, "source_records", new_count)
        self.work.adopt_locked(locking)
        while True:
            rows, pairs, constraints = reads[0].result(), reads[1].result(), reads[2].result()
            self.constraints = [constraint for constraint, _, _ in constraints]
            golden_ids = {row.golden_id for row in rows.values()}
            golden_ids.update(golden_id for _, _, golden_id in pairs)
            for _, left, right in constraints:
                golden_ids.update((left, right))
            wanted = {g for g in golden_ids if g is not None and not self.work.is_locked(g)}
            if not wanted:
                break
            # Something moved between the reads and the locks: lock where it went, read again.
            with repo.SqlBatch(self.session) as batch:
                locking = self.work.queue_lock(batch, wanted)
                reads = self._queue_reads(batch, keys, batch_keys)
            if not self.work.adopt_locked(locking):
                break
        # A linked row read above is a member of a golden record locked before its members
        # were read (``GoldenWork.lock``): that state is the current one.
        existing = {key: self.records.get(row.id, row) for key, row in rows.items()}
        self.work.remember(existing.values())
        for key, record_id, _ in pairs:
            candidate = self.records.get(record_id)
            if candidate is not None and self._is_candidate(candidate):
                self._index(record_id, [key])
        return existing, iter(ids.result())

    def _queue_reads(
        self, batch: repo.SqlBatch, keys: Sequence[SourceKey], batch_keys: Sequence[str]
    ) -> tuple[
        repo.Pending[dict[SourceKey, SourceRecordState]],
        repo.Pending[list[tuple[str, int, int | None]]],
        repo.Pending[list[tuple[repo.ConstraintPair, int | None, int | None]]],
    ]:
        return (
            repo.queue_source_states_by_keys(batch, keys),
            repo.queue_blocking_candidates(batch, batch_keys),
            repo.queue_constraints_of_keys(batch, keys),
        )

    @staticmethod
    def _is_candidate(row: SourceRecordState) -> bool:
        return row.golden_id is not None and not row.deleted and row.validation_errors is None

    # --- step 5 --------------------------------------------------------------------------

    def _new_row(self, record_id: int, p: _Prepared) -> SourceRecordState:
        key = p.change.key
        row = SourceRecordState(
            id=record_id,
            system=key.system,
            source_table=key.table,
            pk=key.pk if p.keyed else None,
            lsn=p.change.position.lsn,
            tx_id=p.change.position.tx_id,
            committed_at=p.change.position.committed_at,
            snapshot=p.change.position.snapshot,
            created_at=self.now,
            updated_at=self.now,
        )
        self.work.remember([row])
        return row

    def _take_position(self, row: SourceRecordState, p: _Prepared) -> None:
        position = p.change.position
        row.lsn = position.lsn
        row.tx_id = position.tx_id
        row.committed_at = position.committed_at
        row.snapshot = position.snapshot
        row.updated_at = self.now

    def _index(self, record_id: int, keys: Iterable[str]) -> None:
        for key in keys:
            self.index[key].add(record_id)
            self.indexed_keys[record_id].add(key)

    def _drop_from_index(self, row: SourceRecordState) -> None:
        for key in self.indexed_keys.pop(row.id, ()):
            self.index[key].discard(row.id)

    def _leave_golden(self, row: SourceRecordState, reason: str) -> None:
        previous = self.work.unlink(row)
        if previous is not None:
            self.work.note(previous, None, reason=reason)

    def _apply_delete(self, row: SourceRecordState, p: _Prepared) -> None:
        self._take_position(row, p)
        row.deleted = True
        if p.change.raw is not None:
            row.raw = json_safe(dict(p.change.raw))
        if p.errors:
            row.validation_errors = p.errors
        self._drop_from_index(row)
        if p.change.key in self.absent:
            self._leave_golden(row, "source row absent from a later snapshot")
            self.absent_deleted += 1
        else:
            self._leave_golden(row, "source row deleted")
        self._supersede_tasks(row.id)
        self.deleted += 1

    def _keeps_link(self, row: SourceRecordState, p: _Prepared) -> bool:
        """A valid upsert of a linked row keeps its link, without matching, when a steward
        decided the link or when its match features did not change."""
        if p.errors is not None or p.change.op is not ChangeOp.UPSERT:
            return False
        if not self._is_candidate(row):
            return False
        return row.link_decided_by == DecidedBy.STEWARD.value or row.features == p.features

    def _apply_upsert(self, row: SourceRecordState, p: _Prepared) -> None:
        self._take_position(row, p)
        row.deleted = False
        row.raw = None if p.change.raw is None else json_safe(dict(p.change.raw))
        row.attributes = p.attributes
        row.validation_errors = p.errors
        row.features = p.features
        self._drop_from_index(row)
        if p.errors is not None:
            self.invalid += 1
            self._leave_golden(row, "failed validation")
            self._supersede_tasks(row.id)
            return
        self.applied += 1
        if row.id in self.unchanged_links:
            assert row.golden_id is not None
            self.work.note_changed(row.golden_id)
        else:
            self._match(row, p)
        self.record_keys[row.id] = p.keys
        self._index(row.id, p.keys)

    def _match(self, row: SourceRecordState, p: _Prepared) -> None:
        current = row.golden_id
        self._supersede_tasks(row.id)
        partners = self._partners(row.id, "must_link")
        forced = sorted(
            {
                partner.golden_id
                for partner in partners
                if partner.golden_id is not None and self._is_candidate(partner)
            }
        )
        scored = self._score(row, p)
        blocked = {s.golden_id for s in scored if self._cannot_link(row.id, s.golden_id)}
        target: int | None = None
        chosen: _Scored | None = None
        if forced:
            target = current if current in forced else forced[0]
        else:
            automatic = [
                s
                for s in scored
                if s.best.decision == "match" and not s.hard_conflict and s.golden_id not in blocked
            ]
            if any(s.golden_id == current for s in automatic):
                chosen = next(s for s in automatic if s.golden_id == current)
            elif automatic:
                chosen = automatic[0]
            target = chosen.golden_id if chosen is not None else current

        if target is None:
            target = self.work.create(provisional=True)
            self.work.link(
                row, target, decided_by=DecidedBy.RULE, matcher_version=self.matcher.version
            )
        elif forced:
            self.work.link(row, target, decided_by=DecidedBy.STEWARD)
            for s in scored:
                if s.best.decision == "match" and s.golden_id != target:
                    self.held_back[(row.id, s.golden_id)] = (
                        "not linked automatically: a steward decided where this record belongs"
                    )
        elif chosen is not None:
            self._relink(row, chosen)
            for other in automatic:
                if other is not chosen:
                    self._bridge(row, chosen, other)
        else:
            self.work.note_changed(target)

        # An automatic match left apart (a bridge that was not safe to merge) is reviewed
        # like a doubtful one, never dropped silently.
        reviews = [
            s
            for s in scored
            if s.golden_id != row.golden_id
            and s.golden_id not in blocked
            and self.work.status(s.golden_id) is GoldenStatus.ACTIVE
            and s.best.decision in ("review", "match")
        ]
        for s in reviews[:REVIEW_CANDIDATES_PER_RECORD]:
            self._open_review(row, s)

    def _bridge(self, row: SourceRecordState, chosen: _Scored, other: _Scored) -> None:
        """``row``, just linked on ``chosen``, also matches ``other`` automatically: it bridges
        the two golden records, so merge them (``plan_merge`` picks the survivor) when that is
        safe (``_bridge_blocker``); otherwise leave them apart for ``_match`` to review."""
        assert row.golden_id is not None
        here, there = row.golden_id, other.golden_id
        if here == there:
            return
        blocker = self._bridge_blocker(here, there)
        if blocker is not None:
            self.held_back[(row.id, there)] = (
                f"not merged automatically with golden record {here}: {blocker}"
            )
            return
        plan = plan_merge(self._summary(here), self._summary(there))
        survivor, merged = plan.survivor_id, plan.merged_id
        moved = self.work.merge_into(merged, survivor)
        scores = {
            str(s.golden_id): {"source_record_id": s.best_record_id, "score": s.best.probability}
            for s in (chosen, other)
        }
        reason = (
            f"source record {row.id} matches both golden records automatically"
            f" (scores {chosen.best.probability:.4f} and {other.best.probability:.4f})"
        )
        self.work.note(
            survivor,
            HistoryEventKind.MERGED,
            merged_from=merged,
            bridging_source_record_id=row.id,
            bridge_scores=scores,
            moved_source_record_ids=moved,
            reason=reason,
        )
        self.work.note(
            merged, HistoryEventKind.MERGED, bridging_source_record_id=row.id, reason=reason
        )
        self.merged_into[merged] = survivor
        # Tasks of this batch about the merged record now name the survivor; a pair that is
        # now one golden record needs no review.
        self.review_rows = [
            review
            for review in (_renamed(review, merged, survivor) for review in self.review_rows)
            if review["golden_id"] != review["candidate_golden_id"]
        ]
        self.open_pairs = {
            (record_id, survivor if golden_id == merged else golden_id)
            for record_id, golden_id in self.open_pairs
        }

    def _final_merges(self) -> dict[int, int]:
        """Each golden record merged by this batch and the (real) id it resolves to now."""
        final: dict[int, int] = {}
        for merged in self.merged_into:
            survivor = self.merged_into[merged]
            while survivor in self.merged_into:
                survivor = self.merged_into[survivor]
            final[self.work.resolve(merged)] = self.work.resolve(survivor)
        return final

    def _bridge_blocker(self, left: int, right: int) -> str | None:
        """Why two golden records must not be merged by the machine (None: safe): one of
        them is not locked by this batch or not active; a steward decided a link of either
        (an unmerge, a link or a merge: the machine does not override it); a cannot-link
        constraint joins a member of one to a member of the other; or a pair of members,
        one from each, has a hard conflict (e.g. different tax ids or dates of birth)."""
        for golden_id in (left, right):
            if not self.work.is_locked(golden_id):
                return f"golden record {golden_id} is not locked by this batch"
            if self.work.status(golden_id) is not GoldenStatus.ACTIVE:
                return f"golden record {golden_id} is not active"
        members = {golden_id: self.work.members(golden_id) for golden_id in (left, right)}
        records = [self.work.records[i] for ids in members.values() for i in sorted(ids)]
        if any(r.link_decided_by == DecidedBy.STEWARD.value for r in records):
            return "a steward decided a link of one of them"
        # Constraints are only written by steward actions, which lock the golden records of
        # both records first: what is read here holds until this batch commits.
        both = members[left] | members[right]
        for constraint in repo.constraints_involving(self.session, both):
            pair = {constraint.left_source_record_id, constraint.right_source_record_id}
            if constraint.kind == "cannot_link" and pair & members[left] and pair & members[right]:
                return "a steward kept members of them apart (cannot-link)"
        for a in sorted(members[left]):
            for b in sorted(members[right]):
                if self._pair_score(self.work.records[a], self.work.records[b]).hard_conflict:
                    return f"source records {a} and {b} have a hard conflict"
        return None

    def _pair_score(self, left: SourceRecordState, right: SourceRecordState) -> MatchScore:
        if self.preparing is None:
            return self.matcher.score(left.features, right.features)
        return self.preparing.score_prepared(self._prepared(left), self._prepared(right))

    def _summary(self, golden_id: int) -> GoldenSummary:
        return GoldenSummary(
            golden_id=golden_id,
            created_at=self.work.golden(golden_id).created_at,
            source_record_ids=self.work.members(golden_id),
            status=self.work.status(golden_id),
        )

    def _relink(self, row: SourceRecordState, chosen: _Scored) -> None:
        previous = row.golden_id
        explanation, explanation_json = _explanation(chosen.best)
        self.work.link(
            row,
            chosen.golden_id,
            decided_by=DecidedBy.RULE,
            score=chosen.best.probability,
            explanation=explanation,
            explanation_json=explanation_json,
            matcher_version=self.matcher.version,
        )
        if (
            previous is not None
            and previous != chosen.golden_id
            and not self.work.members(previous)
            and self.work.status(previous) is GoldenStatus.ACTIVE
        ):
            # Its only source now matches another golden record: the old id resolves there.
            self.work.mark_merged(previous, chosen.golden_id)
            self.work.note(
                previous, HistoryEventKind.MERGED, reason="its only source record now matches"
            )

    def _score(self, row: SourceRecordState, p: _Prepared) -> list[_Scored]:
        """Candidates grouped by golden record, best golden first (probability, then id)."""
        candidate_ids = sorted({i for key in p.keys for i in self.index.get(key, ())} - {row.id})
        by_golden: dict[int, list[tuple[MatchScore, int]]] = defaultdict(list)
        mine: Any = None
        for candidate_id in candidate_ids:
            candidate = self.records[candidate_id]
            if candidate.golden_id is None or not self.work.is_locked(candidate.golden_id):
                continue
            if self.work.status(candidate.golden_id) is not GoldenStatus.ACTIVE:
                continue
            if self.preparing is None:
                score = self.matcher.score(p.features, candidate.features)
            else:
                if mine is None:
                    mine = self.preparing.prepare(p.features)
                score = self.preparing.score_prepared(mine, self._prepared(candidate))
            by_golden[candidate.golden_id].append((score, candidate_id))
        scored = []
        for golden_id, scores in by_golden.items():
            best, best_id = max(scores, key=lambda item: (item[0].probability, -item[1]))
            scored.append(
                _Scored(
                    golden_id=golden_id,
                    best=best,
                    best_record_id=best_id,
                    hard_conflict=any(s.hard_conflict for s, _ in scores),
                )
            )
        scored.sort(key=lambda s: (-s.best.probability, s.golden_id))
        return scored

    def _prepared(self, record: SourceRecordState) -> Any:
        """The record's prepared features, prepared once per batch (again if they change)."""
        assert self.preparing is not None
        features = record.features
        cached = self.prepared.get(record.id)
        if cached is not None and cached[0] is features:
            return cached[1]
        prepared = self.preparing.prepare(features)
        self.prepared[record.id] = (features, prepared)
        return prepared

    def _partners(self, record_id: int, kind: str) -> list[SourceRecordState]:
        partner_ids = [
            c.right_source_record_id
            if c.left_source_record_id == record_id
            else c.left_source_record_id
            for c in self.constraints
            if c.kind == kind and record_id in (c.left_source_record_id, c.right_source_record_id)
        ]
        return [self.records[i] for i in sorted(partner_ids) if i in self.records]

    def _cannot_link(self, record_id: int, golden_id: int) -> bool:
        members = self.work.members(golden_id)
        return any(partner.id in members for partner in self._partners(record_id, "cannot_link"))

    def _open_review(self, row: SourceRecordState, scored: _Scored) -> None:
        assert row.golden_id is not None
        pair = (row.id, scored.golden_id)
        if pair in self.open_pairs:
            return
        self.open_pairs.add(pair)
        explanation, explanation_json = _explanation(scored.best)
        held_back = self.held_back.get(pair)
        if held_back is not None:
            explanation = {**explanation, "held_back": held_back}
            explanation_json = to_json(explanation)
        self.review_rows.append(
            {
                "kind": "source_vs_golden",
                "source_record_id": row.id,
                "golden_id": row.golden_id,
                "candidate_golden_id": scored.golden_id,
                "candidate_source_record_id": scored.best_record_id,
                "score": scored.best.probability,
                "explanation": explanation,
                "explanation_json": explanation_json,
                "matcher_version": self.matcher.version,
                "priority": round(scored.best.probability * 100),
                "status": "open",
                "created_at": self.now,
            }
        )

    def _supersede_tasks(self, record_id: int) -> None:
        """Open tasks about this record were computed from its old image: withdraw them (when
        the batch is written, before its new tasks)."""
        stale_pairs = {pair for pair in self.open_pairs if pair[0] == record_id}
        if not stale_pairs:
            return
        self.open_pairs -= stale_pairs
        self.superseded.append(record_id)


def _renamed(review: dict[str, Any], merged: int, survivor: int) -> dict[str, Any]:
    for name in ("golden_id", "candidate_golden_id"):
        if review[name] == merged:
            review[name] = survivor
    return review


@contextmanager
def _paused_gc() -> Iterator[None]:
    """Pause the cyclic garbage collector while a batch is applied.

    A batch holds tens of thousands of short-lived objects (states, snapshots, rows) that
    form no cycles and die with it. With the collector on, they survive enough young
    collections to trigger full ones, which walk everything alive in the process and cost
    as much as the batch (0.5 to 1 s per 1,000 changes in ``bench/hub_apply.py``). Paused,
    they are freed by reference counting when the batch ends and never reach the old
    generation.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _latest_per_key(changes: Iterable[SourceChange]) -> list[SourceChange]:
    """The newest change per source key (keyless changes all kept), in apply order."""
    latest: dict[object, SourceChange] = {}
    keyless: list[SourceChange] = []
    for change in changes:
        if not usable_pk(change.key):
            keyless.append(change)
            continue
        seen = latest.get(change.key)
        if seen is None or change.position.supersedes(seen.position):
            latest[change.key] = change if seen is None else _carry_unchanged(seen, change)
    # Order: position, key, then the raw image. Changes rarely tie on (position, key) (keyed
    # ones never do: one per key), so the raw image is encoded only for those that do.
    decorated = sorted(
        ((c.position.sort_key(), str(c.key), c) for c in [*latest.values(), *keyless]),
        key=lambda item: item[:2],
    )
    ordered: list[SourceChange] = []
    for _, tied in groupby(decorated, key=lambda item: item[:2]):
        run = [c for _, _, c in tied]
        if len(run) > 1:
            run.sort(key=lambda c: json.dumps(c.raw, default=str, sort_keys=True))
        ordered.extend(run)
    return ordered


def _carry_unchanged(older: SourceChange, newer: SourceChange) -> SourceChange:
    """``newer`` with the values of its ``unchanged`` attributes (and raw columns) taken from
    ``older``, an earlier change of the same row in the batch that it replaces. Only what
    ``older`` did not have either is left to the stored row."""
    if not newer.unchanged or newer.op is not ChangeOp.UPSERT or older.op is not ChangeOp.UPSERT:
        return newer
    attributes = dict(newer.attributes)
    still_unchanged: set[str] = set()
    for name in newer.unchanged:
        if name in older.attributes:
            attributes[name] = older.attributes[name]
        elif name in older.unchanged:
            still_unchanged.add(name)
    raw = None
    if newer.raw is not None:
        kept = {k: v for k, v in (older.raw or {}).items() if k not in newer.raw}
        raw = {**kept, **newer.raw}
    return replace(newer, attributes=attributes, raw=raw, unchanged=frozenset(still_unchanged))
