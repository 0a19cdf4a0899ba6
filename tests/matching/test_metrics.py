"""Pairwise, B-cubed and duplicate-rate metrics: hand-checked tables and brute-force properties."""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from itertools import combinations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from matching.metrics import (
    score_bcubed,
    score_pairs,
    score_pairwise,
    summarize_duplicates,
)

# (predicted, truth, true_positives, predicted_pairs, true_pairs)
PAIRWISE_CASES = [
    pytest.param([1, 1, 2, 2], ["a", "a", "b", "b"], 2, 2, 2, id="perfect"),
    pytest.param([1, 2, 3, 4], ["a", "a", "b", "b"], 0, 0, 2, id="all-singletons"),
    pytest.param([1, 1, 1, 1], ["a", "a", "b", "b"], 2, 6, 2, id="one-big-cluster"),
    pytest.param([1, 1, 1, 2], ["a", "a", "b", "b"], 1, 3, 2, id="one-wrong-member"),
    pytest.param([1, 1, 1], ["a", "a", "a"], 3, 3, 3, id="triangle"),
    pytest.param([], [], 0, 0, 0, id="empty"),
    pytest.param([1, 1, None, None], [None, None, "a", "a"], 0, 1, 1, id="unknown-is-singleton"),
]


@pytest.mark.parametrize(
    ("predicted", "truth", "true_positives", "predicted_pairs", "true_pairs"), PAIRWISE_CASES
)
def test_pairwise_counts_match_hand_counts(
    predicted: list[Hashable],
    truth: list[Hashable],
    true_positives: int,
    predicted_pairs: int,
    true_pairs: int,
) -> None:
    scores = score_pairwise(predicted, truth)
    assert (scores.true_positives, scores.predicted_pairs, scores.true_pairs) == (
        true_positives,
        predicted_pairs,
        true_pairs,
    )


@pytest.mark.parametrize(
    ("predicted", "truth", "precision", "recall", "f1"),
    [
        ([1, 1, 2, 2], ["a", "a", "b", "b"], 1.0, 1.0, 1.0),
        ([1, 2, 3, 4], ["a", "a", "b", "b"], 1.0, 0.0, 0.0),
        ([1, 1, 1, 1], ["a", "a", "b", "b"], 1 / 3, 1.0, 0.5),
        ([1, 1, 1, 2], ["a", "a", "b", "b"], 1 / 3, 0.5, 0.4),
        ([1, 2, 3], ["a", "b", "c"], 1.0, 1.0, 1.0),
    ],
)
def test_pairwise_ratios(
    predicted: list[int], truth: list[str], precision: float, recall: float, f1: float
) -> None:
    scores = score_pairwise(predicted, truth)
    assert scores.precision == pytest.approx(precision)
    assert scores.recall == pytest.approx(recall)
    assert scores.f1 == pytest.approx(f1)


def test_link_mode_counts_only_pairs_across_sources() -> None:
    # Entity "a": two records in A, one in B. Cluster 1 holds all three.
    predicted = [1, 1, 1, 2]
    truth = ["a", "a", "a", "b"]
    sources = ["A", "A", "B", "B"]
    scores = score_pairwise(predicted, truth, sources=sources)
    assert (scores.true_positives, scores.predicted_pairs, scores.true_pairs) == (2, 2, 2)


def test_score_pairs_ignores_repeats_self_pairs_and_order() -> None:
    truth = {"r1": "a", "r2": "a", "r3": "b", "r4": "b"}
    pairs = [("r1", "r2"), ("r2", "r1"), ("r3", "r3"), ("r2", "r3")]
    scores = score_pairs(pairs, truth)
    assert (scores.true_positives, scores.predicted_pairs, scores.true_pairs) == (1, 2, 2)
    assert scores.false_positives == 1
    assert scores.false_negatives == 1


def test_score_pairs_in_link_mode_drops_pairs_within_a_source() -> None:
    truth = {"a1": "x", "a2": "x", "b1": "x"}
    sources = {"a1": "A", "a2": "A", "b1": "B"}
    scores = score_pairs([("a1", "a2"), ("a1", "b1")], truth, sources=sources)
    assert (scores.true_positives, scores.predicted_pairs, scores.true_pairs) == (1, 1, 2)


def test_score_pairs_names_a_record_missing_from_truth() -> None:
    with pytest.raises(KeyError, match="ghost"):
        score_pairs([("r1", "ghost")], {"r1": "a"})


def test_mismatched_lengths_are_refused() -> None:
    with pytest.raises(ValueError, match="differ in length"):
        score_pairwise([1, 2], [1])
    with pytest.raises(ValueError, match="differ in length"):
        score_bcubed([1, 2], [1])


@pytest.mark.parametrize(
    ("predicted", "truth", "precision", "recall"),
    [
        ([1, 1, 2, 2], ["a", "a", "b", "b"], 1.0, 1.0),
        ([1, 2, 3, 4], ["a", "a", "b", "b"], 1.0, 0.5),
        ([1, 1, 1, 1], ["a", "a", "b", "b"], 0.5, 1.0),
        # Cluster {0,1,2} with entities a,a,b; cluster {3} with entity b.
        (
            [1, 1, 1, 2],
            ["a", "a", "b", "b"],
            (2 / 3 + 2 / 3 + 1 / 3 + 1) / 4,
            (1 + 1 + 0.5 + 0.5) / 4,
        ),
        ([], [], 1.0, 1.0),
    ],
)
def test_bcubed_matches_hand_computation(
    predicted: list[int], truth: list[str], precision: float, recall: float
) -> None:
    scores = score_bcubed(predicted, truth)
    assert scores.precision == pytest.approx(precision)
    assert scores.recall == pytest.approx(recall)


@pytest.mark.parametrize(
    ("clusters", "records", "n_clusters", "duplicates", "rate", "with_duplicates", "largest"),
    [
        ([1, 1, 2, 3, 3, 3], 6, 3, 3, 0.5, 2, 3),
        ([1, 2, 3], 3, 3, 0, 0.0, 0, 1),
        ([], 0, 0, 0, 0.0, 0, 0),
        ([None, None, 7], 3, 3, 0, 0.0, 0, 1),
    ],
)
def test_duplicate_summary(
    clusters: list[int | None],
    records: int,
    n_clusters: int,
    duplicates: int,
    rate: float,
    with_duplicates: int,
    largest: int,
) -> None:
    summary = summarize_duplicates(clusters)
    assert summary.records == records
    assert summary.clusters == n_clusters
    assert summary.duplicate_records == duplicates
    assert summary.duplicate_rate == pytest.approx(rate)
    assert summary.clusters_with_duplicates == with_duplicates
    assert summary.largest_cluster == largest


# --- properties -------------------------------------------------------------------------------

labels = st.integers(min_value=0, max_value=5)


@st.composite
def labelled_records(draw: st.DrawFn) -> tuple[list[int], list[int], list[str]]:
    n = draw(st.integers(min_value=0, max_value=30))
    predicted = draw(st.lists(labels, min_size=n, max_size=n))
    truth = draw(st.lists(labels, min_size=n, max_size=n))
    sources = draw(st.lists(st.sampled_from("AB"), min_size=n, max_size=n))
    return predicted, truth, sources


def _brute_force_pairs(
    predicted: Sequence[int], truth: Sequence[int], sources: Sequence[str] | None
) -> tuple[int, int, int]:
    tp = pred = true = 0
    for i, j in combinations(range(len(predicted)), 2):
        if sources is not None and sources[i] == sources[j]:
            continue
        same_cluster = predicted[i] == predicted[j]
        same_entity = truth[i] == truth[j]
        pred += same_cluster
        true += same_entity
        tp += same_cluster and same_entity
    return tp, pred, true


@given(labelled_records(), st.booleans())
def test_pairwise_counts_equal_brute_force_enumeration(
    data: tuple[list[int], list[int], list[str]], link: bool
) -> None:
    predicted, truth, sources = data
    scores = score_pairwise(predicted, truth, sources=sources if link else None)
    expected = _brute_force_pairs(predicted, truth, sources if link else None)
    assert (scores.true_positives, scores.predicted_pairs, scores.true_pairs) == expected


@given(labelled_records())
def test_bcubed_equals_per_record_definition(data: tuple[list[int], list[int], list[str]]) -> None:
    predicted, truth, _ = data
    scores = score_bcubed(predicted, truth)
    n = len(predicted)
    precision = recall = 0.0
    for i in range(n):
        cluster = {j for j in range(n) if predicted[j] == predicted[i]}
        entity = {j for j in range(n) if truth[j] == truth[i]}
        precision += len(cluster & entity) / len(cluster)
        recall += len(cluster & entity) / len(entity)
    assert scores.precision == pytest.approx(precision / n if n else 1.0)
    assert scores.recall == pytest.approx(recall / n if n else 1.0)


@given(labelled_records())
def test_perfect_clustering_scores_one(data: tuple[list[int], list[int], list[str]]) -> None:
    _, truth, _ = data
    relabelled = [f"cluster-{label}" for label in truth]
    assert score_pairwise(relabelled, truth).f1 == pytest.approx(1.0)
    bcubed = score_bcubed(relabelled, truth)
    assert (bcubed.precision, bcubed.recall) == pytest.approx((1.0, 1.0))


@given(labelled_records(), st.permutations(range(6)), st.permutations(range(6)))
def test_metrics_are_invariant_to_relabelling(
    data: tuple[list[int], list[int], list[str]],
    cluster_map: list[int],
    entity_map: list[int],
) -> None:
    predicted, truth, sources = data
    renamed_predicted = [cluster_map[label] for label in predicted]
    renamed_truth = [f"e{entity_map[label]}" for label in truth]
    assert score_pairwise(renamed_predicted, renamed_truth, sources=sources) == score_pairwise(
        predicted, truth, sources=sources
    )
    before = score_bcubed(predicted, truth)
    after = score_bcubed(renamed_predicted, renamed_truth)
    assert (after.precision, after.recall) == pytest.approx((before.precision, before.recall))


@given(labelled_records())
def test_swapping_prediction_and_truth_swaps_precision_and_recall(
    data: tuple[list[int], list[int], list[str]],
) -> None:
    predicted, truth, _ = data
    forward, backward = score_pairwise(predicted, truth), score_pairwise(truth, predicted)
    assert forward.precision == pytest.approx(backward.recall)
    assert forward.recall == pytest.approx(backward.precision)
    forward_b, backward_b = score_bcubed(predicted, truth), score_bcubed(truth, predicted)
    assert forward_b.precision == pytest.approx(backward_b.recall)


@given(labelled_records(), st.booleans())
def test_scoring_every_pair_of_a_clustering_equals_scoring_the_clustering(
    data: tuple[list[int], list[int], list[str]], link: bool
) -> None:
    predicted, truth, sources = data
    pairs = [
        (i, j) for i, j in combinations(range(len(predicted)), 2) if predicted[i] == predicted[j]
    ]
    truth_by_id = dict(enumerate(truth))
    sources_by_id = dict(enumerate(sources)) if link else None
    from_pairs = score_pairs(pairs, truth_by_id, sources=sources_by_id)
    from_clusters = score_pairwise(predicted, truth, sources=sources if link else None)
    assert from_pairs == from_clusters


@given(st.lists(labels, max_size=40))
def test_duplicate_summary_adds_up(clusters: list[int]) -> None:
    summary = summarize_duplicates(clusters)
    assert summary.records == len(clusters)
    assert summary.duplicate_records + summary.clusters == summary.records
    assert 0.0 <= summary.duplicate_rate < 1.0 or summary.records == 0


def test_a_million_records_are_scored_without_enumerating_pairs() -> None:
    # 1M records in 250k entities of 4; the clustering splits each entity in two halves.
    n = 1_000_000
    truth = [i // 4 for i in range(n)]
    predicted = [i // 2 for i in range(n)]
    scores = score_pairwise(predicted, truth)
    assert scores.true_pairs == 250_000 * 6
    assert scores.predicted_pairs == 500_000
    assert scores.precision == 1.0
    assert scores.recall == pytest.approx(1 / 3)
