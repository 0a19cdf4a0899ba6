"""Comparisons: ordered levels, symmetry, and the vectorised path agreeing with the scalar one."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from matching.comparison import build_comparison
from matching.spec import ComparisonSpec, joint_comparison

JW = ComparisonSpec("family", "jaro_winkler", ("family_name",), (0.92, 0.8))
GIVEN = ComparisonSpec(
    "given", "jaro_winkler", ("given_name", "given_name_raw"), (0.92, 0.8), initial=True
)
LEV = ComparisonSpec("postcode", "levenshtein", ("postcode",), (1.0, 2.0))
DAMERAU = ComparisonSpec("ssn", "damerau", ("national_id",), (1.0,))
TOKENS = ComparisonSpec("street", "token_set", ("street",), (0.9,))
DATE = ComparisonSpec("dob", "date", ("dob",), (365.0,))
NUMBER = ComparisonSpec("house", "numeric", ("house_number",), (2.0,))
EMAILS = ComparisonSpec("emails", "overlap", ("emails",), (0.9,))
EXACT = ComparisonSpec("country", "exact", ("country",))
JOINT = joint_comparison(
    "household",
    (
        ComparisonSpec("family", "exact", ("family_name",)),
        ComparisonSpec("street", "token_set", ("street",), (0.8,)),
    ),
)
UNLESS = ComparisonSpec("street_alone", "exact", ("street",), unless=("family_name",))
SWAP = joint_comparison("person_name", (GIVEN, JW), swap=True)
ALL = [JW, GIVEN, LEV, DAMERAU, TOKENS, DATE, NUMBER, EMAILS, EXACT, JOINT, UNLESS, SWAP]


def _label(spec: ComparisonSpec, left: dict[str, Any], right: dict[str, Any]) -> str:
    comp = build_comparison(spec)
    a, b = comp.prepare(left), comp.prepare(right)
    if a is None or b is None:
        return "null"
    return spec.level_labels[comp.level(a, b) - 1]


@pytest.mark.parametrize(
    ("spec", "left", "right", "label"),
    [
        (JW, {"family_name": "smith"}, {"family_name": "smith"}, "exact"),
        (JW, {"family_name": "smith"}, {"family_name": "smiht"}, "jaro_winkler>=0.92"),
        (JW, {"family_name": "martinez"}, {"family_name": "marquez"}, "jaro_winkler>=0.8"),
        (JW, {"family_name": "smith"}, {"family_name": "oyelaran"}, "else"),
        (JW, {"family_name": "smith"}, {"family_name": None}, "null"),
        (JW, {"family_name": "  "}, {"family_name": "smith"}, "null"),
        (GIVEN, {"given_name": "william", "given_name_raw": "bill"},
         {"given_name": "william", "given_name_raw": "will"}, "exact"),
        (GIVEN, {"given_name": "j", "given_name_raw": "j"},
         {"given_name": "john", "given_name_raw": "john"}, "initial"),
        (LEV, {"postcode": "2119"}, {"postcode": "2191"}, "levenshtein<=2"),
        (LEV, {"postcode": "2119"}, {"postcode": "2118"}, "levenshtein<=1"),
        (DAMERAU, {"national_id": "1804974"}, {"national_id": "1809474"}, "damerau<=1"),
        (TOKENS, {"street": "wallaby place"}, {"street": "place wallaby"}, "token_set>=0.9"),
        (DATE, {"dob": "1956-04-09"}, {"dob": "19560409"}, "exact"),
        (DATE, {"dob": "1956-04-09"}, {"dob": "1956-09-04"}, "typo"),
        (DATE, {"dob": "1956-04-09"}, {"dob": "1957-04-09"}, "typo"),
        (DATE, {"dob": "1956-04-09"}, {"dob": "1956-04-08"}, "typo"),
        (DATE, {"dob": "1956-04-09"}, {"dob": "1956-10-20"}, "days<=365"),
        (DATE, {"dob": "1956-04-09"}, {"dob": "1971-12-30"}, "else"),
        (DATE, {"dob": "not a date"}, {"dob": "1971-12-30"}, "null"),
        (NUMBER, {"house_number": "12a"}, {"house_number": "12a"}, "exact"),
        (NUMBER, {"house_number": "12a"}, {"house_number": "14"}, "abs_diff<=2"),
        (NUMBER, {"house_number": "12"}, {"house_number": "40"}, "else"),
        (EMAILS, {"emails": ["a@x.com", "b@y.com"]}, {"emails": ["b@y.com"]}, "shared"),
        (EMAILS, {"emails": ["jon.smith@x.com"]}, {"emails": ["john.smith@x.com"]},
         "jaro_winkler>=0.9"),
        (EMAILS, {"emails": []}, {"emails": ["b@y.com"]}, "null"),
        (EXACT, {"country": "AU"}, {"country": "NZ"}, "else"),
        (JOINT, {"family_name": "lee", "street": "main st"},
         {"family_name": "lee", "street": "main st"}, "family=exact & street=exact"),
        (JOINT, {"family_name": "lee", "street": "main st"},
         {"family_name": "lee", "street": "oak avenue"}, "family=exact & street=else"),
        (JOINT, {"family_name": "lee", "street": None},
         {"family_name": "kim", "street": "oak avenue"}, "family=else & street=null"),
        (JOINT, {"family_name": None, "street": None},
         {"family_name": "kim", "street": "oak avenue"}, "null"),
        (SWAP, {"given_name": "michael", "family_name": "walker"},
         {"given_name": "walker", "family_name": "michael"},
         "given=exact & family=exact"),
        (SWAP, {"given_name": "michael", "given_name_raw": "mike", "family_name": "walker"},
         {"given_name": "walkr", "family_name": "michael"},
         "given=exact & family=jaro_winkler>=0.92"),
        (SWAP, {"given_name": "anna", "family_name": "walker"},
         {"given_name": "walker", "family_name": "smith"},
         "given=exact & family=else"),
        (SWAP, {"given_name": "anna", "family_name": "walker"},
         {"given_name": "maria", "family_name": "smith"},
         "given=else & family=else"),
    ],
)  # fmt: skip
def test_levels(
    spec: ComparisonSpec, left: dict[str, Any], right: dict[str, Any], label: str
) -> None:
    assert _label(spec, left, right) == label


_names = st.text(alphabet="abcdeilmnorst ", min_size=0, max_size=8)
_dates = st.one_of(
    st.none(),
    st.dates().map(lambda d: d.isoformat()),
    st.text(alphabet="0123456789", min_size=8, max_size=8),
)


def _record(draw: st.DrawFn) -> dict[str, Any]:
    return {
        "family_name": draw(st.one_of(st.none(), _names)),
        "given_name": draw(st.one_of(st.none(), _names)),
        "given_name_raw": draw(st.one_of(st.none(), _names)),
        "postcode": draw(st.one_of(st.none(), st.text(alphabet="0123", max_size=4))),
        "national_id": draw(st.one_of(st.none(), st.text(alphabet="0123", max_size=5))),
        "street": draw(st.one_of(st.none(), _names)),
        "dob": draw(_dates),
        "house_number": draw(st.one_of(st.none(), st.sampled_from(["1", "2", "3a", "10", "x"]))),
        "emails": draw(st.lists(st.sampled_from(["a@x.io", "ab@x.io", "b@y.io"]), max_size=2)),
        "country": draw(st.sampled_from([None, "AU", "NZ"])),
    }


records = st.composite(_record)()


@given(spec=st.sampled_from(ALL), left=records, right=records)
@settings(max_examples=120, deadline=None)
def test_comparisons_are_symmetric(
    spec: ComparisonSpec, left: dict[str, Any], right: dict[str, Any]
) -> None:
    assert _label(spec, left, right) == _label(spec, right, left)


@given(spec=st.sampled_from(ALL), rows=st.lists(records, min_size=2, max_size=12))
@settings(max_examples=60, deadline=None)
def test_vectorised_levels_equal_scalar_levels(
    spec: ComparisonSpec, rows: list[dict[str, Any]]
) -> None:
    comp = build_comparison(spec)
    prepared = [comp.prepare(r) for r in rows]
    assert comp.prepare_many(rows, {}) == prepared
    column = comp.column(prepared)
    pairs = [(i, j) for i in range(len(rows)) for j in range(len(rows)) if i != j]
    left = np.array([p[0] for p in pairs], dtype=np.int64)
    right = np.array([p[1] for p in pairs], dtype=np.int64)
    vectorised = comp.levels(column, left, right).tolist()
    scalar = [
        0 if prepared[i] is None or prepared[j] is None else comp.level(prepared[i], prepared[j])
        for i, j in pairs
    ]
    assert vectorised == scalar


def test_unless_makes_a_person_name_missing_but_compares_an_organisation_name() -> None:
    spec = ComparisonSpec("name", "token_set", ("name",), (0.9,), unless=("family_name",))
    org = {"name": "acme widgets", "family_name": None}
    assert _label(spec, org, {"name": "widgets acme", "family_name": None}) == "token_set>=0.9"
    assert _label(spec, org, {"name": "acme widgets", "family_name": "smith"}) == "null"
