"""harness.analysis.stats: percentiles against numpy, CIs, mean/std, drift, warnings, summaries."""

from __future__ import annotations

import random

import numpy as np
import pytest

from harness.analysis.stats import (
    DRIFT_LIMIT,
    HIGH_CV,
    MIN_SAMPLES_FOR_DRIFT,
    drift_ratio,
    latency_warnings,
    mean_and_std,
    percentile,
    percentile_ci,
    summarize_latency,
)

QS = (0, 0.1, 1, 5, 10, 25, 33.3, 50, 66.6, 75, 90, 95, 99, 99.9, 100)


@pytest.mark.parametrize("size", [1, 2, 3, 4, 7, 10, 101, 1000])
def test_percentile_matches_numpy_linear(size: int) -> None:
    rng = np.random.default_rng(size)
    values = sorted(rng.lognormal(mean=1.0, sigma=0.7, size=size).tolist())
    for q in QS:
        expected = float(np.percentile(values, q))
        assert percentile(values, q) == pytest.approx(expected, rel=1e-12, abs=1e-15), (size, q)


def test_percentile_of_known_small_arrays() -> None:
    assert percentile([5.0], 0) == 5.0
    assert percentile([5.0], 50) == 5.0
    assert percentile([5.0], 100) == 5.0
    assert percentile([1.0, 3.0], 50) == 2.0
    assert percentile([1.0, 3.0], 25) == 1.5
    assert percentile([1.0, 3.0], 100) == 3.0
    assert percentile([1, 2, 3, 4], 50) == 2.5
    assert percentile([10, 20, 30, 40, 50], 90) == pytest.approx(46.0)


@pytest.mark.parametrize("q", [-0.1, 100.1, 150])
def test_percentile_rejects_q_outside_0_100(q: float) -> None:
    with pytest.raises(ValueError, match="outside 0..100"):
        percentile([1.0, 2.0], q)


def test_percentile_of_empty_sample_raises() -> None:
    with pytest.raises(ValueError):
        percentile([], 50)


@pytest.mark.parametrize("q", [50, 90, 99])
def test_percentile_ci_contains_the_estimate(q: float) -> None:
    rng = np.random.default_rng(7)
    for n in (5, 30, 200, 5000):
        values = sorted(rng.normal(10.0, 2.0, size=n).tolist())
        low, high = percentile_ci(values, q)
        estimate = percentile(values, q)
        assert low <= estimate <= high, (n, q, low, estimate, high)


def test_percentile_ci_narrows_as_n_grows() -> None:
    rng = np.random.default_rng(11)
    widths = []
    for n in (50, 500, 5000, 50000):
        values = sorted(rng.normal(0.0, 1.0, size=n).tolist())
        low, high = percentile_ci(values, 50)
        widths.append(high - low)
    assert all(later < earlier for earlier, later in zip(widths, widths[1:])), widths
    # roughly 1/sqrt(n): a 1000x larger sample gives a much narrower interval
    assert widths[-1] < widths[0] / 10


def test_percentile_ci_covers_true_median_in_most_samples() -> None:
    rng = np.random.default_rng(2024)
    trials = 200
    covered = 0
    for _ in range(trials):
        values = sorted(rng.normal(5.0, 1.0, size=100).tolist())
        low, high = percentile_ci(values, 50)
        covered += low <= 5.0 <= high
    coverage = covered / trials
    assert 0.9 <= coverage <= 1.0, coverage


def test_percentile_ci_of_one_value_is_that_value() -> None:
    assert percentile_ci([3.0], 50) == (3.0, 3.0)
    assert percentile_ci([3.0], 99) == (3.0, 3.0)


@pytest.mark.parametrize("size", [2, 3, 10, 1000])
def test_mean_and_std_match_numpy_ddof1(size: int) -> None:
    rng = np.random.default_rng(size + 100)
    values = rng.normal(3.0, 0.5, size=size).tolist()
    mean, std = mean_and_std(values)
    assert mean == pytest.approx(float(np.mean(values)), rel=1e-12)
    assert std == pytest.approx(float(np.std(values, ddof=1)), rel=1e-10)


def test_mean_and_std_of_a_single_value() -> None:
    assert mean_and_std([4.2]) == (4.2, 0.0)


def _noisy(center: float, n: int, seed: int, spread: float = 0.002) -> list[float]:
    rng = random.Random(seed)
    return [center * (1 + rng.uniform(-spread, spread)) for _ in range(n)]


def test_drift_ratio_flags_a_rising_series() -> None:
    n = 90
    rising = [1.0 + 0.5 * i / (n - 1) for i in range(n)]  # 1.0 -> 1.5: throttling
    ratio = drift_ratio(rising)
    assert ratio is not None and ratio > 1 + DRIFT_LIMIT
    summary = summarize_latency([int(v * 1e6) for v in rising])
    assert summary["drift"] == pytest.approx(ratio, rel=1e-6)
    assert any(w.startswith("drift:") and "slower" in w for w in summary["warnings"]), summary["warnings"]


def test_drift_ratio_flags_a_falling_series_as_faster() -> None:
    n = 90
    falling = [int((2.0 - i / (n - 1)) * 1e6) for i in range(n)]
    summary = summarize_latency(falling)
    assert summary["drift"] < 1 - DRIFT_LIMIT
    assert any(w.startswith("drift:") and "faster" in w for w in summary["warnings"]), summary["warnings"]


def test_drift_ratio_of_a_flat_series_is_not_flagged() -> None:
    flat = _noisy(2.0, 300, seed=3)
    ratio = drift_ratio(flat)
    assert ratio == pytest.approx(1.0, abs=0.01)
    summary = summarize_latency([int(v * 1e6) for v in flat])
    assert not any(w.startswith("drift") for w in summary["warnings"]), summary["warnings"]


def test_drift_ratio_needs_enough_samples() -> None:
    assert drift_ratio([1.0] * (MIN_SAMPLES_FOR_DRIFT - 1)) is None
    assert drift_ratio([1.0] * MIN_SAMPLES_FOR_DRIFT) == 1.0


def test_high_variance_warning_triggered_by_a_wide_spread() -> None:
    rng = random.Random(5)
    wide = [int(rng.uniform(1.0, 3.0) * 1e6) for _ in range(400)]  # robust CV ~ 0.37
    summary = summarize_latency(wide)
    assert summary["robust_cv"] > HIGH_CV
    assert any(w.startswith("high variance") for w in summary["warnings"]), summary["warnings"]


def test_high_variance_warning_not_triggered_by_a_tight_spread() -> None:
    tight = [int(v * 1e6) for v in _noisy(2.0, 400, seed=9, spread=0.01)]
    summary = summarize_latency(tight)
    assert summary["robust_cv"] < HIGH_CV
    assert not any(w.startswith("high variance") for w in summary["warnings"]), summary["warnings"]


def test_latency_warnings_on_plain_summaries() -> None:
    assert latency_warnings({"robust_cv": HIGH_CV / 2, "drift": 1.0}) == []
    assert latency_warnings({"robust_cv": None, "drift": None}) == []
    both = latency_warnings({"robust_cv": HIGH_CV * 3, "drift": 1.5})
    assert len(both) == 2
    assert both[0].startswith("high variance") and both[1].startswith("drift")


def test_summarize_latency_statistics_in_ms() -> None:
    samples_ns = [1_000_000, 2_000_000, 3_000_000, 4_000_000, 5_000_000]
    summary = summarize_latency(samples_ns)
    assert summary["n"] == 5
    assert summary["mean"] == pytest.approx(3.0)
    assert summary["std"] == pytest.approx(float(np.std([1, 2, 3, 4, 5], ddof=1)))
    assert summary["min"] == pytest.approx(1.0) and summary["max"] == pytest.approx(5.0)
    for q in (50, 90, 95, 99):
        assert summary[f"p{q}"] == pytest.approx(float(np.percentile([1, 2, 3, 4, 5], q)))
        low, high = summary[f"p{q}_ci"]
        assert low <= summary[f"p{q}"] <= high
    assert summary["iqr"] == pytest.approx(2.0)
    assert summary["drift"] is None  # too few samples


def test_summarize_latency_throughput_from_window() -> None:
    samples_ns = [10_000_000] * 100  # 100 iterations of 10 ms
    with_window = summarize_latency(samples_ns, window_ns=2_000_000_000)  # they took 2 s in all
    assert with_window["throughput"] == pytest.approx(50.0)
    without_window = summarize_latency(samples_ns)
    assert without_window["throughput"] == pytest.approx(100.0)  # 1000 / mean ms


def test_summarize_latency_counts_outliers() -> None:
    samples = [1_000_000 + i for i in range(100)] + [50_000_000]
    summary = summarize_latency(samples)
    assert summary["outliers"] == 1
    assert summary["max"] == pytest.approx(50.0)


def test_summarize_latency_of_nothing_raises() -> None:
    with pytest.raises(ValueError, match="no latency samples"):
        summarize_latency([])
