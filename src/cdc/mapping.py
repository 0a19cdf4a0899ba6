"""Source mappings: how a source table's row becomes canonical attributes, and applying them.

Declared under ``sources:`` in the config file, validated at start-up, e.g.::

    sources:
      crm:                                  # the source system; Debezium's topic.prefix
        unmapped_tables: ignore             # or dead_letter
        truncate: dead_letter               # or ignore; never a silent wipe
        tables:
          public.customer:                  # schema.table ("customer" means public.customer)
            primary_key: id                 # or [col, col]
            fields:
              kind: {from: kind, lookup: {O: organization, P: person}}
              legal_name: company_name      # a bare column name is a rename
              given_name: {from: full_name, split: " ", index: 0}
              emails: {from: email_list, split: ";"}
              phones: {columns: [phone, mobile, fax]}
              addresses[0].lines: {columns: [street1, street2]}
              addresses[0].country: {from: country, lookup: {Germany: DE}, default: null}
              date_of_birth: {from: dob, type: date}
              credit_limit: {from: credit_limit, type: decimal}
              lifecycle_status: {constant: active}
              extra.segment: {concat: [region, tier], sep: "-"}

A field spec takes its input from exactly one of ``from`` (a column), ``columns`` (several,
as a list), ``concat`` (several, joined by ``sep``) or ``constant``, then applies, in this
order: ``split`` (a string into a list), ``index`` (one item of a list), ``when_present`` /
``when_absent`` (derive a value from whether there is one), ``lookup`` (a table; unmatched
values pass through unless ``default`` is set), ``type`` (str, int, decimal, date, list) and
``default`` (when nothing is left).

``ChangeMapper.map_change`` turns a parsed envelope into the hub's ``SourceChange``.
"""

from __future__ import annotations

import re
import typing
from collections import Counter, OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from cdc.envelope import ChangeEnvelope, Operation, jsonable
from cdc.errors import (
    MappingConfigError,
    MappingFailedError,
    TruncateNotAppliedError,
    UnknownSourceError,
    UnmappedTableError,
)
from hub.model import CanonicalParty, ChangeOp, PostalAddress, SourceChange, SourceKey

CoercionType = Literal["str", "int", "decimal", "date", "list"]

_PARTY_FIELDS = dict(CanonicalParty.model_fields)
_LIST_ATTRIBUTES = frozenset(
    name for name, f in _PARTY_FIELDS.items() if typing.get_origin(f.annotation) is tuple
) - {"addresses"}
_ADDRESS_FIELDS = frozenset(PostalAddress.model_fields)
_SCALAR_ATTRIBUTES = frozenset(_PARTY_FIELDS) - _LIST_ATTRIBUTES - {"addresses", "extra"}
_ADDRESS_TARGET = re.compile(r"^addresses\[(\d)\]\.([a-z_]+)$")
_EXTRA_TARGET = re.compile(r"^extra\.([A-Za-z0-9_\-]+)$")
_KINDS = ("organization", "person")
_PK_SEPARATOR = "|"
_EPOCH_ORDINAL = date(1970, 1, 1).toordinal()


# ---- configuration -------------------------------------------------------------------------


class FieldSpec(BaseModel):
    """How one canonical attribute is computed from a row (see the module docstring)."""

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)

    from_: str | None = Field(default=None, alias="from")
    columns: tuple[str, ...] | None = Field(default=None, min_length=1)
    concat: tuple[str, ...] | None = Field(default=None, min_length=1)
    constant: Any = None
    sep: str = " "
    split: str | None = Field(default=None, min_length=1)
    index: int | None = None
    when_present: Any = None
    when_absent: Any = None
    lookup: dict[str, Any] | None = None
    default: Any = None
    type: CoercionType | None = None

    @model_validator(mode="before")
    @classmethod
    def _bare_column(cls, value: Any) -> Any:
        # ``legal_name: company_name`` is short for ``legal_name: {from: company_name}``.
        return {"from": value} if isinstance(value, str) else value

    @field_validator("lookup", mode="before")
    @classmethod
    def _text_keys(cls, value: Any) -> Any:
        if not isinstance(value, dict):
            return value
        out: dict[str, Any] = {}
        for key, mapped in value.items():
            if isinstance(key, bool) or key is None:
                raise ValueError(
                    f"lookup keys are text; YAML read {key!r} as a boolean or null: quote it"
                )
            out[str(key)] = mapped
        return out

    @model_validator(mode="after")
    def _one_input(self) -> FieldSpec:
        given = [
            name
            for name, present in (
                ("from", self.from_ is not None),
                ("columns", self.columns is not None),
                ("concat", self.concat is not None),
                ("constant", "constant" in self.model_fields_set),
            )
            if present
        ]
        if len(given) != 1:
            raise ValueError(
                f"exactly one of from, columns, concat, constant (got {', '.join(given) or 'none'})"
            )
        if "sep" in self.model_fields_set and self.concat is None:
            raise ValueError("'sep' goes with 'concat'")
        if self.index is not None and self.split is None and self.columns is None:
            raise ValueError("'index' picks from a list: use it with 'split' or 'columns'")
        return self

    @property
    def input_columns(self) -> tuple[str, ...]:
        if self.from_ is not None:
            return (self.from_,)
        return self.columns or self.concat or ()

    def outputs(self) -> list[Any]:
        """Every value this spec can produce without reading a row (for checking ``kind``)."""
        if "constant" in self.model_fields_set:
            return [self.constant]
        values: list[Any] = []
        if self.lookup is not None:
            values.extend(self.lookup.values())
        for name in ("when_present", "when_absent", "default"):
            if name in self.model_fields_set:
                values.append(getattr(self, name))
        return values


class TableMapping(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    primary_key: tuple[str, ...] = Field(min_length=1)
    fields: dict[str, FieldSpec] = Field(min_length=1)

    @field_validator("primary_key", mode="before")
    @classmethod
    def _one_or_many(cls, value: Any) -> Any:
        return (value,) if isinstance(value, str) else value

    @field_validator("fields")
    @classmethod
    def _known_targets(cls, value: dict[str, FieldSpec]) -> dict[str, FieldSpec]:
        for target, spec in value.items():
            problem = _check_target(target, spec)
            if problem:
                raise ValueError(f"{target!r}: {problem}")
        return value


class SourceMapping(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    server_name: str | None = None
    """Debezium's ``source.name`` (``topic.prefix``) for this system; the system's key if None."""
    unmapped_tables: Literal["ignore", "dead_letter"] = "ignore"
    truncate: Literal["dead_letter", "ignore"] = "dead_letter"
    tables: dict[str, TableMapping] = Field(min_length=1)

    @field_validator("tables")
    @classmethod
    def _table_names(cls, value: dict[str, TableMapping]) -> dict[str, TableMapping]:
        seen: dict[str, str] = {}
        for name in value:
            if name.count(".") > 1 or not all(name.split(".")):
                raise ValueError(f"{name!r}: a table is 'table' or 'schema.table'")
            qualified = _qualify(name)
            if qualified in seen:
                raise ValueError(f"{name!r} and {seen[qualified]!r} are the same table")
            seen[qualified] = name
        return value


class SourceMappings(BaseModel):
    """The validated ``sources:`` section: one entry per source system."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    sources: dict[str, SourceMapping] = Field(min_length=1)

    @field_validator("sources")
    @classmethod
    def _distinct_servers(cls, value: dict[str, SourceMapping]) -> dict[str, SourceMapping]:
        seen: dict[str, str] = {}
        for system, mapping in value.items():
            server = mapping.server_name or system
            if server in seen:
                raise ValueError(f"{system!r} and {seen[server]!r} both read server {server!r}")
            seen[server] = system
        return value


def load_source_mappings(path: Path) -> SourceMappings:
    """Read and validate the ``sources:`` section of a YAML config file.

    Other top-level sections (survivorship, match spec, targets) are left to their owners.

    Raises:
        MappingConfigError: naming the file, the key and what was expected there.
    """
    file = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise MappingConfigError(file, "(file)", f"a readable file ({exc.strerror})") from exc
    except UnicodeDecodeError as exc:
        raise MappingConfigError(file, "(file)", "UTF-8 text") from exc
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}" if mark is not None else "(file)"
        problem = getattr(exc, "problem", None) or str(exc)
        raise MappingConfigError(file, where, f"valid YAML ({problem})") from exc
    return parse_source_mappings(document, file)


def parse_source_mappings(document: Any, file: str = "<config>") -> SourceMappings:
    """Validate an already-loaded config document (the whole file, ``sources:`` inside)."""
    if not isinstance(document, dict) or "sources" not in document:
        raise MappingConfigError(file, "sources", "a top-level 'sources:' mapping")
    try:
        return SourceMappings.model_validate({"sources": document["sources"]})
    except ValidationError as exc:
        error = exc.errors()[0]
        raise MappingConfigError(file, _dotted(error["loc"]), _expected(error)) from exc


def _dotted(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part.startswith("function-") or part in ("tagged-union",):
            continue
        else:
            out += f".{part}" if out else part
    return out


def _expected(error: Any) -> str:
    kind = error["type"]
    message = str(error["msg"])
    if kind == "missing":
        return "this key (it is required)"
    if kind == "extra_forbidden":
        return "no such key here (a typo?)"
    if kind == "model_type":
        return "a mapping of keys (a field may also be just a column name)"
    if kind == "dict_type":
        return "a mapping of keys"
    for prefix in ("Value error, ", "Input should be "):
        if message.startswith(prefix):
            message = message[len(prefix) :]
    return message


def _check_target(target: str, spec: FieldSpec) -> str | None:
    if target in _SCALAR_ATTRIBUTES or target in _LIST_ATTRIBUTES:
        if target == "kind":
            bad = [v for v in spec.outputs() if v is not None and v not in _KINDS]
            if bad:
                return f"kind is 'organization' or 'person', not {bad[0]!r}"
        return None
    match = _ADDRESS_TARGET.match(target)
    if match:
        if match.group(2) not in _ADDRESS_FIELDS:
            return f"an address has {', '.join(sorted(_ADDRESS_FIELDS))}"
        return None
    if _EXTRA_TARGET.match(target):
        return None
    known = ", ".join(sorted(_SCALAR_ATTRIBUTES | _LIST_ATTRIBUTES))
    return f"a canonical attribute ({known}), addresses[N].<field> or extra.<name>"


def _qualify(table: str) -> str:
    return table if "." in table else f"public.{table}"


# ---- applying ------------------------------------------------------------------------------


@dataclass(frozen=True)
class CapturedChange(SourceChange):
    """A ``SourceChange`` plus what capture knows beyond the hub's contract.

    Debezium does not send unchanged TOASTed columns under REPLICA IDENTITY DEFAULT.
    ``unchanged`` names the canonical attributes fed by such a column: they are left out of
    ``attributes`` and the hub must keep its stored values for them, not clear them.
    ``unavailable_columns`` names the columns themselves, left out of ``raw`` likewise.
    """

    unchanged: frozenset[str] = frozenset()
    unavailable_columns: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class _Field:
    """A field spec prepared for the hot path: where its value goes, which flags are set."""

    target: str
    attribute: str
    placement: Literal["scalar", "list", "address", "address_lines", "extra"]
    slot: int
    part: str
    inputs: frozenset[str]
    spec: FieldSpec
    has_constant: bool
    has_when: bool
    has_default: bool

    @classmethod
    def prepare(cls, target: str, spec: FieldSpec) -> _Field:
        address = _ADDRESS_TARGET.match(target)
        slot, part = 0, ""
        placement: Literal["scalar", "list", "address", "address_lines", "extra"]
        if address:
            slot, part = int(address.group(1)), address.group(2)
            placement = "address_lines" if part == "lines" else "address"
            attribute = "addresses"
        elif target.startswith("extra."):
            placement, part, attribute = "extra", target.removeprefix("extra."), "extra"
        else:
            placement = "list" if target in _LIST_ATTRIBUTES else "scalar"
            attribute = target
        given = spec.model_fields_set
        return cls(
            target=target,
            attribute=attribute,
            placement=placement,
            slot=slot,
            part=part,
            inputs=frozenset(spec.input_columns),
            spec=spec,
            has_constant="constant" in given,
            has_when="when_present" in given or "when_absent" in given,
            has_default="default" in given,
        )


@dataclass(frozen=True)
class _Table:
    system: str
    name: str
    mapping: TableMapping
    fields: tuple[_Field, ...]


WRITEBACK_MESSAGE_PREFIX = "mdh.writeback"
"""Prefix of the transactional logical message (``pg_logical_emit_message``) that every
write-back transaction of the outbox relay emits first (``cdc.targets.postgres``)."""
_ECHOES_KEPT = 1024


class ChangeMapper:
    """Applies validated source mappings to parsed envelopes.

    ``unmapped`` counts rows of tables without a mapping (``system/schema.table``);
    ``ignored`` counts messages that carry no row change (tombstones, heartbeats, logical
    messages, truncates under ``truncate: ignore``), by operation, and the hub's own
    write-backs coming back (``echo``).

    Echoes. A write-back transaction starts with a logical message prefixed
    ``WRITEBACK_MESSAGE_PREFIX``, which the stream delivers before the transaction's row
    changes, with the same transaction id. Row changes of such a transaction are the values
    the hub wrote, coming back: recognised here and not applied, so they neither make a new
    golden version nor make their source record look more recent to survivorship. (This needs
    the message and the rows in one ordered stream: the embedded engine and replay files; Kafka
    Connect puts messages on a topic of their own.)
    """

    def __init__(self, mappings: SourceMappings) -> None:
        self._sources: dict[str, tuple[str, SourceMapping]] = {}
        self._tables: dict[tuple[str, str], _Table] = {}
        for system, source in mappings.sources.items():
            server = source.server_name or system
            self._sources[server] = (system, source)
            for name, table in source.tables.items():
                fields = tuple(_Field.prepare(t, spec) for t, spec in table.fields.items())
                self._tables[(server, _qualify(name))] = _Table(system, name, table, fields)
        self.unmapped: Counter[str] = Counter()
        self.ignored: Counter[str] = Counter()
        self._echoes: dict[str, OrderedDict[int, None]] = {}
        """Per source server: ids of the latest write-back transactions."""

    def map_change(self, envelope: ChangeEnvelope) -> SourceChange | None:
        """The hub change for one envelope, or None when there is nothing to apply.

        Raises:
            PoisonMessageError: unknown source, unmapped table under ``dead_letter``,
                a truncate under ``dead_letter``, or a row the mapping cannot handle.
        """
        op = envelope.op
        if op is Operation.MESSAGE:
            self._note_writeback(envelope)
        if op in (Operation.TOMBSTONE, Operation.HEARTBEAT, Operation.MESSAGE):
            self.ignored[op.value] += 1
            return None
        source = envelope.source
        if source is None:  # parse_message never builds a row change without one
            raise MappingFailedError("a row change without a source block")
        if source.tx_id is not None and source.tx_id in self._echoes.get(source.name, ()):
            self.ignored["echo"] += 1
            return None
        known = self._sources.get(source.name)
        if known is None:
            raise UnknownSourceError(source.name, tuple(sorted(self._sources)))
        system, source_mapping = known
        table = self._tables.get((source.name, source.qualified_table))
        if table is None:
            if source_mapping.unmapped_tables == "dead_letter":
                raise UnmappedTableError(system, source.qualified_table)
            self.unmapped[f"{system}/{source.qualified_table}"] += 1
            return None
        if op is Operation.TRUNCATE:
            if source_mapping.truncate == "dead_letter":
                raise TruncateNotAppliedError(system, table.name)
            self.ignored[op.value] += 1
            return None

        pk = _primary_key(table.mapping.primary_key, envelope)
        key = SourceKey(system=system, table=table.name, pk=pk)
        if op is Operation.DELETE:
            image = envelope.before if envelope.before is not None else envelope.key
            return CapturedChange(
                key=key,
                op=ChangeOp.DELETE,
                attributes={},
                raw=jsonable(image) if image is not None else None,
                position=source.position,
            )
        after = envelope.after or {}
        attributes, unchanged = _map_row(table.fields, after, envelope.unavailable)
        return CapturedChange(
            key=key,
            op=ChangeOp.UPSERT,
            attributes=attributes,
            raw=jsonable(after),
            position=source.position,
            unchanged=unchanged,
            unavailable_columns=envelope.unavailable,
        )

    def _note_writeback(self, envelope: ChangeEnvelope) -> None:
        message, source = envelope.message, envelope.source
        if message is None or message.prefix != WRITEBACK_MESSAGE_PREFIX:
            return
        if source is None or source.tx_id is None:
            return
        recent = self._echoes.setdefault(source.name, OrderedDict())
        recent[source.tx_id] = None
        while len(recent) > _ECHOES_KEPT:
            recent.popitem(last=False)


def _primary_key(columns: tuple[str, ...], envelope: ChangeEnvelope) -> str:
    parts: list[str] = []
    for column in columns:
        value = None
        for image in (envelope.key, envelope.image):
            if image is not None and image.get(column) is not None:
                value = image[column]
                break
        if value is None:
            raise MappingFailedError(
                "no value in the key or the row image", field=f"primary_key.{column}"
            )
        text = str(jsonable(value))
        parts.append(text.replace("\\", "\\\\").replace(_PK_SEPARATOR, "\\" + _PK_SEPARATOR))
    return _PK_SEPARATOR.join(parts)


def _map_row(
    fields: tuple[_Field, ...], row: Mapping[str, Any], unavailable: frozenset[str]
) -> tuple[dict[str, Any], frozenset[str]]:
    attributes: dict[str, Any] = {}
    addresses: dict[int, dict[str, Any]] = {}
    extra: dict[str, str] = {}
    unchanged: set[str] = set()
    for field in fields:
        if unavailable and not unavailable.isdisjoint(field.inputs):
            unchanged.add(field.attribute)
            continue
        value = _evaluate(field, row)
        placement = field.placement
        if placement == "scalar":
            value = jsonable(value)
            if not _empty(value):
                attributes[field.target] = value
        elif placement == "list":
            items = _as_text_list(value)
            if items:
                attributes[field.target] = items
        elif placement == "extra":
            text = _as_text(value)
            if text is not None:
                extra[field.part] = text
        else:
            value = _as_text_list(value) if placement == "address_lines" else _as_text(value)
            if not _empty(value):
                addresses.setdefault(field.slot, {})[field.part] = value
    if addresses:
        attributes["addresses"] = [addresses[i] for i in sorted(addresses)]
    if extra:
        attributes["extra"] = extra
    for attribute in unchanged:
        attributes.pop(attribute, None)
    return attributes, frozenset(unchanged)


def _evaluate(field: _Field, row: Mapping[str, Any]) -> Any:
    spec, target = field.spec, field.target
    if field.has_constant:
        value: Any = spec.constant
    elif spec.from_ is not None:
        value = _column(row, spec.from_, target)
    elif spec.columns is not None:
        value = [_column(row, c, target) for c in spec.columns]
        value = [v for v in value if not _empty(_stripped(v))]
    else:
        assert spec.concat is not None
        parts = [_as_text(_column(row, c, target)) for c in spec.concat]
        value = spec.sep.join(p for p in parts if p) or None
    value = _stripped(value)
    if spec.split is not None and isinstance(value, str):
        value = [p.strip() for p in value.split(spec.split) if p.strip()]
    if spec.index is not None:
        value = (
            value[spec.index]
            if isinstance(value, list) and -len(value) <= spec.index < len(value)
            else None
        )
    if field.has_when:
        value = spec.when_absent if _empty(value) else spec.when_present
    if spec.lookup is not None:
        value = _look_up(spec.lookup, value, field.has_default, spec.default)
    if spec.type is not None and not _empty(value):
        value = _coerce(value, spec.type, target)
    if field.has_default and _empty(value):
        value = spec.default
    return value


def _column(row: Mapping[str, Any], column: str, target: str) -> Any:
    if column not in row:
        raise MappingFailedError(
            f"column {column!r} is not in the row (it has: {', '.join(sorted(row))})",
            field=target,
        )
    return row[column]


def _look_up(table: Mapping[str, Any], value: Any, has_default: bool, default: Any) -> Any:
    if isinstance(value, list):
        return [_look_up(table, v, has_default, default) for v in value]
    if _empty(value):
        return value
    key = value if isinstance(value, str) else str(jsonable(value))
    if key in table:
        return table[key]
    return default if has_default else value


def _coerce(value: Any, kind: CoercionType, target: str) -> Any:
    if kind == "list":
        return value if isinstance(value, list) else [value]
    if isinstance(value, list):
        return [_coerce(v, kind, target) for v in value]
    try:
        if kind == "str":
            return _as_text(value)
        if kind == "int":
            return _to_int(value)
        if kind == "decimal":
            return _to_decimal(value)
        return _to_date(value)
    except (ValueError, TypeError, ArithmeticError) as exc:
        raise MappingFailedError(
            f"cannot make a {kind} of {value!r}: {exc}", field=target
        ) from None


def _to_int(value: Any) -> int:
    if isinstance(value, bool):
        raise TypeError("a boolean is not a number")
    if isinstance(value, int):
        return value
    number = _to_decimal(value)
    if number != number.to_integral_value():
        raise ValueError("not a whole number")
    return int(number)


def _to_decimal(value: Any) -> Decimal:
    if isinstance(value, bool):
        raise TypeError("a boolean is not a number")
    if isinstance(value, Decimal):
        return value
    if isinstance(value, int):
        return Decimal(value)
    if isinstance(value, float):
        return Decimal(repr(value))
    if isinstance(value, str):
        try:
            number = Decimal(value.strip().replace("_", ""))
        except InvalidOperation:
            raise ValueError("not a decimal number") from None
        if not number.is_finite():
            raise ValueError("not a finite number")
        return number
    raise TypeError(f"{type(value).__name__} is not a number")


def _to_date(value: Any) -> date:
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        # A schemaless io.debezium.time.Date: days since 1970-01-01.
        return date.fromordinal(_EPOCH_ORDINAL + value)
    if isinstance(value, str):
        text = value.strip()
        try:
            return date.fromisoformat(text)
        except ValueError:
            return datetime.fromisoformat(text).date()
    raise TypeError(f"{type(value).__name__} is not a date")


def _as_text(value: Any) -> str | None:
    if _empty(value):
        return None
    if isinstance(value, list):
        return ", ".join(t for t in (_as_text(v) for v in value) if t)
    text = jsonable(value)
    return str(text).strip() if not isinstance(text, str) else text.strip()


def _as_text_list(value: Any) -> list[str]:
    items = value if isinstance(value, list) else [value]
    out: list[str] = []
    for item in items:
        text = _as_text(item)
        if text:
            out.append(text)
    return out


def _stripped(value: Any) -> Any:
    return value.strip() if isinstance(value, str) else value


def _empty(value: Any) -> bool:
    return value is None or value == "" or value == [] or value == {}
