"""JSONL replay: Debezium messages stored one per line, for backfills, fixtures and tests.

Each line is a JSON object ``{"key": K, "value": V}`` (optionally ``"topic"``). ``K`` and ``V``
are the Debezium key and value either as the exact JSON text (a string, which is how recorded
files keep the bytes Debezium produced) or as an embedded JSON object; null is null (a tombstone
value, a keyless table). A line that is not such an object is not a crash: it becomes a
``RawMessage`` with ``defect`` set, which parsing reports as poison.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO, Any

from cdc.raw import RawMessage


def read_replay(path: Path, batch_size: int = 500) -> Iterator[list[RawMessage]]:
    """Yield the messages of a JSONL file in batches of at most ``batch_size``, in file order.

    ``RawMessage.offset`` is the 1-based line number; blank lines are skipped.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    batch: list[RawMessage] = []
    with path.open("rb") as lines:
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            batch.append(parse_replay_line(line, number))
            if len(batch) >= batch_size:
                yield batch
                batch = []
    if batch:
        yield batch


def parse_replay_line(line: bytes, number: int = 0) -> RawMessage:
    """One JSONL line as a ``RawMessage``; a malformed line comes back with ``defect`` set."""
    body = line.rstrip(b"\r\n")
    try:
        record = json.loads(body)
    except UnicodeDecodeError as exc:
        return _defective(body, number, f"line {number} is not UTF-8: {exc.reason}")
    except ValueError as exc:
        return _defective(body, number, f"line {number} is not JSON: {exc}")
    if not isinstance(record, dict) or "value" not in record:
        return _defective(body, number, f'line {number} is not an object with "key" and "value"')
    topic = record.get("topic", "")
    if not isinstance(topic, str):
        return _defective(body, number, f'line {number}: "topic" must be a string')
    try:
        key = _as_bytes(record.get("key"))
        value = _as_bytes(record["value"])
    except UnicodeEncodeError:
        return _defective(body, number, f"line {number}: a lone surrogate escape is not text")
    except TypeError as exc:
        return _defective(body, number, f"line {number}: {exc}")
    return RawMessage(key=key, value=value, topic=topic, offset=number)


def format_replay_line(message: RawMessage) -> bytes:
    """The JSONL line (with newline) that ``parse_replay_line`` reads back as ``message``.

    Key and value are kept as JSON strings holding the exact bytes, so a recorded file
    replays byte for byte.
    """
    record = {
        "key": None if message.key is None else message.key.decode("utf-8"),
        "value": None if message.value is None else message.value.decode("utf-8"),
        "topic": message.topic,
    }
    return json.dumps(record, ensure_ascii=False).encode("utf-8") + b"\n"


def write_replay(out: IO[bytes], messages: Iterable[RawMessage]) -> int:
    """Append messages to a binary stream as JSONL; returns how many were written."""
    count = 0
    for message in messages:
        out.write(format_replay_line(message))
        count += 1
    return count


def _as_bytes(part: Any) -> bytes | None:
    if part is None:
        return None
    if isinstance(part, str):
        return part.encode("utf-8")
    if isinstance(part, dict):
        return json.dumps(part, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    raise TypeError(
        f"key and value must be a JSON string, object or null, not {type(part).__name__}"
    )


def _defective(body: bytes, number: int, defect: str) -> RawMessage:
    return RawMessage(key=None, value=body, offset=number, defect=defect)
