"""How well the hub found the demo world's duplicates: its links against the ground truth.

``evaluate(hub_url, truth_url)`` reads the hub's live source records (with their golden
records and link decisions) and its open review tasks, joins them with
``truth.source_entity`` on (system, table, primary key), and counts pairs of records:

- a *true pair* is two live records of the same real party (same ``entity_id``);
- an *automatic pair* is two live records the matcher linked to the same golden record (a
  record whose link a steward decided is left out);
- **precision** of automatic merges: automatic pairs that are true pairs / automatic pairs;
- **recall**: true pairs that are in one golden record, or whose two golden records a review
  task puts side by side (a steward will see them) / true pairs. ``automatic_recall`` counts
  the first kind only;
- **review share**: open review tasks / live records;
- **duplicate rate**: ``1 - golden records / live records`` (the hub's report's definition),
  and the same with the truth's parties in place of golden records.

Records are joined *from* the hub to the truth (live traffic may have written a truth row
whose source row the hub has not seen yet). Pairs are counted per group, never listed, so
100,000 customers take seconds. ``per_tables`` breaks false merges and missed pairs down by
the two tables involved, which is where a mapping or match-spec problem shows.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import psycopg

from mdh.demo.schemas import TRUTH_SCHEMA

TableName = str
"""``system.table``, e.g. ``crm.account``."""


@dataclass(frozen=True)
class PairCounts:
    """True, automatic and found pairs between two tables (or within one)."""

    true_pairs: int = 0
    automatic_pairs: int = 0
    correct_pairs: int = 0
    reviewed_pairs: int = 0
    """True pairs in two golden records that an open review task compares."""

    @property
    def false_merges(self) -> int:
        return self.automatic_pairs - self.correct_pairs

    @property
    def missed(self) -> int:
        return self.true_pairs - self.correct_pairs - self.reviewed_pairs


@dataclass(frozen=True)
class QualityReport:
    """The hub's golden records measured against the truth (see the module docstring)."""

    records: int
    """Live source records in the hub that the truth knows (deleted and invalid ones aside)."""
    unknown_records: int
    """Live hub records without a truth row (should be 0)."""
    invalid_records: int
    golden_records: int
    parties: int
    """Distinct real parties among the records."""
    open_review_tasks: int
    pairs: PairCounts
    per_tables: Mapping[tuple[TableName, TableName], PairCounts] = field(default_factory=dict)

    @property
    def precision(self) -> float:
        automatic = self.pairs.automatic_pairs
        return 1.0 if automatic == 0 else self.pairs.correct_pairs / automatic

    @property
    def recall(self) -> float:
        true = self.pairs.true_pairs
        found = self.pairs.correct_pairs + self.pairs.reviewed_pairs
        return 1.0 if true == 0 else found / true

    @property
    def automatic_recall(self) -> float:
        true = self.pairs.true_pairs
        return 1.0 if true == 0 else self.pairs.correct_pairs / true

    @property
    def review_share(self) -> float:
        return 0.0 if self.records == 0 else self.open_review_tasks / self.records

    @property
    def duplicate_rate(self) -> float:
        return 0.0 if self.records == 0 else 1.0 - self.golden_records / self.records

    @property
    def true_duplicate_rate(self) -> float:
        return 0.0 if self.records == 0 else 1.0 - self.parties / self.records

    def summary(self) -> dict[str, Any]:
        """The headline numbers as JSON-ready values."""
        return {
            "records": self.records,
            "unknown_records": self.unknown_records,
            "invalid_records": self.invalid_records,
            "golden_records": self.golden_records,
            "parties": self.parties,
            "true_pairs": self.pairs.true_pairs,
            "automatic_pairs": self.pairs.automatic_pairs,
            "false_merges": self.pairs.false_merges,
            "reviewed_pairs": self.pairs.reviewed_pairs,
            "missed_pairs": self.pairs.missed,
            "open_review_tasks": self.open_review_tasks,
            "precision": round(self.precision, 5),
            "recall": round(self.recall, 5),
            "automatic_recall": round(self.automatic_recall, 5),
            "review_share": round(self.review_share, 5),
            "duplicate_rate": round(self.duplicate_rate, 5),
            "true_duplicate_rate": round(self.true_duplicate_rate, 5),
        }

    def worst_tables(self, limit: int = 5) -> list[tuple[str, int, int]]:
        """Table pairs with the most false merges plus missed pairs: (tables, false, missed)."""
        rows = [
            (f"{a} ~ {b}", counts.false_merges, counts.missed)
            for (a, b), counts in self.per_tables.items()
            if counts.false_merges or counts.missed
        ]
        rows.sort(key=lambda row: (row[1] + row[2], row[0]), reverse=True)
        return rows[:limit]


@dataclass(frozen=True)
class _Record:
    table: TableName
    golden_id: int
    entity_id: str
    automatic: bool


def libpq_url(url: str) -> str:
    """A libpq URL (``postgresql://``) for a SQLAlchemy one (``postgresql+psycopg://``)."""
    scheme, sep, rest = url.partition("://")
    return f"{scheme.split('+', 1)[0]}{sep}{rest}"


def evaluate(hub_url: str, truth_url: str) -> QualityReport:
    """Measure the hub's golden records and review tasks against the truth store.

    Args:
        hub_url: the hub database (libpq or SQLAlchemy URL).
        truth_url: the demo's truth database.
    """
    with psycopg.connect(libpq_url(hub_url)) as hub:
        # One snapshot of the hub, so records, golden records and tasks agree.
        hub.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
        hub_rows = hub.execute(
            "SELECT system, source_table, pk, golden_id, link_decided_by"
            " FROM source_records WHERE NOT deleted"
        ).fetchall()
        merged_into: dict[int, int] = dict(
            hub.execute(
                "SELECT id, merged_into FROM golden_records WHERE merged_into IS NOT NULL"
            ).fetchall()
        )
        tasks = hub.execute(
            "SELECT t.golden_id, t.candidate_golden_id, s.golden_id"
            " FROM review_tasks t LEFT JOIN source_records s ON s.id = t.source_record_id"
            " WHERE t.status = 'open'"
        ).fetchall()
    with psycopg.connect(libpq_url(truth_url)) as truth:
        entity_of = {
            (system, table, pk): entity
            for system, table, pk, entity in truth.execute(
                f"SELECT system, table_name, pk, entity_id FROM {TRUTH_SCHEMA}.source_entity"
            )
        }

    def resolve(golden_id: int) -> int:
        seen = 0
        while golden_id in merged_into and seen < 1000:
            golden_id, seen = merged_into[golden_id], seen + 1
        return golden_id

    records: list[_Record] = []
    unknown = invalid = 0
    for system, table, pk, golden_id, decided_by in hub_rows:
        if golden_id is None:
            invalid += 1
            continue
        entity = entity_of.get((system, _bare(table), pk))
        if entity is None:
            unknown += 1
            continue
        records.append(
            _Record(f"{system}.{_bare(table)}", resolve(golden_id), entity, decided_by != "steward")
        )
    review_pairs: set[tuple[int, int]] = set()
    for golden_id, candidate_id, source_golden_id in tasks:
        left = resolve(source_golden_id if source_golden_id is not None else golden_id)
        right = resolve(candidate_id)
        if left != right:
            review_pairs.add((min(left, right), max(left, right)))
    per_tables = _count_pairs(records, review_pairs)
    total = PairCounts(
        *(sum(getattr(c, name) for c in per_tables.values()) for name in _PAIR_FIELDS)
    )
    return QualityReport(
        records=len(records),
        unknown_records=unknown,
        invalid_records=invalid,
        golden_records=len({r.golden_id for r in records}),
        parties=len({r.entity_id for r in records}),
        open_review_tasks=len(tasks),
        pairs=total,
        per_tables=per_tables,
    )


_PAIR_FIELDS = ("true_pairs", "automatic_pairs", "correct_pairs", "reviewed_pairs")


def _bare(table: str) -> str:
    return table.rsplit(".", 1)[-1]


def _pairs_between(counts: Mapping[TableName, int]) -> Counter[tuple[TableName, TableName]]:
    """Unordered pairs of records of a group, by the (sorted) tables of the two records."""
    out: Counter[tuple[TableName, TableName]] = Counter()
    tables = sorted(counts)
    for i, a in enumerate(tables):
        n = counts[a]
        if n > 1:
            out[(a, a)] += n * (n - 1) // 2
        for b in tables[i + 1 :]:
            out[(a, b)] += n * counts[b]
    return out


def _group_pairs(
    groups: Iterable[list[_Record]],
) -> Counter[tuple[TableName, TableName]]:
    out: Counter[tuple[TableName, TableName]] = Counter()
    for members in groups:
        if len(members) > 1:
            out.update(_pairs_between(Counter(r.table for r in members)))
    return out


def _count_pairs(
    records: list[_Record], review_pairs: set[tuple[int, int]]
) -> dict[tuple[TableName, TableName], PairCounts]:
    by_entity: dict[str, list[_Record]] = defaultdict(list)
    by_golden: dict[int, list[_Record]] = defaultdict(list)
    by_both: dict[tuple[int, str], list[_Record]] = defaultdict(list)
    for record in records:
        by_entity[record.entity_id].append(record)
        if record.automatic:
            by_golden[record.golden_id].append(record)
            by_both[(record.golden_id, record.entity_id)].append(record)
    true_pairs = _group_pairs(by_entity.values())
    automatic = _group_pairs(by_golden.values())
    correct = _group_pairs(by_both.values())

    # True pairs split over two golden records that a review task compares.
    reviewed: Counter[tuple[TableName, TableName]] = Counter()
    if review_pairs:
        for members in by_entity.values():
            goldens: dict[int, Counter[TableName]] = defaultdict(Counter)
            for record in members:
                goldens[record.golden_id][record.table] += 1
            if len(goldens) < 2:
                continue
            ids = sorted(goldens)
            for i, left in enumerate(ids):
                for right in ids[i + 1 :]:
                    if (left, right) in review_pairs:
                        for a, n in goldens[left].items():
                            for b, m in goldens[right].items():
                                reviewed[(min(a, b), max(a, b))] += n * m
    keys = set(true_pairs) | set(automatic) | set(correct) | set(reviewed)
    return {
        key: PairCounts(true_pairs[key], automatic[key], correct[key], reviewed[key])
        for key in sorted(keys)
    }


__all__ = ["PairCounts", "QualityReport", "evaluate", "libpq_url"]
