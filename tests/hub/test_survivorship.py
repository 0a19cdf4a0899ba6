"""Survivorship: which source supplies each golden attribute, and the lineage that says why."""

from __future__ import annotations

import random
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hub.model import (
    GOLDEN_ATTRIBUTES,
    Pin,
    SourceKey,
    SourcePosition,
    SourceSnapshot,
    SurvivedRecord,
)
from hub.rules import Rule, RuleKind, SourceRef, SurvivorshipRules, default_rules
from hub.survivorship import STEWARD_PIN, TIE_BREAK, survive

T0 = datetime(2024, 3, 1, 12, 0, tzinfo=UTC)


def snap(
    record_id: int,
    where: str,
    minute: int,
    lsn: int | None = None,
    *,
    deleted: bool = False,
    **attributes: Any,
) -> SourceSnapshot:
    """A source snapshot: ``where`` is ``system`` or ``system/table``; committed at T0+minute."""
    system, _, table = where.partition("/")
    return SourceSnapshot(
        source_record_id=record_id,
        key=SourceKey(system, table or "customers", f"pk{record_id}"),
        attributes=attributes,
        position=SourcePosition(lsn=lsn, tx_id=None, committed_at=T0 + timedelta(minutes=minute)),
        deleted=deleted,
    )


def rule(kind: str, *systems: str, allow_empty: bool = False) -> Rule:
    return Rule(
        kind=RuleKind(kind),
        systems=tuple(SourceRef.parse(s) for s in systems),
        allow_empty=allow_empty,
    )


def rules_for(attribute: str, *chain: Rule) -> SurvivorshipRules:
    return SurvivorshipRules(attributes={attribute: chain})


def pin(attribute: str, value: Any) -> Pin:
    return Pin(attribute, value, pinned_by="ann", reason="confirmed by phone", pinned_at=T0)


# --- one rule at a time ------------------------------------------------------------------------

CASES: list[tuple[str, str, tuple[Rule, ...], list[SourceSnapshot], Any, int, str]] = [
    # id, attribute, chain, sources, expected value, expected source record, expected rule name
    (
        "source priority beats a newer value",
        "tax_id",
        (rule("source_priority", "erp", "billing"), rule("most_recent")),
        [snap(1, "erp", 0, tax_id="DE111"), snap(2, "crm", 9, tax_id="DE999")],
        "DE111",
        1,
        "source_priority(erp>billing)",
    ),
    (
        "source priority falls to the next listed system when the first has no value",
        "tax_id",
        (rule("source_priority", "erp", "billing"),),
        [snap(1, "erp", 5), snap(2, "billing", 0, tax_id="DE222"), snap(3, "crm", 9, tax_id="X")],
        "DE222",
        2,
        "source_priority(erp>billing)",
    ),
    (
        "source priority can name one table of a system",
        "legal_name",
        (rule("source_priority", "erp/vendors", "erp/customers"),),
        [snap(1, "erp/customers", 9, legal_name="Cust"), snap(2, "erp/vendors", 0, legal_name="V")],
        "V",
        2,
        "source_priority(erp/vendors>erp/customers)",
    ),
    (
        "no listed system has a value: the next rule of the chain decides",
        "tax_id",
        (rule("source_priority", "erp"), rule("most_recent")),
        [snap(1, "crm", 1, tax_id="OLD"), snap(2, "billing", 7, tax_id="NEW")],
        "NEW",
        2,
        "most_recent",
    ),
    (
        "duplicates inside the preferred system: the next rule picks among them",
        "legal_name",
        (rule("source_priority", "erp"), rule("most_recent")),
        [
            snap(1, "erp", 1, legal_name="Acme GmbH"),
            snap(2, "erp", 4, legal_name="ACME Holding GmbH"),
            snap(3, "crm", 9, legal_name="acme"),
        ],
        "ACME Holding GmbH",
        2,
        "most_recent",
    ),
    (
        "most recent goes by source commit time, not by log position or arrival",
        "website",
        (rule("most_recent"),),
        [
            snap(1, "crm", 8, lsn=10, website="new.example"),
            snap(2, "erp", 3, lsn=900, website="old"),
        ],
        "new.example",
        1,
        "most_recent",
    ),
    (
        "most complete counts filled address fields",
        "addresses",
        (rule("most_complete"), rule("most_recent")),
        [
            snap(1, "crm", 9, addresses=[{"city": "Berlin"}]),
            snap(
                2,
                "erp",
                1,
                addresses=[{"lines": ["Hauptstr. 1"], "city": "Berlin", "country": "DE"}],
            ),
        ],
        [{"lines": ["Hauptstr. 1"], "city": "Berlin", "country": "DE"}],
        2,
        "most_complete",
    ),
    (
        "most complete prefers the longer list",
        "phones",
        (rule("most_complete"),),
        [
            snap(1, "crm", 9, phones=["+4930111"]),
            snap(2, "erp", 1, phones=["+4930111", "+4930222"]),
        ],
        ["+4930111", "+4930222"],
        2,
        "most_complete",
    ),
    (
        "most frequent: the value most sources agree on, ignoring case and spacing",
        "legal_name",
        (rule("most_frequent"), rule("most_recent")),
        [
            snap(1, "crm", 1, legal_name="Acme  GmbH"),
            snap(2, "billing", 2, legal_name="ACME GmbH"),
            snap(3, "erp", 9, legal_name="Acme Holding"),
        ],
        "ACME GmbH",
        2,
        "most_frequent",
    ),
    (
        "most frequent with no majority hands over to the next rule",
        "legal_name",
        (rule("most_frequent"), rule("source_priority", "billing")),
        [snap(1, "crm", 9, legal_name="A"), snap(2, "billing", 1, legal_name="B")],
        "B",
        2,
        "source_priority(billing)",
    ),
    (
        "an empty newest value never wins over a present one",
        "website",
        (rule("most_recent"),),
        [snap(1, "crm", 9, website="  "), snap(2, "erp", 1, website="acme.example")],
        "acme.example",
        2,
        "most_recent",
    ),
    (
        "a deleted source record no longer supplies values",
        "legal_name",
        (rule("most_recent"),),
        [snap(1, "crm", 9, deleted=True, legal_name="Gone"), snap(2, "erp", 1, legal_name="Kept")],
        "Kept",
        2,
        "most_recent",
    ),
    (
        "same commit time, different values: the higher LSN wins and the lineage says tie_break",
        "website",
        (rule("most_recent"),),
        [snap(1, "crm", 5, lsn=100, website="a.example"), snap(2, "erp", 5, lsn=200, website="b")],
        "b",
        2,
        TIE_BREAK,
    ),
    (
        "same commit time and LSN: the lower source key wins",
        "website",
        (rule("most_recent"),),
        [snap(7, "erp", 5, lsn=1, website="erp.example"), snap(8, "crm", 5, lsn=1, website="crm")],
        "crm",
        8,
        TIE_BREAK,
    ),
    (
        "agreeing sources: the most recent of them is named as the source",
        "currency",
        (rule("source_priority", "billing"),),
        [snap(1, "billing", 1, currency="EUR"), snap(2, "billing", 6, currency="EUR")],
        "EUR",
        2,
        "source_priority(billing)",
    ),
]


@pytest.mark.parametrize(
    ("attribute", "chain", "sources", "value", "source_id", "rule_name"),
    [pytest.param(*case[1:], id=case[0]) for case in CASES],
)
def test_rule_chooses_the_expected_source(
    attribute: str,
    chain: tuple[Rule, ...],
    sources: list[SourceSnapshot],
    value: Any,
    source_id: int,
    rule_name: str,
) -> None:
    rules = rules_for(attribute, *chain)
    survived = survive(sources, rules, {})

    assert survived.attributes[attribute] == value
    lineage = survived.lineage[attribute]
    assert lineage.value == value
    assert lineage.source_record_id == source_id
    winner = next(s for s in sources if s.source_record_id == source_id)
    assert lineage.source_key == winner.key
    assert lineage.position == winner.position
    assert lineage.rule == rule_name
    assert lineage.rule_set_version == rules.version
    assert not lineage.pinned


def test_union_combines_lists_without_duplicates_in_priority_then_recency_order() -> None:
    rules = rules_for("emails", rule("union", "crm"))
    sources = [
        snap(1, "erp", 9, emails=["ap@acme.example", "info@acme.example"]),
        snap(2, "crm", 1, emails=["Jane@Acme.example"]),
        snap(3, "billing", 5, emails=["jane@acme.example", "billing@acme.example"]),
        snap(4, "crm", 3, emails=[]),
    ]

    survived = survive(sources, rules, {})

    assert survived.attributes["emails"] == [
        "Jane@Acme.example",  # CRM first, as the rule lists it
        "ap@acme.example",  # then the others, most recent first
        "info@acme.example",
        "billing@acme.example",  # jane@ from billing is the same address as CRM's
    ]
    lineage = survived.lineage["emails"]
    assert lineage.rule == "union(crm)"
    assert lineage.source_record_id == 2
    assert lineage.contributing_source_record_ids == (2, 1, 3)


def test_allow_empty_lets_the_system_of_record_clear_a_value() -> None:
    rules = rules_for("credit_limit", rule("source_priority", "billing", allow_empty=True))
    sources = [snap(1, "billing", 5), snap(2, "erp", 9, credit_limit="50000")]

    survived = survive(sources, rules, {})

    assert "credit_limit" not in survived.attributes
    assert survived.lineage["credit_limit"].value is None
    assert survived.lineage["credit_limit"].source_record_id == 1


def test_without_allow_empty_the_same_rule_falls_back_to_a_present_value() -> None:
    rules = rules_for("credit_limit", rule("source_priority", "billing"))
    sources = [snap(1, "billing", 5), snap(2, "erp", 9, credit_limit="50000")]

    survived = survive(sources, rules, {})

    assert survived.attributes["credit_limit"] == "50000"
    assert survived.lineage["credit_limit"].rule == TIE_BREAK


def test_an_attribute_no_source_has_is_left_out() -> None:
    survived = survive([snap(1, "crm", 0, legal_name="Acme")], default_rules(), {})

    assert survived.attributes == {"legal_name": "Acme"}
    assert set(survived.lineage) == {"legal_name"}


def test_no_sources_gives_an_empty_record_but_keeps_pins() -> None:
    survived = survive([], default_rules(), {"legal_name": pin("legal_name", "Acme AG")})

    assert survived.attributes == {"legal_name": "Acme AG"}
    assert survived.lineage["legal_name"].pinned


def test_a_pin_beats_the_rule_and_is_explained() -> None:
    rules = default_rules()
    sources = [snap(1, "erp", 9, tax_id="DE111"), snap(2, "crm", 1, tax_id="DE222")]

    survived = survive(sources, rules, {"tax_id": pin("tax_id", "DE333")})

    assert survived.attributes["tax_id"] == "DE333"
    lineage = survived.lineage["tax_id"]
    assert (lineage.rule, lineage.pinned, lineage.pinned_by, lineage.pin_reason) == (
        STEWARD_PIN,
        True,
        "ann",
        "confirmed by phone",
    )
    assert (lineage.source_record_id, lineage.source_key, lineage.position) == (None, None, None)
    assert lineage.rule_set_version == rules.version


def test_a_pin_to_nothing_keeps_the_attribute_empty() -> None:
    sources = [snap(1, "erp", 9, website="spam.example")]

    survived = survive(sources, default_rules(), {"website": pin("website", None)})

    assert "website" not in survived.attributes
    assert survived.lineage["website"].pinned


def test_a_pin_on_an_unknown_attribute_is_ignored() -> None:
    survived = survive([], default_rules(), {"shoe_size": pin("shoe_size", 42)})

    assert survived == SurvivedRecord(attributes={}, lineage={})


def test_default_rules_follow_the_systems_of_record() -> None:
    sources = [
        snap(
            1,
            "crm",
            30,
            legal_name="Acme",
            tax_id="DE-CRM",
            currency="USD",
            emails=["sales@acme.example"],
            addresses=[{"city": "Hamburg"}],
        ),
        snap(
            2,
            "billing",
            20,
            legal_name="ACME Billing",
            currency="EUR",
            payment_terms="NET30",
            emails=["invoices@acme.example"],
        ),
        snap(
            3,
            "erp",
            10,
            legal_name="Acme GmbH",
            tax_id="DE123456789",
            currency="CHF",
            legal_entity="DE01",
            addresses=[{"city": "Berlin"}],
        ),
    ]

    attributes = survive(sources, default_rules(), {}).attributes

    assert attributes["legal_name"] == "Acme GmbH"  # ERP owns legal identity
    assert attributes["tax_id"] == "DE123456789"
    assert attributes["legal_entity"] == "DE01"
    assert attributes["currency"] == "EUR"  # billing owns commercial terms
    assert attributes["payment_terms"] == "NET30"
    assert attributes["emails"] == ["sales@acme.example", "invoices@acme.example"]  # CRM first
    assert attributes["addresses"] == [{"city": "Hamburg"}]  # the latest change wins


# --- invariants --------------------------------------------------------------------------------

SYSTEMS = ("crm", "billing", "erp")
names = st.sampled_from(["Acme", "ACME", "Acme GmbH", "Globex", "", None])
email_lists = st.lists(st.sampled_from(["a@x.io", "A@x.io", "b@x.io", "c@y.io"]), max_size=3)
address_lists = st.lists(
    st.fixed_dictionaries(
        {"city": st.sampled_from(["Berlin", "Paris"])},
        optional={"country": st.sampled_from(["DE", "FR"]), "postal_code": st.just("10115")},
    ),
    max_size=2,
)


@st.composite
def snapshots(draw: st.DrawFn, max_size: int = 8) -> list[SourceSnapshot]:
    """Source records with clashing values, commit times and log positions, unique keys."""
    count = draw(st.integers(min_value=0, max_value=max_size))
    result = []
    for index in range(count):
        attributes = {
            "legal_name": draw(names),
            "tax_id": draw(st.sampled_from(["DE1", "DE2", None])),
            "currency": draw(st.sampled_from(["EUR", "USD", None])),
            "emails": draw(email_lists),
            "addresses": draw(address_lists),
        }
        result.append(
            SourceSnapshot(
                source_record_id=index + 1,
                key=SourceKey(draw(st.sampled_from(SYSTEMS)), "customers", f"pk{index}"),
                attributes={k: v for k, v in attributes.items() if v is not None},
                position=SourcePosition(
                    lsn=draw(st.one_of(st.none(), st.integers(0, 3))),
                    tx_id=None,
                    committed_at=T0 + timedelta(seconds=draw(st.integers(0, 3))),
                ),
                deleted=draw(st.booleans()),
            )
        )
    return result


single_rules = st.one_of(
    st.builds(
        rule,
        st.just("source_priority"),
        st.sampled_from(SYSTEMS),
        st.sampled_from(SYSTEMS),
        allow_empty=st.booleans(),
    ),
    st.builds(
        rule,
        st.sampled_from(["most_recent", "most_complete", "most_frequent"]),
        allow_empty=st.booleans(),
    ),
)


@st.composite
def rule_sets(draw: st.DrawFn) -> SurvivorshipRules:
    chains: dict[str, tuple[Rule, ...]] = {}
    for attribute in ("legal_name", "tax_id", "currency", "addresses"):
        chains[attribute] = tuple(draw(st.lists(single_rules, min_size=1, max_size=3)))
    email_chain = draw(st.lists(single_rules, max_size=2))
    if draw(st.booleans()):
        email_chain.append(rule("union", draw(st.sampled_from(SYSTEMS))))
    if email_chain:
        chains["emails"] = tuple(email_chain)
    return SurvivorshipRules(attributes=chains)


@settings(max_examples=150, deadline=None)
@given(
    sources=snapshots(), rules=st.one_of(st.just(default_rules()), rule_sets()), seed=st.integers()
)
def test_the_order_sources_are_given_in_changes_nothing(
    sources: list[SourceSnapshot], rules: SurvivorshipRules, seed: int
) -> None:
    shuffled = list(sources)
    random.Random(seed).shuffle(shuffled)

    assert survive(shuffled, rules, {}) == survive(sources, rules, {})


@settings(max_examples=150, deadline=None)
@given(sources=snapshots(), rules=rule_sets(), data=st.data())
def test_a_pin_beats_every_rule(
    sources: list[SourceSnapshot], rules: SurvivorshipRules, data: st.DataObject
) -> None:
    pinned = data.draw(st.sets(st.sampled_from(GOLDEN_ATTRIBUTES), min_size=1))
    pins = {name: pin(name, f"pinned {name}") for name in pinned}

    survived = survive(sources, rules, pins)

    for name in pinned:
        assert survived.attributes[name] == f"pinned {name}"
        assert survived.lineage[name].pinned
        assert survived.lineage[name].rule == STEWARD_PIN


@st.composite
def change_logs(draw: st.DrawFn) -> list[SourceSnapshot]:
    """Successive versions of a few source rows; each row's versions commit in order."""
    log = []
    for row in range(draw(st.integers(1, 4))):
        system = draw(st.sampled_from(SYSTEMS))
        minute = draw(st.integers(0, 5))
        for version in range(draw(st.integers(1, 4))):
            minute += draw(st.integers(0, 3))
            log.append(
                SourceSnapshot(
                    source_record_id=0,  # assigned by the store on first arrival
                    key=SourceKey(system, "customers", f"row{row}"),
                    attributes={
                        "website": f"{system}-{row}-v{version}.example",
                        "legal_name": draw(st.sampled_from(["Acme", "Globex"])),
                    },
                    position=SourcePosition(
                        lsn=1000 * row + version,
                        tx_id=None,
                        committed_at=T0 + timedelta(minutes=minute),
                    ),
                )
            )
    return log


def deliver(log: list[SourceSnapshot]) -> list[SourceSnapshot]:
    """What the store keeps for each source row: the newest version by source position (a
    change older than the stored one is ignored); record ids follow first arrival."""
    kept: dict[SourceKey, SourceSnapshot] = {}
    ids: dict[SourceKey, int] = {}
    for change in log:
        ids.setdefault(change.key, len(ids) + 1)
        stored = kept.get(change.key)
        if stored is None or change.position.sort_key() > stored.position.sort_key():
            kept[change.key] = replace(change, source_record_id=ids[change.key])
    return list(kept.values())


def explained(record: SurvivedRecord) -> dict[str, tuple[Any, str, SourceKey | None]]:
    return {name: (e.value, e.rule, e.source_key) for name, e in record.lineage.items()}


@settings(max_examples=150, deadline=None)
@given(log=change_logs(), seed=st.integers(), duplicated=st.integers(0, 5))
def test_redelivery_in_any_order_keeps_the_most_recent_winner(
    log: list[SourceSnapshot], seed: int, duplicated: int
) -> None:
    rules = SurvivorshipRules(default=(rule("most_recent"),))
    rng = random.Random(seed)
    redelivered = log + [rng.choice(log) for _ in range(duplicated)]
    rng.shuffle(redelivered)

    in_order = survive(deliver(log), rules, {})
    replayed = survive(deliver(redelivered), rules, {})

    assert explained(replayed) == explained(in_order)
    latest = max(log, key=lambda c: (c.position.committed_at, c.position.lsn or 0, str(c.key)))
    assert replayed.attributes["website"] == latest.attributes["website"]
