"""The shipped demo match model, spec and mapping against a generated world's truth, offline
(``mdh.demo.training.check_model``): a spec, mapping or standardizer change that costs the
demo its matching quality fails here in seconds, before a demo run shows it."""

from __future__ import annotations

import pytest

from matching import MatchModel
from mdh.demo.config import demo_config_path
from mdh.demo.generator import GeneratorConfig
from mdh.demo.training import check_model, with_demo_thresholds, with_prior_for, world_records


def test_the_shipped_model_finds_a_small_worlds_duplicates() -> None:
    # Another seed than the model was trained on (7) and than the demo runs (42).
    records = world_records(GeneratorConfig(customers=2_000, seed=11))
    model = MatchModel.load(demo_config_path().parent / "demo_model.json")
    check = check_model(with_demo_thresholds(with_prior_for(model, len(records.features))), records)
    assert check.true_pairs > 5_000
    # Measured 0.9989 / 0.980 / 0.8% when written; the margins leave room for a retrained model.
    assert check.precision >= 0.997
    assert check.recall >= 0.97
    assert check.review_tasks <= 0.02 * check.records


def test_a_larger_store_makes_a_match_and_a_shared_identifier_rarer_alike() -> None:
    model = MatchModel.load(demo_config_path().parent / "demo_model.json")
    trained = model.training["records"]
    scaled = with_prior_for(model, trained * 10)
    assert scaled.prior == pytest.approx(model.prior / 10)
    names = [c.name for c in model.spec.comparisons]
    tax, name = names.index("tax_id"), names.index("name")
    assert scaled.parameters[tax].u[0] == pytest.approx(model.parameters[tax].u[0] / 10)
    assert scaled.parameters[name] == model.parameters[name]  # namesakes do not get rarer
    for params in scaled.parameters:
        assert sum(params.u) == pytest.approx(1.0)
