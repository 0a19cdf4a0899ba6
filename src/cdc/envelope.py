"""Debezium change-event parsing: raw key/value bytes in, a frozen ``ChangeEnvelope`` out.

Pure: no I/O. Handles the JSON converter's output with and without the ``schema``/``payload``
wrapper; the operations c, u, d, r (snapshot read), t (truncate) and m (logical decoding
message); tombstones and heartbeats; and Debezium's type encodings when a schema says what a
value is (decimals as base64 two's-complement bytes with the scale in the schema parameters,
variable-scale decimals, dates as days since the epoch, timestamps in milli/micro/nanoseconds,
zoned timestamps as ISO strings, JSON columns as text). Without a schema, values stay as the
JSON converter wrote them: run schemaless sources with ``decimal.handling.mode`` string or
double, because precise decimals are then bare base64 with no scale.

Unchanged TOASTed columns arrive as ``__debezium_unavailable_value`` (REPLICA IDENTITY
DEFAULT): such a column is removed from the row image and named in
``ChangeEnvelope.unavailable``, so the placeholder can never reach a golden record and the hub
keeps the value it has.

Anything that cannot be parsed raises a ``PoisonMessageError`` subclass naming the reason.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from enum import StrEnum
from typing import Any, Final

from cdc.errors import (
    BadEncodingError,
    MalformedMessageError,
    MissingImageError,
    MissingSourceFieldError,
    OversizedMessageError,
    UnknownOperationError,
    WrongTypeError,
)
from cdc.raw import RawMessage
from hub.model import SourcePosition

UNAVAILABLE_PLACEHOLDER: Final = "__debezium_unavailable_value"
_UNAVAILABLE_BYTES_B64: Final = base64.b64encode(UNAVAILABLE_PLACEHOLDER.encode()).decode()
DEFAULT_MAX_MESSAGE_BYTES: Final = 8 * 1024 * 1024
HEARTBEAT_TOPIC_PREFIX: Final = "__debezium-heartbeat"

_EPOCH_DATE: Final = date(1970, 1, 1)
_EPOCH: Final = datetime(1970, 1, 1)


class Operation(StrEnum):
    """What a message says happened. The first six are Debezium's ``op`` codes."""

    CREATE = "c"
    UPDATE = "u"
    DELETE = "d"
    READ = "r"
    """A row read by the initial snapshot: treated like a create."""
    TRUNCATE = "t"
    MESSAGE = "m"
    """A logical decoding message (``pg_logical_emit_message``); carries no row."""
    TOMBSTONE = "tombstone"
    """The null value Debezium sends after a delete, for Kafka log compaction."""
    HEARTBEAT = "heartbeat"
    """Debezium's periodic heartbeat; lets offsets advance while tables are quiet."""

    @property
    def is_row_change(self) -> bool:
        return self in _ROW_CHANGES


_ROW_CHANGES: Final = frozenset(
    {Operation.CREATE, Operation.UPDATE, Operation.DELETE, Operation.READ}
)
_NEEDS_AFTER: Final = frozenset({Operation.CREATE, Operation.UPDATE, Operation.READ})
_NEEDS_TABLE: Final = frozenset(_ROW_CHANGES | {Operation.TRUNCATE})


@dataclass(frozen=True)
class SourceInfo:
    """The ``source`` block: which database, table and log position a change comes from."""

    connector: str
    name: str
    """The logical server name (Debezium's ``topic.prefix``); mdh uses the source system."""
    db: str
    schema: str
    table: str
    ts_ms: int
    """When the database committed the change. For a snapshot read, Debezium 3 gives every
    read of the snapshot one time, taken when the snapshot's transaction started (after its
    consistent point; older connectors dated each read when it was read)."""
    ts_us: int | None = None
    lsn: int | None = None
    """The LSN of the change's own WAL record; for a snapshot read, the snapshot's LSN (its
    consistent point), the same for every row of that snapshot."""
    tx_id: int | None = None
    """The change's transaction; for a snapshot read, the snapshot's transaction."""
    snapshot: str = "false"
    """"false" when streaming; "true", "first", "last"... during the snapshot."""
    sequence: tuple[int | None, ...] | None = None
    """PostgreSQL: (last commit LSN, this event's LSN), when Debezium sends it. The first is
    the end of the commit streamed before this change's transaction (null for the first
    transaction after the snapshot); a snapshot read has (null, the snapshot's LSN)."""
    version: str | None = None

    @property
    def qualified_table(self) -> str:
        return f"{self.schema}.{self.table}" if self.schema else self.table

    @property
    def in_snapshot(self) -> bool:
        return self.snapshot not in ("false", "")

    @property
    def committed_at(self) -> datetime:
        """The commit time, timezone-aware UTC, to the microsecond when Debezium sends it."""
        if self.ts_us is not None:
            return datetime.fromtimestamp(0, UTC) + timedelta(microseconds=self.ts_us)
        return datetime.fromtimestamp(0, UTC) + timedelta(milliseconds=self.ts_ms)

    @property
    def last_commit_lsn(self) -> int | None:
        """For a streamed change: the commit streamed before its transaction, if known."""
        if self.in_snapshot or self.sequence is None or len(self.sequence) != 2:
            return None
        return self.sequence[0]

    @property
    def position(self) -> SourcePosition:
        return SourcePosition(
            lsn=self.lsn,
            tx_id=self.tx_id,
            committed_at=self.committed_at,
            snapshot=self.in_snapshot,
            last_commit_lsn=self.last_commit_lsn,
        )


@dataclass(frozen=True)
class LogicalMessage:
    """The body of an ``m`` event."""

    prefix: str
    content: bytes


@dataclass(frozen=True)
class ChangeEnvelope:
    """One parsed Debezium message.

    Row images hold decoded Python values (``Decimal``, ``date``, naive ``datetime`` for
    timestamps without time zone, aware UTC ``datetime`` for zoned ones, parsed JSON for
    json/jsonb). ``unavailable`` names after-image columns whose value Debezium did not
    send (unchanged TOAST); they are absent from ``after``.
    """

    op: Operation
    key: Mapping[str, Any] | None
    before: Mapping[str, Any] | None
    after: Mapping[str, Any] | None
    source: SourceInfo | None
    topic: str = ""
    ts_ms: int | None = None
    """When Debezium processed the event (not when the database committed it)."""
    unavailable: frozenset[str] = frozenset()
    message: LogicalMessage | None = None
    has_schema: bool = False

    @property
    def position(self) -> SourcePosition | None:
        return None if self.source is None else self.source.position

    @property
    def image(self) -> Mapping[str, Any] | None:
        """The row as it now is (after), or as it was before a delete."""
        return self.before if self.op is Operation.DELETE else self.after


def parse_message(
    message: RawMessage, *, max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES
) -> ChangeEnvelope:
    """Parse one Debezium message.

    Raises:
        PoisonMessageError: a subclass naming why the message can never be parsed.
    """
    if message.defect is not None:
        raise MalformedMessageError(message.defect)
    if message.size > max_message_bytes:
        raise OversizedMessageError(message.size, max_message_bytes)
    key = _parse_key(message.key)
    if message.value is None:
        return ChangeEnvelope(Operation.TOMBSTONE, key, None, None, None, topic=message.topic)
    schema, payload = _load_value(message.value)
    if payload is None:
        return ChangeEnvelope(Operation.TOMBSTONE, key, None, None, None, topic=message.topic)
    if not isinstance(payload, dict):
        raise WrongTypeError("value.payload", "a JSON object", payload)
    if _is_heartbeat(message.topic, schema, payload):
        ts_ms = payload.get("ts_ms")
        return ChangeEnvelope(
            Operation.HEARTBEAT,
            key,
            None,
            None,
            None,
            topic=message.topic,
            ts_ms=ts_ms if _is_int(ts_ms) else None,
            has_schema=schema is not None,
        )
    return _parse_event(payload, schema, key, message.topic)


def jsonable(value: Any) -> Any:
    """A decoded value in its JSON form: Decimal as text, dates and times ISO 8601, bytes base64."""
    kind = type(value)
    if kind in _JSON_PLAIN:
        return value
    if kind is dict:
        return {k: v if type(v) in _JSON_PLAIN else jsonable(v) for k, v in value.items()}
    if kind is Decimal:
        return str(value)
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    if isinstance(value, bytes):
        return base64.b64encode(value).decode("ascii")
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    if isinstance(value, bool | int | str):
        return value
    return str(value)


_JSON_PLAIN: Final = frozenset({str, int, bool, type(None)})


# ---- structure ---------------------------------------------------------------------------


def _parse_event(
    payload: dict[str, Any], schema: _Schema | None, key: dict[str, Any] | None, topic: str
) -> ChangeEnvelope:
    if "op" not in payload:
        raise MalformedMessageError("no 'op': not a Debezium change event", field="op")
    code = payload["op"]
    if not isinstance(code, str):
        raise WrongTypeError("op", "a string (c, u, d, r, t, m)", code)
    try:
        op = Operation(code)
    except ValueError:
        raise UnknownOperationError(code) from None
    if op in (Operation.TOMBSTONE, Operation.HEARTBEAT):
        raise UnknownOperationError(code)
    source = _parse_source(payload.get("source"), op)
    ts_ms = payload.get("ts_ms")
    if ts_ms is not None and not _is_int(ts_ms):
        raise WrongTypeError("ts_ms", "an integer (epoch milliseconds)", ts_ms)

    if op is Operation.MESSAGE:
        return ChangeEnvelope(
            op,
            key,
            None,
            None,
            source,
            topic=topic,
            ts_ms=ts_ms,
            message=_parse_logical_message(payload.get("message")),
            has_schema=schema is not None,
        )

    images = schema.images if schema is not None else {}
    before, _ = _parse_row(payload.get("before"), images.get("before"), "before")
    after, unavailable = _parse_row(payload.get("after"), images.get("after"), "after")
    if op in _NEEDS_AFTER and after is None:
        raise MissingImageError(op.value, "after")
    if op is Operation.DELETE and before is None and key is None:
        raise MissingImageError(op.value, "before")
    return ChangeEnvelope(
        op,
        key,
        before,
        after,
        source,
        topic=topic,
        ts_ms=ts_ms,
        unavailable=unavailable,
        has_schema=schema is not None,
    )


def _parse_source(raw: Any, op: Operation) -> SourceInfo:
    if raw is None:
        raise MissingSourceFieldError("(the whole block)")
    if not isinstance(raw, dict):
        raise WrongTypeError("source", "a JSON object", raw)

    def text(name: str, *, required: bool = True) -> str:
        value = raw.get(name)
        if value is None:
            if required:
                raise MissingSourceFieldError(name)
            return ""
        if not isinstance(value, str):
            raise WrongTypeError(f"source.{name}", "a string", value)
        return value

    def integer(name: str, *, required: bool = False) -> int | None:
        value = raw.get(name)
        if value is None:
            if required:
                raise MissingSourceFieldError(name)
            return None
        if not _is_int(value):
            raise WrongTypeError(f"source.{name}", "an integer", value)
        return int(value)

    table = text("table", required=op in _NEEDS_TABLE)
    if op in _NEEDS_TABLE and not table:
        raise MissingSourceFieldError("table")
    snapshot = raw.get("snapshot")
    if isinstance(snapshot, bool):  # older connectors sent a boolean
        snapshot = "true" if snapshot else "false"
    elif snapshot is None:
        snapshot = "false"
    elif not isinstance(snapshot, str):
        raise WrongTypeError("source.snapshot", "a string", snapshot)
    ts_ms = integer("ts_ms", required=True) or 0
    return SourceInfo(
        connector=text("connector"),
        name=text("name"),
        db=text("db"),
        schema=text("schema", required=op in _NEEDS_TABLE),
        table=table,
        ts_ms=ts_ms,
        ts_us=integer("ts_us"),
        lsn=integer("lsn"),
        tx_id=integer("txId"),
        snapshot=snapshot,
        sequence=_parse_sequence(raw.get("sequence")),
        version=raw.get("version") if isinstance(raw.get("version"), str) else None,
    )


def _parse_sequence(raw: Any) -> tuple[int | None, ...] | None:
    # Informational only: a sequence that does not parse is dropped, not poison.
    if not isinstance(raw, str):
        return None
    try:
        items = json.loads(raw)
    except ValueError:
        return None
    if not isinstance(items, list):
        return None
    out: list[int | None] = []
    for item in items:
        if item is None:
            out.append(None)
        elif (isinstance(item, str) and item.isdigit()) or _is_int(item):
            out.append(int(item))
        else:
            return None
    return tuple(out)


def _parse_logical_message(raw: Any) -> LogicalMessage:
    if not isinstance(raw, dict):
        raise MissingImageError("m", "message")
    prefix = raw.get("prefix") or ""
    content = raw.get("content")
    if not isinstance(prefix, str):
        raise WrongTypeError("message.prefix", "a string", prefix)
    if content is None:
        return LogicalMessage(prefix, b"")
    if not isinstance(content, str):
        raise WrongTypeError("message.content", "base64 text", content)
    return LogicalMessage(prefix, _b64("message.content", content))


def _parse_key(raw: bytes | None) -> dict[str, Any] | None:
    if raw is None:
        return None
    document = _load_json(raw, "key")
    if document is None:
        return None
    if not isinstance(document, dict):
        raise WrongTypeError("key", "a JSON object", document)
    schema, payload = _unwrap(document, "key")
    if payload is None:
        return None
    if not isinstance(payload, dict):
        raise WrongTypeError("key.payload", "a JSON object", payload)
    fields = _struct_fields(schema) if schema is not None else {}
    row, _ = _decode_columns(payload, fields, "key")
    return row


def _parse_row(
    raw: Any, fields: Mapping[str, dict[str, Any]] | None, image: str
) -> tuple[dict[str, Any] | None, frozenset[str]]:
    if raw is None:
        return None, frozenset()
    if not isinstance(raw, dict):
        raise WrongTypeError(image, "a JSON object (a row image)", raw)
    return _decode_columns(raw, fields or {}, image)


def _decode_columns(
    raw: dict[str, Any], fields: Mapping[str, dict[str, Any]], image: str
) -> tuple[dict[str, Any], frozenset[str]]:
    row: dict[str, Any] = {}
    unavailable: list[str] = []
    for column, value in raw.items():
        field_schema = fields.get(column)
        if _is_unavailable(value, field_schema):
            unavailable.append(column)
            continue
        if field_schema is None:
            row[column] = _decode_schemaless(value)
        else:
            row[column] = _decode(value, field_schema, f"{image}.{column}")
    return row, frozenset(unavailable)


def _unwrap(document: dict[str, Any], part: str) -> tuple[dict[str, Any] | None, Any]:
    """Split the JSON converter's ``{"schema": ..., "payload": ...}``; pass others through."""
    if len(document) == 2 and "schema" in document and "payload" in document:
        schema = document["schema"]
        if schema is not None and not isinstance(schema, dict):
            raise WrongTypeError(f"{part}.schema", "a JSON object (a Connect schema)", schema)
        return schema, document["payload"]
    return None, document


def _struct_fields(schema: dict[str, Any] | None) -> dict[str, dict[str, Any]]:
    if not schema:
        return {}
    fields = schema.get("fields")
    if not isinstance(fields, list):
        return {}
    return {
        f["field"]: f for f in fields if isinstance(f, dict) and isinstance(f.get("field"), str)
    }


@dataclass(frozen=True)
class _Schema:
    """A value schema, reduced to what decoding needs: the field schemas of each row image."""

    name: str | None
    images: Mapping[str, Mapping[str, dict[str, Any]]]

    @classmethod
    def of(cls, document: dict[str, Any]) -> _Schema:
        top = _struct_fields(document)
        images = {image: _struct_fields(top.get(image)) for image in ("before", "after")}
        name = document.get("name")
        return cls(name if isinstance(name, str) else None, images)


_SCHEMA_CACHE_SIZE: Final = 256
_schema_cache: dict[str, _Schema] = {}
_WRAPPER_HEAD: Final = '{"schema":'
_WRAPPER_JOIN: Final = '},"payload":'


def _load_value(raw: bytes) -> tuple[_Schema | None, Any]:
    """Decode the value; with the schema wrapper, return the reduced schema and the payload.

    Every message of a table repeats the same schema text, often half the bytes. The JSON
    converter writes ``{"schema":S,"payload":P}`` without spaces, so S is split off by text and
    its parsed form cached. The first ``},"payload":`` ends S: inside a JSON string a quote is
    escaped, so that sequence can only be structure, and no schema object has a "payload" key.
    Anything else (spaces, another order, a truncated message) takes the plain path.
    """
    text = _utf8(raw, "value")
    if text.startswith(_WRAPPER_HEAD) and text.endswith("}"):
        join = text.find(_WRAPPER_JOIN)
        if join > 0:
            schema_text = text[len(_WRAPPER_HEAD) : join + 1]
            schema = _schema_cache.get(schema_text)
            if schema is None:
                try:
                    document = json.loads(schema_text)
                except ValueError:
                    document = None
                if isinstance(document, dict):
                    schema = _Schema.of(document)
                    if len(_schema_cache) >= _SCHEMA_CACHE_SIZE:
                        _schema_cache.clear()
                    _schema_cache[schema_text] = schema
            if schema is not None:
                try:
                    return schema, json.loads(text[join + len(_WRAPPER_JOIN) : -1])
                except ValueError:
                    pass  # the slow path below reports it
    document = _parse_json(text, "value")
    if not isinstance(document, dict):
        raise WrongTypeError("value", "a JSON object", document)
    schema_document, payload = _unwrap(document, "value")
    return (_Schema.of(schema_document) if schema_document else None), payload


def _is_heartbeat(topic: str, schema: _Schema | None, payload: dict[str, Any]) -> bool:
    if schema is not None and schema.name == "io.debezium.connector.common.Heartbeat":
        return True
    if topic.startswith(HEARTBEAT_TOPIC_PREFIX):
        return True
    return "op" not in payload and set(payload) == {"ts_ms"}


def _load_json(raw: bytes, part: str) -> Any:
    return _parse_json(_utf8(raw, part), part)


def _utf8(raw: bytes, part: str) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BadEncodingError(
            f"not UTF-8 (byte {exc.start}: {raw[exc.start : exc.start + 1]!r})", field=part
        ) from None


def _parse_json(text: str, part: str) -> Any:
    try:
        return json.loads(text)
    except ValueError as exc:
        raise MalformedMessageError(f"not JSON: {exc}", field=part) from None


# ---- values -----------------------------------------------------------------------------

_INT_TYPES: Final = frozenset({"int8", "int16", "int32", "int64"})


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_unavailable(value: Any, schema: dict[str, Any] | None) -> bool:
    if value == UNAVAILABLE_PLACEHOLDER:
        return True
    if isinstance(value, str) and value == _UNAVAILABLE_BYTES_B64:
        # bytea (and precise decimals) carry the placeholder's bytes, base64-encoded.
        return schema is None or schema.get("type") == "bytes"
    return isinstance(value, list) and len(value) == 1 and value[0] == UNAVAILABLE_PLACEHOLDER


def _decode_schemaless(value: Any) -> Any:
    # Without a schema only a variable-scale decimal is recognisable (by its exact shape).
    if (
        isinstance(value, dict)
        and set(value) == {"scale", "value"}
        and _is_int(value["scale"])
        and isinstance(value["value"], str)
    ):
        try:
            return _unscaled(base64.b64decode(value["value"], validate=True), value["scale"])
        except (binascii.Error, ValueError):
            return value
    return value


def _decode(value: Any, schema: dict[str, Any], path: str) -> Any:
    if value is None:
        return None
    name = schema.get("name")
    if name is not None:
        decoder = _LOGICAL.get(name)
        if decoder is not None:
            return decoder(value, schema, path)
    kind = schema.get("type")
    if kind in _INT_TYPES:
        if not _is_int(value):
            raise WrongTypeError(path, f"an integer ({kind})", value)
        return value
    if kind == "string":
        if not isinstance(value, str):
            raise WrongTypeError(path, "a string", value)
        return value
    if kind == "boolean":
        if not isinstance(value, bool):
            raise WrongTypeError(path, "a boolean", value)
        return value
    if kind in ("float32", "float64", "double", "float"):
        if isinstance(value, str) and value in ("NaN", "Infinity", "-Infinity"):
            return float(value)
        if not isinstance(value, int | float) or isinstance(value, bool):
            raise WrongTypeError(path, "a number", value)
        return float(value)
    if kind == "bytes":
        if not isinstance(value, str):
            raise WrongTypeError(path, "base64 text (bytes)", value)
        return _b64(path, value)
    if kind == "array":
        if not isinstance(value, list):
            raise WrongTypeError(path, "a JSON array", value)
        items = schema.get("items")
        if not isinstance(items, dict):
            return value
        return [_decode(item, items, f"{path}[{i}]") for i, item in enumerate(value)]
    if kind == "struct":
        if not isinstance(value, dict):
            raise WrongTypeError(path, "a JSON object", value)
        fields = _struct_fields(schema)
        return {
            k: (_decode(v, fields[k], f"{path}.{k}") if k in fields else v)
            for k, v in value.items()
        }
    return value


def _b64(path: str, text: str) -> bytes:
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise BadEncodingError(f"not base64: {text[:40]!r}", field=path) from None


def _unscaled(raw: bytes, scale: int) -> Decimal:
    unscaled = int.from_bytes(raw, "big", signed=True)
    return Decimal(unscaled).scaleb(-scale)


def _decimal(value: Any, schema: dict[str, Any], path: str) -> Decimal:
    if isinstance(value, str):
        params = schema.get("parameters") or {}
        try:
            scale = int(params.get("scale", 0))
        except (TypeError, ValueError):
            raise WrongTypeError(f"{path}.schema.parameters.scale", "an integer", params) from None
        return _unscaled(_b64(path, value), scale)
    if _is_int(value) or isinstance(value, float):  # the converter's decimal.format=NUMERIC
        return Decimal(str(value))
    raise WrongTypeError(path, "base64 text or a number (decimal)", value)


def _variable_decimal(value: Any, schema: dict[str, Any], path: str) -> Decimal:
    if not isinstance(value, dict) or not _is_int(value.get("scale")):
        raise WrongTypeError(path, 'an object {"scale": int, "value": base64}', value)
    digits = value.get("value")
    if not isinstance(digits, str):
        raise WrongTypeError(f"{path}.value", "base64 text", digits)
    return _unscaled(_b64(f"{path}.value", digits), value["scale"])


def _epoch_int(value: Any, path: str, unit: str) -> int:
    if not _is_int(value):
        raise WrongTypeError(path, f"an integer ({unit})", value)
    return int(value)


def _days(value: Any, schema: dict[str, Any], path: str) -> date:
    days = _epoch_int(value, path, "days since 1970-01-01")
    try:
        return _EPOCH_DATE + timedelta(days=days)
    except OverflowError:
        raise BadEncodingError(f"{days} days is outside the calendar", field=path) from None


def _timestamp(divisor_to_us: int, multiplier_to_us: int, unit: str) -> Any:
    def decode(value: Any, schema: dict[str, Any], path: str) -> datetime:
        amount = _epoch_int(value, path, unit)
        micros = amount * multiplier_to_us // divisor_to_us
        try:
            return _EPOCH + timedelta(microseconds=micros)
        except OverflowError:
            raise BadEncodingError(f"{amount} {unit} is outside the calendar", field=path) from None

    return decode


def _time_of_day(divisor_to_us: int, multiplier_to_us: int, unit: str) -> Any:
    def decode(value: Any, schema: dict[str, Any], path: str) -> time:
        amount = _epoch_int(value, path, unit)
        micros = amount * multiplier_to_us // divisor_to_us
        if not 0 <= micros < 86_400_000_000:
            # PostgreSQL's time allows 24:00:00; there is no such Python time.
            raise BadEncodingError(f"{amount} {unit} is not a time of day", field=path)
        return (datetime.min + timedelta(microseconds=micros)).time()

    return decode


def _iso(parse: Any, what: str) -> Any:
    def decode(value: Any, schema: dict[str, Any], path: str) -> Any:
        if not isinstance(value, str):
            raise WrongTypeError(path, f"an ISO 8601 {what} string", value)
        try:
            return parse(value)
        except ValueError:
            raise BadEncodingError(f"not an ISO 8601 {what}: {value[:40]!r}", field=path) from None

    return decode


def _zoned_timestamp(text: str) -> datetime:
    parsed = datetime.fromisoformat(text)
    if parsed.tzinfo is None:  # never seen from Debezium; read as UTC, not as local time
        return parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def _zoned_time(text: str) -> time:
    return time.fromisoformat(text)


def _json_text(value: Any, schema: dict[str, Any], path: str) -> Any:
    if not isinstance(value, str):
        raise WrongTypeError(path, "JSON text", value)
    try:
        return json.loads(value)
    except ValueError:
        raise BadEncodingError(f"not JSON text: {value[:40]!r}", field=path) from None


_LOGICAL: Final[dict[str, Any]] = {
    "org.apache.kafka.connect.data.Decimal": _decimal,
    "io.debezium.data.VariableScaleDecimal": _variable_decimal,
    "io.debezium.time.Date": _days,
    "org.apache.kafka.connect.data.Date": _days,
    "io.debezium.time.Timestamp": _timestamp(1, 1000, "milliseconds since the epoch"),
    "org.apache.kafka.connect.data.Timestamp": _timestamp(1, 1000, "milliseconds since the epoch"),
    "io.debezium.time.MicroTimestamp": _timestamp(1, 1, "microseconds since the epoch"),
    "io.debezium.time.NanoTimestamp": _timestamp(1000, 1, "nanoseconds since the epoch"),
    "io.debezium.time.ZonedTimestamp": _iso(_zoned_timestamp, "timestamp"),
    "io.debezium.time.Time": _time_of_day(1, 1000, "milliseconds since midnight"),
    "org.apache.kafka.connect.data.Time": _time_of_day(1, 1000, "milliseconds since midnight"),
    "io.debezium.time.MicroTime": _time_of_day(1, 1, "microseconds since midnight"),
    "io.debezium.time.NanoTime": _time_of_day(1000, 1, "nanoseconds since midnight"),
    "io.debezium.time.ZonedTime": _iso(_zoned_time, "time"),
    "io.debezium.data.Json": _json_text,
}

__all__ = [
    "DEFAULT_MAX_MESSAGE_BYTES",
    "UNAVAILABLE_PLACEHOLDER",
    "ChangeEnvelope",
    "LogicalMessage",
    "Operation",
    "SourceInfo",
    "jsonable",
    "parse_message",
]
