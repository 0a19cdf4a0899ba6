"""The config's `enrichment` section: `mdh cdc run` maps with the demo's joins when asked,
reading referenced rows where the section (or the source's connection) says."""

from __future__ import annotations

from typing import Any

import psycopg
import pytest

from cdc.mapping import ChangeMapper
from mdh.config import ConfigFileError, parse_config
from mdh.demo.mapping import DemoChangeMapper, ReferenceData, _Reference
from mdh.embedded_pg import EmbeddedPostgres
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


def test_a_referenced_row_is_read_again_once_older_than_the_age_limit(
    pg_server: EmbeddedPostgres,
) -> None:
    """A scale-out worker does not see the changes of a referenced row that another worker
    maps: past ``max_age_seconds`` it reads the row again instead of trusting what it saw."""
    admin = pg_server.url("postgres", driver="postgresql")
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute('DROP DATABASE IF EXISTS "enrich_refs" WITH (FORCE)')
        conn.execute('CREATE DATABASE "enrich_refs"')
    url = pg_server.url("enrich_refs", driver="postgresql")
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CREATE TABLE contact (id text PRIMARY KEY, city text)")
        conn.execute("INSERT INTO contact VALUES ('c1', 'Lyon'), ('c2', 'Nice')")

    now = [0.0]
    bill_to = _Reference("billing", "contact", "id")
    city: Any = lambda row: row["city"]  # noqa: E731
    trusting = ReferenceData({"billing": url})
    ageing = ReferenceData({"billing": url}, max_age_seconds=5.0, clock=lambda: now[0])
    try:
        for references in (trusting, ageing):
            assert references.find(bill_to, "c1", city) == "Lyon"  # the table, loaded once
        ageing.remember(bill_to, "c2", "Nice")  # seen in a change this worker mapped
        with psycopg.connect(url, autocommit=True) as conn:  # another worker's partition
            conn.execute("UPDATE contact SET city = 'Paris' WHERE id = 'c1'")
            conn.execute("UPDATE contact SET city = 'Cannes' WHERE id = 'c2'")
            conn.execute("INSERT INTO contact VALUES ('c3', 'Metz')")
        now[0] = 4.0
        assert ageing.find(bill_to, "c1", city) == "Lyon"  # within the limit: trusted
        assert ageing.find(bill_to, "c3", city) == "Metz"  # a miss reads the row
        now[0] = 6.0
        assert ageing.find(bill_to, "c1", city) == "Paris"
        assert ageing.find(bill_to, "c2", city) == "Cannes"
        assert trusting.find(bill_to, "c1", city) == "Lyon"  # the demo's single process
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("DELETE FROM contact WHERE id = 'c3'")
        now[0] = 12.0
        assert ageing.find(bill_to, "c3", city) is None
    finally:
        trusting.close()
        ageing.close()
