"""Survivorship: from the source records linked to a golden record (+ pins) to its attributes.

``survive`` is pure and deterministic: the same sources, rules and pins give the same golden
attributes and lineage whatever order the sources arrive in, and whenever they are processed.
Recency is the *source commit time*, never processing time, so reprocessing a change log cannot
change a winner.

How one attribute is decided:

1. A steward pin wins outright.
2. Otherwise the attribute's rule chain narrows the candidates (see ``hub.rules``); the walk
   stops when the remaining candidates agree on one value, or ``union`` combines them.
3. Candidates the chain cannot separate are ranked by the tie-break: latest commit time, then
   highest LSN, then source key (``system/table/pk``) in ascending order; a present value beats
   an empty one. The lineage then names the rule ``tie_break``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from hub.model import (
    GOLDEN_ATTRIBUTES,
    AttributeLineage,
    Pin,
    SourceSnapshot,
    SurvivedRecord,
    is_empty_value,
)
from hub.rules import RuleKind, SourceRef, SurvivorshipRules

STEWARD_PIN = "steward_pin"
"""The rule name recorded in lineage for a pinned attribute."""

TIE_BREAK = "tie_break"
"""The rule name recorded when the chain could not separate candidates with different values."""


@dataclass(frozen=True, slots=True)
class _Step:
    """One rule of a chain as ``survive`` reads it: the rule models' derived attributes
    (name, the chain per attribute) cost more to read on every call than deciding."""

    kind: RuleKind
    systems: tuple[SourceRef, ...]
    allow_empty: bool
    name: str


@lru_cache(maxsize=32)
def _plan(rules: SurvivorshipRules) -> tuple[str, tuple[tuple[tuple[_Step, ...], bool], ...]]:
    """The rule set's version and, per golden attribute in ``GOLDEN_ATTRIBUTES`` order, its
    chain and whether any of its rules takes empty values."""
    chains = []
    for attribute in GOLDEN_ATTRIBUTES:
        steps = tuple(
            _Step(rule.kind, rule.systems, rule.allow_empty, rule.name)
            for rule in rules.chain_for(attribute)
        )
        chains.append((steps, any(step.allow_empty for step in steps)))
    return rules.version, tuple(chains)


@dataclass(slots=True)  # not frozen: built 17 times per source per call, and private
class _Candidate:
    rank: int
    """Position in the tie-break order; 0 is the best."""
    source: SourceSnapshot
    value: Any
    present: bool


def survive(
    sources: Sequence[SourceSnapshot],
    rules: SurvivorshipRules,
    pins: Mapping[str, Pin],
) -> SurvivedRecord:
    """Choose every golden attribute from the linked source records.

    Args:
        sources: the source records linked to the golden record, in any order. Deleted ones
            are ignored.
        rules: the rule set; its ``version`` is written into every lineage entry.
        pins: steward pins by attribute. A pin on an attribute that is not a golden attribute
            is ignored (an attribute dropped from the model must not break old records).

    Returns:
        The golden attributes (empty values left out, like ``CanonicalParty.to_attributes``)
        and a lineage entry for every attribute that has a value, or that a pin or an
        ``allow_empty`` rule deliberately left empty.
    """
    ranked = _rank(sources)
    version, chains = _plan(rules)
    attributes: dict[str, Any] = {}
    lineage: dict[str, AttributeLineage] = {}
    for attribute, (chain, takes_empty) in zip(GOLDEN_ATTRIBUTES, chains, strict=True):
        pin = pins.get(attribute)
        if pin is not None:
            entry = AttributeLineage(
                attribute=attribute,
                value=pin.value,
                rule=STEWARD_PIN,
                rule_set_version=version,
                source_record_id=None,
                source_key=None,
                position=None,
                pinned=True,
                pin_reason=pin.reason,
                pinned_by=pin.pinned_by,
            )
        else:
            values = [source.attributes.get(attribute) for source in ranked]
            present = [not is_empty_value(value) for value in values]
            if not takes_empty and not any(present):
                continue  # no source has it and no rule keeps an empty value: no lineage
            candidates = [
                _Candidate(rank, source, value, is_present)
                for rank, (source, value, is_present) in enumerate(
                    zip(ranked, values, present, strict=True)
                )
            ]
            found = _decide(attribute, candidates, chain, version)
            if found is None:
                continue
            entry = found
        lineage[attribute] = entry
        if not is_empty_value(entry.value):
            attributes[attribute] = entry.value
    return SurvivedRecord(attributes=attributes, lineage=lineage)


def _rank(sources: Sequence[SourceSnapshot]) -> list[SourceSnapshot]:
    """Live sources in tie-break order: latest commit, highest LSN, then key, then record id."""
    live = [source for source in sources if not source.deleted]
    live.sort(key=lambda s: (str(s.key), s.source_record_id))
    live.sort(
        key=lambda s: (s.position.committed_at, -1 if s.position.lsn is None else s.position.lsn),
        reverse=True,
    )
    return live


def _decide(
    attribute: str, candidates: list[_Candidate], chain: Sequence[_Step], version: str
) -> AttributeLineage | None:
    current = candidates
    decided_by: _Step | None = None
    for rule in chain:
        eligible = current if rule.allow_empty else [c for c in current if c.present]
        if not eligible:
            continue
        if rule.kind is RuleKind.UNION:
            return _union(attribute, eligible, rule, version)
        narrowed = _narrow(rule, eligible)
        if not narrowed:
            continue
        current, decided_by = narrowed, rule
        if _agree(current):
            break

    if decided_by is None:
        current = [c for c in current if c.present]
        if not current:
            return None
    rule_name = decided_by.name if decided_by is not None and _agree(current) else TIE_BREAK
    # ``current`` keeps rank order; a present value beats an empty one left by allow_empty.
    winner = next((c for c in current if c.present), current[0])
    return AttributeLineage(
        attribute=attribute,
        value=winner.value if winner.present else None,
        rule=rule_name,
        rule_set_version=version,
        source_record_id=winner.source.source_record_id,
        source_key=winner.source.key,
        position=winner.source.position,
    )


def _narrow(rule: _Step, eligible: list[_Candidate]) -> list[_Candidate]:
    """The candidates ``rule`` prefers, in rank order; empty when the rule cannot apply."""
    kind = rule.kind
    if kind is RuleKind.SOURCE_PRIORITY:
        for ref in rule.systems:
            preferred = [c for c in eligible if ref.matches(c.source.key)]
            if preferred:
                return preferred
        return []
    if kind is RuleKind.MOST_RECENT:
        latest = max(c.source.position.committed_at for c in eligible)
        return [c for c in eligible if c.source.position.committed_at == latest]
    if kind is RuleKind.MOST_COMPLETE:
        scores = [completeness(c.value) for c in eligible]
        best = max(scores)
        return [c for c, score in zip(eligible, scores, strict=True) if score == best]
    if kind is RuleKind.MOST_FREQUENT:
        keys = [agreement_key(c.value) for c in eligible]
        counts: dict[Any, int] = {}
        for key in keys:
            counts[key] = counts.get(key, 0) + 1
        best = max(counts.values())
        return [c for c, key in zip(eligible, keys, strict=True) if counts[key] == best]
    raise AssertionError(f"unhandled rule kind {kind}")  # pragma: no cover - union is terminal


def _union(
    attribute: str, eligible: list[_Candidate], rule: _Step, version: str
) -> AttributeLineage | None:
    """The de-duplicated union of the candidates' lists.

    Order: sources of ``rule.systems`` first, in that order, then the rest; within that, the
    tie-break rank (most recent first); within one source, its own order. The first spelling of
    a duplicate is kept.
    """

    def precedence(candidate: _Candidate) -> tuple[int, int]:
        for index, ref in enumerate(rule.systems):
            if ref.matches(candidate.source.key):
                return (index, candidate.rank)
        return (len(rule.systems), candidate.rank)

    ordered = sorted((c for c in eligible if c.present), key=precedence)
    if not ordered:
        return None  # only empty lists: nothing to combine, and nothing to record
    seen: set[Any] = set()
    combined: list[Any] = []
    contributors: list[int] = []
    for candidate in ordered:
        items = candidate.value if isinstance(candidate.value, list | tuple) else [candidate.value]
        contributed = False
        for item in items:
            if is_empty_value(item):
                continue
            key = agreement_key(item)
            if key in seen:
                continue
            seen.add(key)
            combined.append(item)
            contributed = True
        if contributed:
            contributors.append(candidate.source.source_record_id)
    first = ordered[0].source
    return AttributeLineage(
        attribute=attribute,
        value=combined,
        rule=rule.name,
        rule_set_version=version,
        source_record_id=first.source_record_id,
        source_key=first.key,
        position=first.position,
        contributing_source_record_ids=tuple(contributors),
    )


def completeness(value: Any) -> int:
    """How many non-empty leaf values ``value`` holds: list items, address fields, a scalar."""
    if is_empty_value(value):
        return 0
    if isinstance(value, Mapping):
        return sum(completeness(v) for v in value.values())
    if isinstance(value, list | tuple):
        return sum(completeness(v) for v in value)
    return 1


def agreement_key(value: Any) -> Any:
    """A hashable key under which two values count as the same (case and spacing ignored)."""
    if isinstance(value, str):
        return " ".join(value.casefold().split())
    if isinstance(value, Mapping):
        return tuple(
            sorted((str(k), agreement_key(v)) for k, v in value.items() if not is_empty_value(v))
        )
    if isinstance(value, list | tuple):
        return tuple(agreement_key(v) for v in value)
    if is_empty_value(value):
        return None
    return value


def _agree(candidates: list[_Candidate]) -> bool:
    """True when every candidate holds the same value (by ``agreement_key``; empties agree)."""
    first = candidates[0]
    for other in candidates[1:]:
        if other.present != first.present:
            return False
        if (
            first.present
            and other.value != first.value
            and agreement_key(other.value) != agreement_key(first.value)
        ):
            return False
    return True
