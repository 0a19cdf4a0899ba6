"""The matcher interface the hub calls on every change; `matching.MatchModel` fulfils it.

The hub never decides sameness itself. For each changed source record it asks the matcher for
standardized features and blocking keys (kept in the ``blocking_keys`` table for incremental
candidate look-ups), then scores the record against the candidates that share a key.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal, Protocol, runtime_checkable

Decision = Literal["match", "review", "no_match"]


class MatchScore(Protocol):
    """A scored pair, as the matcher returns it."""

    @property
    def probability(self) -> float: ...

    @property
    def weight(self) -> float: ...

    @property
    def decision(self) -> Decision: ...

    @property
    def hard_conflict(self) -> bool:
        """True when the pair must never merge automatically (two tax ids, two birth dates)."""
        ...

    def explain(self) -> dict[str, Any]:
        """The JSON explanation: per-comparison level and weight, prior, total, threshold."""
        ...


class Matcher(Protocol):
    """What the hub needs from a matching engine."""

    @property
    def version(self) -> str:
        """Identifies the spec and trained parameters; recorded with every automatic link."""
        ...

    def standardize(self, attributes: Mapping[str, Any]) -> dict[str, Any]:
        """Canonical attributes (``CanonicalParty.to_attributes()``) to match features."""
        ...

    def blocking_keys(self, features: Mapping[str, Any]) -> list[str]:
        """Blocking keys of one record; two records are compared only when they share one."""
        ...

    def score(self, left: Mapping[str, Any], right: Mapping[str, Any]) -> MatchScore:
        """Score two feature records. Symmetric."""
        ...


@runtime_checkable
class PreparingMatcher(Matcher, Protocol):
    """A matcher that can prepare a record's features once and score prepared records.

    The hub uses it when a matcher offers it: one record is compared with many candidates,
    and one candidate with many records of a batch, so each is prepared only once.
    ``score_prepared(prepare(a), prepare(b))`` must equal ``score(a, b)``.
    """

    def prepare(self, features: Mapping[str, Any]) -> Any:
        """What scoring needs of one record's features, computed once."""
        ...

    def score_prepared(self, left: Any, right: Any) -> MatchScore:
        """``score`` of two prepared records."""
        ...
