"""Source mappings: config validation names file, key and expectation; rows become canonical
attributes the hub's model accepts; tables without a mapping are counted, not applied."""

from __future__ import annotations

import json
import textwrap
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import yaml
from cdc_testkit import RECORDED, SOURCES_YAML, recorded_envelopes

from cdc.envelope import (
    UNAVAILABLE_PLACEHOLDER,
    ChangeEnvelope,
    Operation,
    SourceInfo,
    jsonable,
    parse_message,
)
from cdc.errors import MappingConfigError, MappingFailedError, TruncateNotAppliedError
from cdc.mapping import (
    CapturedChange,
    ChangeMapper,
    load_source_mappings,
    parse_source_mappings,
)
from cdc.raw import RawMessage
from hub.model import CanonicalParty, ChangeOp, SourceChange, SourceKey

ACME = {
    "kind": "organization",
    "legal_name": "Acme GmbH",
    "emails": ["billing@acme.example"],
    "phones": ["+49 30 1234567"],
    "addresses": [
        {"lines": ["Hauptstraße 5"], "city": "Berlin", "postal_code": "10115", "country": "DE"}
    ],
    "credit_limit": "12500.00",
}
JANE = {
    "kind": "person",
    "given_name": "Jane",
    "family_name": "Doe",
    "emails": ["jane.doe@example.com"],
    "phones": ["(555) 010-2000", "555 010 2001"],
    "addresses": [
        {"lines": ["1 Main St"], "city": "Springfield", "postal_code": "62701", "country": "US"}
    ],
    "date_of_birth": "1985-07-14",
    "credit_limit": "0.01",
}
ZOE = {
    "kind": "person",
    "given_name": "Zoë",
    "family_name": "Ünal",
    "addresses": [{"country": "tr"}],
    "date_of_birth": "1970-01-01",
}


def _changes(mapper: ChangeMapper, recording: str) -> list[SourceChange | None]:
    out: list[SourceChange | None] = []
    for envelope in recorded_envelopes(recording):
        if envelope.op is Operation.TRUNCATE:
            continue
        out.append(mapper.map_change(envelope))
    return out


# ---- recorded fixtures ----------------------------------------------------------------------


def test_snapshot_rows_become_canonical_attributes(mapper: ChangeMapper, recording: str) -> None:
    acme, jane, zoe = _changes(mapper, recording)[:3]
    assert acme is not None
    assert jane is not None
    assert zoe is not None
    assert acme.key == SourceKey("crm", "public.customer", "1")
    assert acme.op is ChangeOp.UPSERT
    notes = acme.attributes["extra"]["notes"]
    assert notes.startswith("acme:")
    without_notes = {k: v for k, v in acme.attributes.items() if k != "extra"}
    if RECORDED[recording][2] == "double":
        # decimal.handling.mode=double: the value survives, its scale does not
        assert without_notes == {**ACME, "credit_limit": "12500.0"}
    else:
        assert without_notes == ACME
    assert dict(jane.attributes) == (
        {**JANE, "credit_limit": "0.01"} if RECORDED[recording][2] != "double" else JANE
    )
    assert dict(zoe.attributes) == ZOE


def test_attributes_are_in_the_canonical_shape(mapper: ChangeMapper, recording: str) -> None:
    for change in _changes(mapper, recording):
        if change is None or change.op is ChangeOp.DELETE:
            continue
        party = CanonicalParty.model_validate(change.attributes)
        canonical = party.to_attributes()
        # The hub's own round trip changes nothing but the normalisations it owns.
        assert canonical.keys() == change.attributes.keys()
        assert json.loads(json.dumps(change.attributes)) == change.attributes


def test_every_recording_yields_the_same_parties(mapper: ChangeMapper) -> None:
    # Snapshot rows, the insert and the update that rewrote notes: full rows in every variant.
    def parties(name: str) -> list[CanonicalParty]:
        changes = _changes(mapper, name)
        chosen = [*changes[:4], changes[5]]
        return [CanonicalParty.model_validate(c.attributes) for c in chosen if c is not None]

    first, *others = (parties(name) for name in RECORDED)
    assert len(first) == 5
    assert all(p == first for p in others)


@pytest.mark.parametrize(
    "recording", [n for n, (_, identity, _) in RECORDED.items() if identity == "DEFAULT"]
)
def test_unavailable_toasted_column_keeps_the_stored_attribute(
    mapper: ChangeMapper, recording: str
) -> None:
    change = _changes(mapper, recording)[4]
    assert isinstance(change, CapturedChange)
    assert change.op is ChangeOp.UPSERT
    assert change.unchanged == frozenset({"extra"})
    assert change.unavailable_columns == frozenset({"notes"})
    assert "extra" not in change.attributes
    assert change.attributes["addresses"][0]["city"] == "Potsdam"
    assert change.raw is not None
    assert "notes" not in change.raw
    assert UNAVAILABLE_PLACEHOLDER not in json.dumps(change.raw)
    assert UNAVAILABLE_PLACEHOLDER not in json.dumps(change.attributes)
    rewritten = _changes(mapper, recording)[5]
    assert isinstance(rewritten, CapturedChange)
    assert rewritten.unchanged == frozenset()
    assert rewritten.attributes["extra"]["notes"].startswith("acme-v2:")


@pytest.mark.parametrize(
    "recording", [n for n, (_, identity, _) in RECORDED.items() if identity == "FULL"]
)
def test_full_identity_needs_no_stored_value(mapper: ChangeMapper, recording: str) -> None:
    change = _changes(mapper, recording)[4]
    assert isinstance(change, CapturedChange)
    assert change.unchanged == frozenset()
    assert change.attributes["extra"]["notes"].startswith("acme:")


def test_deletes_and_a_primary_key_change(mapper: ChangeMapper, recording: str) -> None:
    envelopes = [e for e in recorded_envelopes(recording) if e.op is not Operation.TRUNCATE]
    changes = [mapper.map_change(e) for e in envelopes]
    delete, tombstone, create = changes[6:9]
    assert delete is not None
    assert create is not None
    assert tombstone is None
    assert (delete.op, delete.key.pk) == (ChangeOp.DELETE, "2")
    assert delete.attributes == {}
    assert delete.raw == jsonable(envelopes[6].before)
    assert (create.op, create.key.pk) == (ChangeOp.UPSERT, "20")
    assert create.attributes["given_name"] == "Jane"
    assert delete.position.tx_id == create.position.tx_id
    final_delete = changes[11]
    assert final_delete is not None
    assert (final_delete.op, final_delete.key.pk) == (ChangeOp.DELETE, "3")


def test_positions_come_from_the_source(mapper: ChangeMapper, recording: str) -> None:
    envelopes = [e for e in recorded_envelopes(recording) if e.op is not Operation.TRUNCATE]
    for envelope, change in zip(envelopes, map(mapper.map_change, envelopes), strict=True):
        if change is None:
            continue
        assert envelope.source is not None
        assert change.position.lsn == envelope.source.lsn
        assert change.position.tx_id == envelope.source.tx_id
        assert change.position.committed_at == envelope.source.committed_at
        assert change.position.committed_at.tzinfo is UTC


def test_non_row_messages_are_counted_and_ignored(mapper: ChangeMapper, recording: str) -> None:
    changes = _changes(mapper, recording)
    assert sum(c is None for c in changes) == 3  # two tombstones, one logical message
    assert mapper.ignored == {"tombstone": 2, "m": 1}
    assert not mapper.unmapped


def test_truncate_is_dead_lettered_by_default_never_applied(
    mapper: ChangeMapper, recording: str
) -> None:
    truncate = recorded_envelopes(recording)[-1]
    with pytest.raises(TruncateNotAppliedError) as caught:
        mapper.map_change(truncate)
    assert (caught.value.system, caught.value.table) == ("crm", "public.customer")

    document = yaml.safe_load(SOURCES_YAML.read_text())
    document["sources"]["crm"]["truncate"] = "ignore"
    lenient = ChangeMapper(parse_source_mappings(document))
    assert lenient.map_change(truncate) is None
    assert lenient.ignored["t"] == 1


def test_tables_without_a_mapping_are_counted_and_ignored(mapper: ChangeMapper) -> None:
    insert = recorded_envelopes("pg_schemas_default.jsonl")[3]
    assert insert.source is not None
    source = SourceInfo(**{**insert.source.__dict__, "table": "orders"})
    orders = ChangeEnvelope(insert.op, insert.key, None, insert.after, source)
    assert mapper.map_change(orders) is None
    assert mapper.map_change(orders) is None
    assert mapper.unmapped == {"crm/public.orders": 2}


# ---- transforms -----------------------------------------------------------------------------


def _mapper_for(fields: dict[str, Any], primary_key: Any = "id") -> ChangeMapper:
    document = {
        "sources": {"crm": {"tables": {"customer": {"primary_key": primary_key, "fields": fields}}}}
    }
    return ChangeMapper(parse_source_mappings(document))


def _envelope(row: dict[str, Any], unavailable: frozenset[str] = frozenset()) -> ChangeEnvelope:
    source = SourceInfo(
        connector="postgresql",
        name="crm",
        db="crm",
        schema="public",
        table="customer",
        ts_ms=1700000000000,
        lsn=42,
        tx_id=7,
    )
    key = {"id": row["id"]} if "id" in row else None
    return ChangeEnvelope(Operation.CREATE, key, None, row, source, unavailable=unavailable)


def _map(fields: dict[str, Any], row: dict[str, Any]) -> dict[str, Any]:
    change = _mapper_for(fields).map_change(_envelope({"id": 1, **row}))
    assert change is not None
    return dict(change.attributes)


TRANSFORMS: list[tuple[str, dict[str, Any], dict[str, Any], dict[str, Any]]] = [
    ("rename, trimmed", {"legal_name": "company"}, {"company": " Acme "}, {"legal_name": "Acme"}),
    (
        "concat skips empty parts",
        {"legal_name": {"concat": ["first", "middle", "last"], "sep": " "}},
        {"first": "Jane", "middle": None, "last": "Doe"},
        {"legal_name": "Jane Doe"},
    ),
    (
        "split and pick first and last",
        {
            "given_name": {"from": "full", "split": " ", "index": 0},
            "family_name": {"from": "full", "split": " ", "index": -1},
        },
        {"full": "Jane Q. Doe"},
        {"given_name": "Jane", "family_name": "Doe"},
    ),
    (
        "split into a list",
        {"emails": {"from": "mails", "split": ";"}},
        {"mails": "a@x.example; b@y.example;"},
        {"emails": ["a@x.example", "b@y.example"]},
    ),
    (
        "several phone columns into phones",
        {"phones": {"columns": ["phone", "mobile", "fax"]}},
        {"phone": "+49 30 1", "mobile": " ", "fax": "+49 30 2"},
        {"phones": ["+49 30 1", "+49 30 2"]},
    ),
    (
        "a single column into a list attribute",
        {"emails": "email"},
        {"email": "a@x.example"},
        {"emails": ["a@x.example"]},
    ),
    (
        "lookup with a default",
        {"addresses[0].country": {"from": "land", "lookup": {"Germany": "DE"}, "default": "ZZ"}},
        {"land": "Narnia"},
        {"addresses": [{"country": "ZZ"}]},
    ),
    (
        "lookup passes unmatched values through without a default",
        {"addresses[0].country": {"from": "land", "lookup": {"Germany": "DE"}}},
        {"land": "FR"},
        {"addresses": [{"country": "FR"}]},
    ),
    (
        "lookup on numbers",
        {"lifecycle_status": {"from": "status", "lookup": {1: "active", 2: "blocked"}}},
        {"status": 2},
        {"lifecycle_status": "blocked"},
    ),
    (
        "kind derived from whether there is a company",
        {
            "kind": {
                "from": "company",
                "when_present": "organization",
                "when_absent": "person",
            }
        },
        {"company": None},
        {"kind": "person"},
    ),
    (
        "constant",
        {"kind": {"constant": "organization"}, "currency": {"constant": "EUR"}},
        {},
        {"kind": "organization", "currency": "EUR"},
    ),
    (
        "date from days since the epoch (schemaless Debezium date)",
        {"date_of_birth": {"from": "dob", "type": "date"}},
        {"dob": 5673},
        {"date_of_birth": "1985-07-14"},
    ),
    (
        "date from an ISO timestamp",
        {"date_of_birth": {"from": "dob", "type": "date"}},
        {"dob": "1985-07-14T00:00:00"},
        {"date_of_birth": "1985-07-14"},
    ),
    (
        "date from a datetime",
        {"date_of_birth": {"from": "dob", "type": "date"}},
        {"dob": datetime(1985, 7, 14, 23, 59)},
        {"date_of_birth": "1985-07-14"},
    ),
    (
        "decimal from a double keeps its shortest form",
        {"credit_limit": {"from": "limit", "type": "decimal"}},
        {"limit": 0.1},
        {"credit_limit": "0.1"},
    ),
    (
        "decimal from text",
        {"credit_limit": {"from": "limit", "type": "decimal"}},
        {"limit": " 1500.50 "},
        {"credit_limit": "1500.50"},
    ),
    (
        "str from a decimal keeps the scale",
        {"tax_id": {"from": "n", "type": "str"}},
        {"n": Decimal("1.50")},
        {"tax_id": "1.50"},
    ),
    (
        "int from integral text",
        {"extra.employees": {"from": "n", "type": "int"}},
        {"n": "120.0"},
        {"extra": {"employees": "120"}},
    ),
    (
        "address columns into addresses[0], an empty addresses[1] dropped",
        {
            "addresses[0].lines": {"columns": ["street1", "street2"]},
            "addresses[0].city": "city",
            "addresses[0].postal_code": {"from": "zip", "type": "str"},
            "addresses[1].city": "billing_city",
        },
        {
            "street1": "Hauptstr. 5",
            "street2": "",
            "city": "Berlin",
            "zip": 10115,
            "billing_city": None,
        },
        {"addresses": [{"lines": ["Hauptstr. 5"], "city": "Berlin", "postal_code": "10115"}]},
    ),
    (
        "extra from a concatenation",
        {"extra.segment": {"concat": ["region", "tier"], "sep": "-"}},
        {"region": "EU", "tier": 2},
        {"extra": {"segment": "EU-2"}},
    ),
    (
        "empty values are dropped like to_attributes does",
        {
            "legal_name": "company",
            "emails": "email",
            "date_of_birth": {"from": "d", "type": "date"},
        },
        {"company": "", "email": None, "d": None},
        {},
    ),
]


@pytest.mark.parametrize(
    ("fields", "row", "expected"),
    [pytest.param(f, r, x, id=label) for label, f, r, x in TRANSFORMS],
)
def test_transforms(fields: dict[str, Any], row: dict[str, Any], expected: dict[str, Any]) -> None:
    assert _map(fields, row) == expected


def test_a_missing_column_is_a_mapping_failure_naming_it() -> None:
    with pytest.raises(MappingFailedError) as caught:
        _map({"legal_name": "compnay_name"}, {"company_name": "Acme"})
    assert caught.value.field == "legal_name"
    assert "'compnay_name'" in caught.value.detail
    assert "company_name" in caught.value.detail


def test_a_value_that_cannot_be_coerced_is_a_mapping_failure() -> None:
    with pytest.raises(MappingFailedError) as caught:
        _map({"credit_limit": {"from": "limit", "type": "decimal"}}, {"limit": "1.500,00"})
    assert caught.value.field == "credit_limit"
    assert "decimal" in caught.value.detail
    with pytest.raises(MappingFailedError):
        _map({"date_of_birth": {"from": "d", "type": "date"}}, {"d": "14/07/1985"})


def test_a_missing_primary_key_is_a_mapping_failure() -> None:
    mapper = _mapper_for({"legal_name": "company"})
    with pytest.raises(MappingFailedError) as caught:
        mapper.map_change(_envelope({"company": "Acme"}))
    assert caught.value.field == "primary_key.id"


def test_composite_primary_key_text_is_unambiguous() -> None:
    mapper = _mapper_for({"legal_name": "company"}, primary_key=["region", "no"])
    one = mapper.map_change(_envelope({"region": "EU|1", "no": 7, "company": "A"}))
    two = mapper.map_change(_envelope({"region": "EU", "no": "1|7", "company": "A"}))
    assert one is not None
    assert two is not None
    assert one.key.pk == "EU\\|1|7"
    assert one.key.pk != two.key.pk
    assert one.key.table == "customer"


def test_unavailable_column_omits_every_attribute_it_feeds() -> None:
    mapper = _mapper_for(
        {
            "legal_name": "company",
            "addresses[0].lines": {"columns": ["street"]},
            "addresses[0].city": "city",
        }
    )
    change = mapper.map_change(
        _envelope({"id": 1, "company": "Acme", "city": "Berlin"}, frozenset({"street"}))
    )
    assert isinstance(change, CapturedChange)
    assert change.attributes == {"legal_name": "Acme"}
    assert change.unchanged == frozenset({"addresses"})


def test_raw_is_the_json_form_of_the_after_image(mapper: ChangeMapper) -> None:
    insert = recorded_envelopes("pg_schemas_default.jsonl")[3]
    change = mapper.map_change(insert)
    assert change is not None
    assert change.raw is not None
    assert change.raw["credit_limit"] == "99999999.99"
    assert change.raw["balance"] == "0.000001"
    assert change.raw["profile"] == {"segment": "mid-market"}
    json.dumps(change.raw)


def test_config_key_without_schema_means_public(mapper: ChangeMapper) -> None:
    envelope = parse_message(
        RawMessage(
            b'{"id": 9}',
            json.dumps(
                {
                    "op": "c",
                    "after": {"id": 9, "company": "Acme"},
                    "source": {
                        "connector": "postgresql",
                        "name": "crm",
                        "db": "crm",
                        "schema": "public",
                        "table": "customer",
                        "ts_ms": 1700000000000,
                    },
                }
            ).encode(),
        )
    )
    change = _mapper_for({"legal_name": "company"}).map_change(envelope)
    assert change is not None
    assert change.key == SourceKey("crm", "customer", "9")
    assert change.position.committed_at == datetime(2023, 11, 14, 22, 13, 20, tzinfo=UTC)
    assert change.position.lsn is None
    assert date(2023, 11, 14) == change.position.committed_at.date()


# ---- config validation ----------------------------------------------------------------------


def _config(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "mdh.yaml"
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


TABLE = "sources.crm.tables.public.customer"

BAD_CONFIGS: list[tuple[str, str, str, str]] = [
    ("no sources section", "survivorship: {}\n", "sources", "top-level 'sources:'"),
    ("empty sources", "sources: {}\n", "sources", "at least 1"),
    (
        "no primary key",
        """
        sources:
          crm:
            tables:
              public.customer:
                fields: {legal_name: company}
        """,
        f"{TABLE}.primary_key",
        "required",
    ),
    (
        "unknown canonical attribute",
        """
        sources:
          crm:
            tables:
              public.customer:
                primary_key: id
                fields: {nickname: nick}
        """,
        f"{TABLE}.fields",
        "'nickname': a canonical attribute",
    ),
    (
        "unknown address part",
        """
        sources:
          crm:
            tables:
              public.customer:
                primary_key: id
                fields: {"addresses[0].street": street}
        """,
        f"{TABLE}.fields",
        "an address has city, country, lines, postal_code, region",
    ),
    (
        "two inputs",
        """
        sources:
          crm:
            tables:
              public.customer:
                primary_key: id
                fields: {legal_name: {from: company, constant: Acme}}
        """,
        f"{TABLE}.fields.legal_name",
        "exactly one of from, columns, concat, constant (got from, constant)",
    ),
    (
        "a typo in a field spec",
        """
        sources:
          crm:
            tables:
              public.customer:
                primary_key: id
                fields: {legal_name: {form: company}}
        """,
        f"{TABLE}.fields.legal_name.form",
        "no such key",
    ),
    (
        "a kind that is not organization or person",
        """
        sources:
          crm:
            tables:
              public.customer:
                primary_key: id
                fields: {kind: {from: type, lookup: {B: company, P: person}}}
        """,
        f"{TABLE}.fields",
        "kind is 'organization' or 'person', not 'company'",
    ),
    (
        "a YAML boolean as a lookup key",
        """
        sources:
          crm:
            tables:
              public.customer:
                primary_key: id
                fields: {lifecycle_status: {from: active, lookup: {yes: active}}}
        """,
        f"{TABLE}.fields.lifecycle_status.lookup",
        "quote it",
    ),
    (
        "an unknown policy",
        """
        sources:
          crm:
            unmapped_tables: skip
            tables:
              public.customer: {primary_key: id, fields: {legal_name: company}}
        """,
        "sources.crm.unmapped_tables",
        "'ignore' or 'dead_letter'",
    ),
    (
        "an unknown coercion",
        """
        sources:
          crm:
            tables:
              public.customer:
                primary_key: id
                fields: {credit_limit: {from: limit, type: money}}
        """,
        f"{TABLE}.fields.credit_limit.type",
        "'str', 'int', 'decimal', 'date' or 'list'",
    ),
    (
        "a field spec that is a number",
        """
        sources:
          crm:
            tables:
              public.customer:
                primary_key: id
                fields: {legal_name: 42}
        """,
        f"{TABLE}.fields.legal_name",
        "a column name",
    ),
    (
        "two systems reading one server",
        """
        sources:
          crm:
            tables: {customer: {primary_key: id, fields: {legal_name: company}}}
          crm2:
            server_name: crm
            tables: {customer: {primary_key: id, fields: {legal_name: company}}}
        """,
        "sources",
        "both read server 'crm'",
    ),
    (
        "the same table twice",
        """
        sources:
          crm:
            tables:
              customer: {primary_key: id, fields: {legal_name: company}}
              public.customer: {primary_key: id, fields: {legal_name: company}}
        """,
        "sources.crm.tables",
        "are the same table",
    ),
    (
        "broken YAML",
        """
        sources:
          crm:
            tables: [unclosed
        """,
        "line 5",
        "valid YAML",
    ),
]


@pytest.mark.parametrize(
    ("text", "key", "expected"),
    [pytest.param(t, k, e, id=label) for label, t, k, e in BAD_CONFIGS],
)
def test_config_errors_name_file_key_and_expectation(
    tmp_path: Path, text: str, key: str, expected: str
) -> None:
    path = _config(tmp_path, text)
    with pytest.raises(MappingConfigError) as caught:
        load_source_mappings(path)
    error = caught.value
    assert error.file == str(path)
    assert error.key == key
    assert expected in error.expected
    assert str(path) in str(error)


def test_missing_config_file(tmp_path: Path) -> None:
    with pytest.raises(MappingConfigError) as caught:
        load_source_mappings(tmp_path / "absent.yaml")
    assert caught.value.key == "(file)"


def test_the_fixture_config_is_valid_and_other_sections_are_left_alone(tmp_path: Path) -> None:
    text = SOURCES_YAML.read_text() + "\nsurvivorship:\n  legal_name: [source_priority]\n"
    mappings = load_source_mappings(_config(tmp_path, text))
    table = mappings.sources["crm"].tables["public.customer"]
    assert table.primary_key == ("id",)
    assert table.fields["legal_name"].from_ == "company_name"
    with pytest.raises(Exception):  # noqa: B017 - frozen pydantic model
        table.fields["legal_name"].from_ = "x"  # type: ignore[misc]
