"""The ``targets:`` section of the config file: where golden records are published, and how.

Either a list of names (outbox rows are written for each, nothing delivers them), or a
mapping of target name to its settings::

    targets:
      crm:
        kind: postgres                       # write-back into a source database
        connection: ${CRM_URL}               # postgresql://user:password@host:port/db
        system: crm                          # its system in the crosswalk (default: the name)
        owns: [emails, phones, addresses]    # its system-of-record attributes: never written
        events: [created, updated, linked, unlinked, merged, unmerged, retired]  # default: all
        tables:                              # the crosswalk's table names (as under sources:)
          account:
            key: id                          # primary key column(s), in the mapping's order
            golden_id_column: mdh_golden_id  # the cross-reference column (this is the default)
            fields: {name: legal_name, firstname: given_name}   # column: golden attribute
          contact: {key: id}                 # golden id only
      hooks:
        kind: webhook
        url: https://hooks.example.com/mdh
        secret: ${HOOK_SECRET}               # HMAC-SHA256 key for X-Mdh-Signature
        headers: {X-Tenant: acme}
        owns: [tax_id]                       # left out of the document
        fields: {name: legal_name, city: addresses[0].city}   # default: every attribute
      golden-topic:
        kind: kafka
        bootstrap_servers: broker:9092
        topic: mdh.golden
        options: {compression.type: zstd}    # more librdkafka producer settings
        delivery: {max_attempts: 12, initial_backoff_seconds: 1, max_backoff_seconds: 300,
                   timeout_seconds: 10}

A field is an attribute path (``legal_name``, ``emails[0]``, ``addresses[0].city``) or
``{from: <path>, join: <separator>}`` for a whole list (``addresses[0].lines``, ``emails``).
A field of a postgres target may not name an attribute the target owns: the hub never
overwrites a system of record.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    TypeAdapter,
    ValidationError,
    field_validator,
    model_validator,
)

from cdc.errors import CdcError
from cdc.targets.document import AttributePath, parse_path
from hub.history import HistoryEventKind
from hub.model import GOLDEN_ATTRIBUTES

TARGET_NAME = re.compile(r"^[a-z][a-z0-9_\-]*$")
_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_$]*$")
EVENTS: tuple[str, ...] = tuple(kind.value for kind in HistoryEventKind)


class TargetConfigError(CdcError):
    """The ``targets:`` section is invalid: names the file, the dotted key and the expectation."""

    def __init__(self, file: str, key: str, expected: str) -> None:
        self.file = file
        self.key = key
        self.expected = expected
        super().__init__(f"{file}: {key}: expected {expected}")


class FieldSource(BaseModel):
    """Where one target field comes from: an attribute path, optionally a list joined."""

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)

    from_: str = Field(alias="from")
    join: str | None = None
    kind: Literal["organization", "person"] | None = None
    """Only for golden records of this kind (a person's account name is not a legal name)."""

    @model_validator(mode="before")
    @classmethod
    def _bare_path(cls, value: Any) -> Any:
        return {"from": value} if isinstance(value, str) else value

    @model_validator(mode="after")
    def _valid_path(self) -> FieldSource:
        path = parse_path(self.from_)
        if self.join is not None and (not path.is_list or path.structured):
            raise ValueError(f"no join: {self.from_} is not a list of values")
        return self

    def column_problem(self) -> str | None:
        """Why this field cannot fill a table column (None: it can)."""
        path = self.path
        if path.structured:
            return f"one address field ({self.from_}[0].city...), not whole addresses"
        if path.is_list and self.join is None:
            return f"one item of the list {self.from_} ({self.from_}[0]) or a join separator"
        return None

    @property
    def path(self) -> AttributePath:
        return parse_path(self.from_)

    def applies_to(self, attributes: Mapping[str, Any]) -> bool:
        return self.kind is None or attributes.get("kind") == self.kind


class DeliverySettings(BaseModel):
    """Retries of one target: exponential backoff with jitter, dead after ``max_attempts``."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    max_attempts: int = Field(default=12, ge=1)
    initial_backoff_seconds: float = Field(default=1.0, gt=0)
    max_backoff_seconds: float = Field(default=300.0, gt=0)
    timeout_seconds: float = Field(default=10.0, gt=0, le=50)
    """Longest a single delivery may take (kept well inside the relay's lease)."""


class _Target(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    owns: tuple[str, ...] = ()
    events: tuple[str, ...] = EVENTS
    delivery: DeliverySettings = Field(default_factory=DeliverySettings)

    @field_validator("owns")
    @classmethod
    def _attributes(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for name in value:
            if name not in GOLDEN_ATTRIBUTES:
                raise ValueError(
                    f"golden attributes ({', '.join(GOLDEN_ATTRIBUTES)}), not {name!r}"
                )
        return value

    @field_validator("events")
    @classmethod
    def _events(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for name in value:
            if name not in EVENTS:
                raise ValueError(f"events among {', '.join(EVENTS)}, not {name!r}")
        if not value:
            raise ValueError("at least one event")
        return value

    def written_fields(self) -> dict[str, Mapping[str, FieldSource]]:
        """Every field map, by its dotted key below the target (for the ownership check)."""
        return {}


class PostgresTable(BaseModel):
    """One table of a write-back target."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    table: str | None = None
    """The database table, ``schema.table`` or ``table`` (public); default: the entry's name."""
    key: tuple[str, ...] = Field(min_length=1)
    golden_id_column: str = "mdh_golden_id"
    fields: dict[str, FieldSource] = Field(default_factory=dict)

    @field_validator("key", mode="before")
    @classmethod
    def _one_or_many(cls, value: Any) -> Any:
        return (value,) if isinstance(value, str) else value

    @model_validator(mode="after")
    def _columns(self) -> PostgresTable:
        for column in (*self.key, self.golden_id_column, *self.fields):
            if not _IDENTIFIER.match(column):
                raise ValueError(f"column names (letters, digits, _), not {column!r}")
        written = {self.golden_id_column, *self.fields}
        clash = sorted(written & set(self.key))
        if clash:
            raise ValueError(f"columns other than the key ({clash[0]} is a key column)")
        for name, source in self.fields.items():
            problem = source.column_problem()
            if problem is not None:
                raise ValueError(f"fields.{name}: {problem}")
        if self.golden_id_column in self.fields:
            raise ValueError(f"fields other than {self.golden_id_column} (it holds the golden id)")
        return self


class PostgresTargetSpec(_Target):
    kind: Literal["postgres"]
    connection: SecretStr
    """A libpq URL: ``postgresql://user:password@host:port/database``."""
    system: str | None = None
    tables: dict[str, PostgresTable] = Field(min_length=1)

    def written_fields(self) -> dict[str, Mapping[str, FieldSource]]:
        return {f"tables.{name}.fields": table.fields for name, table in self.tables.items()}

    @field_validator("connection")
    @classmethod
    def _url(cls, value: SecretStr) -> SecretStr:
        if not value.get_secret_value().startswith(("postgresql://", "postgres://")):
            raise ValueError("a URL postgresql://user:password@host:port/database")
        return value


class WebhookTargetSpec(_Target):
    kind: Literal["webhook"]
    url: str
    secret: SecretStr
    headers: dict[str, str] = Field(default_factory=dict)
    fields: dict[str, FieldSource] | None = None
    """JSON key: attribute path. None: every golden attribute the target does not own."""

    @field_validator("url")
    @classmethod
    def _http(cls, value: str) -> str:
        if not re.match(r"^https?://[^/\s]+", value):
            raise ValueError("an http:// or https:// URL")
        return value

    @field_validator("secret")
    @classmethod
    def _long_enough(cls, value: SecretStr) -> SecretStr:
        if len(value.get_secret_value()) < 16:
            raise ValueError("a secret of at least 16 characters (the HMAC-SHA256 key)")
        return value

    def written_fields(self) -> dict[str, Mapping[str, FieldSource]]:
        return {"fields": self.fields or {}}


class KafkaTargetSpec(_Target):
    kind: Literal["kafka"]
    bootstrap_servers: str = Field(min_length=1)
    topic: str = Field(min_length=1, pattern=r"^[A-Za-z0-9._\-]+$")
    options: dict[str, str | int | float | bool] = Field(default_factory=dict)
    fields: dict[str, FieldSource] | None = None

    def written_fields(self) -> dict[str, Mapping[str, FieldSource]]:
        return {"fields": self.fields or {}}


TargetSpec = Annotated[
    PostgresTargetSpec | WebhookTargetSpec | KafkaTargetSpec, Field(discriminator="kind")
]
_SPEC: TypeAdapter[PostgresTargetSpec | WebhookTargetSpec | KafkaTargetSpec] = TypeAdapter(
    TargetSpec
)


@dataclass(frozen=True)
class TargetsConfig:
    """The validated ``targets:`` section."""

    names: tuple[str, ...]
    """Every target: each golden change gets one outbox row per name."""
    specs: Mapping[str, PostgresTargetSpec | WebhookTargetSpec | KafkaTargetSpec]
    """How to deliver to each target that has settings (a names-only list has none)."""


def document_fields(spec: WebhookTargetSpec | KafkaTargetSpec) -> dict[str, FieldSource]:
    """The fields of a document target: configured, or every attribute it does not own."""
    if spec.fields is not None:
        return dict(spec.fields)
    return {
        name: FieldSource.model_validate(name)
        for name in GOLDEN_ATTRIBUTES
        if name not in spec.owns
    }


def parse_targets(raw: Any, file: str = "<config>") -> TargetsConfig:
    """Validate the ``targets:`` section (already environment-interpolated).

    Raises:
        TargetConfigError: naming the file, the key (``targets.crm.tables.account.key``) and
            what was expected there.
    """
    if raw is None:
        return TargetsConfig((), {})
    if isinstance(raw, list):
        for index, name in enumerate(raw):
            if not isinstance(name, str) or not TARGET_NAME.match(name):
                raise TargetConfigError(
                    file, f"targets[{index}]", "a target name (lower-case word)"
                )
        if len(set(raw)) != len(raw):
            raise TargetConfigError(file, "targets", "each target named once")
        return TargetsConfig(tuple(raw), {})
    if not isinstance(raw, dict):
        raise TargetConfigError(
            file, "targets", "a list of target names, or a mapping of name to settings"
        )
    specs: dict[str, PostgresTargetSpec | WebhookTargetSpec | KafkaTargetSpec] = {}
    for name, body in raw.items():
        key = f"targets.{name}"
        if not isinstance(name, str) or not TARGET_NAME.match(name):
            raise TargetConfigError(file, key, "a target name (lower-case word)")
        if not isinstance(body, dict):
            raise TargetConfigError(file, key, "a mapping with kind: postgres, webhook or kafka")
        if body.get("kind") not in ("postgres", "webhook", "kafka"):
            raise TargetConfigError(file, f"{key}.kind", "one of postgres, webhook, kafka")
        try:
            specs[name] = _SPEC.validate_python(body)
        except ValidationError as exc:
            error = exc.errors()[0]
            where = ".".join([key, *(str(p) for p in error["loc"][1:])])
            raise TargetConfigError(file, where, _expected(error)) from exc
        # The system-of-record boundary: what a target owns, the hub never sends or writes.
        for where, fields in specs[name].written_fields().items():
            for field, source in fields.items():
                if source.path.attribute in specs[name].owns:
                    raise TargetConfigError(
                        file,
                        f"{key}.{where}.{field}",
                        f"an attribute {name} does not own ({key}.owns lists"
                        f" {source.path.attribute}: the hub never writes it there)",
                    )
    return TargetsConfig(tuple(specs), specs)


def _expected(error: Any) -> str:
    if error["type"] == "missing":
        return "this key (it is required)"
    if error["type"] == "extra_forbidden":
        return "no such key here (a typo?)"
    message = str(error["msg"])
    for prefix in ("Value error, ", "Input should be "):
        message = message.removeprefix(prefix)
    return message


__all__ = [
    "EVENTS",
    "DeliverySettings",
    "FieldSource",
    "KafkaTargetSpec",
    "PostgresTable",
    "PostgresTargetSpec",
    "TargetConfigError",
    "TargetSpec",
    "TargetsConfig",
    "WebhookTargetSpec",
    "document_fields",
    "parse_targets",
]
