"""The declarative config file: sources, capture, survivorship, matching and targets in one YAML.

``load_config`` reads and validates the whole file at start-up; every error names the file,
the dotted key and what was expected there, and the ``mdh`` commands print it and exit 2.
Example (every section is optional; without a file the built-in defaults apply)::

    sources:
      crm:                                   # the source system (cdc.mapping's format...)
        connection: postgresql://mdh:${CRM_PASSWORD}@crm-db:5432/crm
        # or: {host: crm-db, port: 5432, database: crm, user: mdh, password: ${CRM_PASSWORD}}
        capture: {snapshot_mode: initial}    # optional Debezium settings for this source
        # and snapshot_delete_limit: 0.5 (the share of a table a re-snapshot may retire)
        tables:                              # ...the captured tables are the mapped ones
          public.customer:
            primary_key: id
            fields: {legal_name: company_name, emails: {columns: [email]}}
    capture:
      transport: embedded                    # or kafka
      batch_size: 2048
      max_wait_ms: 50
      kafka: {bootstrap_servers: "broker:9092", group_id: mdh, topics: [crm.public.customer]}
    survivorship: {default: [...], attributes: {...}}     # hub.rules.load_rules
    matching: {spec: customers, model: model.json, match_probability: 0.95}
    enrichment:                              # mapping beyond the declarative fields (optional)
      joins: demo                            # mdh.demo.mapping: bill-to join, E.164, names
      references: {billing: ${BILLING_URL}}  # databases the joins read (default: connections)
    targets:                                 # where golden records are published (cdc.targets)
      crm:                                   # or just a list of names: [crm, billing, erp]
        kind: postgres                       # postgres write-back | webhook | kafka
        connection: ${CRM_URL}
        owns: [emails, phones, addresses]    # the target's system-of-record attributes
        tables: {account: {key: id, fields: {name: legal_name}}}

``${NAME}`` (or ``${NAME:-default}``) in a connection or Kafka setting is read from the
environment handed to ``load_config``, so secrets stay out of the file.
"""

from __future__ import annotations

import dataclasses
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, TypeVar

import yaml
from psycopg.conninfo import make_conninfo
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, model_validator

from cdc.debezium import PostgresSource
from cdc.errors import MappingConfigError
from cdc.mapping import SourceMappings, parse_source_mappings
from cdc.targets import AnyTargetSpec, TargetConfigError, parse_targets
from hub.errors import ConfigError
from hub.matcher import Matcher
from hub.rules import SurvivorshipRules, default_rules, load_rules
from matching import MatchModel, MatchSpec, SpecError, load_spec, shipped_spec
from matching.errors import ModelFormatError

DEFAULT_CONFIG_FILE = Path("mdh.yaml")
SECTIONS = ("sources", "capture", "survivorship", "matching", "enrichment", "targets")
_SOURCE_ONLY_KEYS = ("connection", "capture")
_M = TypeVar("_M", bound=BaseModel)
_VARIABLE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


class ConfigFileError(Exception):
    """The config file is not what was expected: names the file, the key and the expectation."""

    def __init__(self, file: str, key: str, expected: str) -> None:
        self.file = file
        self.key = key
        self.expected = expected
        super().__init__(f"{file}: {key}: expected {expected}")


class ConnectionConfig(BaseModel):
    """Where a source database is: a URL, or its parts."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    url: SecretStr | None = None
    host: str = "127.0.0.1"
    port: int = Field(default=5432, ge=1, le=65535)
    database: str | None = None
    user: str = "postgres"
    password: SecretStr = SecretStr("")

    @model_validator(mode="before")
    @classmethod
    def _url_or_parts(cls, value: Any) -> Any:
        return {"url": value} if isinstance(value, str) else value

    @model_validator(mode="after")
    def _has_database(self) -> ConnectionConfig:
        if self.url is None and not self.database:
            raise ValueError("a URL (postgresql://user:password@host:port/db) or 'database'")
        return self

    def libpq_url(self) -> str:
        """The connection as a libpq connection string (``psycopg.connect`` takes it)."""
        if self.url is not None:
            return self.url.get_secret_value()
        return make_conninfo(
            host=self.host,
            port=self.port,
            dbname=self.database or "",
            user=self.user,
            password=self.password.get_secret_value(),
        )


class CaptureOptions(BaseModel):
    """Per-source Debezium settings (``cdc.debezium.PostgresSource`` has the meanings)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    snapshot_mode: str = "initial"
    decimal_handling_mode: Literal["precise", "string", "double"] = "precise"
    schemas_enabled: bool = True
    poll_interval_ms: int = Field(default=50, ge=1, le=50)
    max_batch_size: int = Field(default=2048, ge=1)
    heartbeat_interval_ms: int = Field(default=10_000, ge=0)
    extra_properties: dict[str, str] = Field(default_factory=dict)
    snapshot_delete_limit: float = Field(default=0.5, ge=0, le=1)


@dataclass(frozen=True)
class SourceConnection:
    """How to capture one source system: its database, options and the mapped tables."""

    name: str
    connection: ConnectionConfig
    tables: tuple[str, ...]
    options: CaptureOptions = field(default_factory=CaptureOptions)

    def postgres_source(self) -> PostgresSource:
        """The Debezium source for the embedded engine."""
        options = self.options.model_dump()
        if self.connection.url is not None:
            return PostgresSource.from_url(
                self.name, self.connection.url.get_secret_value(), self.tables, **options
            )
        return PostgresSource(
            name=self.name,
            host=self.connection.host,
            port=self.connection.port,
            database=self.connection.database or "",
            user=self.connection.user,
            password=self.connection.password,
            tables=self.tables,
            **options,
        )


class EnrichmentConfig(BaseModel):
    """What the mapping does beyond the declarative fields: joins with referenced rows.

    ``joins: demo`` are the joins of the demo's source systems (``mdh.demo.mapping``: a billing
    account takes its bill-to contact's address, contact persons' phones become E.164 from
    their customer's country, name fields by kind). They read referenced rows from the source
    databases: ``references`` names them per system; a system with a ``connection:`` under
    ``sources`` is read there unless ``references`` says otherwise. The scale-out workers
    (Kafka transport) have no connections and need ``references``.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    joins: Literal["demo"]
    references: dict[str, SecretStr] = Field(default_factory=dict)
    max_age_seconds: float | None = Field(default=5.0, ge=0)
    """How long a referenced row, once read or seen in a change, is trusted before it is read
    again (a worker sees only its partitions' changes); null: until a change replaces it."""


class KafkaConfig(BaseModel):
    """The consumer group that reads Debezium topics written by Kafka Connect."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    bootstrap_servers: str = Field(min_length=1)
    group_id: str = Field(default="mdh", min_length=1)
    topics: tuple[str, ...] = ()
    topic_pattern: str | None = None
    """A regular expression (``crm\\..*``); every matching topic is read."""
    options: dict[str, str | int | float | bool] = Field(default_factory=dict)
    """More librdkafka consumer settings (``session.timeout.ms``, security...)."""

    @model_validator(mode="after")
    def _topics_or_pattern(self) -> KafkaConfig:
        if bool(self.topics) == bool(self.topic_pattern):
            raise ValueError("exactly one of 'topics' (a list) or 'topic_pattern' (a regex)")
        if self.topic_pattern is not None:
            try:
                re.compile(self.topic_pattern)
            except re.error as exc:
                raise ValueError(f"topic_pattern is not a regular expression ({exc})") from exc
        return self


class CaptureConfig(BaseModel):
    """How changes reach the apply loop."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    transport: Literal["embedded", "kafka"] = "embedded"
    batch_size: int = Field(default=2048, ge=1)
    """Most messages per hub transaction (Kafka, replay); the engine's is per source."""
    max_wait_ms: int = Field(default=50, ge=0)
    """Longest wait for a batch to fill (Kafka)."""
    max_message_bytes: int = Field(default=8 * 1024 * 1024, ge=1024)
    kafka: KafkaConfig | None = None

    @model_validator(mode="after")
    def _kafka_when_kafka(self) -> CaptureConfig:
        if self.transport == "kafka" and self.kafka is None:
            raise ValueError("a 'kafka:' section when transport is kafka")
        return self


class MatchingConfig(BaseModel):
    """Which match model the hub uses.

    ``model`` is a file written by ``MatchModel.save`` (trained by ``mdh match``); without one
    the spec's untrained model is used: default m/u values that link on strong identifiers
    (e-mail, tax id, phone with name) and send weaker evidence to review. ``spec`` is a
    shipped spec's name or a spec file.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    spec: str = "customers"
    model: Path | None = None
    match_probability: float | None = Field(default=None, gt=0, lt=1)
    review_probability: float | None = Field(default=None, gt=0, lt=1)

    def build_matcher(self, base: Path) -> Matcher:
        """The match model (relative paths are read from ``base``, the config's folder).

        Raises:
            SpecError, ModelFormatError: the spec or model file is unusable.
        """
        if self.model is not None:
            model = MatchModel.load(_resolve(base, self.model))
        else:
            model = MatchModel.untrained(self._spec(base))
        return self.with_thresholds(model)

    def with_thresholds(self, model: MatchModel) -> MatchModel:
        """``model`` with the thresholds this section sets (those it leaves out stay)."""
        if self.match_probability is None and self.review_probability is None:
            return model
        spec = dataclasses.replace(
            model.spec,
            match_probability=self.match_probability or model.spec.match_probability,
            review_probability=self.review_probability or model.spec.review_probability,
        )
        return dataclasses.replace(model, spec=spec)

    def _spec(self, base: Path) -> MatchSpec:
        if self.spec.endswith((".yaml", ".yml", ".json")):
            return load_spec(_resolve(base, Path(self.spec)))
        return shipped_spec(self.spec)


@dataclass(frozen=True)
class MdhConfig:
    """The validated config file (or the built-in defaults)."""

    file: str
    mappings: SourceMappings | None
    """None when no source is configured."""
    connections: Mapping[str, SourceConnection]
    """Source systems with a ``connection:``, by name."""
    capture: CaptureConfig
    survivorship: SurvivorshipRules
    matching: MatchingConfig
    targets: tuple[str, ...]
    """Every target's name: each golden change gets one outbox row per target."""
    target_specs: Mapping[str, AnyTargetSpec] = field(default_factory=dict)
    """How to deliver to each target that has settings (none when ``targets:`` is a list)."""
    enrichment: EnrichmentConfig | None = None
    """Joins the mapping does beyond the declarative fields (none: the fields alone)."""

    def reference_urls(self) -> dict[str, str]:
        """Where the enrichment joins read referenced rows, by source system: the
        ``references`` of ``enrichment``, else the source's ``connection``."""
        urls = {name: source.connection.libpq_url() for name, source in self.connections.items()}
        if self.enrichment is not None:
            urls.update({k: v.get_secret_value() for k, v in self.enrichment.references.items()})
        return urls

    @property
    def base_dir(self) -> Path:
        return Path(self.file).parent if self.file != "<defaults>" else Path.cwd()

    def build_matcher(self) -> Matcher:
        try:
            return self.matching.build_matcher(self.base_dir)
        except SpecError as exc:
            raise ConfigFileError(self.file, f"matching.spec ({exc.path})", exc.expected) from exc
        except ModelFormatError as exc:
            raise ConfigFileError(self.file, "matching.model", f"a model file: {exc}") from exc


def default_config() -> MdhConfig:
    return MdhConfig(
        file="<defaults>",
        mappings=None,
        connections={},
        capture=CaptureConfig(),
        survivorship=default_rules(),
        matching=MatchingConfig(),
        targets=(),
    )


def find_config_file(configured: Path | None, cwd: Path | None = None) -> Path | None:
    """The config file to use: MDH_CONFIG_FILE, else ``./mdh.yaml`` if present, else none."""
    if configured is not None:
        return configured
    candidate = (cwd or Path.cwd()) / DEFAULT_CONFIG_FILE
    return candidate if candidate.is_file() else None


def load_config(path: Path | None, environ: Mapping[str, str] | None = None) -> MdhConfig:
    """Read and validate the config file (the built-in defaults when ``path`` is None).

    Args:
        environ: where ``${NAME}`` references are looked up (``os.environ`` when None).

    Raises:
        ConfigFileError: naming the file, the key and what was expected there.
    """
    if path is None:
        return default_config()
    file = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigFileError(file, "(file)", f"a readable file ({exc.strerror})") from exc
    except UnicodeDecodeError as exc:
        raise ConfigFileError(file, "(file)", "UTF-8 text") from exc
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}" if mark is not None else "(file)"
        raise ConfigFileError(file, where, f"valid YAML ({getattr(exc, 'problem', exc)})") from exc
    return parse_config(document, file, os.environ if environ is None else environ)


def parse_config(document: Any, file: str, environ: Mapping[str, str]) -> MdhConfig:
    """Validate an already-parsed config document (see ``load_config``)."""
    if document is None:
        document = {}
    if not isinstance(document, dict):
        raise ConfigFileError(file, "(top level)", f"a mapping with sections {', '.join(SECTIONS)}")
    for key in document:
        if key not in SECTIONS:
            raise ConfigFileError(file, str(key), f"one of the sections {', '.join(SECTIONS)}")

    mappings, connections = _sources(document.get("sources"), file, environ)
    capture = _model(
        CaptureConfig,
        _interpolate(document.get("capture") or {}, environ, file, "capture"),
        file,
        "capture",
    )
    try:
        survivorship = load_rules(document.get("survivorship"), file)
    except ConfigError as exc:
        raise ConfigFileError(exc.file, exc.key, exc.expected) from exc
    matching = _model(MatchingConfig, document.get("matching") or {}, file, "matching")
    try:
        targets = parse_targets(
            _interpolate(document.get("targets"), environ, file, "targets"), file
        )
    except TargetConfigError as exc:
        raise ConfigFileError(exc.file, exc.key, exc.expected) from exc
    enrichment = None
    if document.get("enrichment") is not None:
        enrichment = _model(
            EnrichmentConfig,
            _interpolate(document["enrichment"], environ, file, "enrichment"),
            file,
            "enrichment",
        )
        known = set(mappings.sources) if mappings is not None else set()
        for system in enrichment.references:
            if system not in known:
                raise ConfigFileError(
                    file, f"enrichment.references.{system}", "the name of a configured source"
                )
        for system in sorted(known - set(enrichment.references) - set(connections)):
            # Without it a worker would join only with the rows it happened to map itself.
            raise ConfigFileError(
                file,
                f"enrichment.references.{system}",
                "a database URL (the joins read referenced rows there; "
                "or give the source a connection)",
            )
    return MdhConfig(
        file=file,
        mappings=mappings,
        connections=connections,
        capture=capture,
        survivorship=survivorship,
        matching=matching,
        targets=targets.names,
        target_specs=targets.specs,
        enrichment=enrichment,
    )


def _sources(
    raw: Any, file: str, environ: Mapping[str, str]
) -> tuple[SourceMappings | None, dict[str, SourceConnection]]:
    if raw is None:
        return None, {}
    if not isinstance(raw, dict):
        raise ConfigFileError(file, "sources", "a mapping of source system to its settings")
    mapping_part: dict[str, Any] = {}
    extras: dict[str, dict[str, Any]] = {}
    for name, body in raw.items():
        if not isinstance(body, dict):
            raise ConfigFileError(file, f"sources.{name}", "a mapping (connection, tables...)")
        mapping_part[name] = {k: v for k, v in body.items() if k not in _SOURCE_ONLY_KEYS}
        extras[str(name)] = {k: body[k] for k in _SOURCE_ONLY_KEYS if k in body}
    try:
        mappings = parse_source_mappings({"sources": mapping_part}, file)
    except MappingConfigError as exc:
        raise ConfigFileError(exc.file, exc.key, exc.expected) from exc

    connections: dict[str, SourceConnection] = {}
    for name, extra in extras.items():
        if "connection" not in extra:
            continue
        key = f"sources.{name}.connection"
        connection = _model(
            ConnectionConfig, _interpolate(extra["connection"], environ, file, key), file, key
        )
        options = _model(
            CaptureOptions, extra.get("capture") or {}, file, f"sources.{name}.capture"
        )
        tables = tuple(t if "." in t else f"public.{t}" for t in mappings.sources[name].tables)
        try:
            PostgresSource(name=name, database="x", tables=tables)
        except ValidationError as exc:
            raise ConfigFileError(file, f"sources.{name}", _first_message(exc)) from exc
        connections[name] = SourceConnection(name, connection, tables, options)
    return mappings, connections


def _model(kind: type[_M], raw: Any, file: str, key: str) -> _M:
    try:
        return kind.model_validate(raw)
    except ValidationError as exc:
        error = exc.errors()[0]
        where = ".".join([key, *(str(p) for p in error["loc"])])
        raise ConfigFileError(file, where, _first_message(exc)) from exc


def _first_message(exc: ValidationError) -> str:
    error = exc.errors()[0]
    if error["type"] == "missing":
        return "this key (it is required)"
    if error["type"] == "extra_forbidden":
        return "no such key here (a typo?)"
    message = str(error["msg"])
    for prefix in ("Value error, ", "Input should be "):
        message = message.removeprefix(prefix)
    return message


def _interpolate(value: Any, environ: Mapping[str, str], file: str, key: str) -> Any:
    if isinstance(value, str):

        def substitute(match: re.Match[str]) -> str:
            name, default = match.group(1), match.group(2)
            if name in environ:
                return environ[name]
            if default is not None:
                return default
            raise ConfigFileError(file, key, f"the environment variable {name} to be set")

        return _VARIABLE.sub(substitute, value)
    if isinstance(value, dict):
        return {k: _interpolate(v, environ, file, f"{key}.{k}") for k, v in value.items()}
    if isinstance(value, list):
        return [_interpolate(v, environ, file, f"{key}[{i}]") for i, v in enumerate(value)]
    return value


def _resolve(base: Path, path: Path) -> Path:
    return path if path.is_absolute() else base / path
