"""Paired comparisons: the mean difference of two arms trained with the same seeds, its 95%
Student-t interval, and the verdict it supports. `ablate`'s table and `tune`'s verdict speak
the same words as BENCHMARKS.md: a verdict needs the interval to exclude 0."""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence

from scipy import stats


def paired_interval(diffs: Sequence[float], level: float = 0.95) -> tuple[float, float, float]:
    """Mean of the paired differences and its two-sided Student-t interval (infinite with one
    pair; NaN when a run gave no number)."""
    n = len(diffs)
    if n == 0 or not all(math.isfinite(d) for d in diffs):
        return float("nan"), float("nan"), float("nan")
    mean = statistics.fmean(diffs)
    if n < 2:
        return mean, float("-inf"), float("inf")
    half = float(stats.t.ppf(0.5 + level / 2, n - 1)) * statistics.stdev(diffs) / math.sqrt(n)
    return mean, mean - half, mean + half


def verdict(low: float, high: float) -> str:
    """'better' / 'worse' when the interval lies wholly above / below 0."""
    if low > 0:
        return "better"
    if high < 0:
        return "worse"
    if math.isinf(low) and math.isinf(high):
        return "one seed: no interval (--seeds 3 or more)"
    return "no clear difference"
