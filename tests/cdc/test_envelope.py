"""Envelope parsing: recorded Debezium output decodes to the values the database holds."""

from __future__ import annotations

import base64
import json
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

import pytest
from cdc_testkit import RECORDED, RECORDED_OPS, recorded_envelopes, recorded_messages

from cdc.envelope import (
    UNAVAILABLE_PLACEHOLDER,
    ChangeEnvelope,
    LogicalMessage,
    Operation,
    jsonable,
    parse_message,
)
from cdc.raw import RawMessage

SCHEMA_RECORDINGS = [name for name, (schemas, _, _) in RECORDED.items() if schemas]
PLAIN_RECORDINGS = [name for name, (schemas, _, _) in RECORDED.items() if not schemas]
DEFAULT_IDENTITY = [name for name, (_, identity, _) in RECORDED.items() if identity == "DEFAULT"]
FULL_IDENTITY = [name for name, (_, identity, _) in RECORDED.items() if identity == "FULL"]


def _walk(value: Any) -> list[Any]:
    if isinstance(value, dict):
        return [x for v in value.values() for x in _walk(v)]
    if isinstance(value, list | tuple):
        return [x for v in value for x in _walk(v)]
    return [value]


# ---- recorded fixtures --------------------------------------------------------------------


def test_every_recorded_message_parses_in_capture_order(recording: str) -> None:
    messages = recorded_messages(recording)
    envelopes = [parse_message(m) for m in messages]
    assert [e.op.value for e in envelopes if e.op is not Operation.HEARTBEAT] == RECORDED_OPS
    assert any(e.op is Operation.HEARTBEAT for e in envelopes), "heartbeats were recorded too"
    assert all(e.has_schema == RECORDED[recording][0] for e in envelopes if e.source)


def test_snapshot_reads_are_flagged_and_streamed_changes_are_not(recording: str) -> None:
    envelopes = recorded_envelopes(recording)
    snapshot = [e for e in envelopes if e.op is Operation.READ]
    assert [e.key for e in snapshot] == [{"id": 1}, {"id": 2}, {"id": 3}]
    assert all(e.source is not None and e.source.in_snapshot for e in snapshot)
    assert [e.source.snapshot for e in snapshot if e.source] == ["first", "true", "last"]
    streamed = [e for e in envelopes if e.source is not None and e.op is not Operation.READ]
    assert streamed
    assert not any(e.source is not None and e.source.in_snapshot for e in streamed)


@pytest.mark.parametrize("recording", SCHEMA_RECORDINGS)
def test_schema_decodes_decimals_dates_timestamps_and_json(recording: str) -> None:
    acme, jane, zoe, globex = (recorded_envelopes(recording)[i].after for i in (0, 1, 2, 3))
    assert acme is not None
    assert jane is not None
    assert zoe is not None
    assert globex is not None
    # numeric(12,2): base64 bytes, scale 2 from the schema parameters
    assert acme["credit_limit"] == Decimal("12500.00")
    assert str(globex["credit_limit"]) == "99999999.99"
    assert jane["credit_limit"] == Decimal("0.01")
    # unconstrained numeric: io.debezium.data.VariableScaleDecimal, scale in the value
    assert acme["balance"] == Decimal("1234.5678")
    assert jane["balance"] == Decimal("-3")
    assert globex["balance"] == Decimal("0.000001")
    # date: days since the epoch (0 is the epoch itself, not "no date")
    assert jane["date_of_birth"] == date(1985, 7, 14)
    assert zoe["date_of_birth"] == date(1970, 1, 1)
    assert acme["date_of_birth"] is None
    # timestamp(6) without time zone: MicroTimestamp, a naive wall-clock time
    assert acme["updated_at"] == datetime(2024, 3, 1, 9, 30, 0, 123456)
    # timestamptz: ZonedTimestamp, an aware UTC time
    assert acme["created_at"].tzinfo is not None
    assert acme["created_at"].utcoffset() == timedelta(0)
    # jsonb: io.debezium.data.Json text, parsed
    assert acme["profile"] == {"segment": "enterprise", "tags": ["vip"]}
    # text keeps its characters
    assert acme["street"] == "Hauptstraße 5"
    assert zoe["given_name"] == "Zoë"


@pytest.mark.parametrize("recording", PLAIN_RECORDINGS)
def test_without_schema_values_stay_as_the_converter_wrote_them(recording: str) -> None:
    acme, jane = (recorded_envelopes(recording)[i].after for i in (0, 1))
    assert acme is not None
    assert jane is not None
    mode = RECORDED[recording][2]
    expected_credit: object = "12500.00" if mode == "string" else 12500.0
    assert acme["credit_limit"] == expected_credit
    assert jane["date_of_birth"] == 5673  # days since the epoch: no schema says it is a date
    assert acme["updated_at"] == 1709285400123456
    assert acme["created_at"].endswith("Z")


@pytest.mark.parametrize("recording", DEFAULT_IDENTITY)
def test_unchanged_toasted_column_is_marked_unavailable(recording: str) -> None:
    envelopes = recorded_envelopes(recording)
    untouched, rewritten = envelopes[4], envelopes[5]
    assert untouched.op is Operation.UPDATE
    assert untouched.key == {"id": 1}
    assert untouched.unavailable == frozenset({"notes"})
    assert untouched.after is not None
    assert "notes" not in untouched.after
    assert untouched.after["city"] == "Potsdam"
    # With REPLICA IDENTITY DEFAULT an update has no before-image.
    assert untouched.before is None
    # Once the column is written, its value is there again.
    assert rewritten.unavailable == frozenset()
    assert rewritten.after is not None
    assert rewritten.after["notes"].startswith("acme-v2:")


@pytest.mark.parametrize("recording", FULL_IDENTITY)
def test_full_identity_carries_complete_before_images(recording: str) -> None:
    envelopes = recorded_envelopes(recording)
    update, delete = envelopes[4], envelopes[6]
    assert update.before is not None
    assert update.after is not None
    assert (update.before["city"], update.after["city"]) == ("Berlin", "Potsdam")
    # FULL logs the old row whole, so nothing is unavailable, TOASTed or not.
    assert update.unavailable == frozenset()
    assert update.after["notes"].startswith("acme:")
    assert delete.op is Operation.DELETE
    assert delete.before is not None
    assert delete.before["given_name"] == "Jane"


@pytest.mark.parametrize("recording", DEFAULT_IDENTITY)
def test_default_identity_delete_has_only_the_key_in_its_before_image(recording: str) -> None:
    delete = recorded_envelopes(recording)[6]
    assert delete.op is Operation.DELETE
    assert delete.after is None
    assert delete.before is not None
    assert delete.before["id"] == 2
    assert delete.before["given_name"] is None
    assert delete.image is delete.before


def test_placeholder_never_survives_parsing(recording: str) -> None:
    for envelope in recorded_envelopes(recording):
        for image in (envelope.before, envelope.after):
            values = _walk(dict(image or {}))
            assert UNAVAILABLE_PLACEHOLDER not in values


def test_positions_come_from_the_source_block(recording: str) -> None:
    envelopes = recorded_envelopes(recording)
    changes = [e for e in envelopes if e.source is not None]
    for envelope in changes:
        position = envelope.position
        assert position is not None
        assert envelope.source is not None
        assert position.committed_at.tzinfo is not None
        assert position.committed_at.utcoffset() == timedelta(0)
        assert envelope.source.ts_us is not None
        expected = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=envelope.source.ts_us)
        assert position.committed_at == expected
        assert position.lsn is not None
        assert position.tx_id is not None
        assert envelope.source.db == recording.removesuffix(".jsonl")
        assert envelope.source.name == "crm"
    streamed = [e.position for e in changes if e.op is not Operation.READ]
    lsns = [p.lsn or 0 for p in streamed if p is not None]
    assert lsns == sorted(lsns), "streamed changes arrive in log order"
    # The two updates of one transaction share its id; the next transaction has another.
    pair = envelopes[9:11]
    assert pair[0].position is not None
    assert pair[1].position is not None
    assert pair[0].position.tx_id == pair[1].position.tx_id
    assert pair[0].position.lsn != pair[1].position.lsn
    assert envelopes[11].position is not None
    assert envelopes[11].position.tx_id != pair[0].position.tx_id


def test_primary_key_change_is_a_delete_tombstone_and_create(recording: str) -> None:
    delete, tombstone, create = recorded_envelopes(recording)[6:9]
    assert (delete.op, delete.key) == (Operation.DELETE, {"id": 2})
    assert (tombstone.op, tombstone.key, tombstone.source) == (Operation.TOMBSTONE, {"id": 2}, None)
    assert (create.op, create.key) == (Operation.CREATE, {"id": 20})
    assert delete.position is not None
    assert create.position is not None
    assert delete.position.tx_id == create.position.tx_id


def test_logical_message_and_truncate(recording: str) -> None:
    message, truncate = recorded_envelopes(recording)[-2:]
    assert message.op is Operation.MESSAGE
    assert message.message == LogicalMessage("mdh", b"echo-42")
    assert message.before is None
    assert message.after is None
    assert truncate.op is Operation.TRUNCATE
    assert truncate.key is None
    assert truncate.source is not None
    assert truncate.source.qualified_table == "public.customer"


def test_heartbeat_is_recognised_with_and_without_schema(recording: str) -> None:
    beats = [
        e for e in map(parse_message, recorded_messages(recording)) if e.op is Operation.HEARTBEAT
    ]
    assert beats
    assert all(b.key == {"serverName": "crm"} and b.ts_ms and b.position is None for b in beats)


# ---- type encodings (the schema says what a value is) ----------------------------------------


def _message(
    after: dict[str, Any],
    fields: list[dict[str, Any]] | None = None,
    op: str = "c",
) -> RawMessage:
    payload = {
        "before": None,
        "after": after,
        "source": {
            "connector": "postgresql",
            "name": "crm",
            "db": "crm",
            "schema": "public",
            "table": "customer",
            "ts_ms": 1700000000000,
            "lsn": 100,
            "txId": 7,
            "snapshot": "false",
        },
        "op": op,
        "ts_ms": 1700000000123,
    }
    value: dict[str, Any] = payload
    if fields is not None:
        row = {"type": "struct", "fields": fields, "optional": True}
        value = {
            "schema": {
                "type": "struct",
                "fields": [
                    {**row, "field": "before"},
                    {**row, "field": "after"},
                    {"type": "struct", "fields": [], "field": "source"},
                    {"type": "string", "field": "op"},
                ],
            },
            "payload": payload,
        }
    return RawMessage(
        key=b'{"id": 1}', value=json.dumps(value).encode(), topic="crm.public.customer"
    )


def _decimal_bytes(unscaled: int) -> str:
    length = max(1, (unscaled.bit_length() + 8) // 8)
    return base64.b64encode(unscaled.to_bytes(length, "big", signed=True)).decode()


DECODINGS: list[tuple[str, dict[str, Any], Any, Any]] = [
    (
        "Decimal, negative",
        {
            "type": "bytes",
            "name": "org.apache.kafka.connect.data.Decimal",
            "parameters": {"scale": "3"},
        },
        _decimal_bytes(-1234567),
        Decimal("-1234.567"),
    ),
    (
        "Decimal, converter decimal.format=NUMERIC",
        {
            "type": "bytes",
            "name": "org.apache.kafka.connect.data.Decimal",
            "parameters": {"scale": "2"},
        },
        12.5,
        Decimal("12.5"),
    ),
    (
        "VariableScaleDecimal",
        {"type": "struct", "name": "io.debezium.data.VariableScaleDecimal"},
        {"scale": 1, "value": _decimal_bytes(-5)},
        Decimal("-0.5"),
    ),
    ("Date", {"type": "int32", "name": "io.debezium.time.Date"}, -1, date(1969, 12, 31)),
    (
        "Connect Date",
        {"type": "int32", "name": "org.apache.kafka.connect.data.Date"},
        19000,
        date(2022, 1, 8),
    ),
    (
        "Timestamp (ms)",
        {"type": "int64", "name": "io.debezium.time.Timestamp"},
        1709285400123,
        datetime(2024, 3, 1, 9, 30, 0, 123000),
    ),
    (
        "MicroTimestamp",
        {"type": "int64", "name": "io.debezium.time.MicroTimestamp"},
        1709285400123456,
        datetime(2024, 3, 1, 9, 30, 0, 123456),
    ),
    (
        "NanoTimestamp",
        {"type": "int64", "name": "io.debezium.time.NanoTimestamp"},
        1709285400123456789,
        datetime(2024, 3, 1, 9, 30, 0, 123456),
    ),
    (
        "ZonedTimestamp with an offset",
        {"type": "string", "name": "io.debezium.time.ZonedTimestamp"},
        "2024-03-01T10:30:00+01:00",
        datetime(2024, 3, 1, 9, 30, tzinfo=UTC),
    ),
    (
        "MicroTime",
        {"type": "int64", "name": "io.debezium.time.MicroTime"},
        (13 * 3600 + 5) * 1_000_000 + 7,
        time(13, 0, 5, 7),
    ),
    ("Json", {"type": "string", "name": "io.debezium.data.Json"}, '{"a": [1, 2]}', {"a": [1, 2]}),
    ("bytes", {"type": "bytes"}, base64.b64encode(b"\x00\xff").decode(), b"\x00\xff"),
    (
        "array of dates",
        {"type": "array", "items": {"type": "int32", "name": "io.debezium.time.Date"}},
        [0, 1],
        [date(1970, 1, 1), date(1970, 1, 2)],
    ),
    ("int64", {"type": "int64"}, 2**40, 2**40),
    ("boolean", {"type": "boolean"}, False, False),
    ("float64", {"type": "float64"}, 1, 1.0),
]


@pytest.mark.parametrize(
    ("field_schema", "encoded", "expected"),
    [pytest.param(s, e, x, id=label) for label, s, e, x in DECODINGS],
)
def test_schema_type_encodings_decode(
    field_schema: dict[str, Any], encoded: Any, expected: Any
) -> None:
    fields = [{"type": "int32", "field": "id"}, {**field_schema, "optional": True, "field": "v"}]
    envelope = parse_message(_message({"id": 1, "v": encoded}, fields))
    assert envelope.after is not None
    assert envelope.after["v"] == expected
    assert type(envelope.after["v"]) is type(expected)


@pytest.mark.parametrize(
    ("field_schema", "placeholder"),
    [
        pytest.param({"type": "string"}, UNAVAILABLE_PLACEHOLDER, id="text"),
        pytest.param(
            {"type": "string", "name": "io.debezium.data.Json"}, UNAVAILABLE_PLACEHOLDER, id="jsonb"
        ),
        pytest.param(
            {"type": "bytes"},
            base64.b64encode(UNAVAILABLE_PLACEHOLDER.encode()).decode(),
            id="bytea",
        ),
        pytest.param(
            {"type": "array", "items": {"type": "string"}}, [UNAVAILABLE_PLACEHOLDER], id="text[]"
        ),
    ],
)
@pytest.mark.parametrize("with_schema", [True, False])
def test_unavailable_placeholder_in_every_encoding(
    field_schema: dict[str, Any], placeholder: Any, with_schema: bool
) -> None:
    fields = [{"type": "int32", "field": "id"}, {**field_schema, "optional": True, "field": "big"}]
    message = _message({"id": 1, "big": placeholder}, fields if with_schema else None, op="u")
    envelope = parse_message(message)
    assert envelope.unavailable == frozenset({"big"})
    assert envelope.after == {"id": 1}


def test_schemaless_variable_scale_decimal_is_recognised_by_shape() -> None:
    envelope = parse_message(_message({"id": 1, "v": {"scale": 2, "value": _decimal_bytes(150)}}))
    assert envelope.after is not None
    assert envelope.after["v"] == Decimal("1.50")


def test_jsonable_gives_the_json_form() -> None:
    row = {
        "d": Decimal("12500.00"),
        "day": date(1985, 7, 14),
        "at": datetime(2024, 3, 1, 9, 30, tzinfo=UTC),
        "raw": b"\x00\xff",
        "nested": [{"x": Decimal("1.5")}],
    }
    assert jsonable(row) == {
        "d": "12500.00",
        "day": "1985-07-14",
        "at": "2024-03-01T09:30:00+00:00",
        "raw": "AP8=",
        "nested": [{"x": "1.5"}],
    }
    json.dumps(jsonable(row))


def test_envelope_is_frozen() -> None:
    envelope = parse_message(_message({"id": 1}))
    assert isinstance(envelope, ChangeEnvelope)
    with pytest.raises(AttributeError):
        envelope.op = Operation.DELETE  # type: ignore[misc]


def test_wrapper_split_survives_payload_text_inside_a_schema_default() -> None:
    # The schema text is split off by searching for '},"payload":'; a column default holding
    # that very text must not fool it.
    tricky = '},"payload":{"op":"d"}'
    fields = [
        {"type": "int32", "field": "id"},
        {"type": "string", "optional": True, "default": tricky, "field": "note"},
    ]
    message = _message({"id": 1, "note": tricky}, fields)
    assert message.value is not None
    compact = json.dumps(json.loads(message.value), separators=(",", ":")).encode()
    envelope = parse_message(RawMessage(message.key, compact, message.topic))
    assert envelope.op is Operation.CREATE
    assert envelope.after == {"id": 1, "note": tricky}


def test_a_pretty_printed_wrapper_parses_too() -> None:
    message = _message(
        {"id": 1, "v": -1}, [{"type": "int32", "name": "io.debezium.time.Date", "field": "v"}]
    )
    assert message.value is not None
    pretty = json.dumps(json.loads(message.value), indent=2).encode()
    envelope = parse_message(RawMessage(message.key, pretty, message.topic))
    assert envelope.after == {"id": 1, "v": date(1969, 12, 31)}
    assert envelope.has_schema
