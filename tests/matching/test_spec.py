"""Match specs: shipped specs load back unchanged; invalid specs name the key at fault."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from matching import MatchSpec, SpecError, census_spec, default_spec, febrl_spec, load_spec
from matching.spec import parse_spec_text, shipped_spec


@pytest.mark.parametrize("factory", [default_spec, febrl_spec, census_spec])
def test_shipped_specs_round_trip_through_json_and_yaml(factory: Any, tmp_path: Path) -> None:
    import yaml

    spec = factory()
    assert MatchSpec.from_dict(json.loads(spec.to_json())) == spec
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(spec.to_dict()), encoding="utf-8")
    assert load_spec(path) == spec


def test_default_spec_never_auto_merges_different_identifiers() -> None:
    fields = {h.field for h in default_spec().hard_conflicts}
    assert {"tax_id", "national_id", "dob"} <= fields


def _valid() -> dict[str, Any]:
    return {
        "comparisons": [{"name": "family", "kind": "jaro_winkler", "fields": ["family_name"],
                         "thresholds": [0.9, 0.8]}],
        "blocking": [{"name": "fn", "parts": ["family_name:soundex"]}],
    }  # fmt: skip


def test_minimal_spec_gets_defaults() -> None:
    spec = MatchSpec.from_dict(_valid())
    assert spec.match_probability == 0.95
    assert spec.comparisons[0].level_labels == (
        "exact",
        "jaro_winkler>=0.9",
        "jaro_winkler>=0.8",
        "else",
    )


@pytest.mark.parametrize(
    ("mutate", "path"),
    [
        (lambda d: d.update(colour="blue"), "colour"),
        (lambda d: d.update(comparisons=[]), "comparisons"),
        (lambda d: d["comparisons"][0].update(kind="soundalike"), "comparisons[0].kind"),
        (lambda d: d["comparisons"][0].update(fields=["surname"]), "comparisons[0].fields"),
        (lambda d: d["comparisons"][0].update(thresholds=[0.8, 0.9]),
         "comparisons[0].thresholds"),
        (lambda d: d["comparisons"][0].update(thresholds=[1.5]), "comparisons[0].thresholds"),
        (lambda d: d["comparisons"][0].update(kind="overlap"), "comparisons[0].fields"),
        (lambda d: d["comparisons"][0].update(kind="date", tf_adjust=True),
         "comparisons[0].thresholds"),
        (lambda d: d["comparisons"].append(dict(d["comparisons"][0])), "comparisons[1].name"),
        (lambda d: d["comparisons"][0].update(kind="levenshtein", thresholds=[1.5]),
         "comparisons[0].thresholds"),
        (lambda d: d["blocking"][0].update(parts=["family_name:reverse"]),
         "blocking[0].parts[0]"),
        (lambda d: d["blocking"][0].update(name="Bad Name"), "blocking[0].name"),
        (lambda d: d.update(thresholds={"match": 0.4, "review": 0.6}), "thresholds"),
        (lambda d: d.update(prior=1.5), "prior"),
        (lambda d: d.update(hard_conflicts=["emails"]), "hard_conflicts[0].field"),
        (lambda d: d.update(hard_conflicts=[{"field": "dob", "tolerance": "lax"}]),
         "hard_conflicts[0].tolerance"),
        (lambda d: d.update(comparisons=[{"name": "j", "kind": "joint", "parts": [
            {"kind": "exact", "fields": ["city"]}]}]), "comparisons[0].parts"),
        (lambda d: d.update(max_block_size=1), "max_block_size"),
        (lambda d: d["comparisons"][0].update(swap=True), "comparisons[0].swap"),
        (lambda d: d.update(comparisons=[{"name": "j", "kind": "joint", "swap": True, "parts": [
            {"kind": "exact", "fields": ["city"]}, {"kind": "date", "fields": ["dob"]}]}]),
         "comparisons[0].swap"),
    ],
)  # fmt: skip
def test_invalid_spec_names_the_key(mutate: Any, path: str) -> None:
    data = _valid()
    mutate(data)
    with pytest.raises(SpecError) as caught:
        MatchSpec.from_dict(data, source="match.yaml")
    assert caught.value.path == path
    assert str(caught.value).startswith(f"match.yaml: {path}: ")


def test_joint_comparison_has_one_level_per_combination() -> None:
    data = _valid()
    data["comparisons"].append(
        {
            "name": "household",
            "kind": "joint",
            "parts": [
                {"kind": "exact", "fields": ["family_name"]},
                {"kind": "exact", "fields": ["street"]},
            ],
        }
    )
    spec = MatchSpec.from_dict(data)
    joint = spec.comparisons[1]
    assert joint.fields == ("family_name", "street")
    assert joint.level_labels[0] == "family_name=exact & street=exact"
    # 3 x 3 combinations of (exact, else, null), without "both null".
    assert len(joint.level_labels) == 8
    assert MatchSpec.from_dict(spec.to_dict()) == spec


def test_unreadable_documents_are_spec_errors(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match="valid JSON"):
        parse_spec_text("{nope", fmt="json")
    with pytest.raises(SpecError, match="a mapping at the top level"):
        parse_spec_text("- 1\n- 2\n", fmt="yaml")
    with pytest.raises(SpecError, match="readable file"):
        load_spec(tmp_path / "missing.yaml")
    with pytest.raises(SpecError, match="one of"):
        shipped_spec("nope")


def test_a_swapped_joint_comparison_round_trips() -> None:
    data = _valid()
    data["comparisons"].append(
        {
            "name": "person_name",
            "kind": "joint",
            "swap": True,
            "parts": [
                {"kind": "jaro_winkler", "fields": ["given_name"], "thresholds": [0.9]},
                {"kind": "jaro_winkler", "fields": ["family_name"], "thresholds": [0.9]},
            ],
        }
    )
    spec = MatchSpec.from_dict(data)
    assert spec.comparisons[1].swap
    assert MatchSpec.from_dict(spec.to_dict()) == spec
