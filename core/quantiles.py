"""The one percentile definition of the suite: nearest rank.

The p-th percentile of n samples is the smallest sample with at least p % of the samples at or below
it (rank ceil(p/100 * n), at least 1). It is always a value that was observed, never an
interpolation between two, and it is numpy's method "inverted_cdf", so pandas analyses and the SLO
gates give the same number for the same samples. Locust's own tables (and the live LLM tab, which
reads Locust-style histograms) round samples into buckets first: their figures are this definition
over rounded values.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

NUMPY_METHOD = "inverted_cdf"  # numpy.quantile(..., method=NUMPY_METHOD) is nearest rank


def nearest_rank(samples: Sequence[float], pct: float) -> float | None:
    """The pct-th percentile (0 < pct <= 100) by nearest rank; None without samples."""
    if not samples:
        return None
    ordered = sorted(samples)
    rank = max(1, math.ceil(pct / 100.0 * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


def nearest_rank_quantiles(values: Any, quantiles: Sequence[float]) -> list[float]:
    """Nearest-rank quantiles (0..1) of an array or Series, missing values left out; NaN without data."""
    import numpy as np

    array = np.asarray(values, dtype=float)
    array = array[~np.isnan(array)]
    if array.size == 0:
        return [float("nan")] * len(quantiles)
    return [float(v) for v in np.quantile(array, list(quantiles), method=NUMPY_METHOD)]
