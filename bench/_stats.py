"""Summaries every part shares: medians with their spread, paired t-intervals, ratios.

Kept apart from the parts so a table in BENCHMARKS.md means the same thing wherever it appears.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence

from scipy import stats as _scipy_stats


def spread(values: Sequence[float]) -> dict[str, float]:
    """Median, quartiles, extremes and count of raw measurements."""
    values = sorted(float(v) for v in values)
    if not values:
        raise ValueError("no values to summarise")
    if len(values) > 1:
        q1, _, q3 = statistics.quantiles(values, n=4, method="inclusive")
    else:
        q1 = q3 = values[0]
    return {
        "median": statistics.median(values),
        "q1": q1,
        "q3": q3,
        "min": values[0],
        "max": values[-1],
        "n": len(values),
    }


def paired_interval(
    treated: Sequence[float], baseline: Sequence[float], confidence: float = 0.95
) -> dict[str, float]:
    """Mean of the paired differences `treated - baseline` and its two-sided t-interval.

    Pairs share a seed (same initial weights where shapes agree, same batch order), so the
    seed-to-seed noise common to both cancels. With one pair the interval is infinite.
    """
    if len(treated) != len(baseline):
        raise ValueError(f"unpaired: {len(treated)} vs {len(baseline)} values")
    diffs = [float(t) - float(b) for t, b in zip(treated, baseline, strict=True)]
    n = len(diffs)
    if n == 0:
        raise ValueError("no pairs")
    mean = statistics.fmean(diffs)
    if n < 2:
        return {"mean": mean, "low": -math.inf, "high": math.inf, "sd": math.nan, "n": n}
    sd = statistics.stdev(diffs)
    half = float(_scipy_stats.t.ppf(0.5 + confidence / 2, n - 1)) * sd / math.sqrt(n)
    return {"mean": mean, "low": mean - half, "high": mean + half, "sd": sd, "n": n}


def mean_interval(values: Sequence[float], confidence: float = 0.95) -> dict[str, float]:
    """Mean of independent runs (one arm's seeds) and its two-sided t-interval.

    For arms that share no seeds (two libraries), where pairing means nothing. With one value
    the interval is infinite.
    """
    values = [float(v) for v in values]
    n = len(values)
    if n == 0:
        raise ValueError("no values")
    mean = statistics.fmean(values)
    if n < 2:
        return {"mean": mean, "low": -math.inf, "high": math.inf, "sd": math.nan, "n": n}
    sd = statistics.stdev(values)
    half = float(_scipy_stats.t.ppf(0.5 + confidence / 2, n - 1)) * sd / math.sqrt(n)
    return {"mean": mean, "low": mean - half, "high": mean + half, "sd": sd, "n": n}


def welch_interval(
    treated: Sequence[float], baseline: Sequence[float], confidence: float = 0.95
) -> dict[str, float]:
    """Difference of the means `treated - baseline` of two unpaired arms, Welch's t-interval
    (unequal variances, Welch-Satterthwaite degrees of freedom). Infinite below 2 runs an arm."""
    a, b = [float(v) for v in treated], [float(v) for v in baseline]
    if not a or not b:
        raise ValueError("an arm has no values")
    mean = statistics.fmean(a) - statistics.fmean(b)
    if len(a) < 2 or len(b) < 2:
        return {"mean": mean, "low": -math.inf, "high": math.inf, "df": math.nan}
    va, vb = statistics.variance(a) / len(a), statistics.variance(b) / len(b)
    se = math.sqrt(va + vb)
    if se == 0:
        return {"mean": mean, "low": mean, "high": mean, "df": math.inf}
    df = (va + vb) ** 2 / (va**2 / (len(a) - 1) + vb**2 / (len(b) - 1))
    half = float(_scipy_stats.t.ppf(0.5 + confidence / 2, df)) * se
    return {"mean": mean, "low": mean - half, "high": mean + half, "df": df}


def verdict(interval: dict[str, float], higher_is_better: bool = True) -> str:
    """'better' / 'worse' when the interval excludes zero, else 'no clear difference'."""
    low, high = interval["low"], interval["high"]
    if low > 0:
        return "better" if higher_is_better else "worse"
    if high < 0:
        return "worse" if higher_is_better else "better"
    return "no clear difference"


def ratio_spread(numerators: Sequence[float], denominators: Sequence[float]) -> dict[str, float]:
    """Per-pair ratios (interleaved rounds) summarised like `spread`."""
    return spread([n / d for n, d in zip(numerators, denominators, strict=True)])


def fmt_ms(seconds: float) -> str:
    """Seconds as milliseconds (or microseconds below 0.1 ms) with 3 significant digits."""
    ms = seconds * 1e3
    if ms < 0.1:
        return f"{ms * 1e3:.3g} µs"
    return f"{ms:.3g} ms"


def points(x: float) -> str:
    """A difference of a [0, 1] metric in points (×100), signed; an infinite bound as ±inf."""
    return "±inf" if x != x or abs(x) == float("inf") else f"{x * 100:+.2f}"
