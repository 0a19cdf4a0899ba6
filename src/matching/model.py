"""The trained match model: spec + m/u parameters + prior + term-frequency tables.

``MatchModel`` is what the hub calls (it fulfils ``hub.matcher.Matcher`` structurally):
standardize attributes, compute blocking keys, score a pair. It is immutable; training and
refinement return new models. ``version`` is a hash of everything that changes a score, so a
link records exactly which model decided it.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from matching.blocking import Blocker
from matching.comparison import (
    Comparison,
    build_comparison,
    parse_date,
    text_value,
    values_conflict,
)
from matching.errors import ModelFormatError, SpecError
from matching.scoring import ScoredPair, decide, probability_from_weight, weight_from_probability
from matching.spec import ComparisonSpec, MatchSpec

FORMAT = "mdh-match-model"
FORMAT_VERSION = 1

# One record ready for scoring: per-comparison prepared values, per-comparison term-frequency
# adjustments of its exact level, and its hard-conflict values.
PreparedRecord = tuple[tuple[Any, ...], tuple[float, ...], tuple[Any, ...]]


@dataclass(frozen=True)
class ComparisonParameters:
    """m and u probabilities of one comparison's non-null levels (index ``level - 1``)."""

    m: tuple[float, ...]
    u: tuple[float, ...]

    def to_dict(self) -> dict[str, list[float]]:
        return {"m": list(self.m), "u": list(self.u)}


@dataclass(frozen=True)
class TfTable:
    """Value counts of one comparison's field in the training data (counts of 1 left out)."""

    total: int
    counts: Mapping[str, int]

    def frequency(self, value: str) -> float:
        return max(self.counts.get(value, 1), 1) / max(self.total, 1)


def default_parameters(spec: ComparisonSpec) -> ComparisonParameters:
    """Untrained starting values: agreement likely for matches, rare for non-matches."""
    n = spec.n_levels - 1
    m_raw = [0.9] + [0.1 * 0.5**k for k in range(n - 1)]
    u_raw = [0.01 * 0.5**k for k in range(n - 1)] + [0.0]
    u_raw[-1] = 1.0 - sum(u_raw[:-1])
    m_sum = sum(m_raw)
    return ComparisonParameters(tuple(x / m_sum for x in m_raw), tuple(u_raw))


@dataclass(frozen=True)
class MatchModel:
    """A Fellegi-Sunter model over a ``MatchSpec``."""

    spec: MatchSpec
    parameters: tuple[ComparisonParameters, ...]
    prior: float
    tf_tables: Mapping[str, TfTable] = field(default_factory=dict)
    training: Mapping[str, Any] = field(default_factory=dict, compare=False)
    # Caches for the scoring hot path, derived in __post_init__.
    _comparisons: list[Comparison] = field(init=False, repr=False, compare=False)
    _levels: list[Any] = field(init=False, repr=False, compare=False)
    _weights: list[list[float]] = field(init=False, repr=False, compare=False)
    _tf: list[TfTable | None] = field(init=False, repr=False, compare=False)
    _prior_weight: float = field(init=False, repr=False, compare=False)
    _blocker: Blocker = field(init=False, repr=False, compare=False)
    _conflicts: list[tuple[str, bool, str]] = field(init=False, repr=False, compare=False)
    _version: str = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if len(self.parameters) != len(self.spec.comparisons):
            raise SpecError("parameters", "one parameter set per comparison")
        for comp, params in zip(self.spec.comparisons, self.parameters, strict=True):
            n = comp.n_levels - 1
            if len(params.m) != n or len(params.u) != n:
                raise SpecError(f"parameters.{comp.name}", f"{n} m and u values")
            if any(not 0.0 < p <= 1.0 for p in (*params.m, *params.u)):
                raise SpecError(f"parameters.{comp.name}", "probabilities in (0, 1]")
        if not 0.0 < self.prior < 1.0:
            raise SpecError("prior", "a probability strictly between 0 and 1")
        comparisons = [build_comparison(c) for c in self.spec.comparisons]
        weights = [
            [0.0, *(math.log2(m / u) for m, u in zip(p.m, p.u, strict=True))]
            for p in self.parameters
        ]
        setattr_ = object.__setattr__
        setattr_(self, "_comparisons", comparisons)
        setattr_(self, "_levels", [c.level for c in comparisons])
        setattr_(self, "_weights", weights)
        setattr_(
            self,
            "_tf",
            [self.tf_tables.get(c.name) if c.tf_adjust else None for c in self.spec.comparisons],
        )
        setattr_(self, "_prior_weight", weight_from_probability(self.prior))
        setattr_(self, "_blocker", Blocker(self.spec.blocking))
        setattr_(
            self,
            "_conflicts",
            [(h.field, h.field == "dob", h.tolerance) for h in self.spec.hard_conflicts],
        )
        setattr_(self, "_version", self._compute_version())

    # --- construction ---------------------------------------------------------------------

    @classmethod
    def untrained(cls, spec: MatchSpec) -> MatchModel:
        """A usable model before training: default m/u and the spec's prior (or 1e-4)."""
        params = tuple(default_parameters(c) for c in spec.comparisons)
        return cls(spec=spec, parameters=params, prior=spec.prior or 1e-4)

    # --- the Matcher interface ---------------------------------------------------------------

    @property
    def version(self) -> str:
        """``<spec name>-<hash>``: changes whenever anything that changes a score changes."""
        return str(self._version)

    def standardize(self, attributes: Mapping[str, Any]) -> dict[str, Any]:
        """Canonical attributes to match features (``matching.features.standardize_record``)."""
        # Imported on first use: the standardizers load phone metadata and name tables.
        from matching.features import standardize_record

        return dict(standardize_record(attributes))

    def blocking_keys(self, features: Mapping[str, Any]) -> list[str]:
        """Blocking keys of one record, e.g. ``["em:jane@example.com", "fp:SMAT|2119"]``."""
        blocker: Blocker = self._blocker
        return blocker.keys(features)

    def score(self, left: Mapping[str, Any], right: Mapping[str, Any]) -> ScoredPair:
        """Score two feature records; symmetric in its arguments."""
        return self.score_prepared(self.prepare(left), self.prepare(right))

    # --- fast path -----------------------------------------------------------------------------

    @property
    def prior_weight(self) -> float:
        return float(self._prior_weight)

    @property
    def comparisons(self) -> list[Comparison]:
        return list(self._comparisons)

    def level_weight(self, comparison: int, level: int) -> float:
        """log2(m/u) of one level (0 for the null level)."""
        weights: list[list[float]] = self._weights
        return weights[comparison][level]

    def tf_adjustment(self, comparison: int, value: str | None) -> float:
        """Term-frequency adjustment of an exact agreement on ``value``, in bits (capped)."""
        table: TfTable | None = self._tf[comparison]
        if table is None or value is None:
            return 0.0
        u_exact = self.parameters[comparison].u[0]
        raw = math.log2(u_exact / table.frequency(value))
        cap = self.spec.tf_adjustment_cap
        return max(-cap, min(cap, raw))

    def prepare(self, features: Mapping[str, Any]) -> PreparedRecord:
        """Precompute everything scoring needs from one record's features."""
        comparisons: list[Comparison] = self._comparisons
        values = tuple(c.prepare(features) for c in comparisons)
        tfs = tuple(
            self.tf_adjustment(k, c.tf_key(v)) if v is not None else 0.0
            for k, (c, v) in enumerate(zip(comparisons, values, strict=True))
        )
        conflicts = tuple(
            parse_date(features.get(fld)) if is_date else text_value(features.get(fld))
            for fld, is_date, _ in self._conflicts
        )
        return values, tfs, conflicts

    def score_prepared(
        self, left: PreparedRecord, right: PreparedRecord, candidate_id: Any = None
    ) -> ScoredPair:
        """Score two prepared records (see ``prepare``)."""
        lv, lt, lc = left
        rv, rt, rc = right
        level_fns = self._levels
        weights = self._weights
        total: float = self._prior_weight
        levels: list[int] = []
        contributions: list[float] = []
        tf_adjustments: list[float] = []
        for k in range(len(lv)):
            a = lv[k]
            b = rv[k]
            if a is None or b is None:
                levels.append(0)
                contributions.append(0.0)
                tf_adjustments.append(0.0)
                continue
            level = level_fns[k](a, b)
            tf = 0.0
            if level == 1:
                ta = lt[k]
                tb = rt[k]
                tf = ta if ta <= tb else tb
            contribution = weights[k][level] + tf
            total += contribution
            levels.append(level)
            contributions.append(contribution)
            tf_adjustments.append(tf)
        conflicts: tuple[str, ...] = ()
        for k, (fld, is_date, tolerance) in enumerate(self._conflicts):
            a = lc[k]
            b = rc[k]
            if (
                a is not None
                and b is not None
                and values_conflict(a, b, is_date=is_date, tolerance=tolerance)
            ):
                conflicts = (*conflicts, fld)
        probability = probability_from_weight(total)
        spec = self.spec
        return ScoredPair(
            probability=probability,
            weight=total,
            decision=decide(
                probability, bool(conflicts), spec.match_probability, spec.review_probability
            ),
            hard_conflict=bool(conflicts),
            levels=tuple(levels),
            contributions=tuple(contributions),
            tf_adjustments=tuple(tf_adjustments),
            conflicts=conflicts,
            model=self,
            candidate_id=candidate_id,
        )

    @property
    def review_weight(self) -> float:
        """The total weight at which the review threshold is reached."""
        return weight_from_probability(self.spec.review_probability)

    def weight_prepared(self, left: PreparedRecord, right: PreparedRecord) -> float:
        """Only the total weight of ``score_prepared`` (the same number, computed faster)."""
        lv, lt, _ = left
        rv, rt, _ = right
        level_fns = self._levels
        weights = self._weights
        total = self._prior_weight
        for k in range(len(lv)):
            a = lv[k]
            b = rv[k]
            if a is None or b is None:
                continue
            level = level_fns[k](a, b)
            if level == 1:
                ta = lt[k]
                tb = rt[k]
                total += weights[k][1] + (ta if ta <= tb else tb)
            else:
                total += weights[k][level] + 0.0
        return total

    # --- persistence ---------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """The JSON form written by ``save``."""
        return {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "version": self.version,
            "spec": self.spec.to_dict(),
            "prior": self.prior,
            "parameters": {
                c.name: p.to_dict()
                for c, p in zip(self.spec.comparisons, self.parameters, strict=True)
            },
            "tf_tables": {
                name: {"total": t.total, "counts": dict(sorted(t.counts.items()))}
                for name, t in sorted(self.tf_tables.items())
            },
            "training": dict(self.training),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, source: str = "(model)") -> MatchModel:
        """Read the form written by ``to_dict``; raises ``ModelFormatError`` when it is not."""
        if data.get("format") != FORMAT or data.get("format_version") != FORMAT_VERSION:
            raise ModelFormatError(source, f"not a {FORMAT} v{FORMAT_VERSION} file")
        try:
            spec = MatchSpec.from_dict(data["spec"], source=source)
            raw_params = data["parameters"]
            params = tuple(
                ComparisonParameters(
                    tuple(float(x) for x in raw_params[c.name]["m"]),
                    tuple(float(x) for x in raw_params[c.name]["u"]),
                )
                for c in spec.comparisons
            )
            tables = {
                name: TfTable(int(t["total"]), {str(k): int(v) for k, v in t["counts"].items()})
                for name, t in data.get("tf_tables", {}).items()
            }
            model = cls(spec, params, float(data["prior"]), tables, dict(data.get("training", {})))
        except (KeyError, TypeError, ValueError) as exc:
            raise ModelFormatError(source, f"malformed model ({exc!r})") from exc
        if "version" in data and data["version"] != model.version:
            raise ModelFormatError(source, "version does not match the stored parameters")
        return model

    def save(self, path: str | Path) -> None:
        """Write the model as JSON."""
        Path(path).write_text(json.dumps(self.to_dict(), indent=1), encoding="utf-8")

    @classmethod
    def load(cls, path: str | Path) -> MatchModel:
        """Read a model written by ``save``."""
        path = Path(path)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise ModelFormatError(str(path), f"cannot read JSON ({exc})") from exc
        if not isinstance(data, Mapping):
            raise ModelFormatError(str(path), "expected a JSON object")
        return cls.from_dict(data, source=str(path))

    def with_parameters(
        self,
        parameters: Sequence[ComparisonParameters] | None = None,
        prior: float | None = None,
        training: Mapping[str, Any] | None = None,
    ) -> MatchModel:
        """A copy with some of the trained numbers replaced."""
        return MatchModel(
            self.spec,
            tuple(parameters) if parameters is not None else self.parameters,
            prior if prior is not None else self.prior,
            self.tf_tables,
            dict(training) if training is not None else dict(self.training),
        )

    def _compute_version(self) -> str:
        payload = {
            "spec": self.spec.to_dict(),
            "prior": self.prior,
            "parameters": [p.to_dict() for p in self.parameters],
            "tf": {n: [t.total, sorted(t.counts.items())] for n, t in self.tf_tables.items()},
        }
        digest = hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()
        return f"{self.spec.name}-{digest[:16]}"
