"""The rows the write paths hold in memory: plain objects, not ORM instances.

``apply_changes`` touches thousands of source records per batch; an ORM instance costs more to
build, track and flush than the work done with it. So the services that change source records
and golden records (``GoldenWork``, ``BatchApply``) hold them as ``SourceRecordState`` and
``GoldenState``: read with plain selects, changed as attributes, written back by
``repositories.write_source_records`` / ``write_golden_records`` in set-based statements
(new rows inserted, changed columns of the others updated). The ORM table classes in
``hub.tables`` stay the schema and serve the readers.

Four JSONB columns of source records (``attributes``, ``raw``, ``features``,
``link_explanation``) arrive as JSON text and are decoded on first use: many rows are loaded
only to be locked or compared and never need them, and a column that was not assigned is not
written back (one that was is written, even with an equal value).
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any, Final

_UNREAD: Final[Any] = object()
"""Marks a lazily decoded JSON column whose text has not been decoded yet."""

# The source record columns a state compares with what was read, to write only what changed.
SOURCE_RECORD_TRACKED: Final = (
    "validation_errors",
    "lsn",
    "tx_id",
    "committed_at",
    "deleted",
    "golden_id",
    "link_score",
    "link_decided_by",
    "link_decided_at",
    "matcher_version",
    "updated_at",
)
SOURCE_RECORD_LAZY: Final = ("attributes", "raw", "features", "link_explanation")


_ENCODER = json.JSONEncoder(separators=(",", ":"))


def to_json(value: Any) -> str:
    """``value`` as JSON text for a JSONB column (compact; the database normalises it)."""
    return _ENCODER.encode(value)


def _decoded(text: str | None) -> Any:
    return None if text is None else json.loads(text)


class SourceRecordState:
    """One ``source_records`` row (see ``hub.tables.SourceRecordRow`` for the columns)."""

    __slots__ = (
        "_attributes",
        "_attributes_text",
        "_explanation",
        "_explanation_text",
        "_features",
        "_features_text",
        "_raw",
        "_raw_text",
        "_read",
        "_replaced",
        "committed_at",
        "created_at",
        "deleted",
        "golden_id",
        "id",
        "link_decided_at",
        "link_decided_by",
        "link_score",
        "lsn",
        "matcher_version",
        "pk",
        "source_table",
        "system",
        "tx_id",
        "updated_at",
        "validation_errors",
    )

    id: int
    system: str
    source_table: str
    pk: str | None
    validation_errors: list[dict[str, Any]] | None
    lsn: int | None
    tx_id: int | None
    committed_at: datetime
    deleted: bool
    golden_id: int | None
    link_score: float | None
    link_decided_by: str | None
    link_decided_at: datetime | None
    matcher_version: str | None
    created_at: datetime
    updated_at: datetime

    def __init__(
        self,
        *,
        id: int,
        system: str,
        source_table: str,
        pk: str | None,
        committed_at: datetime,
        created_at: datetime,
        updated_at: datetime,
        lsn: int | None = None,
        tx_id: int | None = None,
        deleted: bool = False,
        validation_errors: list[dict[str, Any]] | None = None,
        golden_id: int | None = None,
        link_score: float | None = None,
        link_decided_by: str | None = None,
        link_decided_at: datetime | None = None,
        matcher_version: str | None = None,
        attributes_text: str | None = None,
        raw_text: str | None = None,
        features_text: str | None = None,
        explanation_text: str | None = None,
        read: bool = False,
    ) -> None:
        """A row: read from the database (``read``, JSON columns as text), or new."""
        self.id = id
        self.system = system
        self.source_table = source_table
        self.pk = pk
        self.validation_errors = validation_errors
        self.lsn = lsn
        self.tx_id = tx_id
        self.committed_at = committed_at
        self.deleted = deleted
        self.golden_id = golden_id
        self.link_score = link_score
        self.link_decided_by = link_decided_by
        self.link_decided_at = link_decided_at
        self.matcher_version = matcher_version
        self.created_at = created_at
        self.updated_at = updated_at
        self._attributes_text = attributes_text
        self._raw_text = raw_text
        self._features_text = features_text
        self._explanation_text = explanation_text
        self._attributes: Any = _UNREAD
        self._raw: Any = _UNREAD
        self._features: Any = _UNREAD
        self._explanation: Any = _UNREAD
        # New rows write every column; read ones the columns that differ from ``_read``.
        self._replaced: set[str] = set()
        self._read: tuple[Any, ...] | None = self.tracked() if read else None
        if not read:
            self._attributes = {} if attributes_text is None else json.loads(attributes_text)
            self._raw = None if raw_text is None else json.loads(raw_text)
            self._features = {} if features_text is None else json.loads(features_text)
            self._explanation = None if explanation_text is None else json.loads(explanation_text)

    # --- the lazily decoded columns ------------------------------------------------------

    @property
    def attributes(self) -> dict[str, Any]:
        if self._attributes is _UNREAD:
            self._attributes = _decoded(self._attributes_text)
        value: dict[str, Any] = self._attributes
        return value

    @attributes.setter
    def attributes(self, value: dict[str, Any]) -> None:
        self._attributes = value
        self._replaced.add("attributes")

    @property
    def raw(self) -> dict[str, Any] | None:
        if self._raw is _UNREAD:
            self._raw = _decoded(self._raw_text)
        value: dict[str, Any] | None = self._raw
        return value

    @raw.setter
    def raw(self, value: dict[str, Any] | None) -> None:
        self._raw = value
        self._replaced.add("raw")

    @property
    def features(self) -> dict[str, Any]:
        if self._features is _UNREAD:
            self._features = _decoded(self._features_text)
        value: dict[str, Any] = self._features
        return value

    @features.setter
    def features(self, value: dict[str, Any]) -> None:
        self._features = value
        self._replaced.add("features")

    @property
    def features_text(self) -> str | None:
        """The stored JSON text of ``features`` while they are the stored ones, else None."""
        return None if "features" in self._replaced else self._features_text

    @property
    def link_explanation(self) -> dict[str, Any] | None:
        if self._explanation is _UNREAD:
            self._explanation = _decoded(self._explanation_text)
        value: dict[str, Any] | None = self._explanation
        return value

    @link_explanation.setter
    def link_explanation(self, value: dict[str, Any] | None) -> None:
        self._explanation = value
        self._replaced.add("link_explanation")

    # --- what to write -------------------------------------------------------------------

    @property
    def is_new(self) -> bool:
        return self._read is None

    def tracked(self) -> tuple[Any, ...]:
        return (
            self.validation_errors,
            self.lsn,
            self.tx_id,
            self.committed_at,
            self.deleted,
            self.golden_id,
            self.link_score,
            self.link_decided_by,
            self.link_decided_at,
            self.matcher_version,
            self.updated_at,
        )

    def changed_columns(self) -> list[str]:
        """The columns to write: all of a new row; of a read one, those that differ."""
        if self._read is None:
            return [*SOURCE_RECORD_TRACKED, *SOURCE_RECORD_LAZY]
        now = self.tracked()
        changed = [
            name
            for name, before, after in zip(SOURCE_RECORD_TRACKED, self._read, now, strict=True)
            if before is not after and before != after
        ]
        changed.extend(name for name in SOURCE_RECORD_LAZY if name in self._replaced)
        return changed

    def json_text(self, column: str) -> str | None:
        """A JSON column as text to write (None: SQL NULL)."""
        if column == "raw":
            return None if self.raw is None else to_json(self.raw)
        if column == "features":
            return to_json(self.features)
        if column == "link_explanation":
            explanation = self.link_explanation
            return None if explanation is None else to_json(explanation)
        if column == "attributes":
            return to_json(self.attributes)
        if column == "validation_errors":
            return None if self.validation_errors is None else to_json(self.validation_errors)
        raise KeyError(column)

    def mark_written(self) -> None:
        """What is in memory is now what is stored."""
        self._read = self.tracked()
        if "features" in self._replaced:
            self._features_text = None  # replaced: the stored text is not at hand any more
        self._replaced.clear()


class GoldenState:
    """One ``golden_records`` row (see ``hub.tables.GoldenRecordRow`` for the columns)."""

    __slots__ = (
        "_read",
        "attributes",
        "created_at",
        "id",
        "merged_into",
        "status",
        "updated_at",
        "version",
    )

    def __init__(
        self,
        *,
        id: int,
        attributes: dict[str, Any],
        version: int,
        status: str,
        merged_into: int | None,
        created_at: datetime,
        updated_at: datetime,
        read: bool = False,
    ) -> None:
        self.id = id
        self.attributes = attributes
        self.version = version
        self.status = status
        self.merged_into = merged_into
        self.created_at = created_at
        self.updated_at = updated_at
        self._read: tuple[Any, ...] | None = self._tracked() if read else None

    @property
    def is_new(self) -> bool:
        return self._read is None

    def _tracked(self) -> tuple[Any, ...]:
        return (self.attributes, self.version, self.status, self.merged_into, self.updated_at)

    def changed(self) -> bool:
        """True when the row is new or differs from what was read."""
        return self._read is None or self._read != self._tracked()

    def mark_written(self) -> None:
        self._read = self._tracked()
