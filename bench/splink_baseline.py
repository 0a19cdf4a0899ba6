"""The comparison point: an untuned but reasonable Splink model (DuckDB backend, EM-trained).

The model is built from whichever canonical columns a data set has, with Splink's stock
comparisons (names by Jaro-Winkler with term frequencies, dates of birth, Levenshtein on
identifiers and streets, exact house number / unit / city / region / postcode). Training is
Splink's usual recipe: the prior from a near-deterministic rule, u by random sampling, m by
two EM passes on different blocking rules. Nothing is tuned per data set.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import pandas as pd
import splink.comparison_library as cl
from splink import DuckDBAPI, Linker, SettingsCreator, block_on

# A pair at or above this probability is a link; Splink's documentation clusters at 0.95.
CLUSTER_THRESHOLD = 0.95
# Per data set, how dates of birth are written (Splink needs the format to parse them).
_DOB_FORMATS = ("%Y%m%d", "%m/%d/%Y", "%Y-%m-%d")

logging.getLogger("splink").setLevel(logging.ERROR)


@dataclass(frozen=True)
class SplinkRun:
    """Splink's output on a data set.

    ``clusters``: one row per input record (``source``, ``record_id``, ``cluster_id``);
    ``links``: the scored pairs at or above ``CLUSTER_THRESHOLD`` (``source_l``, ``record_id_l``,
    ``source_r``, ``record_id_r``, ``probability``), before transitive closure.
    """

    clusters: pd.DataFrame
    links: pd.DataFrame
    linker: Linker


def _dob_format(frames: Sequence[pd.DataFrame]) -> str:
    sample = pd.concat([f["dob"].dropna().head(200) for f in frames])
    for fmt in _DOB_FORMATS:
        parsed = pd.to_datetime(sample, format=fmt, errors="coerce")
        if parsed.notna().mean() > 0.9:
            return fmt
    raise ValueError("dates of birth in an unrecognised format")


def _comparisons(columns: Sequence[str], frames: Sequence[pd.DataFrame]) -> list[Any]:
    available = set(columns)
    comparisons: list[Any] = []
    for name in ("given_name", "family_name"):
        if name in available:
            comparisons.append(cl.NameComparison(name).configure(term_frequency_adjustments=True))
    if "middle_name" in available:
        comparisons.append(cl.ExactMatch("middle_name"))
    if "legal_name" in available:
        comparisons.append(
            cl.JaroWinklerAtThresholds("legal_name", [0.9, 0.8]).configure(
                term_frequency_adjustments=True
            )
        )
    if "email" in available:
        comparisons.append(cl.EmailComparison("email"))
    if "phone" in available:
        comparisons.append(cl.ExactMatch("phone"))
    if "tax_id" in available:
        comparisons.append(cl.LevenshteinAtThresholds("tax_id", [1]))
    if "website" in available:
        comparisons.append(cl.ExactMatch("website"))
    if "dob" in available:
        comparisons.append(
            cl.DateOfBirthComparison(
                "dob", input_is_string=True, datetime_format=_dob_format(frames)
            )
        )
    if "national_id" in available:
        comparisons.append(cl.LevenshteinAtThresholds("national_id", [1, 2]))
    if "house_number" in available:
        comparisons.append(cl.ExactMatch("house_number"))
    if "street" in available:
        comparisons.append(cl.LevenshteinAtThresholds("street", [1, 3]))
    if "address" in available:
        comparisons.append(cl.LevenshteinAtThresholds("address", [1, 3]))
    if "address_line2" in available:
        comparisons.append(cl.LevenshteinAtThresholds("address_line2", [1, 3]))
    if "unit" in available:
        comparisons.append(cl.ExactMatch("unit"))
    if "city" in available:
        comparisons.append(cl.ExactMatch("city").configure(term_frequency_adjustments=True))
    if "region" in available:
        comparisons.append(cl.ExactMatch("region"))
    if "postcode" in available:
        comparisons.append(cl.LevenshteinAtThresholds("postcode", [1]))
    return comparisons


def _blocking_rules(columns: Sequence[str]) -> list[Any]:
    available = set(columns)
    candidates = [
        ("given_name", "family_name"),
        ("dob",),
        ("national_id",),
        ("family_name", "postcode"),
        ("house_number", "street"),
        ("given_name", "postcode"),
        ("email",),
        ("phone",),
        ("tax_id",),
        ("address", "postcode"),
    ]
    return [block_on(*cols) for cols in candidates if available.issuperset(cols)]


def _training_rules(columns: Sequence[str]) -> list[Any]:
    """Two EM passes whose blocking columns do not overlap, so every comparison gets an m."""
    available = set(columns)
    if "dob" in available:
        second: tuple[str, ...] = ("dob",)
    elif "middle_name" in available:
        # Not the address: pairs sharing an address are mostly household members, and EM
        # would learn that "same person" means "same household".
        second = ("family_name", "middle_name")
    else:
        second = ("house_number", "street")
    rules = [block_on("given_name", "family_name"), block_on(*second)]
    if "email" in available:
        rules.append(block_on("email"))
    return rules


def build_linker(
    frames: Sequence[pd.DataFrame],
    source_names: Sequence[str],
    columns: Sequence[str],
    mode: Literal["dedupe", "link"],
    *,
    db_api: DuckDBAPI | None = None,
) -> Linker:
    """An untrained linker over the frames (``record_id`` and canonical columns each)."""
    db_api = db_api or DuckDBAPI()
    keep = ["record_id", *columns]
    tables = [
        db_api.register(frame[keep].rename(columns={"record_id": "unique_id"}), table_name=name)
        for frame, name in zip(frames, source_names, strict=True)
    ]
    settings = SettingsCreator(
        link_type="dedupe_only" if mode == "dedupe" else "link_only",
        comparisons=_comparisons(columns, frames),
        blocking_rules_to_generate_predictions=_blocking_rules(columns),
        retain_intermediate_calculation_columns=False,
    )
    return Linker(tables if mode == "link" else tables[0], settings, log_level=None)


def train(linker: Linker, columns: Sequence[str]) -> None:
    """Splink's standard unsupervised recipe: prior, u by sampling, m by EM."""
    deterministic = ["given_name", "family_name", "dob" if "dob" in columns else "street"]
    linker.training.estimate_probability_two_random_records_match(
        [block_on(*deterministic)], recall=0.7
    )
    linker.training.estimate_u_using_random_sampling(max_pairs=5e6, seed=1)
    for rule in _training_rules(columns):
        try:
            linker.training.estimate_parameters_using_expectation_maximisation(rule)
        except ValueError as exc:
            # Splink refuses an m of exactly 0 (a level never seen among the session's
            # matches, e.g. tax ids in a session of persons); the other sessions still count.
            print(f"splink: EM session skipped: {exc}", file=sys.stderr)


def run_splink(
    frames: Sequence[pd.DataFrame],
    source_names: Sequence[str],
    columns: Sequence[str],
    mode: Literal["dedupe", "link"],
) -> SplinkRun:
    """Train on the data, predict, and cluster at ``CLUSTER_THRESHOLD``."""
    linker = build_linker(frames, source_names, columns, mode)
    train(linker, columns)
    predictions = linker.inference.predict(threshold_match_probability=0.5, warning_mode="never")
    clustered = _to_pandas(
        linker.clustering.cluster_pairwise_predictions_at_threshold(
            predictions, threshold_match_probability=CLUSTER_THRESHOLD
        )
    )
    scored = _to_pandas(predictions)
    scored = scored[scored["match_probability"] >= CLUSTER_THRESHOLD]
    if "source_dataset" not in clustered.columns:
        clustered["source_dataset"] = source_names[0]
        scored["source_dataset_l"] = scored["source_dataset_r"] = source_names[0]
    clusters = pd.DataFrame(
        {
            "source": clustered["source_dataset"].astype(str),
            "record_id": clustered["unique_id"].astype(str),
            "cluster_id": clustered["cluster_id"].astype(str),
        }
    )
    links = pd.DataFrame(
        {
            "source_l": scored["source_dataset_l"].astype(str),
            "record_id_l": scored["unique_id_l"].astype(str),
            "source_r": scored["source_dataset_r"].astype(str),
            "record_id_r": scored["unique_id_r"].astype(str),
            "probability": scored["match_probability"],
        }
    )
    return SplinkRun(clusters=clusters, links=links, linker=linker)


def _to_pandas(table: Any) -> pd.DataFrame:
    frame: pd.DataFrame = table.as_pandas_dataframe()
    return frame
