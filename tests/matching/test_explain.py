"""Explanations: JSON with every comparison's level and weight, and a readable waterfall."""

from __future__ import annotations

import json

from matching_testkit import person, trained_model


def test_explanation_names_levels_weights_prior_and_threshold() -> None:
    model = trained_model()
    scored = model.score(person(), person(given_name="mitchel", given_name_raw="mitchel",
                                          dob=None))  # fmt: skip
    data = scored.explain()
    json.dumps(data)  # JSON-ready
    by_name = {c["name"]: c for c in data["comparisons"]}
    assert [c["name"] for c in data["comparisons"]] == [c.name for c in model.spec.comparisons]
    assert by_name["given_name"]["label"] == "jaro_winkler>=0.92"
    assert by_name["family_name"]["label"] == "exact"
    assert by_name["dob"] == {
        "name": "dob", "fields": ["dob"], "level": 0, "label": "null", "weight": 0.0,
        "level_weight": 0.0, "tf_adjustment": 0.0,
    }  # fmt: skip
    assert by_name["family_name"]["m"] > by_name["family_name"]["u"]
    assert data["model_version"] == model.version
    assert data["prior_weight"] < 0
    assert data["decision"] == "match"
    assert data["threshold_crossed"] == "match"
    assert data["thresholds"] == {"match": 0.9, "review": 0.5}


def test_family_name_agreement_carries_its_term_frequency_adjustment() -> None:
    data = trained_model().score(person(), person()).explain()
    family = next(c for c in data["comparisons"] if c["name"] == "family_name")
    assert family["tf_adjustment"] != 0.0
    assert family["weight"] == family["level_weight"] + family["tf_adjustment"]


def test_text_waterfall_shows_each_step_and_the_outcome() -> None:
    model = trained_model()
    text = model.score(person(), person(family_name="nguyen", national_id="1")).explain_text()
    lines = text.splitlines()
    assert lines[0].split() == ["comparison", "level", "weight", "total"]
    assert lines[1].startswith("prior")
    for comp in model.spec.comparisons:
        assert any(line.startswith(comp.name) for line in lines)
    assert "-> probability" in lines[-1]
    assert "threshold crossed" in lines[-1]
