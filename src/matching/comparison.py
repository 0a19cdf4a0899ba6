"""Comparisons: turn two records' values of one field into an ordered agreement level.

Every comparison has two paths that must agree level for level: a scalar one (``level``) for
scoring one pair at a time in the real-time path, and a vectorised one (``levels``) over
arrays of candidate pairs for training and batch dedupe. Both read *prepared* values, computed
once per record by ``prepare``. Level 0 is "missing on either side"; level 1 is the strongest
agreement; the last level is ``else``. Every comparison is symmetric.
"""

from __future__ import annotations

import itertools
import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

import numpy as np
import numpy.typing as npt
from rapidfuzz import fuzz, process
from rapidfuzz.distance import OSA, Jaro, JaroWinkler, Levenshtein

from matching.arrays import unique_inverse
from matching.spec import DISTANCE_KINDS, SIMILARITY_KINDS, ComparisonSpec, joint_part_levels

IntArray = npt.NDArray[np.int64]
LevelArray = npt.NDArray[np.int8]

NULL_LEVEL = 0
EXACT_LEVEL = 1

_Scorer = Callable[..., float]

# Similarity scorers and the factor that maps a 0..1 threshold onto their native scale.
_SIMILARITY: dict[str, tuple[_Scorer, float]] = {
    "jaro_winkler": (JaroWinkler.normalized_similarity, 1.0),
    "jaro": (Jaro.normalized_similarity, 1.0),
    "token_set": (fuzz.token_set_ratio, 100.0),
}
_DISTANCE: dict[str, _Scorer] = {
    "levenshtein": Levenshtein.distance,
    # Restricted Damerau-Levenshtein (an adjacent transposition is one edit): the usual
    # meaning, and much faster than the unrestricted distance.
    "damerau": OSA.distance,
}
_NUMBER = re.compile(r"-?\d+(?:\.\d+)?")


def text_value(value: Any) -> str | None:
    """A feature value as comparable text; None, NaN and blank are missing."""
    if value.__class__ is str:
        return value.strip() or None
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    return str(value).strip() or None


def list_value(value: Any) -> tuple[str, ...] | None:
    """A list feature as a sorted tuple of distinct texts; empty is missing."""
    if not value:
        return None
    if value.__class__ is str:
        text = value.strip()
        return (text,) if text else None
    cleaned = sorted({t for t in map(text_value, value) if t is not None})
    return tuple(cleaned) if cleaned else None


@dataclass(frozen=True)
class DateValue:
    """A prepared date: its eight digits (kept even when not a real date) and its day number."""

    digits: str
    year: int
    month: int
    day: int
    ordinal: int | None


def parse_date(value: Any) -> DateValue | None:
    """Read ``YYYY-MM-DD``, ``YYYYMMDD`` or a ``date``; anything else is missing."""
    if isinstance(value, date):
        return DateValue(
            value.strftime("%Y%m%d"), value.year, value.month, value.day, value.toordinal()
        )
    text = text_value(value)
    if text is None:
        return None
    digits = text.replace("-", "").replace("/", "")
    if len(digits) != 8 or not digits.isdigit():
        return None
    year, month, day = int(digits[:4]), int(digits[4:6]), int(digits[6:])
    try:
        ordinal: int | None = date(year, month, day).toordinal()
    except ValueError:
        ordinal = None
    return DateValue(digits, year, month, day, ordinal)


def dates_within_typo(a: DateValue, b: DateValue) -> bool:
    """One keying error apart: one digit edit or transposition, day/month swapped, or the
    same day and month one year apart."""
    if OSA.distance(a.digits, b.digits, score_cutoff=1) <= 1:
        return True
    if a.year == b.year and a.month == b.day and a.day == b.month:
        return True
    return a.month == b.month and a.day == b.day and abs(a.year - b.year) == 1


TextCache = dict[str, list[str | None]]


def field_texts(
    records: Sequence[Mapping[str, Any]], texts: TextCache, field: str
) -> list[str | None]:
    """``text_value`` of one field of every record, computed once per cache."""
    values = texts.get(field)
    if values is None:
        values = [text_value(r.get(field)) for r in records]
        texts[field] = values
    return values


def _factorize(values: Sequence[Any]) -> tuple[IntArray, npt.NDArray[np.object_]]:
    """Codes in sorted order of the distinct non-null values (-1 for missing), and the values."""
    present = sorted({v for v in values if v is not None})
    lookup = {v: i for i, v in enumerate(present)}
    codes = np.fromiter(
        (-1 if v is None else lookup[v] for v in values), dtype=np.int64, count=len(values)
    )
    uniques = np.empty(len(present), dtype=object)
    uniques[:] = present
    return codes, uniques


def _pair_codes(ca: IntArray, cb: IntArray) -> tuple[IntArray, IntArray, IntArray]:
    """Distinct (min, max) code pairs and, per input pair, the index of its distinct pair."""
    lo = np.minimum(ca, cb)
    hi = np.maximum(ca, cb)
    if len(lo) == 0:
        return lo, hi, np.zeros(0, dtype=np.int64)
    base = int(hi.max()) + 1
    combined = lo * base + hi
    uniq, inverse = unique_inverse(combined)
    return uniq // base, uniq % base, inverse


class Comparison:
    """A compiled comparison spec. Subclasses implement prepare, level, column and levels."""

    def __init__(self, spec: ComparisonSpec) -> None:
        self.spec = spec
        self.labels = spec.level_labels
        self.n_levels = spec.n_levels
        self.else_level = self.n_levels - 1
        self.workers = 1
        """Threads rapidfuzz may use in the vectorised path (-1: all cores)."""

    def prepare(self, features: Mapping[str, Any]) -> Any:
        """The record's comparable value for this comparison, or None when missing."""
        raise NotImplementedError

    def level(self, a: Any, b: Any) -> int:
        """The agreement level of two non-missing prepared values."""
        raise NotImplementedError

    def tf_key(self, prepared: Any) -> str | None:
        """The value whose frequency adjusts the exact level (term-frequency adjustment)."""
        return None

    def exact_key(self, prepared: Any) -> str | None:
        """The value whose equality (mostly) decides the exact level; None: no such value."""
        return self.tf_key(prepared)

    def prepare_many(self, records: Sequence[Mapping[str, Any]], texts: TextCache) -> list[Any]:
        """``prepare`` of every record (``texts`` caches field texts across comparisons)."""
        return [self.prepare(r) for r in records]

    def column(self, prepared: Sequence[Any]) -> Any:
        """Per-dataset arrays for the vectorised path."""
        return list(prepared)

    def levels(self, column: Any, left: IntArray, right: IntArray) -> LevelArray:
        """Levels of the pairs (left[k], right[k]) over a column; the default loops in Python."""
        values: list[Any] = column
        out = np.zeros(len(left), dtype=np.int8)
        level = self.level
        for k, (i, j) in enumerate(zip(left.tolist(), right.tolist(), strict=True)):
            a = values[i]
            b = values[j]
            if a is not None and b is not None:
                out[k] = level(a, b)
        return out


@dataclass
class _CodesColumn:
    codes: IntArray
    uniques: npt.NDArray[np.object_]


class ExactComparison(Comparison):
    def __init__(self, spec: ComparisonSpec) -> None:
        super().__init__(spec)
        self._field = spec.fields[0]

    def prepare(self, features: Mapping[str, Any]) -> str | None:
        return text_value(features.get(self._field))

    def prepare_many(self, records: Sequence[Mapping[str, Any]], texts: TextCache) -> list[Any]:
        return list(field_texts(records, texts, self._field))

    def level(self, a: Any, b: Any) -> int:
        return EXACT_LEVEL if a == b else self.else_level

    def tf_key(self, prepared: Any) -> str | None:
        return prepared if isinstance(prepared, str) else None

    def column(self, prepared: Sequence[Any]) -> _CodesColumn:
        return _CodesColumn(*_factorize(prepared))

    def levels(self, column: Any, left: IntArray, right: IntArray) -> LevelArray:
        ca = column.codes[left]
        cb = column.codes[right]
        out = np.where(ca == cb, EXACT_LEVEL, self.else_level).astype(np.int8)
        out[(ca < 0) | (cb < 0)] = NULL_LEVEL
        return out


@dataclass
class _StringColumn:
    codes: list[IntArray]  # one per field
    uniques: list[npt.NDArray[np.object_]]


class StringComparison(Comparison):
    """Exact, then similarity (or edit-distance) thresholds, then an optional initial level."""

    def __init__(self, spec: ComparisonSpec) -> None:
        super().__init__(spec)
        self._fields = spec.fields
        self._single = len(spec.fields) == 1
        kind = spec.kind
        self._is_distance = kind in DISTANCE_KINDS
        if self._is_distance:
            self._scorer = _DISTANCE[kind]
            self._cuts = tuple(float(t) for t in spec.thresholds)
        else:
            assert kind in SIMILARITY_KINDS
            scorer, scale = _SIMILARITY[kind]
            self._scorer = scorer
            self._cuts = tuple(t * scale for t in spec.thresholds)
        self._initial_level = self.else_level - 1 if spec.initial else -1
        # Scores beyond the loosest threshold only ever mean "else": let rapidfuzz stop early.
        self._cutoff: float | None = None
        if self._cuts:
            self._cutoff = max(self._cuts) if self._is_distance else min(self._cuts)

    def prepare(self, features: Mapping[str, Any]) -> Any:
        if self._single:
            return text_value(features.get(self._fields[0]))
        values = tuple(text_value(features.get(f)) for f in self._fields)
        return None if all(v is None for v in values) else values

    def prepare_many(self, records: Sequence[Mapping[str, Any]], texts: TextCache) -> list[Any]:
        columns = [field_texts(records, texts, f) for f in self._fields]
        if self._single:
            return list(columns[0])
        return [
            None if all(v is None for v in values) else values
            for values in zip(*columns, strict=True)
        ]

    def tf_key(self, prepared: Any) -> str | None:
        if isinstance(prepared, str):
            return prepared
        if isinstance(prepared, tuple) and prepared:
            first = prepared[0]
            return first if isinstance(first, str) else None
        return None

    def _threshold_level(self, score: float) -> int:
        if self._is_distance:
            for k, cut in enumerate(self._cuts):
                if score <= cut:
                    return 2 + k
        else:
            for k, cut in enumerate(self._cuts):
                if score >= cut:
                    return 2 + k
        return -1

    def _best(self, a: str, b: str) -> float:
        if not self._cuts:
            return math.inf if self._is_distance else -math.inf
        if a > b:
            a, b = b, a
        return float(self._scorer(a, b, score_cutoff=self._cutoff))

    def level(self, a: Any, b: Any) -> int:
        if self._single:
            if a == b:
                return EXACT_LEVEL
            lvl = self._threshold_level(self._best(a, b))
            if lvl > 0:
                return lvl
            if self._initial_level > 0 and _initial_agrees(a, b):
                return self._initial_level
            return self.else_level
        scores: list[float] = []
        pairs = [(x, y) for x, y in zip(a, b, strict=True) if x is not None and y is not None]
        if not pairs:
            return NULL_LEVEL
        for x, y in pairs:
            if x == y:
                return EXACT_LEVEL
            scores.append(self._best(x, y))
        best = min(scores) if self._is_distance else max(scores)
        lvl = self._threshold_level(best)
        if lvl > 0:
            return lvl
        if self._initial_level > 0 and any(_initial_agrees(x, y) for x, y in pairs):
            return self._initial_level
        return self.else_level

    def column(self, prepared: Sequence[Any]) -> _StringColumn:
        if self._single:
            codes, uniques = _factorize(prepared)
            return _StringColumn([codes], [uniques])
        out = _StringColumn([], [])
        for k in range(len(self._fields)):
            codes, uniques = _factorize([None if v is None else v[k] for v in prepared])
            out.codes.append(codes)
            out.uniques.append(uniques)
        return out

    def levels(self, column: Any, left: IntArray, right: IntArray) -> LevelArray:
        n = len(left)
        any_present = np.zeros(n, dtype=bool)
        exact = np.zeros(n, dtype=bool)
        best = np.full(n, np.inf if self._is_distance else -np.inf)
        initial = np.zeros(n, dtype=bool)
        for codes, uniques in zip(column.codes, column.uniques, strict=True):
            ca = codes[left]
            cb = codes[right]
            present = (ca >= 0) & (cb >= 0)
            any_present |= present
            exact |= present & (ca == cb)
            todo = np.nonzero(present & (ca != cb))[0]
            if len(todo) == 0:
                continue
            lo, hi, inverse = _pair_codes(ca[todo], cb[todo])
            if self._cuts:
                scores = process.cpdist(
                    uniques[lo],
                    uniques[hi],
                    scorer=self._scorer,
                    score_cutoff=self._cutoff,
                    dtype=np.int64 if self._is_distance else np.float64,
                    workers=self.workers,
                )
            else:
                scores = np.full(len(lo), np.inf if self._is_distance else -np.inf)
            field_scores = scores[inverse].astype(np.float64)
            if self._is_distance:
                best[todo] = np.minimum(best[todo], field_scores)
            else:
                best[todo] = np.maximum(best[todo], field_scores)
            if self._initial_level > 0:
                lengths = np.fromiter((len(u) for u in uniques), dtype=np.int64, count=len(uniques))
                firsts = np.array([u[0] for u in uniques], dtype=object)
                ok = ((lengths[lo] == 1) | (lengths[hi] == 1)) & (firsts[lo] == firsts[hi])
                initial[todo] |= ok[inverse]
        out = np.full(n, self.else_level, dtype=np.int8)
        if self._initial_level > 0:
            out[initial] = self._initial_level
        for k in range(len(self._cuts) - 1, -1, -1):
            hit = best <= self._cuts[k] if self._is_distance else best >= self._cuts[k]
            out[hit] = 2 + k
        out[exact] = EXACT_LEVEL
        out[~any_present] = NULL_LEVEL
        return out


def _initial_agrees(a: str, b: str) -> bool:
    return (len(a) == 1 or len(b) == 1) and a[0] == b[0]


@dataclass
class _DateColumn:
    codes: IntArray
    uniques: npt.NDArray[np.object_]
    year: IntArray
    month: IntArray
    day: IntArray
    ordinal: npt.NDArray[np.float64]


class DateComparison(Comparison):
    """Exact, one keying error (see ``dates_within_typo``), day-distance thresholds, else."""

    def __init__(self, spec: ComparisonSpec) -> None:
        super().__init__(spec)
        self._field = spec.fields[0]
        self._days = spec.thresholds

    def prepare(self, features: Mapping[str, Any]) -> DateValue | None:
        return parse_date(features.get(self._field))

    def prepare_many(self, records: Sequence[Mapping[str, Any]], texts: TextCache) -> list[Any]:
        values = field_texts(records, texts, self._field)
        parsed = {v: parse_date(v) for v in set(values) if v is not None}
        return [None if v is None else parsed[v] for v in values]

    def exact_key(self, prepared: Any) -> str | None:
        return prepared.digits if isinstance(prepared, DateValue) else None

    def level(self, a: Any, b: Any) -> int:
        if a.digits == b.digits:
            return EXACT_LEVEL
        if dates_within_typo(a, b):
            return 2
        if a.ordinal is not None and b.ordinal is not None:
            gap = abs(a.ordinal - b.ordinal)
            for k, days in enumerate(self._days):
                if gap <= days:
                    return 3 + k
        return self.else_level

    def column(self, prepared: Sequence[Any]) -> _DateColumn:
        codes, uniques = _factorize([None if v is None else v.digits for v in prepared])
        n = len(prepared)
        year = np.zeros(n, dtype=np.int64)
        month = np.zeros(n, dtype=np.int64)
        day = np.zeros(n, dtype=np.int64)
        ordinal = np.full(n, np.nan)
        for k, v in enumerate(prepared):
            if v is not None:
                year[k], month[k], day[k] = v.year, v.month, v.day
                if v.ordinal is not None:
                    ordinal[k] = v.ordinal
        return _DateColumn(codes, uniques, year, month, day, ordinal)

    def levels(self, column: Any, left: IntArray, right: IntArray) -> LevelArray:
        ca = column.codes[left]
        cb = column.codes[right]
        present = (ca >= 0) & (cb >= 0)
        out = np.full(len(left), self.else_level, dtype=np.int8)
        gap = np.abs(column.ordinal[left] - column.ordinal[right])
        for k in range(len(self._days) - 1, -1, -1):
            out[gap <= self._days[k]] = 3 + k
        ya, yb = column.year[left], column.year[right]
        ma, mb = column.month[left], column.month[right]
        da, db = column.day[left], column.day[right]
        typo = ((ya == yb) & (ma == db) & (da == mb)) | (
            (ma == mb) & (da == db) & (np.abs(ya - yb) == 1)
        )
        todo = np.nonzero(present & (ca != cb))[0]
        if len(todo):
            lo, hi, inverse = _pair_codes(ca[todo], cb[todo])
            dist = process.cpdist(
                column.uniques[lo],
                column.uniques[hi],
                scorer=OSA.distance,
                score_cutoff=1,
                dtype=np.int64,
                workers=self.workers,
            )
            typo[todo] |= dist[inverse] <= 1
        out[typo] = 2
        out[present & (ca == cb)] = EXACT_LEVEL
        out[~present] = NULL_LEVEL
        return out


@dataclass(frozen=True)
class NumberValue:
    text: str
    number: float | None


@dataclass
class _NumericColumn:
    codes: IntArray
    numbers: npt.NDArray[np.float64]


class NumericComparison(Comparison):
    """Exact text, then absolute-difference thresholds on the leading number, else."""

    def __init__(self, spec: ComparisonSpec) -> None:
        super().__init__(spec)
        self._field = spec.fields[0]
        self._cuts = spec.thresholds

    def prepare(self, features: Mapping[str, Any]) -> NumberValue | None:
        text = text_value(features.get(self._field))
        if text is None:
            return None
        found = _NUMBER.search(text)
        return NumberValue(text, float(found.group()) if found else None)

    def prepare_many(self, records: Sequence[Mapping[str, Any]], texts: TextCache) -> list[Any]:
        values = field_texts(records, texts, self._field)
        prepared = {v: self.prepare({self._field: v}) for v in set(values) if v is not None}
        return [None if v is None else prepared[v] for v in values]

    def exact_key(self, prepared: Any) -> str | None:
        return prepared.text if isinstance(prepared, NumberValue) else None

    def level(self, a: Any, b: Any) -> int:
        if a.text == b.text:
            return EXACT_LEVEL
        if a.number is not None and b.number is not None:
            gap = abs(a.number - b.number)
            for k, cut in enumerate(self._cuts):
                if gap <= cut:
                    return 2 + k
        return self.else_level

    def column(self, prepared: Sequence[Any]) -> _NumericColumn:
        codes, _ = _factorize([None if v is None else v.text for v in prepared])
        numbers = np.array(
            [np.nan if v is None or v.number is None else v.number for v in prepared],
            dtype=np.float64,
        )
        return _NumericColumn(codes, numbers)

    def levels(self, column: Any, left: IntArray, right: IntArray) -> LevelArray:
        ca = column.codes[left]
        cb = column.codes[right]
        out = np.full(len(left), self.else_level, dtype=np.int8)
        gap = np.abs(column.numbers[left] - column.numbers[right])
        for k in range(len(self._cuts) - 1, -1, -1):
            out[gap <= self._cuts[k]] = 2 + k
        out[ca == cb] = EXACT_LEVEL
        out[(ca < 0) | (cb < 0)] = NULL_LEVEL
        return out


_MAX_LIST_ITEMS = 8


@dataclass
class _ListColumn:
    codes: IntArray  # records x _MAX_LIST_ITEMS, -1 padded
    uniques: npt.NDArray[np.object_]


class OverlapComparison(Comparison):
    """Lists (e-mails, phones): any shared element, then best Jaro-Winkler thresholds, else.

    A record's list is its first ``_MAX_LIST_ITEMS`` distinct values in sorted order.
    """

    def __init__(self, spec: ComparisonSpec) -> None:
        super().__init__(spec)
        self._fields = spec.fields
        self._cuts = spec.thresholds

    def prepare(self, features: Mapping[str, Any]) -> tuple[str, ...] | None:
        items: list[str] = []
        for fld in self._fields:
            items.extend(list_value(features.get(fld)) or ())
        return tuple(sorted(set(items))[:_MAX_LIST_ITEMS]) if items else None

    def _best(self, a: Sequence[str], b: Sequence[str]) -> float:
        cutoff = min(self._cuts)
        return max(
            JaroWinkler.normalized_similarity(min(x, y), max(x, y), score_cutoff=cutoff)
            for x in a
            for y in b
        )

    def level(self, a: Any, b: Any) -> int:
        if not set(a).isdisjoint(b):
            return EXACT_LEVEL
        if self._cuts:
            best = self._best(a, b)
            for k, cut in enumerate(self._cuts):
                if best >= cut:
                    return 2 + k
        return self.else_level

    def column(self, prepared: Sequence[Any]) -> _ListColumn:
        present = sorted({item for items in prepared if items is not None for item in items})
        lookup = {v: i for i, v in enumerate(present)}
        codes = np.full((len(prepared), _MAX_LIST_ITEMS), -1, dtype=np.int64)
        for row, items in enumerate(prepared):
            if items is not None:
                codes[row, : len(items)] = [lookup[v] for v in items]
        uniques = np.empty(len(present), dtype=object)
        uniques[:] = present
        return _ListColumn(codes, uniques)

    def levels(self, column: Any, left: IntArray, right: IntArray) -> LevelArray:
        ca = column.codes[left]
        cb = column.codes[right]
        present = (ca[:, 0] >= 0) & (cb[:, 0] >= 0)
        used_a = [k for k in range(_MAX_LIST_ITEMS) if (ca[:, k] >= 0).any()]
        used_b = [k for k in range(_MAX_LIST_ITEMS) if (cb[:, k] >= 0).any()]
        shared = np.zeros(len(left), dtype=bool)
        for x in used_a:
            for y in used_b:
                shared |= (ca[:, x] == cb[:, y]) & (ca[:, x] >= 0)
        out = np.full(len(left), self.else_level, dtype=np.int8)
        todo = np.nonzero(present & ~shared)[0]
        if self._cuts and len(todo):
            best = np.zeros(len(todo))
            for x in used_a:
                for y in used_b:
                    xa, yb = ca[todo, x], cb[todo, y]
                    both = np.nonzero((xa >= 0) & (yb >= 0))[0]
                    if len(both) == 0:
                        continue
                    lo, hi, inverse = _pair_codes(xa[both], yb[both])
                    sims = process.cpdist(
                        column.uniques[lo],
                        column.uniques[hi],
                        scorer=JaroWinkler.normalized_similarity,
                        score_cutoff=min(self._cuts),
                        dtype=np.float64,
                        workers=self.workers,
                    )
                    best[both] = np.maximum(best[both], sims[inverse])
            for k in range(len(self._cuts) - 1, -1, -1):
                out[todo[best >= self._cuts[k]]] = 2 + k
        out[shared] = EXACT_LEVEL
        out[~present] = NULL_LEVEL
        return out


class JointComparison(Comparison):
    """The combination of its parts' levels (see ``ComparisonSpec.level_labels``)."""

    def __init__(self, spec: ComparisonSpec) -> None:
        super().__init__(spec)
        self.parts = [build_comparison(p) for p in spec.parts]
        radix = [p.n_levels for p in self.parts]
        size = 1
        for r in radix:
            size *= r
        # Mixed-radix code of the parts' levels -> this comparison's level.
        lookup = np.zeros(size, dtype=np.int8)
        level = 0
        for combo in itertools.product(*(joint_part_levels(p) for p in spec.parts)):
            if not any(combo):
                continue
            level += 1
            code = 0
            for lv, r in zip(combo, radix, strict=True):
                code = code * r + lv
            lookup[code] = level
        self._radix = radix
        self._lookup = lookup
        self._lookup_list: list[int] = lookup.tolist()

    def prepare(self, features: Mapping[str, Any]) -> tuple[Any, ...] | None:
        values = tuple(p.prepare(features) for p in self.parts)
        return None if all(v is None for v in values) else values

    def prepare_many(self, records: Sequence[Mapping[str, Any]], texts: TextCache) -> list[Any]:
        columns = [p.prepare_many(records, texts) for p in self.parts]
        return [
            None if all(v is None for v in values) else values
            for values in zip(*columns, strict=True)
        ]

    def exact_key(self, prepared: Any) -> str | None:
        if prepared is None:
            return None
        keys = [
            p.exact_key(v) if v is not None else None
            for p, v in zip(self.parts, prepared, strict=True)
        ]
        return None if any(k is None for k in keys) else "\x1f".join(str(k) for k in keys)

    def level(self, a: Any, b: Any) -> int:
        straight = self._level(a, b)
        if not self.spec.swap or straight <= EXACT_LEVEL:
            return straight
        # Both ways round, so that the level stays symmetric in its arguments.
        for crossed in (self._level(a, self._crossed(b)), self._level(self._crossed(a), b)):
            if NULL_LEVEL < crossed < straight:
                straight = crossed
        return straight

    def _level(self, a: Any, b: Any) -> int:
        code = 0
        for part, r, x, y in zip(self.parts, self._radix, a, b, strict=True):
            lv = 0 if x is None or y is None else part.level(x, y)
            code = code * r + lv
        return self._lookup_list[code]

    def _crossed(self, prepared: tuple[Any, ...]) -> tuple[Any, ...]:
        """A two-part value with its parts exchanged, each in the shape of its new part."""
        first, second = prepared
        return (
            _in_shape_of(self.parts[0], second),
            _in_shape_of(self.parts[1], first),
        )

    def column(self, prepared: Sequence[Any]) -> Any:
        straight = [
            part.column([None if v is None else v[k] for v in prepared])
            for k, part in enumerate(self.parts)
        ]
        if not self.spec.swap:
            return straight
        # Crosswise: part k's column over the records' own values, then their crossed values
        # (record i's crossed value sits at len(prepared) + i).
        crossed = [None if v is None else self._crossed(v) for v in prepared]
        cross_columns = [
            part.column(
                [None if v is None else v[k] for v in prepared]
                + [None if v is None else v[k] for v in crossed]
            )
            for k, part in enumerate(self.parts)
        ]
        return _SwapColumns(straight, cross_columns, len(prepared))

    def levels(self, column: Any, left: IntArray, right: IntArray) -> LevelArray:
        if not isinstance(column, _SwapColumns):
            return self._levels(column, left, right)
        out = self._levels(column.straight, left, right)
        for lo, hi in ((left, right + column.size), (left + column.size, right)):
            crossed = self._levels(column.crossed, lo, hi)
            out = np.where((crossed > NULL_LEVEL) & (crossed < out), crossed, out).astype(np.int8)
        return out

    def _levels(self, columns: Sequence[Any], left: IntArray, right: IntArray) -> LevelArray:
        code = np.zeros(len(left), dtype=np.int64)
        for part, r, col in zip(self.parts, self._radix, columns, strict=True):
            part.workers = self.workers
            code = code * r + part.levels(col, left, right).astype(np.int64)
        return self._lookup[code]


@dataclass
class _SwapColumns:
    straight: list[Any]
    crossed: list[Any]
    size: int


def _in_shape_of(part: Comparison, value: Any) -> Any:
    """A string part's prepared value made of another string part's: one text, or the text
    in each field."""
    if value is None:
        return None
    if isinstance(value, tuple):
        value = next((v for v in value if v is not None), None)
        if value is None:
            return None
    fields = part.spec.fields
    return value if len(fields) == 1 else (value,) * len(fields)


def build_comparison(spec: ComparisonSpec) -> Comparison:
    """Compile a comparison spec."""
    comparison = _build(spec)
    if spec.unless:
        inner = comparison.prepare
        unless = spec.unless

        def prepare(features: Mapping[str, Any]) -> Any:
            if any(text_value(features.get(f)) is not None for f in unless):
                return None
            return inner(features)

        inner_many = comparison.prepare_many

        def prepare_many(records: Sequence[Mapping[str, Any]], texts: TextCache) -> list[Any]:
            blockers = [field_texts(records, texts, f) for f in unless]
            return [
                None if any(b[k] is not None for b in blockers) else value
                for k, value in enumerate(inner_many(records, texts))
            ]

        comparison.prepare = prepare  # type: ignore[method-assign]
        comparison.prepare_many = prepare_many  # type: ignore[method-assign]
    return comparison


def _build(spec: ComparisonSpec) -> Comparison:
    if spec.kind == "joint":
        return JointComparison(spec)
    if spec.kind == "exact":
        return ExactComparison(spec)
    if spec.kind in SIMILARITY_KINDS or spec.kind in DISTANCE_KINDS:
        return StringComparison(spec)
    if spec.kind == "date":
        return DateComparison(spec)
    if spec.kind == "numeric":
        return NumericComparison(spec)
    return OverlapComparison(spec)


def values_conflict(a: Any, b: Any, *, is_date: bool, tolerance: str) -> bool:
    """Whether two non-missing hard-conflict values (text, or DateValue) differ for real."""
    if is_date:
        if a.digits == b.digits:
            return False
        return not (tolerance == "typo" and dates_within_typo(a, b))
    if a == b:
        return False
    return not (tolerance == "typo" and OSA.distance(a, b, score_cutoff=1) <= 1)
