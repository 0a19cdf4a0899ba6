"""Golden history: the append-only events of a golden record, and folding them back into state.

Every event says exactly what changed, so folding a record's events in sequence order gives its
state after each of them, not an approximation:

- ``snapshot``: the full attributes (a creation carries one);
- ``diff``: ``{attribute: {"old": ..., "new": ...}}``, ``new`` None meaning the value is gone;
- ``sources_added`` / ``sources_removed``: the change to the set of linked source records;
- ``status`` (+ ``merged_into`` when the new status is merged);
- ``pins_set`` / ``pins_removed``: steward pins placed or lifted.

Services build events with ``build_event(before, after, ...)``, which derives all of that from
the states before and after the change, so what is stored always folds back to ``after``.
``HistoryEvent.data()`` / ``HistoryEvent.from_data()`` is the JSON form kept in the history table.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from hub.errors import InconsistentHistoryError
from hub.model import GOLDEN_ATTRIBUTES, GoldenStatus, Pin, is_empty_value

AttributeDiff = dict[str, dict[str, Any]]
"""``{attribute: {"old": value or None, "new": value or None}}``."""

_ATTRIBUTE_ORDER = {name: index for index, name in enumerate(GOLDEN_ATTRIBUTES)}


class HistoryEventKind(StrEnum):
    CREATED = "created"
    UPDATED = "updated"
    LINKED = "linked"
    UNLINKED = "unlinked"
    MERGED = "merged"
    UNMERGED = "unmerged"
    RETIRED = "retired"
    PINNED = "pinned"
    UNPINNED = "unpinned"


class HistoryCause(StrEnum):
    SOURCE_CHANGE = "source_change"
    STEWARD_ACTION = "steward_action"


@dataclass(frozen=True)
class GoldenSnapshot:
    """A golden record's state: what ``reconstruct`` returns and ``build_event`` compares."""

    golden_id: int
    version: int
    status: GoldenStatus
    attributes: Mapping[str, Any]
    source_record_ids: frozenset[int]
    merged_into: int | None = None
    pins: Mapping[str, Pin] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if (self.status is GoldenStatus.MERGED) != (self.merged_into is not None):
            raise ValueError("merged_into is set exactly when the status is merged")
        if any(name != pin.attribute for name, pin in self.pins.items()):
            raise ValueError("pins are keyed by the attribute they pin")
        # Empty values are absent values: two states that differ only there are the same state.
        object.__setattr__(self, "attributes", _present(self.attributes))
        object.__setattr__(self, "source_record_ids", frozenset(self.source_record_ids))


@dataclass(frozen=True)
class HistoryEvent:
    """One change to one golden record. ``sequence`` is None until the store has numbered it."""

    golden_id: int
    kind: HistoryEventKind
    cause: HistoryCause
    actor: str
    occurred_at: datetime
    version: int
    """The golden record's version after this event."""
    sequence: int | None = None
    snapshot: Mapping[str, Any] | None = None
    diff: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    sources_added: frozenset[int] = frozenset()
    sources_removed: frozenset[int] = frozenset()
    status: GoldenStatus | None = None
    merged_into: int | None = None
    pins_set: Mapping[str, Pin] = field(default_factory=dict)
    pins_removed: frozenset[str] = frozenset()
    details: Mapping[str, Any] = field(default_factory=dict)
    """Free-form explanation for people: match score, decided by, counterpart golden id."""

    def __post_init__(self) -> None:
        if self.kind is HistoryEventKind.CREATED and (self.snapshot is None or self.status is None):
            raise ValueError("a created event carries the full snapshot and the status")
        if self.status is GoldenStatus.MERGED and self.merged_into is None:
            raise ValueError("an event that sets status merged names merged_into")

    def data(self) -> dict[str, Any]:
        """The JSON payload kept in the history table (everything but the row's own columns)."""
        data: dict[str, Any] = {}
        if self.snapshot is not None:
            data["snapshot"] = dict(self.snapshot)
        if self.diff:
            data["diff"] = {name: dict(change) for name, change in self.diff.items()}
        if self.sources_added:
            data["sources_added"] = sorted(self.sources_added)
        if self.sources_removed:
            data["sources_removed"] = sorted(self.sources_removed)
        if self.status is not None:
            data["status"] = self.status.value
        if self.merged_into is not None:
            data["merged_into"] = self.merged_into
        if self.pins_set:
            data["pins_set"] = {name: _pin_to_json(pin) for name, pin in self.pins_set.items()}
        if self.pins_removed:
            data["pins_removed"] = sorted(self.pins_removed)
        if self.details:
            data["details"] = dict(self.details)
        return data

    @classmethod
    def from_data(
        cls,
        *,
        golden_id: int,
        kind: str,
        cause: str,
        actor: str,
        occurred_at: datetime,
        version: int,
        sequence: int | None,
        data: Mapping[str, Any],
    ) -> HistoryEvent:
        """The event as stored: the row's columns plus its ``data()`` payload."""
        status = data.get("status")
        return cls(
            golden_id=golden_id,
            kind=HistoryEventKind(kind),
            cause=HistoryCause(cause),
            actor=actor,
            occurred_at=occurred_at,
            version=version,
            sequence=sequence,
            snapshot=data.get("snapshot"),
            diff=data.get("diff", {}),
            sources_added=frozenset(data.get("sources_added", ())),
            sources_removed=frozenset(data.get("sources_removed", ())),
            status=None if status is None else GoldenStatus(status),
            merged_into=data.get("merged_into"),
            pins_set={
                name: _pin_from_json(name, raw) for name, raw in data.get("pins_set", {}).items()
            },
            pins_removed=frozenset(data.get("pins_removed", ())),
            details=data.get("details", {}),
        )


def diff_attributes(old: Mapping[str, Any], new: Mapping[str, Any]) -> AttributeDiff:
    """The attributes whose value differs, as ``{attribute: {"old": ..., "new": ...}}``.

    A missing attribute and an empty one are the same (None). Golden attributes come in model
    order, others after them by name.
    """
    changed: AttributeDiff = {}
    for name in sorted(old.keys() | new.keys(), key=_attribute_sort_key):
        before, after = _or_none(old.get(name)), _or_none(new.get(name))
        if before != after:
            changed[name] = {"old": before, "new": after}
    return changed


def build_event(
    before: GoldenSnapshot | None,
    after: GoldenSnapshot,
    *,
    kind: HistoryEventKind,
    cause: HistoryCause,
    actor: str,
    occurred_at: datetime,
    details: Mapping[str, Any] | None = None,
) -> HistoryEvent:
    """The event that takes a golden record from ``before`` (None: it did not exist) to ``after``.

    ``apply_event(before, event) == after`` holds for the result, which is what makes
    ``reconstruct`` exact.
    """
    if (before is None) != (kind is HistoryEventKind.CREATED):
        raise ValueError("a created event has no before state, and only a created event")
    if before is not None and before.golden_id != after.golden_id:
        raise ValueError(f"before is golden {before.golden_id}, after is {after.golden_id}")
    common: dict[str, Any] = {
        "golden_id": after.golden_id,
        "kind": kind,
        "cause": cause,
        "actor": actor,
        "occurred_at": occurred_at,
        "version": after.version,
        "details": dict(details or {}),
    }
    if before is None:
        return HistoryEvent(
            **common,
            snapshot=_present(after.attributes),
            sources_added=after.source_record_ids,
            status=after.status,
            merged_into=after.merged_into,
            pins_set=dict(after.pins),
        )
    status_changed = before.status != after.status or before.merged_into != after.merged_into
    return HistoryEvent(
        **common,
        diff=diff_attributes(before.attributes, after.attributes),
        sources_added=after.source_record_ids - before.source_record_ids,
        sources_removed=before.source_record_ids - after.source_record_ids,
        status=after.status if status_changed else None,
        merged_into=after.merged_into if status_changed else None,
        pins_set={name: pin for name, pin in after.pins.items() if before.pins.get(name) != pin},
        pins_removed=frozenset(before.pins.keys() - after.pins.keys()),
    )


def apply_event(state: GoldenSnapshot | None, event: HistoryEvent) -> GoldenSnapshot:
    """The state right after ``event``, given the state right before it."""
    if state is None:
        if event.snapshot is None or event.status is None:
            raise InconsistentHistoryError(
                event.golden_id, event.sequence or 0, "the first event must be a creation"
            )
        attributes = _present(event.snapshot)
        sources: frozenset[int] = frozenset()
        status, merged_into = event.status, event.merged_into
        pins: dict[str, Pin] = {}
    else:
        if state.golden_id != event.golden_id:
            raise InconsistentHistoryError(
                state.golden_id, event.sequence or 0, f"event of golden {event.golden_id}"
            )
        attributes = (
            _present(event.snapshot) if event.snapshot is not None else dict(state.attributes)
        )
        sources = state.source_record_ids
        status, merged_into = state.status, state.merged_into
        if event.status is not None:
            status = event.status
            merged_into = event.merged_into if status is GoldenStatus.MERGED else None
        pins = dict(state.pins)
    for name, change in event.diff.items():
        value = change.get("new")
        if _or_none(value) is None:
            attributes.pop(name, None)
        else:
            attributes[name] = value
    for name in event.pins_removed:
        pins.pop(name, None)
    pins.update(event.pins_set)
    return GoldenSnapshot(
        golden_id=event.golden_id,
        version=event.version,
        status=status,
        attributes=attributes,
        source_record_ids=(sources - event.sources_removed) | event.sources_added,
        merged_into=merged_into,
        pins=pins,
    )


def reconstruct(events: Iterable[HistoryEvent], as_of: datetime) -> GoldenSnapshot | None:
    """The golden record as it was at ``as_of``; None if it had not been created yet.

    Events are folded in sequence order, and the fold stops at the first event that occurred
    after ``as_of``: the result is always a state the record really had, even if a clock
    stepped back between two of its events.

    Raises:
        InconsistentHistoryError: events of several golden records, an event not yet numbered,
            or a history that does not start with a creation.
    """
    ordered = sorted(events, key=_sequence_of)
    state: GoldenSnapshot | None = None
    for event in ordered:
        if event.occurred_at > as_of:
            break
        state = apply_event(state, event)
    return state


def _sequence_of(event: HistoryEvent) -> int:
    if event.sequence is None:
        raise InconsistentHistoryError(event.golden_id, 0, "an event without a sequence number")
    return event.sequence


def _attribute_sort_key(name: str) -> tuple[int, str]:
    return (_ATTRIBUTE_ORDER.get(name, len(_ATTRIBUTE_ORDER)), name)


def _or_none(value: Any) -> Any:
    return None if is_empty_value(value) else value


def _present(attributes: Mapping[str, Any]) -> dict[str, Any]:
    return {name: value for name, value in attributes.items() if _or_none(value) is not None}


def _pin_to_json(pin: Pin) -> dict[str, Any]:
    return {
        "value": pin.value,
        "pinned_by": pin.pinned_by,
        "reason": pin.reason,
        "pinned_at": pin.pinned_at.isoformat(),
    }


def _pin_from_json(attribute: str, raw: Mapping[str, Any]) -> Pin:
    return Pin(
        attribute=attribute,
        value=raw.get("value"),
        pinned_by=str(raw["pinned_by"]),
        reason=str(raw["reason"]),
        pinned_at=datetime.fromisoformat(str(raw["pinned_at"])),
    )
