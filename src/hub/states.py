"""The rows the write paths hold in memory: plain objects, not ORM instances.

``apply_changes`` touches thousands of source records per batch; an ORM instance costs more to
build, track and flush than the work done with it. So the services that change source records
and golden records (``GoldenWork``, ``BatchApply``) hold them as ``SourceRecordState`` and
``GoldenState``: read with plain selects, changed as attributes, written back by
``repositories.write_source_records`` / ``write_golden_records`` in set-based statements
(new rows inserted, changed columns of the others updated) queued in a ``SqlBatch``. The ORM
table classes in ``hub.tables`` stay the schema and serve the readers.

Four JSONB columns of source records (``attributes``, ``raw``, ``features``,
``link_explanation``) arrive as JSON text and are decoded on first use: many rows are loaded
only to be locked or compared and never need them, and a column that was not assigned is not
written back (one that was is written, even with an equal value).
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any, Final

import orjson

# The source record columns a state compares with what was read, to write only what changed.
SOURCE_RECORD_TRACKED: Final = (
    "validation_errors",
    "lsn",
    "tx_id",
    "committed_at",
    "snapshot",
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
    """``value`` as JSON text for a JSONB column (compact; the database normalises it).

    orjson first (a tenth of the standard encoder's time, which was a tenth of the apply
    thread's); what it does not take (integers beyond 64 bits, keys that are not strings,
    strings with lone surrogates) goes through the standard encoder as before.
    """
    try:
        return orjson.dumps(value).decode()
    except TypeError:  # orjson.JSONEncodeError is one
        return _ENCODER.encode(value)


def _decoded(text: str | None) -> Any:
    return None if text is None else json.loads(text)


class SourceRecordState:
    """One ``source_records`` row (see ``hub.tables.SourceRecordRow`` for the columns)."""

    __slots__ = (
        "_read",
        "_replaced",
        "_texts",
        "_values",
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
        "snapshot",
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
    snapshot: bool
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
        snapshot: bool = False,
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
        """A row read from the database (``read``, JSON columns as their text), or a new one
        (empty attributes and features, no raw image, no explanation)."""
        self.id = id
        self.system = system
        self.source_table = source_table
        self.pk = pk
        self.validation_errors = validation_errors
        self.lsn = lsn
        self.tx_id = tx_id
        self.committed_at = committed_at
        self.snapshot = snapshot
        self.deleted = deleted
        self.golden_id = golden_id
        self.link_score = link_score
        self.link_decided_by = link_decided_by
        self.link_decided_at = link_decided_at
        self.matcher_version = matcher_version
        self.created_at = created_at
        self.updated_at = updated_at
        # The JSON text of each lazy column (None: SQL NULL, or not encoded yet) and, once
        # decoded or assigned, its value.
        self._texts: dict[str, str | None] = {
            "attributes": attributes_text,
            "raw": raw_text,
            "features": features_text,
            "link_explanation": explanation_text,
        }
        self._values: dict[str, Any] = {}
        if not read:
            self._values = {"attributes": {}, "raw": None, "features": {}, "link_explanation": None}
        # New rows write every column; read ones the columns that differ from ``_read`` and
        # the lazy columns that were assigned.
        self._replaced: set[str] = set()
        self._read: tuple[Any, ...] | None = self.tracked() if read else None

    def _get(self, column: str) -> Any:
        values = self._values
        if column not in values:
            text = self._texts[column]
            values[column] = None if text is None else json.loads(text)
        return values[column]

    def assign(self, column: str, value: Any, text: str | None = None) -> None:
        """Set a JSON column; ``text``, when given, is ``value`` already encoded."""
        self._values[column] = value
        self._texts[column] = text
        self._replaced.add(column)

    @property
    def attributes(self) -> dict[str, Any]:
        value: dict[str, Any] = self._get("attributes")
        return value

    @attributes.setter
    def attributes(self, value: dict[str, Any]) -> None:
        self.assign("attributes", value)

    @property
    def raw(self) -> dict[str, Any] | None:
        value: dict[str, Any] | None = self._get("raw")
        return value

    @raw.setter
    def raw(self, value: dict[str, Any] | None) -> None:
        self.assign("raw", value)

    @property
    def features(self) -> dict[str, Any]:
        value: dict[str, Any] = self._get("features")
        return value

    @features.setter
    def features(self, value: dict[str, Any]) -> None:
        self.assign("features", value)

    @property
    def link_explanation(self) -> dict[str, Any] | None:
        value: dict[str, Any] | None = self._get("link_explanation")
        return value

    @link_explanation.setter
    def link_explanation(self, value: dict[str, Any] | None) -> None:
        self.assign("link_explanation", value)

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
            self.snapshot,
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
        """A JSON column as the text to write (None: SQL NULL); encoded at most once."""
        if column == "validation_errors":
            errors = self.validation_errors
            return None if errors is None else to_json(errors)
        text = self._texts[column]
        if text is None:
            value = self._get(column)
            if value is not None:
                text = to_json(value)
                self._texts[column] = text
        return text

    def mark_written(self) -> None:
        """What is in memory is now what is stored."""
        self._read = self.tracked()
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
