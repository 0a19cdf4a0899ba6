"""What a target receives of a golden record: attribute paths, text values, the JSON document.

A target's ``fields`` map a target name (a column, a JSON key) to a golden attribute path:
``legal_name``, ``emails[0]``, ``addresses[0].city`` or, for a list, the whole list joined
(``{from: addresses[0].lines, join: "\\n"}``). Paths are checked against the canonical model
when the config is loaded (``parse_path``), so delivery never meets an unknown attribute.
"""

from __future__ import annotations

import json
import re
import typing
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Protocol

from hub.model import GOLDEN_ATTRIBUTES, CanonicalParty, PostalAddress
from hub.services.sync import Delivery

_STEP = re.compile(r"^([a-z_]+)(?:\[(\d+)\])?$")
_LIST_ATTRIBUTES = frozenset(
    name
    for name, field in CanonicalParty.model_fields.items()
    if typing.get_origin(field.annotation) is tuple
)
_ADDRESS_FIELDS = frozenset(PostalAddress.model_fields)

Step = str | int


class FieldLike(Protocol):
    """A configured field (``config.FieldSource``): where its value comes from."""

    @property
    def path(self) -> AttributePath: ...

    @property
    def join(self) -> str | None: ...

    def applies_to(self, attributes: Mapping[str, Any]) -> bool: ...


@dataclass(frozen=True)
class AttributePath:
    """A parsed path into the golden attributes (``addresses[0].city``)."""

    text: str
    steps: tuple[Step, ...]
    is_list: bool
    """The path ends at a list (a column needs ``join`` to make it one text value)."""
    structured: bool = False
    """The value is made of objects (whole addresses): JSON documents only, never a column."""

    @property
    def attribute(self) -> str:
        return str(self.steps[0])


def parse_path(text: str) -> AttributePath:
    """Parse and check a path against the canonical model.

    Raises:
        ValueError: the path names no golden attribute (the message says what would).
    """
    steps: list[Step] = []
    for part in text.split("."):
        match = _STEP.match(part)
        if match is None:
            raise ValueError(
                f"an attribute path like legal_name, emails[0] or addresses[0].city, not {text!r}"
            )
        steps.append(match.group(1))
        if match.group(2) is not None:
            steps.append(int(match.group(2)))
    root = steps[0]
    if root not in GOLDEN_ATTRIBUTES:
        raise ValueError(f"a golden attribute ({', '.join(GOLDEN_ATTRIBUTES)}), not {root!r}")
    rest = steps[1:]
    if root == "addresses":
        if not rest or (len(rest) == 1 and isinstance(rest[0], int)):
            return AttributePath(text, tuple(steps), is_list=not rest, structured=True)
        if not isinstance(rest[0], int) or len(rest) < 2 or rest[1] not in _ADDRESS_FIELDS:
            raise ValueError(
                f"addresses[N].<field>, a field one of {', '.join(sorted(_ADDRESS_FIELDS))}"
            )
        tail = rest[2:]
        is_list = rest[1] == "lines" and not tail
        if tail and not (rest[1] == "lines" and len(tail) == 1 and isinstance(tail[0], int)):
            raise ValueError(f"nothing after {'.'.join(map(str, rest[:2]))} but a line index")
        return AttributePath(text, tuple(steps), is_list)
    if root in _LIST_ATTRIBUTES:
        if len(rest) > 1 or (rest and not isinstance(rest[0], int)):
            raise ValueError(f"{root} or {root}[N]")
        return AttributePath(text, tuple(steps), is_list=not rest)
    if rest:
        raise ValueError(f"{root} is a single value: nothing may follow it")
    return AttributePath(text, tuple(steps), is_list=False)


def extract(attributes: Mapping[str, Any], path: AttributePath) -> Any:
    """The value at ``path`` (None when absent: an index past the end is absent too)."""
    value: Any = attributes
    for step in path.steps:
        if isinstance(step, int):
            if not isinstance(value, list | tuple) or step >= len(value):
                return None
            value = value[step]
        else:
            if not isinstance(value, Mapping):
                return None
            value = value.get(step)
        if value is None:
            return None
    return value


def as_text(value: Any, join: str | None = None) -> str | None:
    """A golden value as the text a column receives (None: no value; empty lists are none)."""
    if value is None:
        return None
    if isinstance(value, list | tuple):
        items = [text for item in value if (text := as_text(item)) is not None]
        if not items or join is None:
            return None
        return join.join(items)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str | int | float | Decimal):
        return str(value)
    return json.dumps(value, sort_keys=True, ensure_ascii=False)


def golden_document(delivery: Delivery, fields: Mapping[str, FieldLike]) -> dict[str, Any]:
    """The JSON document of a golden change that webhooks and Kafka receive.

    ``attributes`` holds the mapped fields that have a value (a list without ``join`` stays a
    list); the rest is the outbox payload's envelope.
    """
    payload = delivery.payload
    attributes = payload.get("attributes") or {}
    mapped: dict[str, Any] = {}
    for name, field in fields.items():
        if not field.applies_to(attributes):
            continue
        value = extract(attributes, field.path)
        if field.join is not None:
            value = as_text(value, field.join)
        if value not in (None, [], ()):
            mapped[name] = value
    return {
        "golden_id": delivery.golden_id,
        "version": delivery.version,
        "event": delivery.event,
        "status": payload.get("status"),
        "merged_into": payload.get("merged_into"),
        "cause": payload.get("cause"),
        "changed_at": payload.get("changed_at"),
        "idempotency_key": delivery.idempotency_key,
        "attributes": mapped,
        "sources": list(payload.get("sources") or []),
    }


def encode_document(document: Mapping[str, Any]) -> bytes:
    """Canonical JSON (sorted keys, no spaces): the same change is always the same bytes."""
    return json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


__all__ = [
    "AttributePath",
    "as_text",
    "encode_document",
    "extract",
    "golden_document",
    "parse_path",
]
