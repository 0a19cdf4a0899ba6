"""The match spec: comparisons, blocking rules, thresholds and hard conflicts, as frozen values.

A spec is what a user edits (in the hub's config file, as YAML or JSON) and what a trained
model carries; it says *how* two records are compared, never the trained numbers. Loading it
validates every key and fails with a ``SpecError`` naming the key and what was expected.
"""

from __future__ import annotations

import itertools
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, cast, get_args

from matching.errors import SpecError
from matching.features import FEATURE_KEYS

LIST_FEATURES: frozenset[str] = frozenset({"emails", "email_locals", "phones"})

ComparisonKind = Literal[
    "exact",
    "jaro_winkler",
    "jaro",
    "token_set",
    "levenshtein",
    "damerau",
    "date",
    "numeric",
    "overlap",
    "joint",
]
COMPARISON_KINDS: tuple[str, ...] = get_args(ComparisonKind)
SIMILARITY_KINDS = frozenset({"jaro_winkler", "jaro", "token_set"})
DISTANCE_KINDS = frozenset({"levenshtein", "damerau"})

Tolerance = Literal["none", "typo"]

BLOCKING_TRANSFORMS: tuple[str, ...] = (
    "exact",
    "soundex",
    "metaphone",
    "nysiis",
    "initial",
    "year",
    "digits",
    "first_token",
)
_PREFIX_TRANSFORM = re.compile(r"^prefix([1-9])$")
_NAME = re.compile(r"^[a-z][a-z0-9_]*$")


@dataclass(frozen=True)
class ComparisonSpec:
    """One comparison: the field(s) it reads, how it compares them, and its ordered levels.

    Levels run from the strongest agreement (``exact``) to ``else``; a pair where either side
    is missing gets the null level, whose weight is always 0. ``thresholds`` are similarities
    (descending, 0..1) for jaro_winkler/jaro/token_set and for overlap's fuzzy levels, edit
    distances (ascending) for levenshtein/damerau, absolute differences (ascending) for numeric
    and day distances (ascending) for date. With several fields, the exact level means "equal
    on any field" and a fuzzy level uses the best similarity over the fields.
    """

    name: str
    kind: ComparisonKind
    fields: tuple[str, ...]
    thresholds: tuple[float, ...] = ()
    tf_adjust: bool = False
    initial: bool = False
    """Add a level for "one side is a single letter equal to the other's first letter"."""
    parts: tuple[ComparisonSpec, ...] = ()
    """Kind ``joint``: the comparisons whose level combinations are this one's levels."""
    unless: tuple[str, ...] = ()
    """Fields that make this comparison missing when a record has one of them: an
    organisation's ``name`` is compared, a person's (``given family``) is not, since the
    name parts already are."""
    swap: bool = False
    """Kind ``joint`` with two parts: a pair gets the stronger of its level as the fields are
    and its level with the two parts compared crosswise (one record's given name against the
    other's family name and the reverse), for values keyed into each other's field."""

    @property
    def level_labels(self) -> tuple[str, ...]:
        """Labels of the non-null levels, strongest first; level ``i`` has label ``[i - 1]``.

        A ``joint`` comparison has one level per combination of its parts' levels (a part's
        null level included, all parts null excepted), parts' strongest levels first: it
        models fields whose agreement is correlated among non-matches, such as surname and
        address within a household, instead of counting that evidence twice.
        """
        if self.kind == "joint":
            return tuple(
                " & ".join(f"{p.name}={label}" for p, label in zip(self.parts, combo, strict=True))
                for combo in itertools.product(*(joint_part_labels(p) for p in self.parts))
                if any(label != "null" for label in combo)
            )
        labels: list[str] = ["exact"]
        if self.kind in SIMILARITY_KINDS:
            labels += [f"{self.kind}>={t:g}" for t in self.thresholds]
        elif self.kind in DISTANCE_KINDS:
            labels += [f"{self.kind}<={t:g}" for t in self.thresholds]
        elif self.kind == "date":
            labels += ["typo", *(f"days<={t:g}" for t in self.thresholds)]
        elif self.kind == "numeric":
            labels += [f"abs_diff<={t:g}" for t in self.thresholds]
        elif self.kind == "overlap":
            labels = ["shared", *(f"jaro_winkler>={t:g}" for t in self.thresholds)]
        if self.initial:
            labels.append("initial")
        labels.append("else")
        return tuple(labels)

    @property
    def n_levels(self) -> int:
        """Number of levels including the null level 0."""
        return len(self.level_labels) + 1

    def to_dict(self) -> dict[str, Any]:
        if self.kind == "joint":
            joint: dict[str, Any] = {
                "name": self.name,
                "kind": "joint",
                "parts": [p.to_dict() for p in self.parts],
            }
            if self.swap:
                joint["swap"] = True
            return joint
        out: dict[str, Any] = {"name": self.name, "kind": self.kind, "fields": list(self.fields)}
        if self.thresholds:
            out["thresholds"] = list(self.thresholds)
        if self.tf_adjust:
            out["tf_adjust"] = True
        if self.initial:
            out["initial"] = True
        if self.unless:
            out["unless"] = list(self.unless)
        return out


def joint_part_labels(part: ComparisonSpec) -> tuple[str, ...]:
    """A part's labels in the order a joint comparison combines them: its levels, then null."""
    return (*part.level_labels, "null")


def joint_part_levels(part: ComparisonSpec) -> tuple[int, ...]:
    """A part's level numbers in the same order as ``joint_part_labels``."""
    return (*range(1, part.n_levels), 0)


@dataclass(frozen=True)
class BlockingRuleSpec:
    """A blocking rule: records sharing the key ``<name>:<part>|<part>...`` are compared.

    Each part is ``field`` or ``field:transform`` (``soundex``, ``metaphone``, ``nysiis``,
    ``initial``, ``prefixN``, ``year``, ``digits``, ``first_token``). A list field yields one
    key per element. A record with any part missing gets no key from the rule.
    """

    name: str
    parts: tuple[str, ...]

    @property
    def fields(self) -> tuple[str, ...]:
        return tuple(part.split(":", 1)[0] for part in self.parts)

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "parts": list(self.parts)}


@dataclass(frozen=True)
class HardConflictSpec:
    """Two different non-null values of ``field`` forbid an automatic merge.

    With ``tolerance="typo"`` values one edit apart (or with day and month swapped, for dates)
    are not a conflict: a keying error is not a different person.
    """

    field: str
    tolerance: Tolerance = "none"

    def to_dict(self) -> dict[str, Any]:
        return {"field": self.field, "tolerance": self.tolerance}


@dataclass(frozen=True)
class MatchSpec:
    """Everything that defines how records are matched, except trained parameters."""

    comparisons: tuple[ComparisonSpec, ...]
    blocking: tuple[BlockingRuleSpec, ...]
    match_probability: float = 0.95
    """At or above: decision ``match`` (automatic merge), unless there is a hard conflict."""
    review_probability: float = 0.5
    """At or above (and below ``match_probability``): decision ``review``."""
    hard_conflicts: tuple[HardConflictSpec, ...] = ()
    prior: float | None = None
    """Probability that two random records match; None: estimate it by EM."""
    max_block_size: int = 200
    """Batch mode: a blocking key shared by more records than this is skipped."""
    max_candidates_per_key: int = 200
    """Incremental mode: at most this many records are taken from one key's block."""
    tf_adjustment_cap: float = 6.0
    """Largest absolute term-frequency adjustment in bits."""
    name: str = "custom"

    def __post_init__(self) -> None:
        _validate(self, None)

    @property
    def fields(self) -> tuple[str, ...]:
        """Feature fields read by comparisons, blocking or hard conflicts, in first-use order."""
        seen: dict[str, None] = {}
        for comparison in self.comparisons:
            seen.update(dict.fromkeys(comparison.fields))
        for rule in self.blocking:
            seen.update(dict.fromkeys(rule.fields))
        for conflict in self.hard_conflicts:
            seen[conflict.field] = None
        return tuple(seen)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict that ``MatchSpec.from_dict`` reads back to an equal spec."""
        return {
            "name": self.name,
            "comparisons": [c.to_dict() for c in self.comparisons],
            "blocking": [b.to_dict() for b in self.blocking],
            "thresholds": {"match": self.match_probability, "review": self.review_probability},
            "hard_conflicts": [h.to_dict() for h in self.hard_conflicts],
            "prior": self.prior,
            "max_block_size": self.max_block_size,
            "max_candidates_per_key": self.max_candidates_per_key,
            "tf_adjustment_cap": self.tf_adjustment_cap,
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=False)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, source: str | None = None) -> MatchSpec:
        """Build a spec from parsed JSON/YAML; raises ``SpecError`` naming the bad key."""
        return _parse_spec(data, source)


def load_spec(path: str | Path) -> MatchSpec:
    """Read a spec from a ``.json``, ``.yaml`` or ``.yml`` file."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise SpecError("(file)", f"a readable file ({exc.strerror})", source=str(path)) from exc
    return parse_spec_text(
        text, fmt="yaml" if path.suffix in (".yaml", ".yml") else "json", source=str(path)
    )


def parse_spec_text(
    text: str, *, fmt: Literal["json", "yaml"], source: str | None = None
) -> MatchSpec:
    """Parse spec text in JSON or YAML."""
    try:
        if fmt == "yaml":
            import yaml

            data = yaml.safe_load(text)
        else:
            data = json.loads(text)
    except ValueError as exc:  # json.JSONDecodeError and yaml.YAMLError's subclasses
        raise SpecError("(document)", f"valid {fmt.upper()} ({exc})", source=source) from exc
    except Exception as exc:  # yaml.YAMLError does not derive from ValueError
        raise SpecError("(document)", f"valid {fmt.upper()} ({exc})", source=source) from exc
    if not isinstance(data, Mapping):
        raise SpecError("(document)", "a mapping at the top level", source=source)
    return MatchSpec.from_dict(data, source=source)


# --- parsing and validation -------------------------------------------------------------------


def _parse_spec(data: Mapping[str, Any], source: str | None) -> MatchSpec:
    def err(path: str, expected: str) -> SpecError:
        return SpecError(path, expected, source=source)

    known = {
        "name",
        "comparisons",
        "blocking",
        "thresholds",
        "hard_conflicts",
        "prior",
        "max_block_size",
        "max_candidates_per_key",
        "tf_adjustment_cap",
    }
    for key in data:
        if key not in known:
            raise err(str(key), f"one of {sorted(known)}")
    comparisons_raw = data.get("comparisons")
    if not isinstance(comparisons_raw, list) or not comparisons_raw:
        raise err("comparisons", "a non-empty list of comparisons")
    comparisons = tuple(
        _parse_comparison(item, f"comparisons[{i}]", err) for i, item in enumerate(comparisons_raw)
    )
    blocking_raw = data.get("blocking")
    if not isinstance(blocking_raw, list) or not blocking_raw:
        raise err("blocking", "a non-empty list of blocking rules")
    blocking = tuple(
        _parse_blocking(item, f"blocking[{i}]", err) for i, item in enumerate(blocking_raw)
    )
    thresholds = data.get("thresholds", {})
    if not isinstance(thresholds, Mapping) or set(thresholds) - {"match", "review"}:
        raise err("thresholds", "a mapping with keys 'match' and/or 'review'")
    conflicts_raw = data.get("hard_conflicts", [])
    if not isinstance(conflicts_raw, list):
        raise err("hard_conflicts", "a list")
    conflicts = tuple(
        _parse_conflict(item, f"hard_conflicts[{i}]", err) for i, item in enumerate(conflicts_raw)
    )
    prior = data.get("prior")
    kwargs: dict[str, Any] = {
        "comparisons": comparisons,
        "blocking": blocking,
        "hard_conflicts": conflicts,
        "match_probability": _number(thresholds.get("match", 0.95), "thresholds.match", err),
        "review_probability": _number(thresholds.get("review", 0.5), "thresholds.review", err),
        "prior": None if prior is None else _number(prior, "prior", err),
        "name": str(data.get("name", "custom")),
    }
    for key in ("max_block_size", "max_candidates_per_key"):
        if key in data:
            value = data[key]
            if not isinstance(value, int) or isinstance(value, bool) or value < 2:
                raise err(key, "an integer >= 2")
            kwargs[key] = value
    if "tf_adjustment_cap" in data:
        kwargs["tf_adjustment_cap"] = _number(data["tf_adjustment_cap"], "tf_adjustment_cap", err)
    try:
        return MatchSpec(**kwargs)
    except SpecError as exc:
        raise SpecError(exc.path, exc.expected, source=source) from None


def _number(value: Any, path: str, err: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise err(path, f"a number, got {value!r}")
    return float(value)


def _str_list(value: Any, path: str, err: Any) -> tuple[str, ...]:
    if isinstance(value, str):
        return (value,)
    if not isinstance(value, list) or not value or not all(isinstance(v, str) for v in value):
        raise err(path, "a non-empty list of strings")
    return tuple(value)


def _parse_comparison(item: Any, path: str, err: Any) -> ComparisonSpec:
    if not isinstance(item, Mapping):
        raise err(path, "a mapping with name, kind and fields")
    allowed = {
        "name",
        "kind",
        "fields",
        "field",
        "thresholds",
        "tf_adjust",
        "initial",
        "parts",
        "unless",
        "swap",
    }
    for key in item:
        if key not in allowed:
            raise err(f"{path}.{key}", f"one of {sorted(allowed)}")
    kind = item.get("kind")
    if kind not in COMPARISON_KINDS:
        raise err(f"{path}.kind", f"one of {list(COMPARISON_KINDS)}, got {kind!r}")
    if kind == "joint":
        parts_raw = item.get("parts")
        if not isinstance(parts_raw, list) or len(parts_raw) < 2:
            raise err(f"{path}.parts", "a list of at least two comparisons")
        if set(item) - {"name", "kind", "parts", "swap"}:
            raise err(path, "only 'name', 'kind', 'parts' and 'swap' for kind 'joint'")
        parts = tuple(
            _parse_comparison(p, f"{path}.parts[{i}]", err) for i, p in enumerate(parts_raw)
        )
        joint_name = item.get("name", "_".join(p.name for p in parts))
        if not isinstance(joint_name, str):
            raise err(f"{path}.name", "a string")
        swap = item.get("swap", False)
        if not isinstance(swap, bool):
            raise err(f"{path}.swap", "true or false")
        return joint_comparison(joint_name, parts, swap=swap)
    if "swap" in item:
        raise err(f"{path}.swap", "only for kind 'joint'")
    fields_raw = item.get("fields", item.get("field"))
    fields = _str_list(fields_raw, f"{path}.fields", err)
    thresholds_raw = item.get("thresholds", [])
    if not isinstance(thresholds_raw, list):
        raise err(f"{path}.thresholds", "a list of numbers")
    thresholds = tuple(
        _number(t, f"{path}.thresholds[{i}]", err) for i, t in enumerate(thresholds_raw)
    )
    for flag in ("tf_adjust", "initial"):
        if flag in item and not isinstance(item[flag], bool):
            raise err(f"{path}.{flag}", "true or false")
    name = item.get("name", fields[0])
    if not isinstance(name, str):
        raise err(f"{path}.name", "a string")
    unless = _str_list(item["unless"], f"{path}.unless", err) if "unless" in item else ()
    return ComparisonSpec(
        name=name,
        kind=cast(ComparisonKind, kind),
        fields=fields,
        thresholds=thresholds,
        tf_adjust=bool(item.get("tf_adjust", False)),
        initial=bool(item.get("initial", False)),
        unless=unless,
    )


def _parse_blocking(item: Any, path: str, err: Any) -> BlockingRuleSpec:
    if not isinstance(item, Mapping) or set(item) - {"name", "parts"}:
        raise err(path, "a mapping with 'name' and 'parts'")
    name = item.get("name")
    if not isinstance(name, str):
        raise err(f"{path}.name", "a string")
    return BlockingRuleSpec(name=name, parts=_str_list(item.get("parts"), f"{path}.parts", err))


def _parse_conflict(item: Any, path: str, err: Any) -> HardConflictSpec:
    if isinstance(item, str):
        return HardConflictSpec(field=item)
    if not isinstance(item, Mapping) or set(item) - {"field", "tolerance"}:
        raise err(path, "a field name or a mapping with 'field' and 'tolerance'")
    tolerance = item.get("tolerance", "none")
    if tolerance not in get_args(Tolerance):
        raise err(f"{path}.tolerance", f"one of {list(get_args(Tolerance))}")
    fld = item.get("field")
    if not isinstance(fld, str):
        raise err(f"{path}.field", "a string")
    return HardConflictSpec(field=fld, tolerance=cast(Tolerance, tolerance))


_MAX_JOINT_LEVELS = 120


def joint_comparison(
    name: str, parts: Sequence[ComparisonSpec], *, swap: bool = False
) -> ComparisonSpec:
    """A ``joint`` comparison over ``parts`` (its fields are theirs, in order)."""
    fields = tuple(dict.fromkeys(f for p in parts for f in p.fields))
    return ComparisonSpec(name=name, kind="joint", fields=fields, parts=tuple(parts), swap=swap)


def _validate_joint(comp: ComparisonSpec, path: str, err: Any) -> None:
    if len(comp.parts) < 2:
        raise err(f"{path}.parts", "at least two comparisons")
    for i, part in enumerate(comp.parts):
        if part.kind == "joint":
            raise err(f"{path}.parts[{i}].kind", "a non-joint comparison")
        if part.tf_adjust:
            raise err(f"{path}.parts[{i}].tf_adjust", "false inside a joint comparison")
        _validate_comparison(part, f"{path}.parts[{i}]", err)
    if comp.swap and (
        len(comp.parts) != 2
        or any(
            p.kind not in SIMILARITY_KINDS and p.kind not in DISTANCE_KINDS and p.kind != "exact"
            for p in comp.parts
        )
    ):
        raise err(f"{path}.swap", "a joint comparison of exactly two text comparisons")
    if comp.n_levels - 1 > _MAX_JOINT_LEVELS:
        raise err(f"{path}.parts", f"at most {_MAX_JOINT_LEVELS} level combinations")
    expected = tuple(dict.fromkeys(f for p in comp.parts for f in p.fields))
    if comp.fields != expected:
        raise err(f"{path}.fields", f"the parts' fields {list(expected)}")


def _validate_comparison(comp: ComparisonSpec, path: str, err: Any) -> None:
    if comp.kind not in COMPARISON_KINDS:
        raise err(f"{path}.kind", f"one of {list(COMPARISON_KINDS)}, got {comp.kind!r}")
    if not comp.fields:
        raise err(f"{path}.fields", "at least one feature field")
    if comp.kind == "joint":
        _validate_joint(comp, path, err)
        return
    for fld in comp.fields:
        if fld not in FEATURE_KEYS:
            raise err(f"{path}.fields", f"feature keys from {list(FEATURE_KEYS)}, got {fld!r}")
    is_list = [f in LIST_FEATURES for f in comp.fields]
    if comp.kind == "overlap" and not all(is_list):
        raise err(f"{path}.fields", f"list features ({sorted(LIST_FEATURES)}) for overlap")
    if comp.kind != "overlap" and any(is_list):
        raise err(f"{path}.kind", "'overlap' for list features")
    ts = comp.thresholds
    if comp.kind == "exact" and ts:
        raise err(f"{path}.thresholds", "no thresholds for kind 'exact'")
    if comp.kind in SIMILARITY_KINDS or comp.kind == "overlap":
        if any(not 0.0 < t <= 1.0 for t in ts) or list(ts) != sorted(set(ts), reverse=True):
            raise err(f"{path}.thresholds", "similarities in (0, 1], strictly descending")
    elif (comp.kind in DISTANCE_KINDS or comp.kind in ("numeric", "date")) and (
        any(t <= 0 for t in ts) or list(ts) != sorted(set(ts))
    ):
        raise err(f"{path}.thresholds", "positive distances, strictly ascending")
    if comp.kind in DISTANCE_KINDS and any(t != int(t) for t in ts):
        raise err(f"{path}.thresholds", "whole edit distances")
    if comp.initial and comp.kind not in SIMILARITY_KINDS | DISTANCE_KINDS:
        raise err(f"{path}.initial", "only on string comparisons")
    if comp.tf_adjust and comp.kind in ("overlap", "numeric", "date", "joint"):
        raise err(f"{path}.tf_adjust", "only on exact and string comparisons")
    if comp.parts:
        raise err(f"{path}.parts", "parts only for kind 'joint'")
    for fld in comp.unless:
        if fld not in FEATURE_KEYS:
            raise err(f"{path}.unless", f"feature keys, got {fld!r}")


def _validate(spec: MatchSpec, source: str | None) -> None:
    def err(path: str, expected: str) -> SpecError:
        return SpecError(path, expected, source=source)

    if not spec.comparisons:
        raise err("comparisons", "at least one comparison")
    if not spec.blocking:
        raise err("blocking", "at least one blocking rule")
    names: set[str] = set()
    for i, comp in enumerate(spec.comparisons):
        path = f"comparisons[{i}]"
        if comp.name in names:
            raise err(f"{path}.name", f"a unique name, {comp.name!r} is used twice")
        names.add(comp.name)
        _validate_comparison(comp, path, err)
    prefixes: set[str] = set()
    for i, rule in enumerate(spec.blocking):
        path = f"blocking[{i}]"
        if not _NAME.match(rule.name):
            raise err(f"{path}.name", "a short lower-case key prefix like 'em' or 'np'")
        if rule.name in prefixes:
            raise err(f"{path}.name", f"a unique prefix, {rule.name!r} is used twice")
        prefixes.add(rule.name)
        if not rule.parts:
            raise err(f"{path}.parts", "at least one part")
        for j, part in enumerate(rule.parts):
            fld, _, transform = part.partition(":")
            if fld not in FEATURE_KEYS:
                raise err(f"{path}.parts[{j}]", f"a feature key, got {fld!r}")
            if (
                transform
                and transform not in BLOCKING_TRANSFORMS
                and not _PREFIX_TRANSFORM.match(transform)
            ):
                raise err(
                    f"{path}.parts[{j}]",
                    f"a transform from {[*BLOCKING_TRANSFORMS, 'prefixN']}, got {transform!r}",
                )
    for i, conflict in enumerate(spec.hard_conflicts):
        if conflict.field not in FEATURE_KEYS or conflict.field in LIST_FEATURES:
            raise err(
                f"hard_conflicts[{i}].field", f"a single-valued feature key, got {conflict.field!r}"
            )
        if conflict.tolerance not in get_args(Tolerance):
            raise err(f"hard_conflicts[{i}].tolerance", f"one of {list(get_args(Tolerance))}")
    if not 0.0 < spec.review_probability <= spec.match_probability < 1.0:
        raise err("thresholds", "0 < review <= match < 1")
    if spec.prior is not None and not 0.0 < spec.prior < 1.0:
        raise err("prior", "a probability strictly between 0 and 1, or null to estimate it")
    if spec.tf_adjustment_cap < 0:
        raise err("tf_adjustment_cap", "a non-negative number of bits")
    if spec.max_block_size < 2 or spec.max_candidates_per_key < 2:
        raise err("max_block_size", "block limits >= 2")


# --- shipped specs ----------------------------------------------------------------------------


def _cmp(
    name: str,
    kind: ComparisonKind,
    fields: str | Sequence[str],
    thresholds: Sequence[float] = (),
    *,
    tf: bool = False,
    initial: bool = False,
    unless: tuple[str, ...] = (),
) -> ComparisonSpec:
    fields_t = (fields,) if isinstance(fields, str) else tuple(fields)
    return ComparisonSpec(
        name, kind, fields_t, tuple(float(t) for t in thresholds), tf, initial, unless=unless
    )


def _rule(name: str, *parts: str) -> BlockingRuleSpec:
    return BlockingRuleSpec(name, parts)


_PERSON_NAME_RULES = (
    _rule("fg", "family_name:metaphone", "given_name:metaphone"),
    _rule("fp", "family_name:nysiis", "postcode"),
    _rule("gp", "given_name:nysiis", "postcode"),
    _rule("db", "dob", "family_name:initial"),
    _rule("dg", "dob", "given_name:initial"),
)


def default_spec() -> MatchSpec:
    """A spec for customer master data mixing organisations and persons.

    Correlated evidence is compared jointly so it is not counted twice: surname with the
    street address (a household shares both), e-mail addresses with their local parts.
    A person's full name is left to its parts; an organisation's core name is compared.
    """
    return MatchSpec(
        name="customers",
        comparisons=(
            _cmp("kind", "exact", "kind"),
            _cmp(
                "name",
                "token_set",
                "name",
                (0.9, 0.75),
                tf=True,
                unless=("given_name", "family_name"),
            ),
            _cmp(
                "given_name",
                "jaro_winkler",
                ("given_name", "given_name_raw"),
                (0.92, 0.8),
                tf=True,
                initial=True,
            ),
            _cmp("middle_initial", "exact", "middle_initial"),
            joint_comparison(
                "family_address",
                (
                    _cmp("family_name", "jaro_winkler", "family_name", (0.92,)),
                    _cmp("house_number", "exact", "house_number"),
                    _cmp("street", "token_set", "street", (0.8,)),
                ),
            ),
            _cmp("dob", "date", "dob", (365,)),
            joint_comparison(
                "email",
                (
                    _cmp("emails", "overlap", "emails"),
                    _cmp("email_locals", "overlap", "email_locals", (0.9,)),
                ),
            ),
            _cmp("phones", "overlap", "phones"),
            _cmp("tax_id", "damerau", "tax_id", (1,)),
            _cmp("national_id", "damerau", "national_id", (1,)),
            _cmp("domain", "exact", "domain", tf=True),
            _cmp("postcode", "levenshtein", "postcode", (1,), tf=True),
            _cmp("city", "jaro_winkler", "city", (0.9,), tf=True),
            _cmp("country", "exact", "country"),
        ),
        blocking=(
            _rule("em", "emails"),
            _rule("ph", "phones"),
            _rule("tx", "tax_id"),
            _rule("ni", "national_id"),
            _rule("dm", "domain"),
            _rule("nm", "name:metaphone", "country"),
            _rule("nc", "name:first_token", "postcode"),
            *_PERSON_NAME_RULES,
            _rule("ad", "postcode", "house_number"),
            _rule("sh", "street:metaphone", "house_number"),
        ),
        hard_conflicts=(
            HardConflictSpec("tax_id"),
            HardConflictSpec("national_id"),
            HardConflictSpec("dob"),
        ),
        match_probability=0.95,
        review_probability=0.5,
    )


def febrl_spec() -> MatchSpec:
    """FEBRL (synthetic Australian persons): names, address, date of birth, social security id.

    FEBRL duplicates carry several keying errors in every field, identifiers included, so a
    different social security number or birth date is no proof of a different person here:
    the spec declares no hard conflicts.
    """
    return MatchSpec(
        name="febrl",
        comparisons=(
            _cmp(
                "given_name", "jaro_winkler", ("given_name", "given_name_raw"), (0.92, 0.8), tf=True
            ),
            _cmp("family_name", "jaro_winkler", "family_name", (0.92, 0.8), tf=True),
            _cmp("dob", "date", "dob", (365,)),
            _cmp("national_id", "damerau", "national_id", (1, 2)),
            _cmp("street", "token_set", "street", (0.9, 0.7)),
            _cmp("house_number", "levenshtein", "house_number", (1,)),
            _cmp("postcode", "levenshtein", "postcode", (1,), tf=True),
            _cmp("city", "jaro_winkler", "city", (0.9,), tf=True),
            _cmp("region", "exact", "region"),
        ),
        blocking=(
            _rule("ni", "national_id"),
            _rule("dd", "dob", "postcode:prefix1"),
            *_PERSON_NAME_RULES,
            _rule("ad", "postcode", "house_number"),
            _rule("sc", "street:metaphone", "city:prefix3"),
        ),
        match_probability=0.9,
        review_probability=0.5,
    )


def census_spec() -> MatchSpec:
    """pseudopeople census x W-2 (synthetic US persons): names, middle initial, address, ssn.

    Surname and address are one joint comparison: members of a household share both, so
    counting them as independent evidence would merge a household into one person, and a
    person who moved keeps the surname without the address.
    """
    return MatchSpec(
        name="census",
        comparisons=(
            _cmp(
                "given_name",
                "jaro_winkler",
                ("given_name", "given_name_raw"),
                (0.92, 0.8),
                tf=True,
                initial=True,
            ),
            _cmp("middle_initial", "exact", "middle_initial"),
            joint_comparison(
                "family_address",
                (
                    _cmp("family_name", "jaro_winkler", "family_name", (0.92,)),
                    _cmp("house_number", "exact", "house_number"),
                    _cmp("street", "token_set", "street", (0.8,)),
                ),
            ),
            _cmp("dob", "date", "dob", (365,)),
            _cmp("national_id", "damerau", "national_id", (1, 2)),
            _cmp("postcode", "levenshtein", "postcode", (1,), tf=True),
            _cmp("city", "jaro_winkler", "city", (0.9,), tf=True),
        ),
        blocking=(
            _rule("ni", "national_id"),
            *_PERSON_NAME_RULES,
            _rule("ad", "postcode", "house_number"),
            _rule("sh", "street:metaphone", "house_number"),
            _rule("gf", "given_name:metaphone", "family_name:prefix2"),
            # The sample data has one town and no usable zip code: city stands in for it.
            _rule("fc", "family_name:nysiis", "city"),
            _rule("gc", "given_name:nysiis", "city"),
            _rule("fh", "family_name:nysiis", "house_number"),
        ),
        hard_conflicts=(
            HardConflictSpec("national_id", "typo"),
            HardConflictSpec("dob", "typo"),
        ),
        # "More likely than not" merges: the ssn hard conflict keeps two W-2 holders apart.
        match_probability=0.5,
        review_probability=0.2,
        # One town of ~10,000 people: name blocks are large and still worth comparing.
        max_block_size=500,
    )


SHIPPED_SPECS = {"customers": default_spec, "febrl": febrl_spec, "census": census_spec}


def shipped_spec(name: str) -> MatchSpec:
    """A spec shipped with mdh by name: ``customers``, ``febrl`` or ``census``."""
    try:
        return SHIPPED_SPECS[name]()
    except KeyError:
        raise SpecError("name", f"one of {sorted(SHIPPED_SPECS)}, got {name!r}") from None
