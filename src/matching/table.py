"""Columnar form of many records for the vectorised path: comparison levels of pair arrays."""

from __future__ import annotations

import functools
import gc
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any, ParamSpec, TypeVar

import numpy as np
import numpy.typing as npt

from matching.comparison import Comparison, TextCache, build_comparison
from matching.spec import MatchSpec

IntArray = npt.NDArray[np.int64]
LevelMatrix = npt.NDArray[np.int8]


@contextmanager
def paused_gc() -> Iterator[None]:
    """Pause the cyclic garbage collector for bulk work.

    Batch matching allocates millions of small objects that never form cycles; with the
    collector on, its full passes over everything alive (the caller's records included) cost
    more than the matching itself.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


_P = ParamSpec("_P")
_R = TypeVar("_R")


def gc_paused(func: Callable[_P, _R]) -> Callable[_P, _R]:
    """Run ``func`` under ``paused_gc``."""

    @functools.wraps(func)
    def wrapper(*args: _P.args, **kwargs: _P.kwargs) -> _R:
        with paused_gc():
            return func(*args, **kwargs)

    return wrapper


class RecordTable:
    """Prepared values and per-comparison columns of a list of feature records."""

    def __init__(
        self,
        spec: MatchSpec,
        records: Sequence[Mapping[str, Any]],
        texts: TextCache | None = None,
        *,
        workers: int = 1,
    ) -> None:
        self.spec = spec
        self.size = len(records)
        self.comparisons: list[Comparison] = [build_comparison(c) for c in spec.comparisons]
        for comp in self.comparisons:
            comp.workers = workers
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
