"""Statistics over raw latency samples: pure functions, no I/O.

Percentiles use linear interpolation between order statistics (numpy's default "linear"
method), so results match `numpy.percentile`. Confidence intervals for percentiles are
distribution-free: the ranks come from the binomial distribution of how many samples fall
below the true quantile (normal approximation), so no bootstrap randomness is involved.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

PERCENTILES = (50, 90, 95, 99)
Z_95 = 1.959963984540054
HIGH_CV = 0.10  # robust coefficient of variation above which a result is flagged noisy
DRIFT_LIMIT = 0.10  # last third vs first third median change that counts as drift (shared machines
# jitter by a few percent; throttling shows as more)
MIN_SAMPLES_FOR_DRIFT = 30


def percentile(sorted_values: Sequence[float], q: float) -> float:
    """The q-th percentile (0..100) of already sorted values, numpy "linear" method."""
    if not sorted_values:
        raise ValueError("percentile of an empty sample")
    if not 0 <= q <= 100:
        raise ValueError(f"percentile {q} outside 0..100")
    position = (len(sorted_values) - 1) * q / 100.0
    lower = math.floor(position)
    upper = min(lower + 1, len(sorted_values) - 1)
    fraction = position - lower
    return sorted_values[lower] + (sorted_values[upper] - sorted_values[lower]) * fraction


def percentile_ci(sorted_values: Sequence[float], q: float, z: float = Z_95) -> tuple[float, float]:
    """A ~95% confidence interval for the q-th percentile from order statistics."""
    n = len(sorted_values)
    p = q / 100.0
    spread = z * math.sqrt(n * p * (1 - p))
    low_rank = max(1, math.floor(n * p - spread))
    high_rank = min(n, max(1, math.ceil(n * p + spread)))
    return sorted_values[low_rank - 1], sorted_values[high_rank - 1]


def mean_and_std(values: Sequence[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (n-1); std is 0 for a single value."""
    n = len(values)
    mean = math.fsum(values) / n
    if n < 2:
        return mean, 0.0
    variance = math.fsum((v - mean) ** 2 for v in values) / (n - 1)
    return mean, math.sqrt(variance)


def drift_ratio(values_in_time_order: Sequence[float]) -> float | None:
    """Median of the last third over the median of the first third (1.0 = no drift).

    A steady rise is the signature of thermal throttling or a governor ramping down.
    """
    n = len(values_in_time_order)
    if n < MIN_SAMPLES_FOR_DRIFT:
        return None
    third = n // 3
    first = sorted(values_in_time_order[:third])
    last = sorted(values_in_time_order[-third:])
    return percentile(last, 50) / percentile(first, 50)


def robust_cv(sorted_values: Sequence[float]) -> float | None:
    """IQR / 1.349 over the median of already sorted values (the sd of a normal sample, read
    from its quartiles, so a few outliers do not set it); None when the median is not > 0."""
    median = percentile(sorted_values, 50)
    if median <= 0:
        return None
    iqr = percentile(sorted_values, 75) - percentile(sorted_values, 25)
    return (iqr / 1.349) / median


def is_noisy(robust_cv_value: float | None) -> bool:
    """The harness's noise flag: robust CV above HIGH_CV."""
    return robust_cv_value is not None and robust_cv_value > HIGH_CV


def is_drifting(drift: float | None) -> bool:
    """The harness's drift flag: last third of the run more than DRIFT_LIMIT off the first."""
    return drift is not None and abs(drift - 1) > DRIFT_LIMIT


def summarize_latency(samples_ns: Sequence[int], window_ns: int | None = None) -> dict:
    """Summary statistics in milliseconds, with percentile CIs, throughput and flags."""
    if not samples_ns:
        raise ValueError("no latency samples")
    ms = [s / 1e6 for s in samples_ns]
    ordered = sorted(ms)
    mean, std = mean_and_std(ms)
    summary: dict = {
        "n": len(ms),
        "mean": mean,
        "std": std,
        "min": ordered[0],
        "max": ordered[-1],
    }
    for q in PERCENTILES:
        summary[f"p{q}"] = percentile(ordered, q)
        low, high = percentile_ci(ordered, q)
        summary[f"p{q}_ci"] = [low, high]
    q1, q3 = percentile(ordered, 25), percentile(ordered, 75)
    iqr = q3 - q1
    summary["iqr"] = iqr
    summary["cv"] = std / mean if mean > 0 else None
    summary["robust_cv"] = robust_cv(ordered)
    summary["outliers"] = sum(1 for v in ms if v > q3 + 3 * iqr)
    if window_ns:
        summary["throughput"] = len(ms) / (window_ns / 1e9)
    else:
        summary["throughput"] = 1000.0 / mean if mean > 0 else None
    summary["drift"] = drift_ratio(ms)
    summary["warnings"] = latency_warnings(summary)
    return summary


def latency_warnings(summary: Mapping[str, Any]) -> list[str]:
    """Human-readable flags for a latency summary: noise and drift."""
    warnings = []
    noise = summary.get("robust_cv")
    if is_noisy(noise):
        warnings.append(
            f"high variance: robust CV {noise:.0%} (>{HIGH_CV:.0%}); check CPU governor, "
            "background load and thermal state")
    drift = summary.get("drift")
    if drift is not None and is_drifting(drift):
        direction = "slower" if drift > 1 else "faster"
        warnings.append(
            f"drift: last third of the run {abs(drift - 1):.0%} {direction} than the first "
            "(thermal throttling or frequency scaling?)")
    return warnings
