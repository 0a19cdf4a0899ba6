"""Columnar form of many records for the vectorised path: comparison levels of pair arrays."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from matching.comparison import Comparison, TextCache, build_comparison
from matching.spec import MatchSpec

IntArray = npt.NDArray[np.int64]
LevelMatrix = npt.NDArray[np.int8]


class RecordTable:
    """Prepared values and per-comparison columns of a list of feature records."""

    def __init__(
        self,
        spec: MatchSpec,
        records: Sequence[Mapping[str, Any]],
        texts: TextCache | None = None,
    ) -> None:
        self.spec = spec
        self.size = len(records)
        self.comparisons: list[Comparison] = [build_comparison(c) for c in spec.comparisons]
        texts = {} if texts is None else texts
        self.prepared: list[list[Any]] = [
            comp.prepare_many(records, texts) for comp in self.comparisons
        ]
        self.columns: list[Any] = [
            comp.column(values)
            for comp, values in zip(self.comparisons, self.prepared, strict=True)
        ]

    def levels(self, left: IntArray, right: IntArray, *, chunk: int = 1_000_000) -> LevelMatrix:
        """Levels (pairs x comparisons) of the pairs ``(left[k], right[k])``."""
        out = np.zeros((len(left), len(self.comparisons)), dtype=np.int8)
        for start in range(0, len(left), chunk):
            lo = left[start : start + chunk]
            hi = right[start : start + chunk]
            for c, (comp, column) in enumerate(zip(self.comparisons, self.columns, strict=True)):
                out[start : start + len(lo), c] = comp.levels(column, lo, hi)
        return out

    def present(self, comparison: int) -> npt.NDArray[np.bool_]:
        """Which records have a value for one comparison."""
        return np.array([v is not None for v in self.prepared[comparison]], dtype=bool)
