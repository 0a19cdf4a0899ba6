"""Fuzzy search for golden records by name, e-mail, phone or tax id, through the matcher.

The query is turned into a partial canonical record, standardized and blocked by the same
matcher that links source records, looked up in the ``blocking_keys`` table and scored against
each candidate; hits are golden records ranked by their best-scoring source record.

A name alone is not a whole blocking key (name keys pair the name with a country, a postcode
or a given name). For those the search fills the missing part with a placeholder, asks the
matcher for keys again, and turns each key that ends in the placeholder's part into a prefix
(``nm:AKM|``): blocking keys are ``<rule>:<part>|<part>...`` strings, and the hub looks the
prefix up as a range, which the ``blocking_keys`` primary key serves in the C collation.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, col, select

from hub import repositories as repo
from hub.matcher import Matcher
from hub.records import GoldenRecord
from hub.services import reads
from hub.tables import BlockingKeyRow, SourceRecordRow

MAX_CANDIDATES_PER_KEY = 500
MAX_CANDIDATES = 5_000

# Two different placeholders for the parts a query lacks (see ``_keys``).
_PLACEHOLDERS = (
    ({"country": "AQ", "postal_code": "99999"}, "Qzxqzx"),
    ({"country": "BV", "postal_code": "88888"}, "Wvjwvj"),
)


@dataclass(frozen=True)
class SearchQuery:
    name: str | None = None
    email: str | None = None
    phone: str | None = None
    tax_id: str | None = None
    country: str | None = None
    """ISO 3166-1 alpha-2: narrows name look-ups and reads national phone numbers."""
    limit: int = 10

    @property
    def empty(self) -> bool:
        return not any((self.name, self.email, self.phone, self.tax_id))


@dataclass(frozen=True)
class SearchHit:
    golden: GoldenRecord
    probability: float
    weight: float
    source_record_id: int
    """The golden record's source record that scored best against the query."""
    explanation: Mapping[str, Any]


def query_variants(query: SearchQuery) -> list[dict[str, Any]]:
    """Partial canonical records to standardize: the name read as an organisation and, when it
    has two words or more, as a person (given names first, family name last)."""
    base: dict[str, Any] = {}
    if query.email:
        base["emails"] = [query.email.strip()]
    if query.phone:
        base["phones"] = [query.phone.strip()]
    if query.tax_id:
        base["tax_id"] = query.tax_id.strip()
    if query.country:
        base["addresses"] = [{"country": query.country.upper()}]
    if not query.name or not query.name.strip():
        return [base]
    name = " ".join(query.name.split())
    variants = [{**base, "kind": "organization", "legal_name": name}]
    words = name.split(" ")
    if len(words) >= 2:
        given, family = " ".join(words[:-1]), words[-1]
        variants.append({**base, "kind": "person", "given_name": given, "family_name": family})
    else:
        variants.append({**base, "kind": "person", "family_name": name})
    return variants


def _padded(attributes: Mapping[str, Any], which: int) -> dict[str, Any]:
    address, given = _PLACEHOLDERS[which]
    padded = dict(attributes)
    if "addresses" not in padded:
        padded["addresses"] = [address]
    if padded.get("kind") == "person" and "given_name" not in padded:
        padded["given_name"] = given
    return padded


def _keys(matcher: Matcher, attributes: Mapping[str, Any]) -> tuple[set[str], set[str]]:
    """(exact keys, key prefixes) of one partial record.

    The record is padded twice, with different placeholders. A key that only padding gives,
    whose head (everything before its last ``|``) is the same under both paddings while its
    last part differs, has only that last part from a placeholder: its head is a prefix of the
    keys of every stored record that shares the query's parts.
    """
    exact = set(matcher.blocking_keys(matcher.standardize(attributes)))
    heads: list[dict[str, str]] = []
    for which in range(len(_PLACEHOLDERS)):
        padded = _padded(attributes, which)
        keys = set(matcher.blocking_keys(matcher.standardize(padded))) - exact
        by_head: dict[str, str] = {}
        for key in keys:
            head, sep, tail = key.rpartition("|")
            if sep and head:
                by_head[head] = tail
        heads.append(by_head)
    first, second = heads
    prefixes = {
        head + "|" for head, tail in first.items() if head in second and second[head] != tail
    }
    return exact, prefixes


def _candidate_ids(session: Session, exact: set[str], prefixes: set[str]) -> list[int]:
    found: set[int] = set()
    if exact:
        found.update(record_id for _, record_id in repo.blocking_pairs(session, sorted(exact)))
    key_c = sa.collate(col(BlockingKeyRow.key), "C")
    for prefix in sorted(prefixes):
        upper = prefix[:-1] + chr(ord(prefix[-1]) + 1)
        statement = (
            select(BlockingKeyRow.source_record_id)
            .where(key_c >= prefix, key_c < upper)
            .limit(MAX_CANDIDATES_PER_KEY)
        )
        found.update(session.exec(statement))
        if len(found) >= MAX_CANDIDATES:
            break
    return sorted(found)[:MAX_CANDIDATES]


def search_golden(session: Session, matcher: Matcher, query: SearchQuery) -> list[SearchHit]:
    """Golden records that the query's records would be compared with, best first."""
    if query.empty:
        return []
    variants = [(v, matcher.standardize(v)) for v in query_variants(query)]
    exact: set[str] = set()
    prefixes: set[str] = set()
    for attributes, _ in variants:
        e, p = _keys(matcher, attributes)
        exact |= e
        prefixes |= p
    candidates = repo.source_records(session, _candidate_ids(session, exact, prefixes))
    best: dict[int, tuple[float, float, int, Mapping[str, Any]]] = {}
    for record in candidates.values():
        if record.golden_id is None or record.deleted:
            continue
        for _, features in variants:
            scored = matcher.score(features, record.features)
            current = best.get(record.golden_id)
            if current is None or (scored.weight, -record.id) > (current[1], -current[2]):
                best[record.golden_id] = (
                    scored.probability,
                    scored.weight,
                    record.id,
                    scored.explain(),
                )
    ranked = sorted(best.items(), key=lambda item: (-item[1][1], item[0]))[: query.limit]
    hits: list[SearchHit] = []
    for golden_id, (probability, weight, record_id, explanation) in ranked:
        golden = reads.find_golden(session, golden_id)
        if golden is None:
            continue
        hits.append(SearchHit(golden, probability, weight, record_id, explanation))
    return hits


def linked_record_count(session: Session) -> int:
    """How many source records are linked (what a search can reach)."""
    return int(
        session.execute(
            sa.select(sa.func.count())
            .select_from(SourceRecordRow)
            .where(col(SourceRecordRow.golden_id).is_not(None))
        ).scalar_one()
    )
