"""infra/mdh.yaml, the workers' config: valid as compose runs it, on the Kafka transport, and
the demo's mapping, survivorship and match model, kept equal to src/mdh/demo/demo.yaml (the
scale-out deployment must match records the way `mdh demo` does)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from mdh.config import load_config

ROOT = Path(__file__).resolve().parents[2]
INFRA_CONFIG = ROOT / "infra" / "mdh.yaml"
DEMO_CONFIG = ROOT / "src" / "mdh" / "demo" / "demo.yaml"
SOURCE_ONLY = ("connection", "capture")  # embedded-engine settings; Kafka Connect's here


def _yaml(path: Path) -> dict[str, Any]:
    document = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert isinstance(document, dict)
    return document


def _compose_environment() -> dict[str, str]:
    """The worker's environment as compose sets it when nothing overrides the defaults."""
    compose = _yaml(ROOT / "infra" / "compose.yaml")
    env = compose["services"]["worker"]["environment"]
    return {
        str(k): re.sub(r"\$\{[A-Za-z_][A-Za-z0-9_]*:-([^}]*)\}", r"\1", str(v))
        for k, v in env.items()
    }


def test_the_config_is_valid_as_compose_runs_it() -> None:
    config = load_config(INFRA_CONFIG, _compose_environment())
    assert config.capture.transport == "kafka"
    kafka = config.capture.kafka
    assert kafka is not None
    assert kafka.bootstrap_servers == "kafka:9092"
    assert kafka.group_id == "mdh-hub"
    assert config.capture.batch_size == 1024
    assert config.connections == {}, "Kafka Connect captures; workers connect to no source"
    assert set(config.targets) == {"crm", "billing", "erp", "golden-topic"}
    golden = config.target_specs["golden-topic"]
    assert golden.kind == "kafka"
    assert getattr(golden, "topic", None) == "mdh.golden"
    config.build_matcher()  # the match spec or model file is found from infra/


def test_sources_and_survivorship_are_the_demos() -> None:
    infra, demo = _yaml(INFRA_CONFIG), _yaml(DEMO_CONFIG)
    demo_sources = {
        system: {k: v for k, v in body.items() if k not in SOURCE_ONLY}
        for system, body in demo["sources"].items()
    }
    assert infra["sources"] == demo_sources
    assert infra["survivorship"] == demo["survivorship"]


def test_matching_is_the_demos() -> None:
    infra = load_config(INFRA_CONFIG, {}).matching
    demo = load_config(
        DEMO_CONFIG,
        dict.fromkeys(
            ("MDH_DEMO_CRM_URL", "MDH_DEMO_BILLING_URL", "MDH_DEMO_ERP_URL"),
            "postgresql://u:p@localhost:5432/db",
        ),
    ).matching

    def used(matching: Any, base: Path) -> Path | str:
        """The model file when there is one (it carries its spec), else the spec."""
        if matching.model is not None:
            return (base / matching.model).resolve()
        spec = str(matching.spec)
        return (base / spec).resolve() if spec.endswith((".yaml", ".yml", ".json")) else spec

    assert used(infra, INFRA_CONFIG.parent) == used(demo, DEMO_CONFIG.parent)
    assert infra.match_probability == demo.match_probability
    assert infra.review_probability == demo.review_probability
