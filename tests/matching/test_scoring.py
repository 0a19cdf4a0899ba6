"""Scoring: symmetric, weights add up, thresholds and hard conflicts decide."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from matching_testkit import FAMILY, GIVEN, STREETS, person, trained_model

from matching import MatchModel, MatchSpec
from matching.scoring import probability_from_weight


@st.composite
def _features(draw: st.DrawFn) -> dict[str, Any]:
    given_name = draw(
        st.one_of(st.none(), st.sampled_from(GIVEN), st.text("abcdeilmnor", max_size=7))
    )
    return person(
        given_name=given_name,
        given_name_raw=given_name,
        family_name=draw(st.one_of(st.none(), st.sampled_from(FAMILY))),
        dob=draw(st.one_of(st.none(), st.dates().map(lambda d: d.isoformat()))),
        national_id=draw(st.one_of(st.none(), st.sampled_from(["1804974", "1809474", "555"]))),
        street=draw(st.one_of(st.none(), st.sampled_from(STREETS))),
        house_number=draw(st.sampled_from([None, "7", "17", "7a"])),
        postcode=draw(st.sampled_from([None, "2119", "2118", "3000"])),
    )


@given(left=_features(), right=_features())
@settings(max_examples=100, deadline=None)
def test_score_is_symmetric(left: dict[str, Any], right: dict[str, Any]) -> None:
    model = trained_model()
    forward, backward = model.score(left, right), model.score(right, left)
    assert forward.weight == backward.weight
    assert forward.levels == backward.levels
    assert forward.decision == backward.decision
    assert forward.hard_conflict == backward.hard_conflict


@given(left=_features(), right=_features())
@settings(max_examples=100, deadline=None)
def test_explanation_weights_add_up_exactly_to_the_total(
    left: dict[str, Any], right: dict[str, Any]
) -> None:
    scored = trained_model().score(left, right)
    explained = scored.explain()
    assert (
        sum((c["weight"] for c in explained["comparisons"]), explained["prior_weight"])
        == (explained["total_weight"])
    )
    assert explained["total_weight"] == scored.weight
    for entry in explained["comparisons"]:
        assert entry["weight"] == entry["level_weight"] + entry["tf_adjustment"]
    assert scored.probability == probability_from_weight(scored.weight)


def test_a_clear_duplicate_matches_and_a_stranger_does_not() -> None:
    model = trained_model()
    original = person()
    duplicate = person(given_name="mitchel", given_name_raw="mitchel", street="wallaby pl",
                       postcode=None)  # fmt: skip
    stranger = person(given_name="zoe", given_name_raw="zoe", family_name="nguyen",
                      dob="1990-01-01", national_id="7777777", house_number="99",
                      street="light street", postcode="2099", city="dapto")  # fmt: skip
    assert model.score(original, duplicate).decision == "match"
    assert model.score(original, stranger).decision == "no_match"
    assert model.score(original, original).probability > 0.999


def _with_thresholds(model: MatchModel, **changes: Any) -> MatchModel:
    data = model.spec.to_dict()
    data.update(changes)
    spec = MatchSpec.from_dict(data)
    return MatchModel(spec, model.parameters, model.prior, model.tf_tables)


def test_hard_conflict_turns_a_match_into_a_review() -> None:
    strict = _with_thresholds(trained_model(), hard_conflicts=["national_id"])
    left, right = person(), person(national_id="9999999")
    scored = strict.score(left, right)
    assert scored.probability >= strict.spec.match_probability
    assert scored.hard_conflict
    assert scored.conflicts == ("national_id",)
    assert scored.decision == "review"
    # A keying error is tolerated when the spec says so.
    lenient = _with_thresholds(
        trained_model(), hard_conflicts=[{"field": "national_id", "tolerance": "typo"}]
    )
    assert not lenient.score(left, person(national_id="1809474")).hard_conflict
    assert lenient.score(left, right).hard_conflict


@pytest.mark.parametrize(
    ("match_offset", "review_offset", "decision"),
    [(-0.01, -0.02, "match"), (0.01, -0.01, "review"), (0.02, 0.01, "no_match")],
)
def test_thresholds_decide(match_offset: float, review_offset: float, decision: str) -> None:
    # Same family, street and birth date, another first name and national id: a twin?
    left = person()
    right = person(given_name="zoe", given_name_raw="zoe", national_id="5", postcode=None,
                   house_number=None)  # fmt: skip
    probability = trained_model().score(left, right).probability
    assert 0.05 < probability < 0.95
    model = _with_thresholds(
        trained_model(),
        thresholds={"match": probability + match_offset, "review": probability + review_offset},
    )
    assert model.score(left, right).decision == decision
