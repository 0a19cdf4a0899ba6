"""Hub test kit: a deterministic matcher (pure code implementing ``hub.matcher.Matcher``),
change builders and a full dump of what the store shows.

The matcher's rules, chosen so a test can say exactly which pairs match:

- same e-mail address (case-insensitive) or same tax id (alphanumerics): ``match``;
- only the same normalised name: ``review``;
- two different tax ids or two different birth dates: ``hard_conflict`` (never automatic);
- anything else: ``no_match``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from hub.matcher import Decision
from hub.model import ChangeOp, SourceChange, SourceKey, SourcePosition
from hub.rules import default_rules
from hub.services import HubServices
from hub.tables import HUB_TABLES

_LEGAL_SUFFIXES = {"inc", "llc", "ltd", "gmbh", "corp", "co", "sa", "ag", "plc"}


def _name(attributes: Mapping[str, Any]) -> str | None:
    raw = attributes.get("legal_name") or " ".join(
        str(attributes[part]) for part in ("given_name", "family_name") if attributes.get(part)
    )
    words = [w for w in re.sub(r"[^a-z0-9 ]", " ", str(raw).lower()).split() if w]
    words = [w for w in words if w not in _LEGAL_SUFFIXES]
    return " ".join(words) or None


@dataclass(frozen=True)
class ExactScore:
    probability: float
    weight: float
    decision: Decision
    hard_conflict: bool
    agreements: tuple[str, ...] = ()
    conflicts: tuple[str, ...] = ()
    extra: dict[str, Any] = field(default_factory=dict)

    def explain(self) -> dict[str, Any]:
        return {
            "decision": self.decision,
            "probability": self.probability,
            "agreements": list(self.agreements),
            "conflicts": list(self.conflicts),
        }


class ExactMatcher:
    """Exact e-mail / tax id / normalised-name matching with explanations."""

    version = "exact-test-1"

    def standardize(self, attributes: Mapping[str, Any]) -> dict[str, Any]:
        tax = attributes.get("tax_id")
        return {
            "emails": sorted({str(e).strip().lower() for e in attributes.get("emails", ())}),
            "tax_id": re.sub(r"[^A-Za-z0-9]", "", str(tax)).upper() if tax else None,
            "name": _name(attributes),
            "date_of_birth": attributes.get("date_of_birth"),
        }

    def blocking_keys(self, features: Mapping[str, Any]) -> list[str]:
        keys = [f"email:{email}" for email in features.get("emails", ())]
        if features.get("tax_id"):
            keys.append(f"tax:{features['tax_id']}")
        if features.get("name"):
            keys.append(f"name:{features['name']}")
        return keys

    def score(self, left: Mapping[str, Any], right: Mapping[str, Any]) -> ExactScore:
        agreements: list[str] = []
        conflicts: list[str] = []
        if set(left.get("emails", ())) & set(right.get("emails", ())):
            agreements.append("email")
        for name in ("tax_id", "date_of_birth"):
            a, b = left.get(name), right.get(name)
            if a and b:
                (agreements if a == b else conflicts).append(name)
        if left.get("name") and left.get("name") == right.get("name"):
            agreements.append("name")
        hard = bool(conflicts)
        if "email" in agreements or "tax_id" in agreements:
            return ExactScore(0.99, 10.0, "match", hard, tuple(agreements), tuple(conflicts))
        if "name" in agreements:
            return ExactScore(0.6, 1.0, "review", hard, tuple(agreements), tuple(conflicts))
        return ExactScore(0.01, -5.0, "no_match", hard, tuple(agreements), tuple(conflicts))


# --- building changes ----------------------------------------------------------------------

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def at(seconds: float) -> datetime:
    """A source commit time ``seconds`` after T0."""
    return T0 + timedelta(seconds=seconds)


def key(system: str, pk: str, table: str = "customers") -> SourceKey:
    return SourceKey(system, table, pk)


def upsert(
    system: str,
    pk: str,
    seconds: float,
    *,
    lsn: int | None = None,
    table: str = "customers",
    **attributes: Any,
) -> SourceChange:
    """An upsert committed ``seconds`` after T0 (LSN defaults to a number that grows with it)."""
    return SourceChange(
        key=SourceKey(system, table, pk),
        op=ChangeOp.UPSERT,
        attributes=attributes,
        raw={"id": pk, **{k: str(v) for k, v in attributes.items()}},
        position=SourcePosition(
            lsn=int(seconds * 1000) if lsn is None else lsn, tx_id=None, committed_at=at(seconds)
        ),
    )


def delete(system: str, pk: str, seconds: float, *, table: str = "customers") -> SourceChange:
    return SourceChange(
        key=SourceKey(system, table, pk),
        op=ChangeOp.DELETE,
        attributes={},
        raw=None,
        position=SourcePosition(lsn=int(seconds * 1000), tx_id=None, committed_at=at(seconds)),
    )


def make_hub(engine: Engine, *, targets: tuple[str, ...] = ("crm", "billing")) -> HubServices:
    return HubServices(engine, matcher=ExactMatcher(), rules=default_rules(), targets=targets)


def store_state(engine: Engine) -> dict[str, Any]:
    """Everything a reader can see of golden records, links, lineage, pins and constraints."""
    with engine.connect() as conn:

        def rows(sql: str) -> list[tuple[Any, ...]]:
            return [tuple(r) for r in conn.execute(sa.text(sql))]

        return {
            "golden": rows(
                "SELECT id, status, merged_into, attributes::text FROM golden_records ORDER BY id"
            ),
            "links": rows(
                "SELECT system, source_table, pk, golden_id, deleted, link_decided_by,"
                " validation_errors IS NOT NULL FROM source_records"
                " ORDER BY system, source_table, pk"
            ),
            "lineage": rows(
                "SELECT l.golden_id, l.attribute, l.value::text, s.system, s.pk, l.rule,"
                " l.committed_at, l.pinned FROM attribute_lineage l"
                " LEFT JOIN source_records s ON s.id = l.source_record_id"
                " ORDER BY l.golden_id, l.attribute"
            ),
            "pins": rows("SELECT golden_id, attribute, value::text FROM golden_pins ORDER BY 1, 2"),
            "blocking_keys": rows(
                "SELECT s.system, s.pk, b.key FROM blocking_keys b"
                " JOIN source_records s ON s.id = b.source_record_id ORDER BY 1, 2, 3"
            ),
        }


def count(engine: Engine, sql: str) -> int:
    with engine.connect() as conn:
        return int(conn.execute(sa.text(sql)).scalar_one())


def truncate_hub(engine: Engine) -> None:
    """Empty every hub table and restart the id sequences (golden ids start at 1 again)."""
    with engine.begin() as conn:
        conn.execute(sa.text(f"TRUNCATE {', '.join(HUB_TABLES)} RESTART IDENTITY CASCADE"))
