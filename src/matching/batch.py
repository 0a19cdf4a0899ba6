"""Batch dedupe and link: block, score candidate pairs with numpy, cluster the matches.

The scores are the same numbers ``MatchModel.score`` gives for each pair (same levels, same
weights added in the same order); only the way they are computed differs.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from matching.blocking import (
    BlockingRule,
    group_codes_of,
    pairs_from_memberships,
    rule_memberships,
)
from matching.cluster import RecordId, cluster_records
from matching.comparison import TextCache, parse_date, text_value, values_conflict
from matching.model import MatchModel
from matching.table import IntArray, LevelMatrix, RecordTable, gc_paused

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]

DECISION_NO_MATCH = 0
DECISION_REVIEW = 1
DECISION_MATCH = 2
DECISIONS = ("no_match", "review", "match")


@dataclass(frozen=True)
class PairScores:
    """Scores of many pairs ``(left[k], right[k])`` (positions in the scored record list)."""

    left: IntArray
    right: IntArray
    levels: LevelMatrix
    weight: FloatArray
    probability: FloatArray
    hard_conflict: BoolArray
    decision: npt.NDArray[np.int8]
    """0 no_match, 1 review, 2 match (see ``DECISIONS``)."""

    def __len__(self) -> int:
        return len(self.left)


def score_pairs(
    model: MatchModel,
    table: RecordTable,
    left: IntArray,
    right: IntArray,
    conflict_values: Sequence[Sequence[Any]],
) -> PairScores:
    """Score candidate pairs of a ``RecordTable`` built with ``model.spec``.

    ``conflict_values`` are the records' hard-conflict values (``conflict_values_of``).
    """
    levels = table.levels(left, right)
    total = np.full(len(left), model.prior_weight)
    for c, comp in enumerate(table.comparisons):
        weights = np.array([model.level_weight(c, lv) for lv in range(comp.n_levels)])
        contribution = weights[levels[:, c]]
        if comp.spec.tf_adjust:
            keys = [None if v is None else comp.tf_key(v) for v in table.prepared[c]]
            adjustment = {k: model.tf_adjustment(c, k) for k in set(keys) if k is not None}
            tf = np.array([0.0 if k is None else adjustment[k] for k in keys])
            exact = levels[:, c] == 1
            contribution = contribution + np.where(exact, np.minimum(tf[left], tf[right]), 0.0)
        total += contribution
    probability = 1.0 / (1.0 + np.exp2(-np.clip(total, -1000.0, 1000.0)))
    spec = model.spec
    hard = np.zeros(len(left), dtype=bool)
    if spec.hard_conflicts:
        values = conflict_values
        tolerances = [(h.field == "dob", h.tolerance) for h in spec.hard_conflicts]
        for k in np.nonzero(probability >= spec.match_probability)[0].tolist():
            va, vb = values[left[k]], values[right[k]]
            hard[k] = any(
                a is not None
                and b is not None
                and values_conflict(a, b, is_date=is_date, tolerance=tolerance)
                for a, b, (is_date, tolerance) in zip(va, vb, tolerances, strict=True)
            )
    decision = np.where(
        probability >= spec.match_probability,
        np.where(hard, DECISION_REVIEW, DECISION_MATCH),
        np.where(probability >= spec.review_probability, DECISION_REVIEW, DECISION_NO_MATCH),
    ).astype(np.int8)
    return PairScores(left, right, levels, total, probability, hard, decision)


def conflict_values_of(
    model: MatchModel, records: Sequence[Mapping[str, Any]]
) -> list[tuple[Any, ...]]:
    """Each record's hard-conflict values, in the spec's order (None when missing)."""
    slots = [(h.field, h.field == "dob") for h in model.spec.hard_conflicts]
    return [
        tuple(parse_date(r.get(f)) if is_date else text_value(r.get(f)) for f, is_date in slots)
        for r in records
    ]


@dataclass(frozen=True)
class DedupeResult:
    """Clusters plus the scored candidate pairs that produced them."""

    clusters: dict[Any, Any]
    """record id -> cluster id (a member's record id)."""
    pairs: PairScores
    ids: list[Any]

    def cluster_count(self) -> int:
        return len(set(self.clusters.values()))


@gc_paused
def dedupe(
    model: MatchModel,
    records: Sequence[Mapping[str, Any]],
    *,
    ids: Sequence[RecordId] | None = None,
    groups: Sequence[Any] | None = None,
    cannot_link: Iterable[tuple[RecordId, RecordId]] = (),
    must_link: Iterable[tuple[RecordId, RecordId]] = (),
    previous: Mapping[RecordId, RecordId] | None = None,
    workers: int = 1,
) -> DedupeResult:
    """Find duplicate clusters among feature records.

    Args:
        model: the trained model.
        records: feature dicts.
        ids: record ids (default: positions 0..n-1).
        groups: link mode: each record's source; only pairs across sources are compared.
        cannot_link, must_link, previous: see ``cluster_records``.
        workers: threads for string comparisons (-1: all cores).
    """
    record_ids: list[Any] = list(ids) if ids is not None else list(range(len(records)))
    if len(record_ids) != len(records):
        raise ValueError("ids and records differ in length")
    texts: TextCache = {}
    memberships = rule_memberships([BlockingRule(r) for r in model.spec.blocking], records, texts)
    left, right = pairs_from_memberships(
        np.concatenate([p for p, _ in memberships]),
        np.concatenate([k for _, k in memberships]),
        max_block_size=model.spec.max_block_size,
        group_codes=group_codes_of(groups),
    )
    del memberships
    table = RecordTable(model.spec, records, texts, workers=workers)
    del texts
    conflicts = conflict_values_of(model, records)
    scores = score_pairs(model, table, left, right, conflicts)
    matched = np.nonzero(scores.decision == DECISION_MATCH)[0]
    edges = [
        (record_ids[i], record_ids[j], w)
        for i, j, w in zip(
            left[matched].tolist(),
            right[matched].tolist(),
            scores.weight[matched].tolist(),
            strict=True,
        )
    ]
    tolerances = [(h.field == "dob", h.tolerance) for h in model.spec.hard_conflicts]

    def conflict(slot: int, a: Any, b: Any) -> bool:
        is_date, tolerance = tolerances[slot]
        return values_conflict(a, b, is_date=is_date, tolerance=tolerance)

    clusters = cluster_records(
        record_ids,
        edges,
        conflict_values=dict(zip(record_ids, conflicts, strict=True)),
        conflicts=conflict,
        cannot_link=cannot_link,
        must_link=must_link,
        previous=previous,
    )
    return DedupeResult(clusters, scores, record_ids)
