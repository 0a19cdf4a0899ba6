"""Fellegi-Sunter training without labels: u from random pairs, m and the prior by EM.

1. **u** (chance agreement): the exact level's u comes from the value frequencies (the exact
   probability that two random records share a value); the other levels from a seeded sample
   of random pairs.
2. **m** (agreement among matches): one EM session per blocking rule over the pairs that rule
   produces. The comparisons that read the rule's fields sit the session out (every pair
   agrees on them by construction, so they would teach EM nothing but bias). Within a session
   u is re-estimated too, smoothed towards the random-pair u: the non-matches that share a
   blocking key are not random pairs (neighbours, relatives), and a u that knows it keeps
   them from being taken for matches. Each comparison's m is the per-level median over the
   sessions that estimated it, so one session whose match class latched onto a correlated
   sub-population is outvoted.
3. **prior** (λ, the probability that two random records match): EM over all candidate
   pairs with m and u fixed gives the share of matches among candidates; times the number of
   candidates over the number of all pairs, that is λ (blocking is assumed to keep nearly all
   matches).
4. **tf tables**: value counts for comparisons with term-frequency adjustment.

A large input can be trained on a seeded uniform sample of its records (``train(...,
sample=N)``): steps 1-3 then read the sample, step 4 still counts every record (see
``train``).

``refine_with_labels`` then moves m towards the levels seen in steward-confirmed matches.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from matching.blocking import (
    BlockingRule,
    group_codes_of,
    pairs_from_memberships,
    rule_memberships,
)
from matching.comparison import TextCache
from matching.model import ComparisonParameters, MatchModel, TfTable, default_parameters
from matching.spec import MatchSpec
from matching.table import IntArray, LevelMatrix, RecordTable, gc_paused

FloatArray = npt.NDArray[np.float64]
_MIN_PROBABILITY = 1e-6


@dataclass(frozen=True)
class EMResult:
    """The outcome of one EM run."""

    m: list[FloatArray]  # per comparison, per non-null level
    prior: float
    iterations: int
    converged: bool


def run_em(
    levels: LevelMatrix,
    n_levels: Sequence[int],
    m_start: Sequence[FloatArray],
    u: Sequence[FloatArray],
    prior_start: float,
    *,
    active: Sequence[bool] | None = None,
    estimate_m: bool = True,
    estimate_u: bool = False,
    u_prior_pairs: float = 100.0,
    max_iterations: int = 100,
    tolerance: float = 1e-6,
) -> EMResult:
    """Expectation-maximisation of m (and the match share) with u fixed.

    Args:
        levels: pairs x comparisons level matrix (0 = null).
        n_levels: levels per comparison, null included.
        m_start, u: per comparison, probabilities of the non-null levels.
        prior_start: starting share of matches among the pairs.
        active: comparisons that take part (the others are ignored and returned unchanged).
        estimate_m: False estimates only the match share.
        estimate_u: also estimate u among these pairs (starting from, and smoothed towards,
            the given u by ``u_prior_pairs`` pseudo-pairs).

    Returns:
        The estimated m, match share, iterations run and whether it converged.
    """
    n_comp = len(n_levels)
    active_l = list(active) if active is not None else [True] * n_comp
    idx = [c for c in range(n_comp) if active_l[c]]
    m = [np.asarray(x, dtype=np.float64).copy() for x in m_start]
    u_prior = [np.asarray(x, dtype=np.float64) for x in u]
    u = [x.copy() for x in u_prior]
    if len(levels) == 0 or not idx:
        return EMResult(m, prior_start, 0, True)
    patterns, counts = _compress(levels[:, idx], [n_levels[c] for c in idx])
    counts_f = counts.astype(np.float64)
    total = counts_f.sum()
    prior = float(np.clip(prior_start, 1e-9, 1 - 1e-9))
    iterations = 0
    converged = False
    for iterations in range(1, max_iterations + 1):  # noqa: B007
        log_ratio = np.full(len(patterns), np.log(prior) - np.log1p(-prior))
        for pos, c in enumerate(idx):
            table = np.concatenate(([0.0], np.log(m[c]) - np.log(u[c])))
            log_ratio += table[patterns[:, pos]]
        posterior = 1.0 / (1.0 + np.exp(-np.clip(log_ratio, -700, 700)))
        weighted = posterior * counts_f
        new_prior = float(np.clip(weighted.sum() / total, 1e-9, 1 - 1e-9))
        change = abs(new_prior - prior)
        prior = new_prior
        if estimate_m:
            for pos, c in enumerate(idx):
                sums = np.bincount(patterns[:, pos], weights=weighted, minlength=n_levels[c])[1:]
                if sums.sum() <= 0:
                    continue
                new_m = np.maximum(sums / sums.sum(), _MIN_PROBABILITY)
                new_m /= new_m.sum()
                change = max(change, float(np.abs(new_m - m[c]).max()))
                m[c] = new_m
        if estimate_u:
            unweighted = (1.0 - posterior) * counts_f
            for pos, c in enumerate(idx):
                observed = np.bincount(patterns[:, pos], weights=unweighted, minlength=n_levels[c])[
                    1:
                ]
                # Pseudo-pairs drawn from the random-pair u keep a small session that is
                # nearly all matches from inventing a u of its own.
                smoothed = observed + u_prior_pairs * u_prior[c]
                new_u = np.maximum(smoothed / smoothed.sum(), _MIN_PROBABILITY)
                new_u /= new_u.sum()
                change = max(change, float(np.abs(new_u - u[c]).max()))
                u[c] = new_u
        if change < tolerance:
            converged = True
            break
    return EMResult(m, prior, iterations, converged)


def _compress(levels: LevelMatrix, n_levels: Sequence[int]) -> tuple[LevelMatrix, IntArray]:
    """Distinct rows of the level matrix and how often each occurs."""
    code = np.zeros(len(levels), dtype=np.int64)
    for c, n in enumerate(n_levels):
        code = code * n + levels[:, c].astype(np.int64)
    uniq, counts = np.unique(code, return_counts=True)
    rows = np.zeros((len(uniq), len(n_levels)), dtype=np.int8)
    rest = uniq.copy()
    for c in range(len(n_levels) - 1, -1, -1):
        rows[:, c] = rest % n_levels[c]
        rest //= n_levels[c]
    return rows, counts.astype(np.int64)


def _group_codes(groups: Sequence[Any] | None, n: int) -> npt.NDArray[np.int64]:
    if groups is None:
        return np.arange(n, dtype=np.int64)
    _, codes = np.unique(np.asarray(groups, dtype=object).astype(str), return_inverse=True)
    return codes.astype(np.int64)


def _pairs_total(group_codes: npt.NDArray[np.int64]) -> float:
    sizes = np.bincount(group_codes).astype(np.float64)
    n = float(len(group_codes))
    return (n * n - float((sizes * sizes).sum())) / 2.0


def _random_pairs(
    rng: np.random.Generator, group_codes: npt.NDArray[np.int64], n_pairs: int
) -> tuple[IntArray, IntArray]:
    n = len(group_codes)
    left = rng.integers(0, n, size=n_pairs, dtype=np.int64)
    right = rng.integers(0, n, size=n_pairs, dtype=np.int64)
    keep = group_codes[left] != group_codes[right]
    return left[keep], right[keep]


def _exact_u(values: Sequence[str | None], group_codes: npt.NDArray[np.int64]) -> float | None:
    """P(two random records from different groups share the value | both have one)."""
    lookup: dict[str, int] = {}
    codes = np.fromiter(
        (-1 if v is None else lookup.setdefault(v, len(lookup)) for v in values),
        dtype=np.int64,
        count=len(values),
    )
    present = codes >= 0
    codes, groups = codes[present], group_codes[present]
    n = float(len(codes))
    if n < 2:
        return None
    per_group = np.bincount(groups).astype(np.float64)
    denominator = n * n - float((per_group * per_group).sum())
    if denominator <= 0:
        return None
    per_value = np.bincount(codes).astype(np.float64)
    _, per_value_group = np.unique(codes * (int(groups.max()) + 1) + groups, return_counts=True)
    per_value_group = per_value_group.astype(np.float64)
    numerator = float((per_value * per_value).sum() - (per_value_group * per_value_group).sum())
    return max(numerator / denominator, 0.5 / denominator)


def estimate_u(
    table: RecordTable,
    group_codes: npt.NDArray[np.int64],
    *,
    n_pairs: int,
    seed: int,
) -> list[FloatArray]:
    """u per comparison: exact level from value frequencies, other levels from random pairs."""
    rng = np.random.default_rng(seed)
    left, right = _random_pairs(rng, group_codes, n_pairs)
    levels = table.levels(left, right)
    out: list[FloatArray] = []
    for c, comp in enumerate(table.comparisons):
        n_levels = comp.n_levels
        counts = np.bincount(levels[:, c], minlength=n_levels)[1:].astype(np.float64)
        keys = [None if v is None else comp.exact_key(v) for v in table.prepared[c]]
        exact = _exact_u(keys, group_codes) if any(k is not None for k in keys) else None
        if exact is None:
            u = (counts + 0.5) / (counts.sum() + 0.5 * len(counts))
        else:
            rest = counts[1:] + 0.5
            u = np.concatenate(([exact], (1.0 - exact) * rest / rest.sum()))
        out.append(np.maximum(u, 1e-12))
    return out


def build_tf_tables(
    spec: MatchSpec,
    table: RecordTable,
    population: Sequence[Mapping[str, Any]] | None = None,
) -> dict[str, TfTable]:
    """Value counts for every comparison with ``tf_adjust`` (values seen once left out).

    Args:
        population: the records to count (default: the table's own records); pass all records
            when the table holds a sample of them.
    """
    tables: dict[str, TfTable] = {}
    texts: TextCache = {}
    for c, comp in enumerate(table.comparisons):
        if not spec.comparisons[c].tf_adjust:
            continue
        values = table.prepared[c] if population is None else comp.prepare_many(population, texts)
        counts = Counter(key for key in (comp.tf_key(v) for v in values if v is not None) if key)
        total = sum(counts.values())
        tables[comp.spec.name] = TfTable(total, {k: n for k, n in counts.items() if n > 1})
    return tables


def sample_records(
    n: int, size: int, *, groups: Sequence[Any] | None = None, seed: int = 0
) -> IntArray | None:
    """Sorted positions of a seeded uniform sample of ``size`` of ``n`` records.

    None when there is nothing to leave out (``size`` is 0 or at least ``n``). With ``groups``
    (link mode), a source the uniform draw missed gets one record of its own, so every source
    is still paired with the others.
    """
    if size <= 0 or size >= n:
        return None
    rng = np.random.default_rng([seed, 0x5A3])
    picked = np.zeros(n, dtype=bool)
    picked[rng.choice(n, size=size, replace=False)] = True
    if groups is not None:
        codes = _group_codes(groups, n)
        for code in np.nonzero(np.bincount(codes, weights=picked) == 0)[0].tolist():
            picked[rng.choice(np.nonzero(codes == code)[0])] = True
    return np.nonzero(picked)[0].astype(np.int64)


@gc_paused
def train(
    spec: MatchSpec,
    records: Sequence[Mapping[str, Any]],
    *,
    groups: Sequence[Any] | None = None,
    sample: int = 0,
    seed: int = 0,
    u_pairs: int = 1_000_000,
    em_pairs: int = 500_000,
    max_iterations: int = 300,
    tolerance: float = 1e-5,
    session_u: bool = True,
    workers: int = 1,
) -> MatchModel:
    """Train a model from unlabelled feature records.

    Why training on a sample is sound: in a uniform sample of the records (drawn without
    replacement) every pair of records of the whole input is included with the same
    probability, so the sample's random pairs are uniform random pairs of the input and its
    candidate pairs are a uniform thinning of the input's candidate pairs. Hence u (random
    pairs, and the exact level from value frequencies, a U-statistic), the match share among
    candidates, the candidates' share of all pairs and so the prior λ (their product), and
    the m that EM reads off the candidate pairs estimate the same quantities as on all
    records, only with more noise. Blocks shrink with the sample, so a key whose block
    exceeds ``max_block_size`` in the input may be kept in the sample; such keys are too
    common to matter much. What a sample cannot estimate is how rare a rare value is: a
    value seen once in the input is missing from most samples, so the term-frequency tables
    are always counted over every record. The sample is only the training set; the model is
    applied to all records. In link mode the sample is uniform over all records (so a pair of
    sources stays paired in proportion to their sizes) plus one record of any source the
    draw missed.

    Args:
        spec: what to compare and how to block.
        records: feature dicts (``standardize_record`` output).
        groups: in link mode, each record's source; only pairs across sources are used and the
            prior is the match probability of a random cross-source pair.
        sample: train steps 1-3 on a uniform sample of this many records (0 or at least
            ``len(records)``: all of them); the report's ``records`` is the sample's size,
            ``population`` the input's.
        seed: makes the record sample, random-pair sampling and EM subsampling reproducible.
        u_pairs: random pairs drawn for u (at most the sample's pairs when sampling).
        em_pairs: at most this many candidate pairs per EM session.
        max_iterations, tolerance: EM stops when no m, u or match share moves by more than
            ``tolerance``, or after ``max_iterations``.
        session_u: re-estimate u within each EM session (see the module docstring).
        workers: threads for string comparisons (-1: all cores).
    """
    if len(records) < 2:
        raise ValueError("training needs at least two records")
    if sample == 1:
        raise ValueError("a training sample needs at least two records")
    population = records
    picked = sample_records(len(records), sample, groups=groups, seed=seed)
    if picked is not None:
        records = [population[k] for k in picked.tolist()]
        if groups is not None:
            groups = [groups[k] for k in picked.tolist()]
    texts: TextCache = {}
    table = RecordTable(spec, records, texts, workers=workers)
    codes = _group_codes(groups, len(records))
    n_levels = [c.n_levels for c in spec.comparisons]
    if picked is not None:
        u_pairs = max(min(u_pairs, int(_pairs_total(codes))), 1)
    u = estimate_u(table, codes, n_pairs=u_pairs, seed=seed)
    rng = np.random.default_rng(seed + 1)
    m_start = [np.asarray(default_parameters(c).m) for c in spec.comparisons]
    estimates: list[list[FloatArray]] = [[] for _ in spec.comparisons]
    sessions: list[dict[str, Any]] = []
    rules = [BlockingRule(rule) for rule in spec.blocking]
    memberships = rule_memberships(rules, records, texts)
    del texts
    link_codes = group_codes_of(groups)
    for rule, (positions, key_ids) in zip(rules, memberships, strict=True):
        left, right = pairs_from_memberships(
            positions, key_ids, max_block_size=spec.max_block_size, group_codes=link_codes
        )
        rule_fields = set(rule.spec.fields)
        learn = [not (set(c.fields) & rule_fields) for c in spec.comparisons]
        # Comparisons on the blocked fields sit out: every pair agrees on them by
        # construction, so they would only bias the session.
        active = learn
        if len(left) < 20 or not any(learn):
            continue
        left, right = _subsample(rng, left, right, em_pairs)
        result = run_em(
            table.levels(left, right),
            n_levels,
            m_start,
            u,
            0.5,
            active=active,
            estimate_u=session_u,
            max_iterations=max_iterations,
            tolerance=tolerance,
        )
        sessions.append(
            {
                "rule": rule.spec.name,
                "pairs": len(left),
                "iterations": result.iterations,
                "converged": result.converged,
                "match_share": result.prior,
            }
        )
        for c, keep in enumerate(learn):
            if keep:
                estimates[c].append(result.m[c])
    m = [_combine(est) if est else m_start[c] for c, est in enumerate(estimates)]
    left, right = pairs_from_memberships(
        np.concatenate([p for p, _ in memberships]),
        np.concatenate([k for _, k in memberships]),
        max_block_size=spec.max_block_size,
        group_codes=link_codes,
    )
    n_candidates = len(left)
    if spec.prior is not None:
        prior = spec.prior
        share = float("nan")
        prior_iterations = 0
    else:
        left_s, right_s = _subsample(rng, left, right, em_pairs)
        result = run_em(
            table.levels(left_s, right_s),
            n_levels,
            m,
            u,
            0.1,
            estimate_m=False,
            max_iterations=max_iterations,
            tolerance=tolerance * 1e-3,
        )
        share = result.prior
        prior_iterations = result.iterations
        prior = float(np.clip(share * n_candidates / _pairs_total(codes), 1e-12, 0.5))
    parameters = tuple(
        ComparisonParameters(
            tuple(float(x) for x in np.maximum(m[c], _MIN_PROBABILITY)),
            tuple(float(x) for x in u[c]),
        )
        for c in range(len(spec.comparisons))
    )
    report = {
        "records": len(records),
        "population": len(population),
        "seed": seed,
        "u_pairs": u_pairs,
        "candidate_pairs": n_candidates,
        "em_sessions": sessions,
        "candidate_match_share": share,
        "prior_iterations": prior_iterations,
    }
    tf_tables = build_tf_tables(spec, table, population if picked is not None else None)
    return MatchModel(spec, parameters, prior, tf_tables, report)


def _combine(estimates: list[FloatArray]) -> FloatArray:
    """Per-level median over sessions, renormalised: one session whose match class latched
    onto a correlated sub-population (a household sharing surname and address) is outvoted."""
    combined = np.median(np.stack(estimates), axis=0)
    return np.asarray(combined / combined.sum(), dtype=np.float64)


def _subsample(
    rng: np.random.Generator, left: IntArray, right: IntArray, limit: int
) -> tuple[IntArray, IntArray]:
    if len(left) <= limit:
        return left, right
    pick = np.sort(rng.choice(len(left), size=limit, replace=False))
    return left[pick], right[pick]


def refine_with_labels(
    model: MatchModel,
    labelled: Iterable[tuple[Mapping[str, Any], Mapping[str, Any], bool]],
    *,
    strength: float = 50.0,
) -> MatchModel:
    """Move m towards the levels observed in confirmed matches (steward decisions).

    Each comparison's m becomes ``(strength * m + counts) / (strength + n)`` over the
    confirmed matches where that comparison is not null, so a handful of decisions nudges
    the model and hundreds dominate it. Rejected pairs are hard negatives, not a random
    sample, so they leave u alone; they belong in clustering as cannot-link constraints.
    """
    counts = [np.zeros(c.n_levels - 1) for c in model.spec.comparisons]
    for left, right, is_match in labelled:
        if not is_match:
            continue
        scored = model.score(left, right)
        for c, level in enumerate(scored.levels):
            if level > 0:
                counts[c][level - 1] += 1
    parameters = []
    for c, params in enumerate(model.parameters):
        n = counts[c].sum()
        m = (strength * np.asarray(params.m) + counts[c]) / (strength + n)
        m = np.maximum(m, _MIN_PROBABILITY)
        m /= m.sum()
        parameters.append(ComparisonParameters(tuple(float(x) for x in m), params.u))
    training = dict(model.training)
    training["labelled_matches"] = int(max((c.sum() for c in counts), default=0))
    return model.with_parameters(parameters, training=training)
