"""Malformed messages interleaved with real ones: each bad one is poison with a clear reason,
every good one still becomes its change, and nothing crashes the stream."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from cdc_testkit import SOURCES_YAML, recorded_messages

from cdc.envelope import parse_message
from cdc.errors import PoisonMessageError
from cdc.mapping import ChangeMapper, parse_source_mappings
from cdc.raw import RawMessage
from cdc.replay import parse_replay_line
from hub.model import SourceChange

LIMIT = 256 * 1024

Edit = Callable[[dict[str, Any]], None]


def _first(messages: list[RawMessage], op: str) -> RawMessage:
    for message in messages:
        if message.value and f'"op":"{op}"' in message.value.decode():
            return message
    raise AssertionError(f"no {op!r} message recorded")


def _edit(message: RawMessage, edit: Edit) -> RawMessage:
    """Change the payload of a recorded message (with or without the schema wrapper)."""
    assert message.value is not None
    document = json.loads(message.value)
    edit(document.get("payload", document))
    return RawMessage(message.key, json.dumps(document).encode(), message.topic)


def _set(path: str, value: Any) -> Edit:
    def edit(payload: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        node = payload
        for part in parents:
            node = node[part]
        node[last] = value

    return edit


def _drop(path: str) -> Edit:
    def edit(payload: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        node = payload
        for part in parents:
            node = node[part]
        del node[last]

    return edit


def _corpus() -> list[tuple[str, RawMessage, str]]:
    """(what is wrong, message, expected poison reason)."""
    schemas = recorded_messages("pg_schemas_default.jsonl")
    plain = recorded_messages("pg_plain_default_string.jsonl")
    insert, plain_insert = _first(schemas, "c"), _first(plain, "c")
    assert insert.value is not None
    assert plain_insert.value is not None
    big_notes = _edit(insert, _set("after.notes", "x" * (LIMIT + 1)))
    return [
        ("truncated JSON", RawMessage(insert.key, insert.value[:700], insert.topic), "malformed"),
        (
            "truncated JSON, schemaless",
            RawMessage(plain_insert.key, plain_insert.value[:-3], plain_insert.topic),
            "malformed",
        ),
        ("not JSON at all", RawMessage(None, b"customer 4 changed", ""), "malformed"),
        ("value is a JSON array", RawMessage(None, b"[1, 2, 3]", ""), "wrong_type"),
        ("key is truncated JSON", RawMessage(b'{"id":', insert.value, insert.topic), "malformed"),
        ("no op at all", _edit(insert, _drop("op")), "malformed"),
        ("unknown op", _edit(insert, _set("op", "x")), "unknown_op"),
        ("op is a number", _edit(insert, _set("op", 1)), "wrong_type"),
        ("after-image is a list", _edit(insert, _set("after", [4, "Globex"])), "wrong_type"),
        (
            "id is text, the schema says int32",
            _edit(insert, _set("after.id", "four")),
            "wrong_type",
        ),
        ("source.ts_ms is text", _edit(insert, _set("source.ts_ms", "yesterday")), "wrong_type"),
        ("create without after-image", _edit(insert, _set("after", None)), "missing_image"),
        (
            "snapshot read without after-image",
            _edit(_first(schemas, "r"), _set("after", None)),
            "missing_image",
        ),
        (
            "delete without before-image or key",
            RawMessage(None, _edit(_first(schemas, "d"), _set("before", None)).value, ""),
            "missing_image",
        ),
        ("oversized payload", big_notes, "oversized"),
        (
            "value is not UTF-8",
            RawMessage(None, b'{"op": "c", "x": "\xe9t\xe9"}', ""),
            "bad_encoding",
        ),
        (
            "key is not UTF-8",
            RawMessage(b'{"id": "\xff"}', insert.value, insert.topic),
            "bad_encoding",
        ),
        (
            "decimal bytes are not base64",
            _edit(insert, _set("after.credit_limit", "12,500.00!")),
            "bad_encoding",
        ),
        (
            "jsonb text is not JSON",
            _edit(insert, _set("after.profile", "{segment:")),
            "bad_encoding",
        ),
        ("no source block", _edit(insert, _drop("source")), "missing_source_field"),
        ("source without table", _edit(insert, _drop("source.table")), "missing_source_field"),
        ("source without ts_ms", _edit(insert, _drop("source.ts_ms")), "missing_source_field"),
        ("unknown table", _edit(insert, _set("source.table", "orders")), "unmapped_table"),
        ("unknown source system", _edit(insert, _set("source.name", "erp")), "unknown_source"),
        (
            "schemaless decimal that is not a number",
            _edit(plain_insert, _set("after.credit_limit", "twelve")),
            "mapping_failed",
        ),
        ("replay line that is not JSON", parse_replay_line(b"{not json", 12), "malformed"),
        ("truncate (dead-letter policy)", _first(schemas, "t"), "truncate"),
    ]


def _mapper() -> ChangeMapper:
    import yaml

    document = yaml.safe_load(SOURCES_YAML.read_text())
    document["sources"]["crm"]["unmapped_tables"] = "dead_letter"
    return ChangeMapper(parse_source_mappings(document, str(SOURCES_YAML)))


def _process(mapper: ChangeMapper, message: RawMessage) -> SourceChange | PoisonMessageError | None:
    try:
        return mapper.map_change(parse_message(message, max_message_bytes=LIMIT))
    except PoisonMessageError as exc:
        return exc


CORPUS = _corpus()


@pytest.mark.parametrize(
    ("message", "reason"), [pytest.param(m, r, id=label) for label, m, r in CORPUS]
)
def test_each_malformed_message_is_poison_with_its_reason(message: RawMessage, reason: str) -> None:
    outcome = _process(_mapper(), message)
    assert isinstance(outcome, PoisonMessageError), f"expected poison, got {outcome!r}"
    assert outcome.reason == reason
    assert outcome.detail
    assert str(outcome).startswith(reason)


def test_valid_messages_interleaved_with_poison_all_come_through() -> None:
    good = [
        m
        for m in recorded_messages("pg_schemas_default.jsonl")
        if b'"op":"t"' not in (m.value or b"")
    ]
    alone = [_process(_mapper(), m) for m in good]
    assert not any(isinstance(o, PoisonMessageError) for o in alone)

    mapper = _mapper()
    stream: list[tuple[RawMessage, str | None]] = []
    for i, message in enumerate(good):
        stream.append((message, None))
        if i < len(CORPUS):
            stream.append((CORPUS[i][1], CORPUS[i][2]))
    stream.extend((m, r) for _, m, r in CORPUS[len(good) :])

    outcomes = [(_process(mapper, m), reason) for m, reason in stream]
    poisoned = [(o, r) for o, r in outcomes if r is not None]
    assert len(poisoned) == len(CORPUS)
    assert all(isinstance(o, PoisonMessageError) and o.reason == r for o, r in poisoned)
    applied = [o for o, r in outcomes if r is None]
    assert applied == alone, "a poison message in between changed nothing for the good ones"
    assert sum(isinstance(o, SourceChange) for o in applied) == 11  # 3 r, 2 c, 4 u, 2 d
