"""Sort-based set operations on integer arrays.

numpy 2's hash-based ``np.unique`` is several times slower than sorting on arrays with
millions of distinct integers (the candidate pairs of a large dedupe), so the hot paths use
these instead.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

IntArray = npt.NDArray[np.int64]


def sorted_unique(values: IntArray) -> IntArray:
    """The distinct values, ascending (``np.unique(values)``)."""
    if len(values) == 0:
        return values
    ordered = np.sort(values)
    keep = np.empty(len(ordered), dtype=bool)
    keep[0] = True
    np.not_equal(ordered[1:], ordered[:-1], out=keep[1:])
    return ordered[keep]


def unique_inverse(values: IntArray) -> tuple[IntArray, IntArray]:
    """``np.unique(values, return_inverse=True)``: the distinct values and, per value, the
    index of its distinct value."""
    if len(values) == 0:
        return values, np.zeros(0, dtype=np.int64)
    order = np.argsort(values)
    ordered = values[order]
    starts = np.empty(len(ordered), dtype=bool)
    starts[0] = True
    np.not_equal(ordered[1:], ordered[:-1], out=starts[1:])
    rank = np.cumsum(starts) - 1
    inverse = np.empty(len(values), dtype=np.int64)
    inverse[order] = rank
    return ordered[starts], inverse
