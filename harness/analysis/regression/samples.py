"""Raw samples and the statistics named in a decision: validation, and numpy versions of
median, mean, min, max and pNN (numpy "linear" percentiles, like ``harness.analysis.stats``)."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt


def as_samples(values: npt.ArrayLike, name: str) -> np.ndarray:
    """The values as a flat float array; ValueError (naming `name`) on NaN or infinity."""
    x = np.asarray(values, dtype=float).ravel()
    if x.size and not np.all(np.isfinite(x)):
        raise ValueError(f"{name}: samples contain NaN or infinity")
    return x


def as_positive(values: npt.ArrayLike, name: str) -> np.ndarray:
    """As ``as_samples``, and every value > 0 (the statistics are compared as log ratios)."""
    x = as_samples(values, name)
    if x.size and np.any(x <= 0):
        raise ValueError(f"{name}: samples must be positive (latencies, throughputs), got {x.min()!r}")
    return x


def statistic_label(statistic: str) -> str:
    """The name a statistic is shown with: median is p50, as in the latency summaries."""
    return "p50" if statistic == "median" else statistic


def check_statistic(statistic: str) -> None:
    """ValueError unless `statistic` is median, mean, min, max or pNN with 0 <= NN <= 100."""
    if statistic in ("median", "mean", "min", "max"):
        return
    if statistic.startswith("p"):
        try:
            q = float(statistic[1:])
        except ValueError:
            q = -1.0
        if 0 <= q <= 100:
            return
    raise ValueError(f"unknown statistic {statistic!r}: use median, mean, min, max or pNN (e.g. p90)")


def median_of_sorted(ordered: np.ndarray) -> float:
    """np.median's value (the mean of the two middle values for an even count) of sorted
    samples: at a run's size np.median's overhead is most of its time."""
    half = ordered.size // 2
    return float(ordered[half] if ordered.size % 2 else (ordered[half - 1] + ordered[half]) / 2)


def compute_statistic(x: np.ndarray, statistic: str, axis: int = -1) -> np.ndarray:
    """The statistic along an axis (numpy "linear" percentiles, like harness.analysis.stats)."""
    if statistic == "median":
        return np.median(x, axis=axis)
    if statistic == "mean":
        return np.mean(x, axis=axis)
    if statistic == "min":
        return np.min(x, axis=axis)
    if statistic == "max":
        return np.max(x, axis=axis)
    return np.percentile(x, float(statistic[1:]), axis=axis)
