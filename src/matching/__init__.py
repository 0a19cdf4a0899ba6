"""Pure record matching: standardize, block, compare, score, cluster, explain. No I/O."""

from matching.batch import DedupeResult, PairScores, dedupe
from matching.cluster import cluster_records
from matching.errors import MatchingError, ModelFormatError, SpecError
from matching.features import FEATURE_KEYS
from matching.index import MatchIndex
from matching.model import ComparisonParameters, MatchModel, TfTable
from matching.scoring import Decision, ScoredPair
from matching.spec import (
    BlockingRuleSpec,
    ComparisonSpec,
    HardConflictSpec,
    MatchSpec,
    census_spec,
    default_spec,
    febrl_spec,
    joint_comparison,
    load_spec,
    parse_spec_text,
    shipped_spec,
)
from matching.training import refine_with_labels, train

__all__ = [
    "FEATURE_KEYS",
    "BlockingRuleSpec",
    "ComparisonParameters",
    "ComparisonSpec",
    "Decision",
    "DedupeResult",
    "HardConflictSpec",
    "MatchIndex",
    "MatchModel",
    "MatchSpec",
    "MatchingError",
    "ModelFormatError",
    "PairScores",
    "ScoredPair",
    "SpecError",
    "TfTable",
    "census_spec",
    "cluster_records",
    "dedupe",
    "default_spec",
    "febrl_spec",
    "joint_comparison",
    "load_spec",
    "parse_spec_text",
    "refine_with_labels",
    "shipped_spec",
    "train",
]
