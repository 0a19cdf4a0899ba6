"""The raw message every source hands on: key and value bytes exactly as captured, and where from.

The embedded engine, the Kafka consumer and JSONL replay all produce ``RawMessage``; parsing
(``cdc.envelope``) and dead-lettering work on it, so a poison message can be stored byte for
byte whichever source delivered it.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class RawMessage:
    """One Debezium message before parsing.

    Attributes:
        key: the key bytes (JSON), None for keyless tables and some control messages.
        value: the value bytes (JSON), None for a tombstone.
        topic: the Debezium destination (``crm.public.customer``), the Kafka topic, or ""
            when the transport does not say.
        partition: the Kafka partition; None for the embedded engine and replay.
        offset: the Kafka offset, or the 1-based line number in a replay file; None for the
            embedded engine (its position is inside the value).
        defect: set when the transport could not even frame a message (a replay line that is
            not ``{"key": ..., "value": ...}``); parsing then reports it as poison and
            ``value`` holds the offending bytes.
    """

    key: bytes | None
    value: bytes | None
    topic: str = ""
    partition: int | None = None
    offset: int | None = None
    defect: str | None = None

    @property
    def size(self) -> int:
        """Bytes of key plus value: what the oversize limit is checked against."""
        return len(self.key or b"") + len(self.value or b"")
