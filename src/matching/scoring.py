"""Scored pairs: match weight, probability, decision, and the numbers their explanation needs."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from matching.model import MatchModel

Decision = Literal["match", "review", "no_match"]


def probability_from_weight(weight: float) -> float:
    """Match probability for a total match weight in bits (log2 of the odds)."""
    if weight >= 0:
        return 1.0 / (1.0 + 2.0 ** (-weight)) if weight < 1024 else 1.0
    return 2.0**weight / (1.0 + 2.0**weight) if weight > -1024 else 0.0


def weight_from_probability(probability: float) -> float:
    """The inverse of ``probability_from_weight``."""
    return math.log2(probability / (1.0 - probability))


def decide(
    probability: float, hard_conflict: bool, match_probability: float, review_probability: float
) -> Decision:
    """``match`` at or above the match threshold (``review`` with a hard conflict), ``review``
    at or above the review threshold, else ``no_match``."""
    if probability >= match_probability:
        return "review" if hard_conflict else "match"
    if probability >= review_probability:
        return "review"
    return "no_match"


@dataclass(frozen=True, slots=True)
class ScoredPair:
    """The score of one pair of records; ``explain()`` says where every bit of weight came from.

    ``weight`` equals ``prior_weight + contributions[0] + contributions[1] + ...`` summed in
    that order; each contribution is the level's weight plus its term-frequency adjustment.
    """

    probability: float
    weight: float
    decision: Decision
    hard_conflict: bool
    levels: tuple[int, ...]
    contributions: tuple[float, ...]
    tf_adjustments: tuple[float, ...]
    conflicts: tuple[str, ...]
    model: MatchModel = field(repr=False, compare=False)
    candidate_id: Any = None

    def explain(self) -> dict[str, Any]:
        """JSON explanation: per comparison level and weight, prior, total, threshold crossed."""
        from matching.explain import explain_pair

        return explain_pair(self)

    def explain_text(self) -> str:
        """A readable waterfall of the same explanation."""
        from matching.explain import explain_pair_text

        return explain_pair_text(self)
