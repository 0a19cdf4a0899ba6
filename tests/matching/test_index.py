"""Incremental index and batch dedupe: same scores as the model, right clusters."""

from __future__ import annotations

import numpy as np
from matching_testkit import person, population, trained_model

from matching import MatchIndex, dedupe


def test_match_one_finds_the_duplicate_best_first() -> None:
    index = MatchIndex(trained_model())
    index.add("orig", person())
    index.add("other", person(given_name="zoe", given_name_raw="zoe", national_id="5",
                              dob="1990-01-01"))  # fmt: skip
    index.add("stranger", person(given_name="oscar", given_name_raw="oscar", family_name="lee",
                                 dob="1990-02-03", national_id="77", street="light street",
                                 house_number="1", postcode="2000", city="dapto"))  # fmt: skip
    new = person(given_name="mitchel", given_name_raw="mitchel", postcode=None)
    results = index.match_one(new)
    assert [r.candidate_id for r in results] == ["orig"]
    assert results[0].decision == "match"
    assert results[0].weight == trained_model().score(new, person()).weight
    # The relative is a candidate but scores below review; the stranger shares no
    # blocking key and is never scored.
    everything = index.match_one(new, include_no_match=True)
    assert [r.candidate_id for r in everything] == ["orig", "other"]
    assert everything[1].decision == "no_match"
    assert index.match_one(new, exclude="orig", include_no_match=True)[0].candidate_id == "other"
    assert len(index.match_one(new, include_no_match=True, limit=1)) == 1


def test_remove_and_replace() -> None:
    index = MatchIndex(trained_model())
    index.add(1, person())
    index.add(2, person())
    assert len(index) == 2
    assert 1 in index
    assert index.remove(1)
    assert not index.remove(1)
    assert [r.candidate_id for r in index.match_one(person())] == [2]
    # Re-adding an id replaces its features.
    index.add(2, person(given_name="zoe", given_name_raw="zoe", family_name="nguyen",
                        national_id="5", dob="1990-01-01", street="light street",
                        house_number="1", postcode="2999", city="dapto"))  # fmt: skip
    assert index.match_one(person()) == []
    assert len(index) == 1


def test_blocks_are_capped_per_key() -> None:
    index = MatchIndex(trained_model(), max_candidates_per_key=3)
    for k in range(10):
        index.add(k, person(national_id=str(k)))  # share every other key
    assert len(index.candidates(person())) == 3
    assert set(index.candidates(person())) == {7, 8, 9}  # the most recently added


def test_incremental_matching_agrees_with_batch_dedupe() -> None:
    model = trained_model()
    records, truth = population(entities=120, duplicates=120, seed=11)
    result = dedupe(model, records)
    index = MatchIndex(model, max_candidates_per_key=model.spec.max_block_size)
    for k, record in enumerate(records):
        index.add(k, record)
    batch = {
        (int(i), int(j)): w
        for i, j, w in zip(result.pairs.left, result.pairs.right, result.pairs.weight, strict=True)
    }
    for k in range(0, len(records), 7):
        for hit in index.match_one(records[k], exclude=k, include_no_match=True):
            pair = (min(k, hit.candidate_id), max(k, hit.candidate_id))
            assert batch[pair] == hit.weight
    t = np.asarray(truth)
    same_cluster = np.array([result.clusters[i] == result.clusters[j]
                             for i, j in zip(result.pairs.left, result.pairs.right, strict=True)])  # fmt: skip
    same_entity = t[result.pairs.left] == t[result.pairs.right]
    assert (same_cluster & ~same_entity).sum() == 0
    assert (same_cluster & same_entity).sum() >= 0.97 * same_entity.sum()


def test_dedupe_respects_steward_constraints_and_link_groups() -> None:
    model = trained_model()
    records = [person(), person(given_name="mitchel", given_name_raw="mitchel"), person()]
    ids = ["a", "b", "c"]
    plain = dedupe(model, records, ids=ids)
    assert plain.cluster_count() == 1
    apart = dedupe(model, records, ids=ids, cannot_link=[("a", "b"), ("b", "c")])
    assert apart.clusters["b"] != apart.clusters["a"]
    linked = dedupe(model, records, ids=ids, groups=["crm", "erp", "crm"])
    assert len(linked.pairs) == 2  # a-b and b-c only: never two records of one source


def test_match_many_matches_each_record_without_filing_it() -> None:
    index = MatchIndex(trained_model())
    index.add("orig", person())
    results = index.match_many([person(), person(national_id="1804947"), person(family_name="x")])
    assert [[r.candidate_id for r in hits] for hits in results][:2] == [["orig"], ["orig"]]
    assert len(index) == 1


def test_dedupe_with_threads_scores_the_same() -> None:
    records, _ = population(entities=80, duplicates=80, seed=5)
    single = dedupe(trained_model(), records)
    threaded = dedupe(trained_model(), records, workers=2)
    assert threaded.pairs.weight.tolist() == single.pairs.weight.tolist()
    assert threaded.clusters == single.clusters
