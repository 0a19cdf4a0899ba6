"""The model object: the hub's Matcher interface, versioning, save and load."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from matching_testkit import person, trained_model

from hub.matcher import Matcher, MatchScore
from matching import MatchModel, ModelFormatError, default_spec


def test_model_fulfils_the_hub_matcher_interface() -> None:
    matcher: Matcher = trained_model()
    scored: MatchScore = matcher.score(person(), person())
    assert scored.decision == "match"
    assert isinstance(matcher.version, str)
    assert all(isinstance(k, str) and ":" in k for k in matcher.blocking_keys(person()))


def test_save_and_load_give_the_same_model_and_scores(tmp_path: Path) -> None:
    model = trained_model()
    path = tmp_path / "model.json"
    model.save(path)
    loaded = MatchModel.load(path)
    assert loaded == model
    assert loaded.version == model.version
    left, right = person(), person(family_name="gren", dob=None)
    assert loaded.score(left, right).explain() == model.score(left, right).explain()
    assert json.loads(path.read_text())["format"] == "mdh-match-model"


def test_version_changes_with_parameters_and_thresholds() -> None:
    model = trained_model()
    assert model.with_parameters(prior=model.prior / 2).version != model.version
    data = model.spec.to_dict()
    data["thresholds"] = {"match": 0.99, "review": 0.5}
    other = MatchModel(type(model.spec).from_dict(data), model.parameters, model.prior,
                       model.tf_tables)  # fmt: skip
    assert other.version != model.version
    assert other.version.startswith("febrl-")


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        ("{not json", "cannot read JSON"),
        ("[]", "expected a JSON object"),
        ('{"format": "something-else"}', "not a mdh-match-model"),
        ('{"format": "mdh-match-model", "format_version": 1, "spec": {}}', "comparisons"),
    ],
)
def test_loading_a_bad_file_says_why(tmp_path: Path, content: str, reason: str) -> None:
    path = tmp_path / "model.json"
    path.write_text(content)
    with pytest.raises((ModelFormatError, Exception), match=reason):
        MatchModel.load(path)


def test_tampered_parameters_are_detected(tmp_path: Path) -> None:
    path = tmp_path / "model.json"
    trained_model().save(path)
    data = json.loads(path.read_text())
    data["prior"] = 0.2
    path.write_text(json.dumps(data))
    with pytest.raises(ModelFormatError, match="version does not match"):
        MatchModel.load(path)


def test_untrained_model_scores_with_default_parameters() -> None:
    model = MatchModel.untrained(default_spec())
    assert model.score(person(), person()).decision == "match"
    assert model.score(person(), person(given_name="zoe", given_name_raw="zoe",
                                        family_name="nguyen", dob="1990-01-01",
                                        national_id="9", street="light street",
                                        postcode="3000", house_number="99",
                                        city="dapto")).decision == "no_match"  # fmt: skip


def test_standardize_delegates_to_the_feature_standardizer() -> None:
    features = pytest.importorskip("matching.features")
    attributes = {"kind": "person", "given_name": "Bill", "family_name": "Smith"}
    assert trained_model().standardize(attributes) == features.standardize_record(attributes)
