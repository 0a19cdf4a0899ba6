"""The ``targets:`` section of the config file: kinds, connections, mappings, owned fields and
events are validated when the file is loaded, and every refusal names the file, the key and
what was expected there."""

from __future__ import annotations

from typing import Any

import pytest

from cdc.targets import KafkaTargetSpec, PostgresTargetSpec, WebhookTargetSpec
from mdh.config import ConfigFileError, parse_config

PG = "postgresql://mdh:secret@127.0.0.1:5432/crm"
HOOK = {"kind": "webhook", "url": "https://hooks.example.com/mdh", "secret": "s" * 20}


def _parse(targets: Any, environ: dict[str, str] | None = None) -> Any:
    return parse_config({"targets": targets}, "mdh.yaml", environ or {})


def test_every_kind_with_its_settings() -> None:
    config = _parse(
        {
            "crm": {
                "kind": "postgres",
                "connection": "${CRM_URL}",
                "owns": ["emails", "phones"],
                "events": ["created", "updated", "merged", "unmerged"],
                "tables": {
                    "account": {
                        "key": "id",
                        "fields": {
                            "name": {"from": "legal_name", "kind": "organization"},
                            "street": {"from": "addresses[0].lines", "join": "\n"},
                        },
                    },
                    "contact": {"key": ["id", "region"], "golden_id_column": "golden"},
                },
            },
            "hooks": {**HOOK, "owns": ["tax_id"], "headers": {"X-Tenant": "acme"}},
            "golden-topic": {"kind": "kafka", "bootstrap_servers": "b:9092", "topic": "mdh.golden"},
        },
        {"CRM_URL": PG},
    )
    assert config.targets == ("crm", "hooks", "golden-topic")
    crm = config.target_specs["crm"]
    assert isinstance(crm, PostgresTargetSpec)
    assert crm.connection.get_secret_value() == PG
    assert "secret" not in repr(crm)  # the password never shows
    assert crm.tables["contact"].key == ("id", "region")
    assert crm.tables["account"].fields["name"].kind == "organization"
    assert crm.delivery.max_attempts == 12
    assert isinstance(config.target_specs["hooks"], WebhookTargetSpec)
    assert isinstance(config.target_specs["golden-topic"], KafkaTargetSpec)


def test_a_list_of_names_writes_outbox_rows_and_delivers_nothing() -> None:
    config = _parse(["crm", "billing", "erp"])
    assert config.targets == ("crm", "billing", "erp")
    assert config.target_specs == {}


@pytest.mark.parametrize(
    ("targets", "key", "expected"),
    [
        ({"crm": {"kind": "ftp"}}, "targets.crm.kind", "one of postgres, webhook, kafka"),
        ({"Crm": {"kind": "postgres"}}, "targets.Crm", "a target name"),
        (["crm", "crm"], "targets", "each target named once"),
        ({"crm": {"kind": "postgres", "tables": {"a": {"key": "id"}}}}, "targets.crm.connection", "this key (it is required)"),
        ({"crm": {"kind": "postgres", "connection": "mysql://x", "tables": {"a": {"key": "id"}}}}, "targets.crm.connection", "a URL postgresql://"),
        ({"crm": {"kind": "postgres", "connection": PG, "tables": {}}}, "targets.crm.tables", "at least 1"),
        ({"crm": {"kind": "postgres", "connection": PG, "tables": {"a": {"fields": {}}}}}, "targets.crm.tables.a.key", "this key (it is required)"),
        ({"crm": {"kind": "postgres", "connection": PG, "tables": {"a": {"key": "id", "fields": {"n": "nme"}}}}}, "targets.crm.tables.a.fields.n", "a golden attribute"),
        ({"crm": {"kind": "postgres", "connection": PG, "tables": {"a": {"key": "id", "fields": {"e": "emails"}}}}}, "targets.crm.tables.a", "one item of the list emails"),
        ({"crm": {"kind": "postgres", "connection": PG, "tables": {"a": {"key": "id", "fields": {"a": "addresses[0]"}}}}}, "targets.crm.tables.a", "one address field"),
        ({"crm": {"kind": "postgres", "connection": PG, "tables": {"a": {"key": "id", "fields": {"id": "legal_name"}}}}}, "targets.crm.tables.a", "columns other than the key"),
        ({"crm": {"kind": "postgres", "connection": PG, "owns": ["emails"], "tables": {"a": {"key": "id", "fields": {"e": "emails[0]"}}}}}, "targets.crm.tables.a.fields.e", "an attribute crm does not own"),
        ({"crm": {"kind": "postgres", "connection": PG, "owns": ["e-mail"], "tables": {"a": {"key": "id"}}}}, "targets.crm.owns", "golden attributes"),
        ({"hooks": {**HOOK, "events": ["create"]}}, "targets.hooks.events", "events among created"),
        ({"hooks": {**HOOK, "url": "ftp://x"}}, "targets.hooks.url", "an http:// or https:// URL"),
        ({"hooks": {**HOOK, "secret": "short"}}, "targets.hooks.secret", "at least 16 characters"),
        ({"hooks": {**HOOK, "fields": {"n": {"from": "legal_name", "join": ","}}}}, "targets.hooks.fields.n", "no join"),
        ({"hooks": {**HOOK, "owns": ["tax_id"], "fields": {"vat": "tax_id"}}}, "targets.hooks.fields.vat", "an attribute hooks does not own"),
        ({"hooks": {**HOOK, "delivery": {"timeout_seconds": 120}}}, "targets.hooks.delivery.timeout_seconds", "less than or equal to 50"),
        ({"hooks": {**HOOK, "retries": 3}}, "targets.hooks.retries", "no such key here"),
        ({"t": {"kind": "kafka", "bootstrap_servers": "b:9092", "topic": "bad topic"}}, "targets.t.topic", "match pattern"),
    ],
)  # fmt: skip
def test_a_broken_section_names_the_file_the_key_and_the_expectation(
    targets: Any, key: str, expected: str
) -> None:
    with pytest.raises(ConfigFileError) as raised:
        _parse(targets)
    assert raised.value.file == "mdh.yaml"
    assert raised.value.key == key
    assert expected in raised.value.expected


def test_a_missing_environment_variable_is_named() -> None:
    with pytest.raises(ConfigFileError) as raised:
        _parse({"hooks": {**HOOK, "secret": "${HOOK_SECRET}"}})
    assert raised.value.key == "targets.hooks.secret"
    assert "HOOK_SECRET" in raised.value.expected
