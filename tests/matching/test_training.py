"""Fellegi-Sunter training: EM recovers parameters, separates matches, is reproducible."""

from __future__ import annotations

from typing import Any

import numpy as np
from matching_testkit import person, population, trained_model

from matching import MatchModel, dedupe, febrl_spec, refine_with_labels, train
from matching.training import run_em, sample_records


def _simulate(
    rng: np.random.Generator, n: int, share: float, m: list[float], u: list[float], comps: int
) -> np.ndarray:
    """Level matrix for ``comps`` independent comparisons with levels 1..len(m)."""
    is_match = rng.random(n) < share
    levels = np.zeros((n, comps), dtype=np.int8)
    for c in range(comps):
        levels[is_match, c] = rng.choice(len(m), size=int(is_match.sum()), p=m) + 1
        levels[~is_match, c] = rng.choice(len(u), size=int((~is_match).sum()), p=u) + 1
    return levels


def test_em_converges_to_the_generating_m_and_match_share() -> None:
    rng = np.random.default_rng(3)
    true_m, true_u = [0.8, 0.15, 0.05], [0.02, 0.08, 0.9]
    levels = _simulate(rng, 40_000, 0.2, true_m, true_u, comps=4)
    start = [np.array([0.5, 0.3, 0.2])] * 4
    u = [np.array(true_u)] * 4
    result = run_em(levels, [4] * 4, start, u, 0.5, max_iterations=200)
    assert result.converged
    assert abs(result.prior - 0.2) < 0.01
    for m in result.m:
        assert np.allclose(m, true_m, atol=0.02)


def test_em_leaves_inactive_comparisons_alone() -> None:
    rng = np.random.default_rng(4)
    levels = _simulate(rng, 5_000, 0.3, [0.9, 0.1], [0.1, 0.9], comps=3)
    start = [np.array([0.6, 0.4])] * 3
    result = run_em(levels, [3] * 3, start, [np.array([0.1, 0.9])] * 3, 0.5,
                    active=[True, True, False])  # fmt: skip
    assert result.m[2].tolist() == [0.6, 0.4]
    assert result.m[0][0] > 0.85


def test_training_without_labels_separates_matches_from_non_matches() -> None:
    records, truth = population()
    result = dedupe(trained_model(), records)
    t = np.asarray(truth)
    left, right, decision = result.pairs.left, result.pairs.right, result.pairs.decision
    same = t[left] == t[right]
    matched = decision == 2
    true_pairs = int((np.bincount(t) * (np.bincount(t) - 1) // 2).sum())
    precision = (matched & same).sum() / max(matched.sum(), 1)
    recall = (matched & same).sum() / true_pairs
    assert precision >= 0.99
    assert recall >= 0.97


def test_agreement_weights_are_positive_and_disagreement_negative() -> None:
    model = trained_model()
    for c, comp in enumerate(model.spec.comparisons):
        assert model.level_weight(c, 1) > 0, comp.name
        assert model.level_weight(c, comp.n_levels - 1) < 0, comp.name
    assert 0 < model.prior < 0.01


def test_training_is_reproducible_with_a_seed_and_reports_its_sessions() -> None:
    records, _ = population(entities=150, duplicates=100, seed=1)
    first = train(febrl_spec(), records, seed=5, u_pairs=20_000)
    second = train(febrl_spec(), records, seed=5, u_pairs=20_000)
    assert first.version == second.version
    sessions = first.training["em_sessions"]
    assert {s["rule"] for s in sessions} >= {"ni", "dd"}
    assert all(s["converged"] for s in sessions)


def test_common_values_earn_less_on_exact_agreement_than_rare_ones() -> None:
    model = trained_model()
    family = [c.name for c in model.spec.comparisons].index("family_name")
    counts = model.tf_tables["family_name"].counts
    common = max(counts, key=lambda k: counts[k])
    assert model.tf_adjustment(family, common) < model.tf_adjustment(family, "zyzzogeton")
    base = {"given_name": "x", "given_name_raw": "x"}
    assert (
        model.score(person(family_name=common, **base), person(family_name=common, **base)).weight
        < model.score(person(family_name="zyzzogeton", **base),
                      person(family_name="zyzzogeton", **base)).weight
    )  # fmt: skip


def test_refinement_from_confirmed_matches_moves_m_towards_what_stewards_saw() -> None:
    model = trained_model()
    # Stewards keep confirming pairs whose street is entirely different.
    pairs = [
        (person(street="wallaby place"), person(street=f"elsewhere road {k}"), True)
        for k in range(200)
    ]
    refined = refine_with_labels(model, pairs)
    street = [c.name for c in model.spec.comparisons].index("street")
    else_level = model.spec.comparisons[street].n_levels - 1
    assert refined.level_weight(street, else_level) > model.level_weight(street, else_level)
    assert refined.version != model.version
    assert refined.training["labelled_matches"] == 200


# --- training on a sample of the records ------------------------------------------------------


def _pairwise_f1(model: MatchModel, records: list[dict[str, Any]], truth: list[int]) -> float:
    t = np.asarray(truth)
    pairs = dedupe(model, records).pairs
    matched = pairs.decision == 2
    correct = int((matched & (t[pairs.left] == t[pairs.right])).sum())
    true_pairs = int((np.bincount(t) * (np.bincount(t) - 1) // 2).sum())
    return 2 * correct / (int(matched.sum()) + true_pairs)


def test_a_sample_trains_on_that_many_records_but_counts_term_frequencies_over_all() -> None:
    records, _ = population()
    full = train(febrl_spec(), records, seed=0, u_pairs=100_000)
    sampled = train(febrl_spec(), records, sample=300, seed=0, u_pairs=100_000)
    assert sampled.training["records"] == 300
    assert sampled.training["population"] == len(records) == 800
    assert full.training["records"] == 800
    # A value seen twice in the input is mostly seen once (and dropped) in a 300-record sample.
    assert sampled.tf_tables == full.tf_tables
    assert sampled.version != full.version


def test_a_sample_as_large_as_the_input_is_the_whole_input() -> None:
    records, _ = population(entities=150, duplicates=100, seed=1)
    whole = train(febrl_spec(), records, seed=2, u_pairs=20_000)
    for sample in (0, len(records), 10 * len(records)):
        model = train(febrl_spec(), records, sample=sample, seed=2, u_pairs=20_000)
        assert model.version == whole.version


def test_the_training_sample_is_reproducible_for_a_seed() -> None:
    records, _ = population(entities=300, duplicates=300, seed=2)
    first = train(febrl_spec(), records, sample=250, seed=5, u_pairs=20_000)
    again = train(febrl_spec(), records, sample=250, seed=5, u_pairs=20_000)
    other = train(febrl_spec(), records, sample=250, seed=6, u_pairs=20_000)
    assert first.version == again.version
    assert other.version != first.version
    picked = sample_records(600, 250, seed=5)
    assert picked is not None
    assert len(set(picked.tolist())) == 250
    assert picked.tolist() == sorted(picked.tolist())
    assert np.array_equal(picked, sample_records(600, 250, seed=5))


def test_a_link_sample_keeps_every_source() -> None:
    groups = ["big"] * 5_000 + ["small"] * 3 + ["tiny"]
    for seed in range(20):
        picked = sample_records(len(groups), 50, groups=groups, seed=seed)
        assert picked is not None
        kept = {groups[k] for k in picked.tolist()}
        assert kept == {"big", "small", "tiny"}, seed
        assert 50 <= len(picked) <= 52


def test_link_training_on_a_sample_keeps_both_sources() -> None:
    records, _ = population(entities=300, duplicates=300, seed=4)
    groups = ["a"] * 300 + ["b"] * 300
    model = train(febrl_spec(), records, groups=groups, sample=200, seed=1, u_pairs=20_000)
    assert model.training["records"] == 200
    assert model.training["candidate_pairs"] > 0
    assert 0 < model.prior < 0.05


def test_quality_of_a_model_trained_on_a_third_of_the_records_matches_full_training() -> None:
    records, truth = population(entities=1_500, duplicates=1_500, seed=9)
    full = _pairwise_f1(train(febrl_spec(), records, seed=0, u_pairs=200_000), records, truth)
    sampled = train(febrl_spec(), records, sample=1_000, seed=0, u_pairs=200_000)
    assert full > 0.95
    assert _pairwise_f1(sampled, records, truth) >= full - 0.01
