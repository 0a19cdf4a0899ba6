"""The canonical customer model and the frozen values the hub's pure decisions work on.

A *party* is an organisation or a person. Source mappings (cdc/) turn a source row into a
``CanonicalParty``; the matcher standardizes it into match features; survivorship picks, per
attribute, which linked source record supplies the golden value. Multi-valued attributes are
real lists. Everything here is I/O-free and JSON-serialisable through ``to_attributes``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

PartyKind = Literal["organization", "person"]

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_COUNTRY = re.compile(r"^[A-Z]{2}$")


class PostalAddress(BaseModel):
    """A postal address; ``country`` is ISO 3166-1 alpha-2."""

    model_config = ConfigDict(frozen=True, extra="forbid", str_strip_whitespace=True)

    lines: tuple[str, ...] = ()
    city: str | None = None
    region: str | None = None
    postal_code: str | None = None
    country: str | None = None

    @field_validator("country")
    @classmethod
    def _iso_country(cls, value: str | None) -> str | None:
        if value is None or value == "":
            return None
        upper = value.upper()
        if not _COUNTRY.match(upper):
            raise ValueError(f"expected an ISO 3166-1 alpha-2 country code, got {value!r}")
        return upper


class CanonicalParty(BaseModel):
    """One source record in the canonical model, as a source mapping produced it.

    Validation is strict where a wrong value would poison a golden record (a date that cannot
    exist, an e-mail without a domain); a record that fails it is kept with its errors for a
    steward rather than dropped.
    """

    model_config = ConfigDict(frozen=True, extra="forbid", str_strip_whitespace=True)

    kind: PartyKind = "organization"
    legal_name: str | None = None
    given_name: str | None = None
    middle_name: str | None = None
    family_name: str | None = None
    emails: tuple[str, ...] = ()
    phones: tuple[str, ...] = ()
    addresses: tuple[PostalAddress, ...] = ()
    tax_id: str | None = None
    national_id: str | None = None
    date_of_birth: date | None = None
    website: str | None = None
    # System-owned attributes: carried and survived, never used for matching.
    currency: str | None = None
    payment_terms: str | None = None
    credit_limit: Decimal | None = None
    legal_entity: str | None = None
    lifecycle_status: str | None = None
    extra: dict[str, str] = Field(default_factory=dict)

    @field_validator("emails")
    @classmethod
    def _emails(cls, values: tuple[str, ...]) -> tuple[str, ...]:
        cleaned = tuple(v.strip() for v in values if v and v.strip())
        for value in cleaned:
            if not _EMAIL.match(value):
                raise ValueError(f"not an e-mail address: {value!r}")
        return cleaned

    @field_validator("phones")
    @classmethod
    def _phones(cls, values: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(v.strip() for v in values if v and v.strip())

    @field_validator("currency")
    @classmethod
    def _currency(cls, value: str | None) -> str | None:
        if value is None or value == "":
            return None
        if not re.fullmatch(r"[A-Za-z]{3}", value):
            raise ValueError(f"expected an ISO 4217 currency code, got {value!r}")
        return value.upper()

    def to_attributes(self) -> dict[str, Any]:
        """The JSON form stored in source records and golden records (None and empty dropped)."""
        raw = self.model_dump(mode="json", exclude_none=True)
        return {key: value for key, value in raw.items() if value not in ((), [], {}, "")}


def is_empty_value(value: Any) -> bool:
    """None, a blank string or an empty collection: an attribute value that is not there."""
    if value is None:
        return True
    if isinstance(value, str):
        return not value.strip()
    if isinstance(value, list | tuple | dict | set | frozenset):
        return not value
    return False


# Attributes that survivorship decides, in display order. Lists survive as whole lists.
GOLDEN_ATTRIBUTES: tuple[str, ...] = (
    "kind",
    "legal_name",
    "given_name",
    "middle_name",
    "family_name",
    "emails",
    "phones",
    "addresses",
    "tax_id",
    "national_id",
    "date_of_birth",
    "website",
    "currency",
    "payment_terms",
    "credit_limit",
    "legal_entity",
    "lifecycle_status",
)


class GoldenStatus(StrEnum):
    ACTIVE = "active"
    MERGED = "merged"
    RETIRED = "retired"


class DecidedBy(StrEnum):
    RULE = "rule"
    STEWARD = "steward"


@dataclass(frozen=True)
class SourceKey:
    """The identity of a source row: system, table and primary key (as text)."""

    system: str
    table: str
    pk: str

    def __str__(self) -> str:
        return f"{self.system}/{self.table}/{self.pk}"


@dataclass(frozen=True)
class SourcePosition:
    """Where a change came from in its source's log, and when the source committed it.

    A streamed change carries the LSN of its own WAL record (``lsn``) and the commit time of
    its transaction. A snapshot read (``snapshot``) carries the snapshot's LSN, shared by
    every row it read (the consistent point its data is as of), and the snapshot's start as
    its time, which is later than that point. ``supersedes`` orders two positions of one
    source row.
    """

    lsn: int | None
    tx_id: int | None
    committed_at: datetime
    """The source commit time (Debezium ``source.ts_ms``), timezone-aware UTC."""
    snapshot: bool = False
    """A row read by a snapshot rather than a change streamed from the log."""
    last_commit_lsn: int | None = field(default=None, compare=False)
    """A streamed change only, when the capture says: the LSN of the commit streamed just
    before this change's transaction (Debezium ``source.sequence[0]``). The change's own
    commit comes after it. A hint for ``supersedes``; not stored."""

    def sort_key(self) -> tuple[datetime, int, int]:
        """A total order for applying changes of different rows deterministically."""
        return (self.committed_at, self.lsn or 0, self.tx_id or 0)

    def supersedes(self, stored: SourcePosition) -> bool:
        """True when a change at this position is newer than one of the same source row at
        ``stored``; False for the same change delivered again.

        - Without an LSN on either side: commit time, then LSN, then txId.
        - Two streamed changes: LSN, then commit time, then txId. A later transaction that
          writes the row waits for the row lock of the earlier one, so its WAL records come
          after the earlier commit: per row, the event LSN grows with commit order.
        - A streamed change and a snapshot read: see ``streamed_after``.
        - Two snapshot reads: the later snapshot (larger LSN). Reads at the same LSN saw the
          same data, however each was dated, so neither supersedes the other.
        """
        if self.lsn is None or stored.lsn is None:
            return self.sort_key() > stored.sort_key()
        if self.snapshot and stored.snapshot:
            return self.lsn > stored.lsn
        if stored.snapshot:
            return self.streamed_after(stored)
        if self.snapshot:
            return not stored.streamed_after(self)
        return (self.lsn, self.committed_at, self.tx_id or 0) > (
            stored.lsn,
            stored.committed_at,
            stored.tx_id or 0,
        )

    def streamed_after(self, snapshot: SourcePosition) -> bool:
        """Whether this streamed change committed after ``snapshot`` took its data (so the
        snapshot's rows do not include it), as far as the positions can tell.

        The snapshot's LSN is its consistent point: a transaction whose commit is at or after
        it is not in the snapshot, and is streamed. So the change is after when its own
        record is at or after that LSN (it was written, hence committed, after), or when the
        commit streamed before its transaction is (its commit is later still). A transaction
        that wrote before the consistent point and committed after it fails both tests when
        it is the first to commit after it; then the commit time decides: after the
        snapshot's (dated) start is after. A change at none of these is taken to be in the
        snapshot already. Without the snapshot's LSN, only the times can tell.
        """
        if snapshot.lsn is not None:
            if self.lsn is not None and self.lsn >= snapshot.lsn:
                return True
            if self.last_commit_lsn is not None and self.last_commit_lsn >= snapshot.lsn:
                return True
        return self.committed_at > snapshot.committed_at


@dataclass(frozen=True)
class SourceSnapshot:
    """One linked source record as survivorship sees it."""

    source_record_id: int
    key: SourceKey
    attributes: Mapping[str, Any]
    position: SourcePosition
    deleted: bool = False
    """A deleted source row no longer speaks: survivorship ignores its values."""


@dataclass(frozen=True)
class Pin:
    """A steward's pinned value for one attribute; it beats every rule until unpinned."""

    attribute: str
    value: Any
    pinned_by: str
    reason: str
    pinned_at: datetime


@dataclass(frozen=True)
class AttributeLineage:
    """Why a golden attribute has its value: which source supplied it and which rule chose it."""

    attribute: str
    value: Any
    rule: str
    rule_set_version: str
    source_record_id: int | None
    source_key: SourceKey | None
    position: SourcePosition | None
    pinned: bool = False
    pin_reason: str | None = None
    pinned_by: str | None = None
    contributing_source_record_ids: tuple[int, ...] = ()
    """For a combined value (``union``): every source record that supplied an element, first
    one first (it is also ``source_record_id``). Empty when one source supplied the value."""


@dataclass(frozen=True)
class SurvivedRecord:
    """The output of survivorship: golden attributes plus a lineage entry for each."""

    attributes: Mapping[str, Any]
    lineage: Mapping[str, AttributeLineage] = field(default_factory=dict)


class ChangeOp(StrEnum):
    UPSERT = "upsert"
    DELETE = "delete"


@dataclass(frozen=True)
class SourceChange:
    """One change to one source row, as cdc/ hands it to the hub.

    ``attributes`` is the source mapping's output in the canonical shape, not yet validated:
    the hub validates it with ``CanonicalParty`` and keeps failures with their errors.
    ``raw`` is the row image as captured (the before-image for a delete, if any).
    ``unchanged`` names attributes whose source columns the capture did not send (PostgreSQL
    leaves unchanged TOASTed values out of the log): they are absent from ``attributes``, and
    the hub keeps the values it has stored for them, and the stored raw columns missing from
    ``raw``, instead of clearing them.
    """

    key: SourceKey
    op: ChangeOp
    attributes: Mapping[str, Any]
    raw: Mapping[str, Any] | None
    position: SourcePosition
    unchanged: frozenset[str] = frozenset()


@dataclass(frozen=True)
class SnapshotEnd:
    """A completed snapshot of one source table, as cdc/ tells the hub when its last read
    arrives: every row the table had at the snapshot's consistent point was read.

    A stored, live row of that table whose position is older than the snapshot (``lsn`` below
    the snapshot's) was not in the table any more: it was deleted while nothing captured (a
    crash before the previous snapshot completed, a reset of the capture). The hub marks it
    deleted at ``position`` in the batch that carries this end. Only a capture that delivers
    one source's snapshot whole and in order (the embedded engine) may say so.
    """

    system: str
    table: str
    position: SourcePosition
    """The snapshot's position (its LSN and start), given to the deletions."""
    max_absent_fraction: float = 1.0
    """The largest share of the table's live rows the end may delete. Above it (and above
    ``ABSENT_FLOOR`` rows) nothing is deleted and the apply result names the table: a snapshot
    that read only part of a table, on purpose or by mistake, must not retire the rest."""


ABSENT_FLOOR = 10
"""So many rows absent from a snapshot are deleted whatever share of the table they are."""


@dataclass(frozen=True)
class BatchPosition:
    """How far a source has been applied: stored in the same transaction as the batch's effects.

    ``source`` names the capture (a Debezium connector name or ``kafka:<group>``),
    ``partition`` the ordered stream within it ("" for one Debezium connector, the Kafka
    topic-partition otherwise) and ``offset`` a number that only grows along that stream (the
    commit LSN for Debezium, the Kafka offset for Kafka).
    """

    source: str
    partition: str
    offset: int
