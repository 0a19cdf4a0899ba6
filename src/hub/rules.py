"""Survivorship rules: per golden attribute, the chain of rules that chooses its source.

The rules live in the ``survivorship:`` section of the config file::

    survivorship:
      default: most_recent                    # for attributes not listed below
      attributes:
        tax_id:
          - source_priority: [erp, billing]   # systems, or system/table, best first
          - most_recent                       # fallback when neither has a value
        emails: {union: [crm, billing]}       # union, CRM's values first
        credit_limit:
          - {rule: source_priority, systems: [billing], allow_empty: true}

Each attribute has a chain. Survivorship walks it in order: every rule narrows the candidates
(the linked source records with a value) to the ones it prefers; a rule that cannot apply
(``source_priority`` when none of its systems has a value) is skipped; the walk stops as soon
as the remaining candidates agree on one value. ``union`` is terminal: it combines the values of
all remaining candidates. A steward pin stands above every chain. ``allow_empty`` lets a rule
choose a source whose value is empty (a system of record clearing a field); without it, empty
values never win over present ones.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError, model_validator

from hub.errors import ConfigError
from hub.model import GOLDEN_ATTRIBUTES, SourceKey

# Bumped when the meaning of a rule changes, so lineage written under the old meaning is told
# apart from the new even when the config file did not change.
_SEMANTICS = "survivorship/1"

MULTI_VALUED_ATTRIBUTES: frozenset[str] = frozenset({"emails", "phones", "addresses"})
"""Golden attributes holding lists; only these may use the ``union`` rule."""


class RuleKind(StrEnum):
    SOURCE_PRIORITY = "source_priority"
    MOST_RECENT = "most_recent"
    MOST_COMPLETE = "most_complete"
    MOST_FREQUENT = "most_frequent"
    UNION = "union"


_KINDS_TAKING_SYSTEMS = frozenset({RuleKind.SOURCE_PRIORITY, RuleKind.UNION})


class SourceRef(BaseModel):
    """A source system, optionally narrowed to one of its tables (``erp`` or ``erp/customers``)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    system: str = Field(min_length=1)
    table: str | None = None

    @classmethod
    def parse(cls, text: str) -> SourceRef:
        system, _, table = text.strip().partition("/")
        return cls(system=system.strip(), table=table.strip() or None)

    def matches(self, key: SourceKey) -> bool:
        return key.system == self.system and (self.table is None or key.table == self.table)

    def __str__(self) -> str:
        return self.system if self.table is None else f"{self.system}/{self.table}"


class Rule(BaseModel):
    """One link of an attribute's chain."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: RuleKind
    systems: tuple[SourceRef, ...] = ()
    """For ``source_priority``: the systems in order of trust. For ``union``: whose values come
    first in the combined list (the others follow, most recent first)."""
    allow_empty: bool = False

    @model_validator(mode="after")
    def _systems_fit_kind(self) -> Rule:
        if self.kind is RuleKind.SOURCE_PRIORITY and not self.systems:
            raise ValueError("source_priority needs at least one system")
        if self.systems and self.kind not in _KINDS_TAKING_SYSTEMS:
            raise ValueError(f"{self.kind} takes no systems")
        return self

    @property
    def name(self) -> str:
        """The name recorded in attribute lineage, e.g. ``source_priority(erp>billing)``."""
        if not self.systems:
            return str(self.kind)
        return f"{self.kind}({'>'.join(str(ref) for ref in self.systems)})"


RuleChain = tuple[Rule, ...]


def _rule(kind: RuleKind, *systems: str, allow_empty: bool = False) -> Rule:
    return Rule(
        kind=kind,
        systems=tuple(SourceRef.parse(s) for s in systems),
        allow_empty=allow_empty,
    )


class SurvivorshipRules(BaseModel):
    """The whole rule set: a chain per listed attribute and a default chain for the others."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    default: RuleChain = (_rule(RuleKind.MOST_RECENT),)
    attributes: Mapping[str, RuleChain] = Field(default_factory=dict)

    _version: str = PrivateAttr(default="")
    _chains: dict[str, RuleChain] = PrivateAttr(default_factory=dict)

    @model_validator(mode="after")
    def _chains_fit_attributes(self) -> SurvivorshipRules:
        if not self.default:
            raise ValueError("the default chain needs at least one rule")
        if any(rule.kind is RuleKind.UNION for rule in self.default):
            raise ValueError("union cannot be a default rule: it only fits list attributes")
        for attribute, chain in self.attributes.items():
            if attribute not in GOLDEN_ATTRIBUTES:
                raise ValueError(f"unknown attribute {attribute!r}")
            if not chain:
                raise ValueError(f"{attribute}: the chain needs at least one rule")
            if attribute not in MULTI_VALUED_ATTRIBUTES and any(
                rule.kind is RuleKind.UNION for rule in chain
            ):
                raise ValueError(f"{attribute}: union only fits list attributes")
        return self

    def model_post_init(self, context: Any, /) -> None:
        canonical = json.dumps(
            [_SEMANTICS, self.model_dump(mode="json")], sort_keys=True, separators=(",", ":")
        )
        self._version = hashlib.sha256(canonical.encode()).hexdigest()[:16]
        self._chains = {
            attribute: self.attributes.get(attribute, self.default)
            for attribute in GOLDEN_ATTRIBUTES
        }

    @property
    def version(self) -> str:
        """A stable hash of the rule set, recorded in every attribute's lineage."""
        return self._version

    def __hash__(self) -> int:  # the field-wise default fails on the attributes dict
        return hash(self._version)

    def chain_for(self, attribute: str) -> RuleChain:
        """The chain that decides ``attribute`` (the default chain when none is declared)."""
        chain = self._chains.get(attribute)
        return self.default if chain is None else chain


def default_rules() -> SurvivorshipRules:
    """Rules suited to the CRM / billing / ERP landscape of the demo.

    The ERP is the system of record for legal identity, billing for commercial terms, the CRM
    for how to reach the customer; addresses follow whoever changed them last.
    """
    p, recent, frequent, complete, union = (
        RuleKind.SOURCE_PRIORITY,
        RuleKind.MOST_RECENT,
        RuleKind.MOST_FREQUENT,
        RuleKind.MOST_COMPLETE,
        RuleKind.UNION,
    )
    erp_first = _rule(p, "erp", "billing", "crm")
    billing_first = _rule(p, "billing", "erp", "crm")
    crm_first = _rule(p, "crm", "billing", "erp")
    latest = _rule(recent)
    return SurvivorshipRules(
        default=(latest,),
        attributes={
            "kind": (_rule(frequent), erp_first),
            "legal_name": (erp_first, latest),
            "given_name": (crm_first, latest),
            "middle_name": (crm_first, latest),
            "family_name": (crm_first, latest),
            "emails": (_rule(union, "crm", "billing", "erp"),),
            "phones": (_rule(union, "crm", "billing", "erp"),),
            "addresses": (latest, _rule(complete)),
            "tax_id": (erp_first, _rule(frequent), latest),
            "national_id": (erp_first, _rule(frequent), latest),
            "date_of_birth": (_rule(frequent), crm_first),
            "website": (crm_first, latest),
            "currency": (billing_first, latest),
            "payment_terms": (billing_first, latest),
            "credit_limit": (billing_first, latest),
            "legal_entity": (erp_first, latest),
            "lifecycle_status": (latest,),
        },
    )


# --- loading from the config file -------------------------------------------------------------

_SECTION = "survivorship"
_KIND_LIST = ", ".join(kind.value for kind in RuleKind)
_RULE_OPTIONS = ("systems", "allow_empty")


def load_rules(mapping: Mapping[str, Any] | None, source_name: str) -> SurvivorshipRules:
    """Validate the ``survivorship:`` section of a config file into a rule set.

    Args:
        mapping: the value of the ``survivorship:`` section as parsed from YAML; ``None`` (the
            section is absent) gives ``default_rules()``.
        source_name: the file it came from, named in every error.

    Raises:
        ConfigError: naming the file, the dotted key and what was expected there.
    """
    if mapping is None:
        return default_rules()
    if not isinstance(mapping, Mapping):
        raise ConfigError(
            source_name, _SECTION, "a mapping with 'default' and 'attributes'", mapping
        )
    for key in mapping:
        if key not in ("default", "attributes"):
            raise ConfigError(source_name, f"{_SECTION}.{key}", "one of: default, attributes", key)

    fields: dict[str, Any] = {}
    if "default" in mapping:
        key = f"{_SECTION}.default"
        default = _parse_chain(mapping["default"], source_name, key)
        for index, rule in enumerate(default):
            if rule.kind is RuleKind.UNION:
                raise ConfigError(
                    source_name, f"{key}[{index}]", "a rule other than union", "union"
                )
        fields["default"] = default

    raw_attributes = mapping.get("attributes") or {}
    if not isinstance(raw_attributes, Mapping):
        raise ConfigError(
            source_name, f"{_SECTION}.attributes", "a mapping of attribute to rules", raw_attributes
        )
    attributes: dict[str, RuleChain] = {}
    for attribute, raw_chain in raw_attributes.items():
        key = f"{_SECTION}.attributes.{attribute}"
        if attribute not in GOLDEN_ATTRIBUTES:
            raise ConfigError(
                source_name, key, f"a golden attribute ({', '.join(GOLDEN_ATTRIBUTES)})", attribute
            )
        chain = _parse_chain(raw_chain, source_name, key)
        if attribute not in MULTI_VALUED_ATTRIBUTES:
            for index, rule in enumerate(chain):
                if rule.kind is RuleKind.UNION:
                    raise ConfigError(
                        source_name,
                        f"{key}[{index}]",
                        f"a single-value rule (union only fits {', '.join(sorted(MULTI_VALUED_ATTRIBUTES))})",
                        "union",
                    )
        attributes[str(attribute)] = chain
    fields["attributes"] = attributes

    try:
        return SurvivorshipRules(**fields)
    except ValidationError as exc:  # every check above should have caught it first
        raise ConfigError(source_name, _SECTION, "a valid survivorship section", str(exc)) from exc


def _parse_chain(raw: Any, file: str, key: str) -> RuleChain:
    items: Sequence[Any] = raw if isinstance(raw, list | tuple) else [raw]
    if not items:
        raise ConfigError(file, key, "at least one rule", raw)
    return tuple(_parse_rule(item, file, f"{key}[{index}]") for index, item in enumerate(items))


def _parse_rule(raw: Any, file: str, key: str) -> Rule:
    """A rule is ``kind``, ``{kind: [systems]}``, ``{kind: {options}}`` or ``{rule: kind, ...}``."""
    options: Mapping[str, Any]
    if isinstance(raw, str):
        kind_text, options, kind_key = raw, {}, key
    elif isinstance(raw, Mapping) and "rule" in raw:
        kind_text, kind_key = raw["rule"], f"{key}.rule"
        options = {k: v for k, v in raw.items() if k != "rule"}
    elif isinstance(raw, Mapping) and len(raw) == 1:
        ((kind_text, value),) = raw.items()
        kind_key = key
        if value is None:
            options = {}
        elif isinstance(value, Mapping):
            options = value
        else:
            options = {"systems": value}
    else:
        raise ConfigError(
            file, key, f"a rule name ({_KIND_LIST}) or a mapping {{rule: name, ...}}", raw
        )

    if not isinstance(kind_text, str) or kind_text not in RuleKind.__members__.values():
        raise ConfigError(file, kind_key, f"one of: {_KIND_LIST}", kind_text)
    kind = RuleKind(kind_text)

    for option in options:
        if option not in _RULE_OPTIONS:
            raise ConfigError(file, f"{key}.{option}", f"one of: rule, {', '.join(_RULE_OPTIONS)}")

    systems = _parse_systems(options.get("systems"), file, f"{key}.systems")
    if kind is RuleKind.SOURCE_PRIORITY and not systems:
        raise ConfigError(
            file, f"{key}.systems", "a non-empty list of systems (e.g. [erp, billing/accounts])"
        )
    if systems and kind not in _KINDS_TAKING_SYSTEMS:
        raise ConfigError(
            file, f"{key}.systems", f"no systems: {kind} does not take any", options["systems"]
        )

    allow_empty = options.get("allow_empty", False)
    if not isinstance(allow_empty, bool):
        raise ConfigError(file, f"{key}.allow_empty", "true or false", allow_empty)
    return Rule(kind=kind, systems=systems, allow_empty=allow_empty)


def _parse_systems(raw: Any, file: str, key: str) -> tuple[SourceRef, ...]:
    if raw is None:
        return ()
    items = [raw] if isinstance(raw, str) else raw
    if not isinstance(items, list | tuple):
        raise ConfigError(file, key, "a list of systems (system or system/table)", raw)
    refs: list[SourceRef] = []
    for index, item in enumerate(items):
        if not isinstance(item, str) or not item.strip().partition("/")[0].strip():
            raise ConfigError(file, f"{key}[{index}]", "a system name or system/table", item)
        refs.append(SourceRef.parse(item))
    return tuple(refs)
