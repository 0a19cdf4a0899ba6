"""Explanations of scored pairs: per-comparison weight contributions that add up to the total."""

from __future__ import annotations

from typing import Any

from matching.scoring import ScoredPair


def explain_pair(pair: ScoredPair) -> dict[str, Any]:
    """The JSON explanation of a scored pair.

    ``prior_weight`` plus every comparison's ``weight``, added in list order, is exactly
    ``total_weight``. A comparison's ``weight`` is its level weight (log2 m/u) plus its
    ``tf_adjustment``; a missing value (level ``null``) weighs 0.
    """
    model = pair.model
    spec = model.spec
    compiled = model.comparisons  # their labels are computed once, not per explanation
    comparisons: list[dict[str, Any]] = []
    for k, comp in enumerate(spec.comparisons):
        level = pair.levels[k]
        params = model.parameters[k]
        entry: dict[str, Any] = {
            "name": comp.name,
            "fields": list(comp.fields),
            "level": level,
            "label": "null" if level == 0 else compiled[k].labels[level - 1],
            "weight": pair.contributions[k],
            "level_weight": 0.0 if level == 0 else model.level_weight(k, level),
            "tf_adjustment": pair.tf_adjustments[k],
        }
        if level > 0:
            entry["m"] = params.m[level - 1]
            entry["u"] = params.u[level - 1]
        comparisons.append(entry)
    if pair.probability >= spec.match_probability:
        crossed: str | None = "match"
    elif pair.probability >= spec.review_probability:
        crossed = "review"
    else:
        crossed = None
    return {
        "model_version": model.version,
        "prior": model.prior,
        "prior_weight": model.prior_weight,
        "comparisons": comparisons,
        "total_weight": pair.weight,
        "probability": pair.probability,
        "decision": pair.decision,
        "thresholds": {"match": spec.match_probability, "review": spec.review_probability},
        "threshold_crossed": crossed,
        "hard_conflict": pair.hard_conflict,
        "conflicts": list(pair.conflicts),
    }


def explain_pair_text(pair: ScoredPair) -> str:
    """A waterfall: the prior, then each comparison's contribution and the running total."""
    data = explain_pair(pair)
    rows: list[tuple[str, str, float, float]] = []
    running = data["prior_weight"]
    rows.append(("prior", "", data["prior_weight"], running))
    for entry in data["comparisons"]:
        running += entry["weight"]
        label = entry["label"]
        if entry["tf_adjustment"]:
            label += f" (tf {entry['tf_adjustment']:+.2f})"
        rows.append((entry["name"], label, entry["weight"], running))
    name_width = max(len(r[0]) for r in rows)
    label_width = max(len(r[1]) for r in rows)
    lines = [f"{'comparison':<{name_width}}  {'level':<{label_width}}  {'weight':>8}  {'total':>8}"]
    for name, label, weight, total in rows:
        lines.append(
            f"{name:<{name_width}}  {label:<{label_width}}  {weight:>+8.2f}  {total:>+8.2f}"
        )
    crossed = data["threshold_crossed"] or "none"
    conflict = f", hard conflict on {', '.join(data['conflicts'])}" if data["hard_conflict"] else ""
    lines.append(
        f"total weight {data['total_weight']:+.2f} -> probability {data['probability']:.4f}"
        f" -> {data['decision']} (threshold crossed: {crossed}{conflict})"
    )
    return "\n".join(lines)
