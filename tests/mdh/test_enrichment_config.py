"""The config's `enrichment` section: `mdh cdc run` maps with the demo's joins when asked,
reading referenced rows where the section (or the source's connection) says."""

from __future__ import annotations

from typing import Any

import pytest

from cdc.mapping import ChangeMapper
from mdh.config import ConfigFileError, parse_config
from mdh.demo.mapping import DemoChangeMapper
from mdh.mappers import build_mapper

SOURCES: dict[str, Any] = {
    "crm": {"tables": {"account": {"primary_key": "id", "fields": {"legal_name": "name"}}}},
    "billing": {"tables": {"account": {"primary_key": "id", "fields": {"legal_name": "name"}}}},
}


def _config(enrichment: Any, sources: dict[str, Any] | None = None) -> Any:
    document = {"sources": sources or SOURCES, "enrichment": enrichment}
    return parse_config(document, "mdh.yaml", {"BILLING_URL": "postgresql://u:s3cret@b/billing"})


def test_without_the_section_the_mapping_is_the_declarative_one() -> None:
    config = parse_config({"sources": SOURCES}, "mdh.yaml", {})
    mapper = build_mapper(config)
    assert type(mapper) is ChangeMapper
    assert config.enrichment is None


def test_demo_joins_read_the_referenced_databases_named_in_the_section() -> None:
    config = _config(
        {
            "joins": "demo",
            "references": {"crm": "postgresql://u:p@a/crm", "billing": "${BILLING_URL}"},
        }
    )
    assert isinstance(build_mapper(config), DemoChangeMapper)
    assert config.reference_urls() == {
        "crm": "postgresql://u:p@a/crm",
        "billing": "postgresql://u:s3cret@b/billing",
    }
    assert "s3cret" not in repr(config.enrichment)


def test_a_source_connection_serves_as_its_reference() -> None:
    sources = {**SOURCES, "crm": {**SOURCES["crm"], "connection": "postgresql://u:p@crm-db/crm"}}
    config = _config({"joins": "demo", "references": {"billing": "${BILLING_URL}"}}, sources)
    assert config.reference_urls()["crm"] == "postgresql://u:p@crm-db/crm"


@pytest.mark.parametrize(
    ("enrichment", "key", "expected"),
    [
        # a worker without the database would join only with rows it mapped itself
        ({"joins": "demo", "references": {"crm": "postgresql://a/crm"}}, "billing", "URL"),
        (
            {"joins": "demo", "references": {"crm": "x", "billing": "y", "ledger": "z"}},
            "ledger",
            "",
        ),
        ({"joins": "custom", "references": {}}, "joins", "demo"),
        ({"joins": "demo", "refs": {}}, "refs", "typo"),
    ],
)
def test_a_wrong_section_names_the_key(enrichment: Any, key: str, expected: str) -> None:
    with pytest.raises(ConfigFileError) as caught:
        _config(enrichment)
    message = str(caught.value)
    assert f"enrichment.{key}" in message or f"references.{key}" in message, message
    assert expected in message
