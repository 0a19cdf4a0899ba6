"""Blocking: short keys per record; only records that share a key are ever compared.

Keys are strings ``<rule>:<value>[|<value>...]`` (e.g. ``em:jane@example.com``,
``fp:SMAT|2119``) so the hub can keep them in an index table. Rules are OR-ed: a pair is a
candidate when any rule gives both records the same key. In batch mode, a key shared by more
than ``max_block_size`` records is skipped (it says little and costs quadratically).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Mapping, Sequence
from functools import lru_cache
from typing import Any

import jellyfish
import numpy as np
import numpy.typing as npt

from matching.arrays import sorted_unique, unique_inverse
from matching.comparison import TextCache, field_texts, list_value, text_value
from matching.spec import LIST_FEATURES, BlockingRuleSpec

IntArray = npt.NDArray[np.int64]

_MAX_VALUE_CHARS = 48
_MAX_KEYS_PER_RULE = 8
_PAIRS_PER_CHUNK = 5_000_000


@lru_cache(maxsize=200_000)
def _soundex(value: str) -> str:
    return str(jellyfish.soundex(value))


@lru_cache(maxsize=200_000)
def _metaphone(value: str) -> str:
    return str(jellyfish.metaphone(value))


@lru_cache(maxsize=200_000)
def _nysiis(value: str) -> str:
    return str(jellyfish.nysiis(value))


def _year(value: str) -> str:
    return value[:4] if len(value) >= 4 and value[:4].isdigit() else ""


def _digits(value: str) -> str:
    return "".join(ch for ch in value if ch.isdigit())


def _first_token(value: str) -> str:
    return value.split(maxsplit=1)[0] if value.split() else ""


def _transform(name: str) -> Callable[[str], str]:
    if name in ("", "exact"):
        return lambda v: v
    if name.startswith("prefix"):
        n = int(name[len("prefix") :])
        return lambda v: v[:n]
    table: dict[str, Callable[[str], str]] = {
        "soundex": _soundex,
        "metaphone": _metaphone,
        "nysiis": _nysiis,
        "initial": lambda v: v[:1],
        "year": _year,
        "digits": _digits,
        "first_token": _first_token,
    }
    return table[name]


class BlockingRule:
    """A compiled blocking rule."""

    def __init__(self, spec: BlockingRuleSpec) -> None:
        self.spec = spec
        self.prefix = spec.name + ":"
        self._parts: list[tuple[str, bool, Callable[[str], str]]] = []
        for part in spec.parts:
            fld, _, transform = part.partition(":")
            self._parts.append((fld, fld in LIST_FEATURES, _transform(transform)))
        self.has_list_part = any(is_list for _, is_list, _ in self._parts)

    def memberships(
        self, records: Sequence[Mapping[str, Any]], texts: TextCache
    ) -> tuple[IntArray, IntArray]:
        """The batch form of ``keys``: ``(record positions, key codes)`` of all records.

        Two memberships share a code exactly when the records share that key string; codes
        run from 0 within the rule. ``texts`` caches field texts across rules.
        """
        n = len(records)
        if self.has_list_part and len(self._parts) == 1:
            return self._list_memberships(records)
        if self.has_list_part:
            lookup: dict[str, int] = {}
            positions: list[int] = []
            codes: list[int] = []
            for pos, record in enumerate(records):
                for key in self.keys(record):
                    positions.append(pos)
                    codes.append(lookup.setdefault(key, len(lookup)))
            return np.asarray(positions, dtype=np.int64), np.asarray(codes, dtype=np.int64)
        combined = np.zeros(n, dtype=np.int64)
        valid = np.ones(n, dtype=bool)
        for fld, _, transform in self._parts:
            values = field_texts(records, texts, fld)
            encoded: dict[str, int] = {}
            code_of: dict[str, int] = {}
            for value in set(values):
                if value is not None:
                    key = transform(value)[:_MAX_VALUE_CHARS]
                    if key:
                        encoded[value] = code_of.setdefault(key, len(code_of))
            part = np.fromiter(
                map(encoded.get, values, itertools.repeat(-1, n)),  # type: ignore[arg-type]
                dtype=np.int64,
                count=n,
            )
            valid &= part >= 0
            combined = combined * (len(code_of) + 1) + np.maximum(part, 0)
            combined = unique_inverse(combined)[1]
        positions_arr = np.nonzero(valid)[0].astype(np.int64)
        return positions_arr, combined[valid]

    def _list_memberships(self, records: Sequence[Mapping[str, Any]]) -> tuple[IntArray, IntArray]:
        """``memberships`` of a rule on one list field (e-mails, phones): one key per item."""
        fld, _, transform = self._parts[0]
        lookup: dict[str, int] = {}
        positions: list[int] = []
        codes: list[int] = []
        for pos, record in enumerate(records):
            raw = record.get(fld)
            if not raw:
                continue
            items = list_value(raw) or ()
            encoded = sorted({t for t in (transform(v)[:_MAX_VALUE_CHARS] for v in items) if t})
            for key in encoded[:_MAX_KEYS_PER_RULE]:
                positions.append(pos)
                codes.append(lookup.setdefault(key, len(lookup)))
        return np.asarray(positions, dtype=np.int64), np.asarray(codes, dtype=np.int64)

    def keys(self, features: Mapping[str, Any]) -> list[str]:
        """This rule's keys for one record (none when a part is missing)."""
        choices: list[Sequence[str]] = []
        for fld, is_list, transform in self._parts:
            raw = features.get(fld)
            values: Sequence[str]
            if is_list:
                values = list_value(raw) or ()
            else:
                text = text_value(raw)
                values = () if text is None else (text,)
            encoded = sorted({t for t in (transform(v)[:_MAX_VALUE_CHARS] for v in values) if t})
            if not encoded:
                return []
            choices.append(encoded)
        if len(choices) == 1:
            return [self.prefix + v for v in choices[0][:_MAX_KEYS_PER_RULE]]
        combos = itertools.islice(itertools.product(*choices), _MAX_KEYS_PER_RULE)
        return [self.prefix + "|".join(combo) for combo in combos]


class Blocker:
    """All blocking rules of a spec."""

    def __init__(self, rules: Sequence[BlockingRuleSpec]) -> None:
        self.rules = [BlockingRule(rule) for rule in rules]

    def keys(self, features: Mapping[str, Any]) -> list[str]:
        """Every blocking key of one record, rule by rule, without duplicates."""
        out: list[str] = []
        for rule in self.rules:
            out.extend(rule.keys(features))
        return out


def rule_memberships(
    rules: Sequence[BlockingRule],
    records: Sequence[Mapping[str, Any]],
    texts: TextCache | None = None,
) -> list[tuple[IntArray, IntArray]]:
    """Per rule, ``(record positions, key ids)``; key ids are unique across all rules."""
    cache: TextCache = {} if texts is None else texts
    out: list[tuple[IntArray, IntArray]] = []
    offset = 0
    for rule in rules:
        positions, codes = rule.memberships(records, cache)
        out.append((positions, codes + offset))
        offset += int(codes.max()) + 1 if len(codes) else 0
    return out


def group_codes_of(groups: Sequence[Any] | None) -> npt.NDArray[np.intp] | None:
    """Integer codes of link-mode sources (None in dedupe mode)."""
    if groups is None:
        return None
    _, codes = np.unique(np.asarray(groups, dtype=object).astype(str), return_inverse=True)
    return codes


def candidate_pairs(
    keys_per_record: Sequence[Sequence[str]],
    *,
    max_block_size: int,
    groups: Sequence[Any] | None = None,
) -> tuple[IntArray, IntArray]:
    """Distinct record pairs (i < j) that share at least one key.

    Args:
        keys_per_record: blocking keys of record ``k`` at position ``k``.
        max_block_size: keys shared by more records than this are skipped.
        groups: in link mode, the source of each record; only pairs across sources are kept.

    Returns:
        Two index arrays ``left`` and ``right`` with ``left[k] < right[k]``, sorted.
    """
    key_ids: dict[str, int] = {}
    rec_list: list[int] = []
    key_list: list[int] = []
    for rec, keys in enumerate(keys_per_record):
        for key in keys:
            key_id = key_ids.setdefault(key, len(key_ids))
            rec_list.append(rec)
            key_list.append(key_id)
    return pairs_from_memberships(
        np.asarray(rec_list, dtype=np.int64),
        np.asarray(key_list, dtype=np.int64),
        max_block_size=max_block_size,
        group_codes=group_codes_of(groups),
    )


def pairs_from_memberships(
    records: IntArray,
    keys: IntArray,
    *,
    max_block_size: int,
    group_codes: npt.NDArray[np.intp] | None = None,
) -> tuple[IntArray, IntArray]:
    """Vectorised pair generation from (record, key) memberships; see ``candidate_pairs``."""
    if len(records) == 0:
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty
    order = np.lexsort((records, keys))
    keys_sorted = keys[order]
    recs_sorted = records[order]
    # Drop repeated (key, record) memberships.
    keep = np.ones(len(order), dtype=bool)
    keep[1:] = (keys_sorted[1:] != keys_sorted[:-1]) | (recs_sorted[1:] != recs_sorted[:-1])
    keys_sorted = keys_sorted[keep]
    recs_sorted = recs_sorted[keep]
    _, sizes = np.unique(keys_sorted, return_counts=True)
    usable = (sizes >= 2) & (sizes <= max_block_size)
    member = np.repeat(usable, sizes)
    keys_sorted = keys_sorted[member]
    recs_sorted = recs_sorted[member]
    if len(keys_sorted) == 0:
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty
    _, starts, sizes = np.unique(keys_sorted, return_index=True, return_counts=True)
    block = np.repeat(np.arange(len(sizes)), sizes)
    # Each membership pairs with the members after it in its block.
    partners = sizes[block] - (np.arange(len(keys_sorted)) - starts[block]) - 1
    cumulative = np.cumsum(partners)
    n = int(records.max()) + 1
    found: list[IntArray] = []
    begin = 0
    while begin < len(partners):
        done = int(cumulative[begin - 1]) if begin else 0
        end = max(
            int(np.searchsorted(cumulative, done + _PAIRS_PER_CHUNK, side="right")), begin + 1
        )
        counts = partners[begin:end]
        total = int(counts.sum())
        begin_at = begin
        begin = end
        if total == 0:
            continue
        first = np.repeat(np.arange(begin_at, end, dtype=np.int64), counts)
        first += (
            np.arange(total, dtype=np.int64) - np.repeat(np.cumsum(counts) - counts, counts) + 1
        )
        a = recs_sorted[np.repeat(np.arange(begin_at, end, dtype=np.int64), counts)]
        b = recs_sorted[first]
        if group_codes is not None:
            cross = group_codes[a] != group_codes[b]
            a, b = a[cross], b[cross]
        found.append(sorted_unique(np.minimum(a, b) * n + np.maximum(a, b)))
    if not found:
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty
    combined = sorted_unique(np.concatenate(found)) if len(found) > 1 else found[0]
    return combined // n, combined % n
