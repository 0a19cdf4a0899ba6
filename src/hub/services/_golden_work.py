"""The golden records one transaction touches, and how their changes are saved.

Services lock the golden records they need (``lock``, id order), move source records between
them (``link`` / ``unlink``), create, merge or retire them, and finally call ``save``, which for
every touched record:

1. recomputes survivorship from its linked source records and pins (a merged or retired
   record has no current attributes: its last ones stay readable through its history),
2. compares the result with the state it had when it was locked, and only if something a
   reader can see changed (attributes, status, linked sources, pins) bumps the version and
   writes one history event and one outbox row per target,
3. rewrites its attribute lineage (a new source can supply an unchanged value).

So an update that changes nothing survivorship-visible never makes a new version, which is
what keeps a value written back to a source from echoing.

Source records and golden records are held as plain states (``hub.states``), not ORM
instances, and written in set-based statements sent together (``repositories.SqlBatch``):
``flush`` queues everything but the history (golden records first, then source records, pins,
lineage and outbox, so foreign keys hold), ``queue_history`` the history, which takes the
history lock held to commit; ``save`` does both in one round trip. A caller with more rows
that reference these (blocking keys, review tasks) queues them between the two.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlmodel import Session

from hub import repositories as repo
from hub.history import (
    GoldenSnapshot,
    HistoryCause,
    HistoryEventKind,
    build_event,
)
from hub.model import (
    DecidedBy,
    GoldenStatus,
    Pin,
    SourceKey,
    SourcePosition,
    SourceSnapshot,
)
from hub.rules import SurvivorshipRules
from hub.states import GoldenState, SourceRecordState, to_json
from hub.survivorship import survive
from hub.tables import SourceRecordRow

AnySourceRecord = SourceRecordRow | SourceRecordState
"""A source record as a write path holds it (a state) or as the ORM reads it (a row)."""


def record_key(row: AnySourceRecord) -> SourceKey:
    return SourceKey(row.system, row.source_table, row.pk or "")


def record_position(row: AnySourceRecord) -> SourcePosition:
    return SourcePosition(
        lsn=row.lsn, tx_id=row.tx_id, committed_at=row.committed_at, snapshot=row.snapshot
    )


def record_snapshot(row: AnySourceRecord) -> SourceSnapshot:
    return SourceSnapshot(
        source_record_id=row.id,
        key=record_key(row),
        attributes=row.attributes,
        position=record_position(row),
        deleted=row.deleted,
    )


@dataclass
class _Touched:
    row: GoldenState
    before: GoldenSnapshot | None
    members: set[int]
    pins: dict[str, Pin]
    kind: HistoryEventKind | None = None
    details: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class PendingLock:
    """Golden records whose lock is queued in a batch, and what it will read."""

    rows: repo.Pending[dict[int, GoldenState]]
    pins: repo.Pending[dict[int, dict[str, Pin]]]
    members: repo.Pending[list[SourceRecordState]]


@dataclass(frozen=True)
class SavedGoldens:
    created: tuple[int, ...]
    changed: tuple[int, ...]
    """Golden records that got a new version, created ones included."""


class GoldenWork:
    """The golden records of one transaction: locked, changed in memory, saved at the end."""

    def __init__(
        self,
        session: Session,
        *,
        rules: SurvivorshipRules,
        targets: Sequence[str],
        now: datetime,
        cause: HistoryCause,
        actor: str,
    ) -> None:
        self.session = session
        self.rules = rules
        self.targets = tuple(targets)
        self.now = now
        self.cause = cause
        self.actor = actor
        self._touched: dict[int, _Touched] = {}
        self._dirty: set[int] = set()
        self._provisional: list[GoldenState] = []
        self._resolved: dict[int, int] = {}
        self._history: list[dict[str, Any]] = []
        self._created: list[int] = []
        self._changed: list[int] = []
        self.records: dict[int, SourceRecordState] = {}

    # --- loading -------------------------------------------------------------------------

    def lock(self, golden_ids: Iterable[int]) -> list[int]:
        """Lock (``FOR UPDATE``, id order) and load the golden records not locked yet.

        Loads their linked source records into ``records`` and their pins. Returns the ids
        that were newly locked.
        """
        with repo.SqlBatch(self.session) as batch:
            pending = self.queue_lock(batch, golden_ids)
        return self.adopt_locked(pending)

    def queue_lock(self, batch: repo.SqlBatch, golden_ids: repo.GoldenIds) -> PendingLock | None:
        """``lock`` queued in a batch (what the batch queues after it runs under the locks);
        ``adopt_locked`` takes the result once the batch was sent. ``golden_ids`` may be a
        query the database evaluates (those already locked here are locked again, harmlessly,
        and left as they are)."""
        if not isinstance(golden_ids, repo.GoldenQuery):
            golden_ids = sorted(set(golden_ids) - self._touched.keys())
            if not golden_ids:
                return None
        return PendingLock(
            repo.queue_lock_golden_states(batch, golden_ids),
            repo.queue_pins_of(batch, golden_ids),
            repo.queue_member_states(batch, golden_ids),
        )

    def adopt_locked(self, pending: PendingLock | None) -> list[int]:
        """Hold the golden records a sent ``queue_lock`` locked; returns those newly held."""
        if pending is None:
            return []
        rows = pending.rows.result()
        wanted = sorted(rows.keys() - self._touched.keys())
        pins = pending.pins.result()
        members: dict[int, set[int]] = {golden_id: set() for golden_id in wanted}
        for record in pending.members.result():
            if record.golden_id in members:
                self.records.setdefault(record.id, record)
                members[record.golden_id].add(record.id)
        for golden_id in wanted:
            row = rows[golden_id]
            golden_pins = pins.get(golden_id, {})
            self._touched[golden_id] = _Touched(
                row=row,
                before=GoldenSnapshot(
                    golden_id=golden_id,
                    version=row.version,
                    status=GoldenStatus(row.status),
                    attributes=row.attributes,
                    source_record_ids=frozenset(members[golden_id]),
                    merged_into=row.merged_into,
                    pins=golden_pins,
                ),
                members=members[golden_id],
                pins=dict(golden_pins),
            )
        return wanted

    def is_locked(self, golden_id: int) -> bool:
        return golden_id in self._touched

    def golden(self, golden_id: int) -> GoldenState:
        return self._touched[golden_id].row

    def status(self, golden_id: int) -> GoldenStatus:
        return GoldenStatus(self._touched[golden_id].row.status)

    def members(self, golden_id: int) -> frozenset[int]:
        return frozenset(self._touched[golden_id].members)

    def pins(self, golden_id: int) -> dict[str, Pin]:
        return dict(self._touched[golden_id].pins)

    def remember(self, records: Iterable[SourceRecordState]) -> None:
        """Hold these source records (one already held is kept): ``flush`` writes what changed
        in them, and inserts the new ones."""
        for record in records:
            self.records.setdefault(record.id, record)

    # --- changes -------------------------------------------------------------------------

    def create(self, *, provisional: bool = False) -> int:
        """A new active golden record with a fresh id from the sequence (never reused).

        With ``provisional``, the id is a negative placeholder until ``save`` draws the real
        ids for all of them in one round trip, in creation order (so the same input still gets
        the same ids). Use it only where the id goes nowhere but this object, the source
        records' links and ``merged_into``; ``resolve`` maps a placeholder after saving.
        """
        if provisional:
            golden_id = -(len(self._provisional) + 1)
        else:
            golden_id = repo.allocate_golden_id(self.session)
        row = GoldenState(
            id=golden_id,
            attributes={},
            version=0,
            status=GoldenStatus.ACTIVE.value,
            merged_into=None,
            created_at=self.now,
            updated_at=self.now,
        )
        if provisional:
            self._provisional.append(row)
        self._touched[golden_id] = _Touched(row=row, before=None, members=set(), pins={})
        self._dirty.add(golden_id)
        return golden_id

    def resolve(self, golden_id: int) -> int:
        """The real id of a provisional golden record (after ``save``); other ids unchanged."""
        return self._resolved.get(golden_id, golden_id)

    def assign_provisional_ids(self) -> None:
        """Draw the real ids of the provisional golden records (``save`` does it too)."""
        if not self._provisional:
            return
        real_ids = repo.allocate_golden_ids(self.session, len(self._provisional))
        mapping = {-(index + 1): real for index, real in enumerate(real_ids)}
        for placeholder, row in zip(mapping, self._provisional, strict=True):
            row.id = mapping[placeholder]
        self._touched = {mapping.get(k, k): v for k, v in self._touched.items()}
        self._dirty = {mapping.get(k, k) for k in self._dirty}
        for record in self.records.values():
            if record.golden_id is not None and record.golden_id < 0:
                record.golden_id = mapping[record.golden_id]
        for touched in self._touched.values():
            merged_into = touched.row.merged_into
            if merged_into is not None and merged_into < 0:
                touched.row.merged_into = mapping[merged_into]
        self._resolved.update(mapping)
        self._provisional = []

    def link(
        self,
        record: SourceRecordState,
        golden_id: int,
        *,
        decided_by: DecidedBy,
        score: float | None = None,
        explanation: Mapping[str, Any] | None = None,
        explanation_json: str | None = None,
        matcher_version: str | None = None,
    ) -> None:
        """Link ``record`` to ``golden_id`` (unlinking it from where it was).

        ``explanation_json``, when given, is ``explanation`` already encoded as JSON.
        """
        self.records.setdefault(record.id, record)
        if record.golden_id is not None and record.golden_id != golden_id:
            self._touched[record.golden_id].members.discard(record.id)
            self._dirty.add(record.golden_id)
        record.golden_id = golden_id
        record.link_score = score
        record.assign(
            "link_explanation",
            None if explanation is None else dict(explanation),
            None if explanation is None else explanation_json,
        )
        record.link_decided_by = decided_by.value
        record.link_decided_at = self.now
        record.matcher_version = matcher_version
        self._touched[golden_id].members.add(record.id)
        self._dirty.add(golden_id)

    def unlink(self, record: SourceRecordState) -> int | None:
        """Detach ``record`` from its golden record; returns that golden id."""
        previous = record.golden_id
        if previous is not None:
            self._touched[previous].members.discard(record.id)
            self._dirty.add(previous)
        record.golden_id = None
        record.link_score = None
        record.link_explanation = None
        record.link_decided_by = None
        record.link_decided_at = None
        record.matcher_version = None
        return previous

    def mark_merged(self, golden_id: int, into: int) -> None:
        touched = self._touched[golden_id]
        touched.row.status = GoldenStatus.MERGED.value
        touched.row.merged_into = into
        self._dirty.add(golden_id)

    def merge_into(self, merged_id: int, into: int) -> list[int]:
        """Merge golden ``merged_id`` into ``into`` as the matcher does (both locked, active).

        Its source records move over keeping their link decisions (score, explanation, who
        decided, matcher version: the evidence each was linked on), its pins move over where
        ``into`` has none, and it becomes ``merged`` with ``merged_into``. The history notes
        (why, on what evidence) are the caller's. Returns the moved source record ids.
        """
        moving = sorted(self._touched[merged_id].members)
        for record_id in moving:
            record = self.records[record_id]
            record.golden_id = into
            record.link_decided_at = self.now
        self._touched[merged_id].members.clear()
        self._touched[into].members.update(moving)
        pins = self.pins(merged_id)
        pins.update(self.pins(into))
        self.set_pins(into, pins)
        self.set_pins(merged_id, {})
        self.mark_merged(merged_id, into)
        self._dirty.update((merged_id, into))
        return moving

    def reactivate(self, golden_id: int) -> None:
        touched = self._touched[golden_id]
        touched.row.status = GoldenStatus.ACTIVE.value
        touched.row.merged_into = None
        self._dirty.add(golden_id)

    def set_pins(self, golden_id: int, pins: Mapping[str, Pin]) -> None:
        self._touched[golden_id].pins = dict(pins)
        self._dirty.add(golden_id)

    def note(self, golden_id: int, kind: HistoryEventKind | None, **details: Any) -> None:
        """Name the kind of the history event this golden record will get (None: derived from
        what changed), with details for people reading the history."""
        touched = self._touched[golden_id]
        if kind is not None:
            touched.kind = kind
        touched.details.update(details)
        self._dirty.add(golden_id)

    def note_changed(self, golden_id: int) -> None:
        """A linked source record changed: recompute this golden record when saving."""
        self._dirty.add(golden_id)

    # --- saving --------------------------------------------------------------------------

    def flush(self, batch: repo.SqlBatch) -> None:
        """Queue the writes of everything but the history in ``batch``: the touched golden
        records (recomputed, steps 1 and 2 of the module doc), the source records held, pins,
        lineage and outbox rows, in an order that keeps foreign keys satisfied.

        ``save`` calls it. A caller with rows that reference new golden or source records
        (blocking keys, review tasks) queues them after it, then ``queue_history``. Pending
        ORM changes must be flushed, and ``assign_provisional_ids`` called, before ``batch``
        has anything queued (both run statements of their own). Changes made after it are
        written by the next ``flush``.
        """
        self.assign_provisional_ids()
        outbox: list[dict[str, Any]] = []
        lineage: list[dict[str, Any]] = []
        pins_changed: list[int] = []
        dirty = sorted(self._dirty)
        for golden_id in dirty:
            touched = self._touched[golden_id]
            row = touched.row
            if row.status == GoldenStatus.ACTIVE.value and not touched.members:
                row.status = GoldenStatus.RETIRED.value
            status = GoldenStatus(row.status)
            # A merged or retired record has no sources speaking for it, so no current
            # attributes; what it had is in its history (``reconstruct`` reads it back).
            attributes: Mapping[str, Any] = {}
            if status is GoldenStatus.ACTIVE:
                survived = survive(
                    [record_snapshot(self.records[i]) for i in sorted(touched.members)],
                    self.rules,
                    touched.pins,
                )
                attributes = survived.attributes
                lineage.extend(_lineage_rows(golden_id, survived.lineage.values()))
            before = touched.before
            after = GoldenSnapshot(
                golden_id=golden_id,
                version=0 if before is None else before.version,
                status=status,
                attributes=attributes,
                source_record_ids=frozenset(touched.members),
                merged_into=row.merged_into,
                pins=touched.pins,
            )
            if before is not None and after == before:
                continue
            if dict(before.pins if before is not None else {}) != dict(after.pins):
                pins_changed.append(golden_id)
            after = GoldenSnapshot(
                golden_id=golden_id,
                version=after.version + 1,
                status=after.status,
                attributes=after.attributes,
                source_record_ids=after.source_record_ids,
                merged_into=after.merged_into,
                pins=after.pins,
            )
            row.attributes = dict(after.attributes)
            row.version = after.version
            row.updated_at = self.now
            event = build_event(
                before,
                after,
                kind=_event_kind(before, after, touched.kind),
                cause=self.cause,
                actor=self.actor,
                occurred_at=self.now,
                details=touched.details,
            )
            self._history.append(
                {
                    "golden_id": golden_id,
                    "kind": event.kind.value,
                    "version": event.version,
                    "cause": event.cause.value,
                    "actor": event.actor,
                    "occurred_at": event.occurred_at,
                    "data": event.data(),
                }
            )
            payload = to_json(self._payload(after))
            source_committed_at = self._source_committed_at(touched)
            outbox.extend(
                {
                    "golden_id": golden_id,
                    "version": after.version,
                    "target": target,
                    "idempotency_key": f"{golden_id}:{after.version}:{target}",
                    "payload_json": payload,
                    "created_at": self.now,
                    "attempts": 0,
                    "next_attempt_at": self.now,
                    "source_committed_at": source_committed_at,
                }
                for target in self.targets
            )
            self._changed.append(golden_id)
            if before is None:
                self._created.append(golden_id)
            # What was written is the state the next flush compares with.
            touched.before = after
            touched.kind = None
            touched.details = {}
        repo.write_golden_records(batch, (self._touched[i].row for i in dirty))
        repo.write_source_records(batch, self.records.values())
        for golden_id in pins_changed:
            repo.replace_pins(batch, golden_id, self._touched[golden_id].pins)
        repo.replace_lineage(batch, dirty, lineage)
        repo.add_outbox(batch, outbox)
        self._dirty.clear()
        # Rows written behind the ORM's back: make it read them afresh if asked.
        self.session.expire_all()

    def queue_history(self, batch: repo.SqlBatch) -> SavedGoldens:
        """Queue the history events of every version made since the work began (they take
        the history lock, held to commit: queue nothing long after them)."""
        repo.queue_history(batch, self._history)
        self._history = []
        return SavedGoldens(created=tuple(self._created), changed=tuple(self._changed))

    def save(self) -> SavedGoldens:
        """Recompute, compare and write every touched golden record (steps in the module doc);
        last, append the history events. One round trip for all the writes."""
        self.assign_provisional_ids()
        self.session.flush()  # the caller's pending ORM changes first
        with repo.SqlBatch(self.session) as batch:
            self.flush(batch)
            return self.queue_history(batch)

    def release(self) -> None:
        """Forget every record held (once saved): frees them at once rather than whenever
        the work itself is dropped."""
        self._touched.clear()
        self._dirty.clear()
        self._provisional.clear()
        self._history.clear()
        self.records.clear()

    def _source_committed_at(self, touched: _Touched) -> datetime | None:
        """The latest source commit among this golden record's source records written in this
        transaction (None for steward actions): where the sync-latency KPI starts."""
        if self.cause is not HistoryCause.SOURCE_CHANGE:
            return None
        ids = set(touched.members) | set(touched.before.source_record_ids if touched.before else ())
        times = [
            record.committed_at
            for record in (self.records.get(i) for i in ids)
            if record is not None and record.updated_at == self.now
        ]
        return max(times, default=None)

    def _payload(self, state: GoldenSnapshot) -> dict[str, Any]:
        sources = sorted((record_key(self.records[i]) for i in state.source_record_ids), key=str)
        return {
            "golden_id": state.golden_id,
            "version": state.version,
            "status": state.status.value,
            "merged_into": state.merged_into,
            "attributes": dict(state.attributes),
            "sources": [{"system": k.system, "table": k.table, "pk": k.pk} for k in sources],
            "changed_at": self.now.isoformat(),
            "cause": self.cause.value,
        }


def _event_kind(
    before: GoldenSnapshot | None, after: GoldenSnapshot, hint: HistoryEventKind | None
) -> HistoryEventKind:
    if before is None:
        return HistoryEventKind.CREATED
    if after.status is GoldenStatus.MERGED and before.status is not GoldenStatus.MERGED:
        return HistoryEventKind.MERGED
    if after.status is GoldenStatus.RETIRED and before.status is not GoldenStatus.RETIRED:
        return HistoryEventKind.RETIRED
    if hint is not None:
        return hint
    if after.source_record_ids - before.source_record_ids:
        return HistoryEventKind.LINKED
    if before.source_record_ids - after.source_record_ids:
        return HistoryEventKind.UNLINKED
    return HistoryEventKind.UPDATED


def _lineage_rows(golden_id: int, entries: Iterable[Any]) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for entry in entries:
        position = entry.position
        rows.append(
            {
                "golden_id": golden_id,
                "attribute": entry.attribute,
                "value": entry.value,
                "source_record_id": entry.source_record_id,
                "lsn": None if position is None else position.lsn,
                "tx_id": None if position is None else position.tx_id,
                "committed_at": None if position is None else position.committed_at,
                "rule": entry.rule,
                "rule_set_version": entry.rule_set_version,
                "pinned": entry.pinned,
                "pin_reason": entry.pin_reason,
                "pinned_by": entry.pinned_by,
            }
        )
    return rows
