"""Evaluation of predicted clusters or pairs against truth labels, and duplicate-rate summaries.

Pair counts come from the contingency table of (predicted cluster, true entity) sizes, so
scoring a million records never enumerates their pairs: a group of ``n`` records holds
``n * (n - 1) / 2`` pairs, and in link mode, where only pairs across sources count, a group
with ``n_s`` records from source ``s`` holds ``(n**2 - sum(n_s**2)) / 2`` of them.

A label of ``None`` means "unknown": that record is its own cluster (or its own entity).
Conventions at the edges: with no predicted pairs precision is 1.0 (nothing was claimed, so
nothing was wrong), with no true pairs recall is 1.0, and F1 is 0.0 when both are 0.0.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TypeVar

__all__ = [
    "BCubedScores",
    "DuplicateSummary",
    "PairwiseScores",
    "score_bcubed",
    "score_pairs",
    "score_pairwise",
    "summarize_duplicates",
]

RecordId = TypeVar("RecordId", bound=Hashable)


def _harmonic_mean(precision: float, recall: float) -> float:
    if precision + recall == 0.0:
        return 0.0
    return 2.0 * precision * recall / (precision + recall)


@dataclass(frozen=True)
class PairwiseScores:
    """Pairwise confusion counts and the precision, recall and F1 derived from them."""

    true_positives: int
    predicted_pairs: int
    true_pairs: int

    @property
    def false_positives(self) -> int:
        return self.predicted_pairs - self.true_positives

    @property
    def false_negatives(self) -> int:
        return self.true_pairs - self.true_positives

    @property
    def precision(self) -> float:
        if self.predicted_pairs == 0:
            return 1.0
        return self.true_positives / self.predicted_pairs

    @property
    def recall(self) -> float:
        if self.true_pairs == 0:
            return 1.0
        return self.true_positives / self.true_pairs

    @property
    def f1(self) -> float:
        return _harmonic_mean(self.precision, self.recall)


@dataclass(frozen=True)
class BCubedScores:
    """B-cubed precision and recall: per-record overlap of its cluster and its entity, averaged."""

    precision: float
    recall: float

    @property
    def f1(self) -> float:
        return _harmonic_mean(self.precision, self.recall)


@dataclass(frozen=True)
class DuplicateSummary:
    """How many records describe an entity that another record already describes."""

    records: int
    clusters: int
    clusters_with_duplicates: int
    largest_cluster: int

    @property
    def duplicate_records(self) -> int:
        """Records beyond the first of their cluster: what a perfect merge would remove."""
        return self.records - self.clusters

    @property
    def duplicate_rate(self) -> float:
        return self.duplicate_records / self.records if self.records else 0.0


class _Singleton:
    """A label equal only to itself: stands in for ``None`` so unknown records never pair."""

    __slots__ = ()


def _known(labels: Iterable[Hashable | None]) -> list[Hashable]:
    return [_Singleton() if label is None else label for label in labels]


def _check_lengths(**columns: Sequence[Hashable | None] | None) -> int:
    lengths = {name: len(column) for name, column in columns.items() if column is not None}
    if len(set(lengths.values())) > 1:
        raise ValueError(f"label sequences differ in length: {lengths}")
    return next(iter(lengths.values()), 0)


def _pairs_within(groups: Sequence[Hashable], sources: Sequence[Hashable] | None) -> int:
    """Pairs of records sharing a group; with sources, only pairs across two sources."""
    if sources is None:
        return sum(n * (n - 1) // 2 for n in Counter(groups).values())
    group_sizes: Counter[Hashable] = Counter()
    same_source_squares = 0
    for (group, _source), n in Counter(zip(groups, sources, strict=True)).items():
        group_sizes[group] += n
        same_source_squares += n * n
    all_squares = sum(n * n for n in group_sizes.values())
    return (all_squares - same_source_squares) // 2


def score_pairwise(
    predicted: Sequence[Hashable | None],
    truth: Sequence[Hashable | None],
    *,
    sources: Sequence[Hashable] | None = None,
) -> PairwiseScores:
    """Score a clustering pair by pair against the true entities, in O(records).

    Args:
        predicted: the predicted cluster label of each record.
        truth: the true entity label of each record, aligned with ``predicted``.
        sources: in link mode, the source (file, system) of each record; only pairs across
            two different sources are then counted, on both sides.

    Returns:
        Counts of true positive, predicted and true pairs; precision, recall and F1.
    """
    _check_lengths(predicted=predicted, truth=truth, sources=sources)
    predicted_known = _known(predicted)
    truth_known = _known(truth)
    both = list(zip(predicted_known, truth_known, strict=True))
    return PairwiseScores(
        true_positives=_pairs_within(both, sources),
        predicted_pairs=_pairs_within(predicted_known, sources),
        true_pairs=_pairs_within(truth_known, sources),
    )


def score_pairs(
    pairs: Iterable[tuple[RecordId, RecordId]],
    truth: Mapping[RecordId, Hashable | None],
    *,
    sources: Mapping[RecordId, Hashable] | None = None,
) -> PairwiseScores:
    """Score predicted pairs (not closed under transitivity) against the true entities.

    Args:
        pairs: record-id pairs predicted to match; order within a pair and repeats do not
            matter, and a record paired with itself is ignored.
        truth: the true entity label of every record, keyed by record id. Every record of
            the data set must be present, since the true pairs are counted from it.
        sources: in link mode, the source of every record; pairs within one source are then
            ignored on both sides.

    Returns:
        Counts of true positive, predicted and true pairs; precision, recall and F1.

    Raises:
        KeyError: a paired record id is missing from ``truth`` (or ``sources``).
    """
    seen: set[frozenset[RecordId]] = set()
    true_positives = 0
    for left, right in pairs:
        key = frozenset((left, right))
        if len(key) < 2 or key in seen:
            continue
        if sources is not None and sources[left] == sources[right]:
            continue
        seen.add(key)
        left_entity, right_entity = truth[left], truth[right]
        if left_entity is not None and left_entity == right_entity:
            true_positives += 1
    ids = list(truth)
    true_labels = _known(truth[record] for record in ids)
    source_labels = None if sources is None else [sources[record] for record in ids]
    return PairwiseScores(
        true_positives=true_positives,
        predicted_pairs=len(seen),
        true_pairs=_pairs_within(true_labels, source_labels),
    )


def score_bcubed(
    predicted: Sequence[Hashable | None], truth: Sequence[Hashable | None]
) -> BCubedScores:
    """B-cubed precision and recall of a clustering, from the cluster/entity contingency table.

    For a record in cluster C and entity E, its precision is |C ∩ E| / |C| and its recall
    |C ∩ E| / |E|; the scores are the means over records (1.0 for an empty input).
    """
    records = _check_lengths(predicted=predicted, truth=truth)
    if records == 0:
        return BCubedScores(precision=1.0, recall=1.0)
    predicted_known = _known(predicted)
    truth_known = _known(truth)
    cluster_sizes = Counter(predicted_known)
    entity_sizes = Counter(truth_known)
    precision_sum = 0.0
    recall_sum = 0.0
    for (cluster, entity), overlap in Counter(
        zip(predicted_known, truth_known, strict=True)
    ).items():
        squared = overlap * overlap
        precision_sum += squared / cluster_sizes[cluster]
        recall_sum += squared / entity_sizes[entity]
    return BCubedScores(precision=precision_sum / records, recall=recall_sum / records)


def summarize_duplicates(clusters: Iterable[Hashable | None]) -> DuplicateSummary:
    """Records, clusters and duplicates of a clustering (a ``None`` label is a singleton)."""
    sizes = Counter(_known(clusters))
    return DuplicateSummary(
        records=sum(sizes.values()),
        clusters=len(sizes),
        clusters_with_duplicates=sum(1 for n in sizes.values() if n > 1),
        largest_cluster=max(sizes.values(), default=0),
    )
