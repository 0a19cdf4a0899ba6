"""JSONL replay: recorded files replay byte for byte; a malformed line is poison, not a crash."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from cdc_testkit import FIXTURES, RECORDED_OPS

from cdc.envelope import Operation, parse_message
from cdc.errors import MalformedMessageError, PoisonMessageError
from cdc.raw import RawMessage
from cdc.replay import format_replay_line, parse_replay_line, read_replay, write_replay


def test_batches_keep_file_order_and_line_numbers(recording: str) -> None:
    path = FIXTURES / recording
    lines = path.read_bytes().splitlines()
    batches = list(read_replay(path, batch_size=4))
    assert [len(b) for b in batches[:-1]] == [4] * (len(batches) - 1)
    assert 1 <= len(batches[-1]) <= 4
    messages = [m for b in batches for m in b]
    assert [m.offset for m in messages] == list(range(1, len(lines) + 1))
    ops = [parse_message(m).op for m in messages]
    assert [op.value for op in ops if op is not Operation.HEARTBEAT] == RECORDED_OPS


def test_recorded_lines_round_trip_byte_for_byte(recording: str) -> None:
    for number, line in enumerate((FIXTURES / recording).read_bytes().splitlines(), start=1):
        message = parse_replay_line(line, number)
        assert message.defect is None
        assert format_replay_line(message) == line + b"\n"


def test_write_then_read_gives_the_same_messages(tmp_path: Path) -> None:
    messages = [
        RawMessage(b'{"id":1}', '{"op":"c","after":{"name":"Zoë"}}'.encode(), "crm.public.t"),
        RawMessage(b'{"id":1}', None, "crm.public.t"),  # tombstone
        RawMessage(None, b'{"op":"t"}', "crm.public.t"),  # keyless
    ]
    buffer = io.BytesIO()
    assert write_replay(buffer, messages) == 3
    path = tmp_path / "out.jsonl"
    path.write_bytes(buffer.getvalue())
    back = [m for b in read_replay(path) for m in b]
    assert [(m.key, m.value, m.topic) for m in back] == [
        (m.key, m.value, m.topic) for m in messages
    ]


def test_embedded_objects_are_accepted(tmp_path: Path) -> None:
    value = {"op": "c", "after": {"id": 4}, "source": {"table": "customer"}}
    path = tmp_path / "hand.jsonl"
    path.write_text(json.dumps({"key": {"id": 4}, "value": value}) + "\n\n")
    (message,) = next(read_replay(path))
    assert json.loads(message.key or b"") == {"id": 4}
    assert json.loads(message.value or b"") == value
    assert message.topic == ""


MALFORMED: list[tuple[str, bytes, str]] = [
    ("not JSON", b'{"key": null, "value": "{\\"op\\"', "not JSON"),
    ("a JSON array", b"[1, 2]", 'not an object with "key" and "value"'),
    ("no value", b'{"key": "{}"}', 'not an object with "key" and "value"'),
    ("value is a number", b'{"key": null, "value": 42}', "JSON string, object or null"),
    ("topic is a number", b'{"key": null, "value": null, "topic": 7}', '"topic" must be a string'),
    ("not UTF-8", b'{"key": null, "value": "caf\xe9"}', "not UTF-8"),
    ("lone surrogate", b'{"key": null, "value": "\\ud800"}', "lone surrogate"),
]


@pytest.mark.parametrize(
    ("line", "why"), [pytest.param(line, why, id=label) for label, line, why in MALFORMED]
)
def test_a_malformed_line_is_a_poison_message(line: bytes, why: str) -> None:
    message = parse_replay_line(line, 7)
    assert message.defect is not None
    assert why in message.defect
    assert "line 7" in message.defect
    assert message.value == line, "the raw bytes are kept for the dead-letter store"
    with pytest.raises(MalformedMessageError) as caught:
        parse_message(message)
    assert caught.value.reason == "malformed"


def test_malformed_lines_between_good_ones_do_not_stop_the_replay(tmp_path: Path) -> None:
    good = (FIXTURES / "pg_schemas_default.jsonl").read_bytes().splitlines()[:5]
    bad = [line for _, line, _ in MALFORMED]
    mixed = [x for pair in zip(good, bad, strict=False) for x in pair] + bad[len(good) :]
    path = tmp_path / "mixed.jsonl"
    path.write_bytes(b"\n".join(mixed) + b"\n")

    parsed, poisoned = [], []
    for batch in read_replay(path, batch_size=3):
        for message in batch:
            try:
                parsed.append(parse_message(message))
            except PoisonMessageError as exc:
                poisoned.append((message.offset, exc.reason))
    assert len(parsed) == len(good)
    assert len(poisoned) == len(bad)
    assert [offset for offset, _ in poisoned][:5] == [2, 4, 6, 8, 10]


def test_batch_size_must_be_positive(tmp_path: Path) -> None:
    path = tmp_path / "empty.jsonl"
    path.write_bytes(b"")
    assert list(read_replay(path)) == []
    with pytest.raises(ValueError, match="batch_size"):
        list(read_replay(path, batch_size=0))
