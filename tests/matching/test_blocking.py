"""Blocking keys and candidate pairs."""

from __future__ import annotations

from itertools import combinations
from typing import Any

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from matching_testkit import person, population

from matching import BlockingRuleSpec, default_spec, febrl_spec
from matching.arrays import sorted_unique, unique_inverse
from matching.blocking import (
    Blocker,
    BlockingRule,
    candidate_pairs,
    pairs_from_memberships,
    rule_memberships,
)


def test_keys_are_prefixed_strings_per_rule() -> None:
    blocker = Blocker(
        [
            BlockingRuleSpec("em", ("emails",)),
            BlockingRuleSpec("fp", ("family_name:soundex", "postcode")),
            BlockingRuleSpec("db", ("dob", "family_name:initial")),
        ]
    )
    features = person(emails=["john@x.com", "j.smith@y.org"], family_name="smith")
    assert blocker.keys(features) == [
        "em:j.smith@y.org",
        "em:john@x.com",
        "fp:S530|2119",
        "db:1956-04-09|s",
    ]


def test_a_missing_part_gives_no_key() -> None:
    rule = BlockingRule(BlockingRuleSpec("fp", ("family_name:soundex", "postcode")))
    assert rule.keys(person(postcode=None)) == []
    assert rule.keys(person(family_name="")) == []


def test_phonetic_keys_meet_despite_spelling() -> None:
    rule = BlockingRule(BlockingRuleSpec("fn", ("family_name:metaphone",)))
    assert rule.keys(person(family_name="smith")) == rule.keys(person(family_name="smyth"))
    rule = BlockingRule(BlockingRuleSpec("fn", ("family_name:nysiis",)))
    assert rule.keys(person(family_name="catherine")) == rule.keys(person(family_name="katherine"))
    assert rule.keys(person(family_name="macdonald")) == rule.keys(person(family_name="mcdonald"))


def test_candidate_pairs_skip_oversized_blocks_and_keep_cross_group_pairs_in_link_mode() -> None:
    keys = [["a:1", "b:x"], ["a:1"], ["a:1", "b:x"], ["c:9"], ["c:9"]]
    left, right = candidate_pairs(keys, max_block_size=2)
    assert list(zip(left.tolist(), right.tolist(), strict=True)) == [(0, 2), (3, 4)]
    left, right = candidate_pairs(keys, max_block_size=10, groups=["s", "t", "s", "s", "t"])
    assert list(zip(left.tolist(), right.tolist(), strict=True)) == [(0, 1), (1, 2), (3, 4)]


@given(
    keys=st.lists(st.lists(st.sampled_from(["a", "b", "c", "d", "e"]), max_size=3), max_size=25),
    cap=st.integers(min_value=2, max_value=30),
)
@settings(max_examples=80, deadline=None)
def test_candidate_pairs_are_exactly_the_pairs_sharing_a_usable_key(
    keys: list[list[str]], cap: int
) -> None:
    sizes: dict[str, int] = {}
    for record_keys in keys:
        for key in set(record_keys):
            sizes[key] = sizes.get(key, 0) + 1
    expected = {
        (i, j)
        for i, j in combinations(range(len(keys)), 2)
        if any(sizes[k] <= cap for k in set(keys[i]) & set(keys[j]))
    }
    left, right = candidate_pairs(keys, max_block_size=cap)
    got = list(zip(left.tolist(), right.tolist(), strict=True))
    assert len(got) == len(set(got))
    assert set(got) == expected


def _true_pair_recall(spec: Any) -> float:
    records, truth = population()
    blocker = Blocker(spec.blocking)
    left, right = candidate_pairs([blocker.keys(r) for r in records], max_block_size=500)
    t = np.asarray(truth)
    found = int((t[left] == t[right]).sum())
    counts = np.bincount(t)
    return found / int((counts * (counts - 1) // 2).sum())


def test_shipped_blocking_keeps_nearly_all_true_pairs_of_noisy_duplicates() -> None:
    assert _true_pair_recall(febrl_spec()) >= 0.995
    assert _true_pair_recall(default_spec()) >= 0.995


def test_batch_memberships_give_the_same_pairs_as_per_record_keys() -> None:
    records, _ = population(entities=150, duplicates=150, seed=3)
    records += [person(emails=["a@x.io", "b@y.io"]), person(emails=["b@y.io"], postcode=None)]
    spec = default_spec()
    blocker = Blocker(spec.blocking)
    expected = candidate_pairs([blocker.keys(r) for r in records], max_block_size=40)
    memberships = rule_memberships(blocker.rules, records)
    got = pairs_from_memberships(
        np.concatenate([p for p, _ in memberships]),
        np.concatenate([k for _, k in memberships]),
        max_block_size=40,
    )
    assert got[0].tolist() == expected[0].tolist()
    assert got[1].tolist() == expected[1].tolist()


@given(st.lists(st.integers(min_value=-5, max_value=40), max_size=60))
@settings(max_examples=60, deadline=None)
def test_sort_based_unique_matches_numpy(values: list[int]) -> None:
    array = np.asarray(values, dtype=np.int64)
    assert sorted_unique(array).tolist() == np.unique(array).tolist()
    uniques, inverse = unique_inverse(array)
    assert uniques.tolist() == np.unique(array).tolist()
    assert uniques[inverse].tolist() == values
