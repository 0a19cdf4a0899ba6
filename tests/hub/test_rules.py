"""Survivorship rules as a user writes them in the config file, and the errors they get."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from hub.errors import ConfigError, HubError
from hub.model import GOLDEN_ATTRIBUTES
from hub.rules import Rule, RuleKind, SourceRef, SurvivorshipRules, default_rules, load_rules

CONFIG = "mdh.yaml"


def section(text: str) -> Any:
    return yaml.safe_load(text)["survivorship"]


def test_every_spelling_of_a_rule_loads() -> None:
    rules = load_rules(
        section(
            """
            survivorship:
              default: [most_recent, most_complete]
              attributes:
                tax_id:
                  - source_priority: [erp, billing/accounts]
                  - most_frequent
                emails: {union: [crm]}
                phones: union
                credit_limit:
                  - {rule: source_priority, systems: [billing], allow_empty: true}
                website:
                  - most_recent: {allow_empty: true}
            """
        ),
        CONFIG,
    )

    assert rules.default == (Rule(kind=RuleKind.MOST_RECENT), Rule(kind=RuleKind.MOST_COMPLETE))
    assert rules.chain_for("tax_id") == (
        Rule(
            kind=RuleKind.SOURCE_PRIORITY,
            systems=(SourceRef(system="erp"), SourceRef(system="billing", table="accounts")),
        ),
        Rule(kind=RuleKind.MOST_FREQUENT),
    )
    assert [r.name for r in rules.chain_for("tax_id")] == [
        "source_priority(erp>billing/accounts)",
        "most_frequent",
    ]
    assert rules.chain_for("emails") == (
        Rule(kind=RuleKind.UNION, systems=(SourceRef(system="crm"),)),
    )
    assert rules.chain_for("phones") == (Rule(kind=RuleKind.UNION),)
    assert rules.chain_for("credit_limit")[0].allow_empty
    assert rules.chain_for("website") == (Rule(kind=RuleKind.MOST_RECENT, allow_empty=True),)
    assert rules.chain_for("legal_name") == rules.default


def test_an_absent_section_means_the_default_rules() -> None:
    assert load_rules(None, CONFIG) == default_rules()


def test_a_section_without_default_falls_back_to_most_recent() -> None:
    rules = load_rules({"attributes": {"tax_id": "most_frequent"}}, CONFIG)

    assert rules.chain_for("legal_name") == (Rule(kind=RuleKind.MOST_RECENT),)


def test_default_rules_cover_every_golden_attribute_with_a_valid_chain() -> None:
    rules = default_rules()

    assert set(rules.attributes) == set(GOLDEN_ATTRIBUTES)
    assert rules.chain_for("emails")[0].kind is RuleKind.UNION
    assert rules.chain_for("addresses")[0].kind is RuleKind.MOST_RECENT


def test_the_version_is_stable_and_follows_the_rules() -> None:
    text_a = {"attributes": {"tax_id": [{"source_priority": ["erp"]}], "emails": "union"}}
    text_b = {
        "attributes": {"emails": ["union"], "tax_id": {"rule": "source_priority", "systems": "erp"}}
    }
    changed = {"attributes": {"tax_id": [{"source_priority": ["billing"]}], "emails": "union"}}
    reordered_chain = {"attributes": {"tax_id": ["most_recent", "most_frequent"]}}
    chain = {"attributes": {"tax_id": ["most_frequent", "most_recent"]}}

    version = load_rules(text_a, CONFIG).version

    assert version == load_rules(text_b, CONFIG).version  # same rules, other spelling and order
    assert version != load_rules(changed, CONFIG).version
    assert load_rules(reordered_chain, CONFIG).version != load_rules(chain, CONFIG).version
    assert default_rules().version == default_rules().version
    assert len(version) == 16


BAD: list[tuple[str, Any, str, str]] = [
    # id, section, key named in the error, words of what was expected
    ("section is a list", ["most_recent"], "survivorship", "a mapping"),
    (
        "unknown top-level key",
        {"defaults": "most_recent"},
        "survivorship.defaults",
        "default, attributes",
    ),
    (
        "unknown attribute",
        {"attributes": {"vat": "most_recent"}},
        "survivorship.attributes.vat",
        "a golden attribute",
    ),
    (
        "misspelt rule",
        {"attributes": {"tax_id": ["most_recnet"]}},
        "survivorship.attributes.tax_id[0]",
        "source_priority, most_recent, most_complete, most_frequent, union",
    ),
    (
        "misspelt rule in the long form",
        {"attributes": {"tax_id": [{"rule": "newest"}]}},
        "survivorship.attributes.tax_id[0].rule",
        "one of: source_priority",
    ),
    (
        "source priority without systems",
        {"attributes": {"tax_id": "source_priority"}},
        "survivorship.attributes.tax_id[0].systems",
        "a non-empty list of systems",
    ),
    (
        "systems on a rule that takes none",
        {"attributes": {"tax_id": {"most_recent": ["erp"]}}},
        "survivorship.attributes.tax_id[0].systems",
        "no systems",
    ),
    (
        "a system that is not a name",
        {"attributes": {"tax_id": {"source_priority": ["erp", 7]}}},
        "survivorship.attributes.tax_id[0].systems[1]",
        "a system name",
    ),
    (
        "systems not a list",
        {"attributes": {"tax_id": {"source_priority": 5}}},
        "survivorship.attributes.tax_id[0].systems",
        "a list of systems",
    ),
    (
        "union on a single-valued attribute",
        {"attributes": {"tax_id": ["most_recent", "union"]}},
        "survivorship.attributes.tax_id[1]",
        "union only fits",
    ),
    (
        "union as the default",
        {"default": "union"},
        "survivorship.default[0]",
        "a rule other than union",
    ),
    (
        "allow_empty not a boolean",
        {"attributes": {"website": {"rule": "most_recent", "allow_empty": "yes"}}},
        "survivorship.attributes.website[0].allow_empty",
        "true or false",
    ),
    (
        "unknown rule option",
        {"attributes": {"website": {"rule": "most_recent", "prefer": "erp"}}},
        "survivorship.attributes.website[0].prefer",
        "one of: rule, systems, allow_empty",
    ),
    (
        "empty chain",
        {"attributes": {"website": []}},
        "survivorship.attributes.website",
        "at least one rule",
    ),
    (
        "attributes not a mapping",
        {"attributes": ["website"]},
        "survivorship.attributes",
        "a mapping of attribute to rules",
    ),
    ("a rule that is a number", {"default": [3]}, "survivorship.default[0]", "a rule name"),
]


@pytest.mark.parametrize(
    ("raw", "key", "expected"), [pytest.param(*case[1:], id=case[0]) for case in BAD]
)
def test_a_bad_section_names_the_file_the_key_and_what_was_expected(
    raw: Any, key: str, expected: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        load_rules(raw, CONFIG)

    error = caught.value
    assert isinstance(error, HubError)
    assert error.file == CONFIG
    assert error.key == key
    assert expected in error.expected
    assert str(error).startswith(f"{CONFIG}: {key}: expected ")


def test_rules_built_in_code_are_validated_too() -> None:
    with pytest.raises(ValueError, match="union only fits list attributes"):
        SurvivorshipRules(attributes={"tax_id": (Rule(kind=RuleKind.UNION),)})
    with pytest.raises(ValueError, match="source_priority needs at least one system"):
        Rule(kind=RuleKind.SOURCE_PRIORITY)


def test_equal_rule_sets_can_key_a_cache() -> None:
    cache = {default_rules(): "compiled"}

    assert cache[load_rules(None, CONFIG)] == "compiled"
