"""harness.analysis.regression: Mann-Whitney, bootstrap CIs, the decision rule, pairing, step detection."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from harness.analysis.regression import (
    DEFAULT_RUN_SD,
    Decision,
    MissingPair,
    Step,
    block_length,
    bootstrap_ratio_ci,
    decide,
    detect_steps,
    estimate_run_sd,
    mann_whitney_u,
    pair_runs,
)
from harness.records import MeasurementRecord

try:
    from scipy import stats as scipy_stats
except ImportError:  # scipy is not a dependency; brute force below checks the same thing
    scipy_stats = None


# --------------------------------------------------------------------------- Mann-Whitney

def brute_u(a, b) -> float:
    return sum(1.0 if x > y else 0.5 if x == y else 0.0 for x in a for y in b)


def brute_asymptotic_p(a, b) -> float:
    """Textbook normal approximation, written out independently of the module."""
    n1, n2 = len(a), len(b)
    n = n1 + n2
    u = brute_u(a, b)
    counts: dict[float, int] = {}
    for v in list(a) + list(b):
        counts[v] = counts.get(v, 0) + 1
    ties = sum(t ** 3 - t for t in counts.values())
    sd = math.sqrt(n1 * n2 / 12 * ((n + 1) - ties / (n * (n - 1))))
    z = (abs(u - n1 * n2 / 2) - 0.5) / sd
    return min(1.0, math.erfc(z / math.sqrt(2)))


def brute_exact_p(a, b) -> float:
    """Two-sided exact p by enumerating every way to split the pooled values."""
    pooled = list(a) + list(b)
    n1 = len(a)
    u_obs = brute_u(a, b)
    extreme = abs(u_obs - n1 * len(b) / 2)
    hits = total = 0
    for chosen in itertools.combinations(range(len(pooled)), n1):
        rest = [pooled[i] for i in range(len(pooled)) if i not in chosen]
        u = brute_u([pooled[i] for i in chosen], rest)
        total += 1
        hits += abs(u - n1 * len(b) / 2) >= extreme - 1e-9
    return hits / total


def test_mann_whitney_hand_computed_small_cases() -> None:
    # completely separated 3 vs 3: U = 0, 1 of 20 orderings per tail -> p = 2/20
    assert mann_whitney_u([1, 2, 3], [4, 5, 6]) == (0.0, pytest.approx(0.1))
    assert mann_whitney_u([4, 5, 6], [1, 2, 3]) == (9.0, pytest.approx(0.1))
    # 10 vs 10 separated, normal approximation: z = (50 - 0.5) / sqrt(175)
    u, p = mann_whitney_u(range(1, 11), range(11, 21))
    assert u == 0.0
    assert p == pytest.approx(math.erfc((49.5 / math.sqrt(175)) / math.sqrt(2)), rel=1e-12)
    # all values tied: no evidence at all
    assert mann_whitney_u([2, 2, 2], [2, 2]) == (3.0, 1.0)


@pytest.mark.parametrize("seed", range(6))
def test_mann_whitney_matches_brute_force(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n1, n2 = int(rng.integers(3, 7)), int(rng.integers(3, 7))
    a = rng.normal(0, 1, n1).round(3).tolist()
    b = rng.normal(0.7, 1, n2).round(3).tolist()
    u, p = mann_whitney_u(a, b, method="exact")
    assert u == pytest.approx(brute_u(a, b))
    assert p == pytest.approx(brute_exact_p(a, b), rel=1e-9)
    # with ties (values rounded to integers), asymptotic with tie correction
    a_tied = rng.integers(0, 4, 12).tolist()
    b_tied = rng.integers(1, 5, 15).tolist()
    u, p = mann_whitney_u(a_tied, b_tied)
    assert u == pytest.approx(brute_u(a_tied, b_tied))
    assert p == pytest.approx(brute_asymptotic_p(a_tied, b_tied), rel=1e-9)


def test_mann_whitney_exact_refuses_ties_and_large_inputs_are_fast() -> None:
    with pytest.raises(ValueError, match="ties"):
        mann_whitney_u([1, 2, 2], [2, 3], method="exact")
    with pytest.raises(ValueError, match="each side"):
        mann_whitney_u([], [1, 2])
    rng = np.random.default_rng(0)
    a = rng.lognormal(0, 0.05, 10_000)
    u, p = mann_whitney_u(a, a * 1.01)
    assert 0 <= u <= 10_000 ** 2 and p < 1e-6
    # one tiny side, one large side, no ties: exact like scipy's "auto"
    u, p = mann_whitney_u([1.5, 2.5, 3.5], np.arange(10, 2000, dtype=float))
    assert u == 0.0 and p == pytest.approx(2 / math.comb(1993, 3), rel=1e-6)


@pytest.mark.skipif(scipy_stats is None, reason="scipy not installed in this venv")
@pytest.mark.parametrize("seed", range(5))
def test_mann_whitney_matches_scipy(seed: int) -> None:  # pragma: no cover - needs scipy
    rng = np.random.default_rng(seed)
    for n1, n2 in ((5, 7), (30, 40), (1000, 1200)):
        a = rng.lognormal(0, 0.1, n1).round(2)
        b = rng.lognormal(0.03, 0.1, n2).round(2)
        expected = scipy_stats.mannwhitneyu(a, b, alternative="two-sided")
        u, p = mann_whitney_u(a, b)
        assert u == pytest.approx(expected.statistic)
        assert p == pytest.approx(expected.pvalue, rel=1e-6)


# --------------------------------------------------------------------------- bootstrap

def test_bootstrap_ci_covers_true_ratio_and_is_seeded() -> None:
    rng = np.random.default_rng(3)
    # lognormal with median exp(mu): true ratio of medians exp(0.2)
    true_ratio = math.exp(0.2)
    covered = 0
    trials = 60
    for _ in range(trials):
        a = rng.lognormal(0.0, 0.3, 300)
        b = rng.lognormal(0.2, 0.3, 300)
        low, high = bootstrap_ratio_ci(a, b, resamples=400, seed=1)
        assert low < high
        covered += low <= true_ratio <= high
    assert covered / trials >= 0.85  # nominal 95%; loose so the test is not flaky
    a = rng.lognormal(0.0, 0.3, 300)
    b = rng.lognormal(0.2, 0.3, 300)
    assert bootstrap_ratio_ci(a, b, seed=7) == bootstrap_ratio_ci(a, b, seed=7)
    low, high = bootstrap_ratio_ci(a, b, statistic="p90", level=0.9, resamples=500)
    assert 1.0 < low < high


def ar1(rng: np.random.Generator, n: int, rho: float, sigma: float) -> np.ndarray:
    noise = rng.normal(0, sigma * math.sqrt(1 - rho * rho), n)
    out = np.empty(n)
    out[0] = rng.normal(0, sigma)
    for i in range(1, n):
        out[i] = rho * out[i - 1] + noise[i]
    return out


def test_block_bootstrap_widens_interval_for_autocorrelated_runs() -> None:
    rng = np.random.default_rng(5)
    a = np.exp(ar1(rng, 2000, 0.8, 0.05))
    b = np.exp(ar1(rng, 2000, 0.8, 0.05))
    assert block_length(a) > 1
    assert block_length(rng.lognormal(0, 0.05, 2000)) == 1
    iid_low, iid_high = bootstrap_ratio_ci(a, b, block=1, resamples=500)
    low, high = bootstrap_ratio_ci(a, b, resamples=500)
    assert (high - low) > 1.5 * (iid_high - iid_low)


# --------------------------------------------------------------------------- decide

QUIET = 0.005  # run-to-run sd of a quiet, dedicated device


def run(rng: np.random.Generator, n: int = 1000, scale: float = 1.0, sigma: float = 0.04) -> np.ndarray:
    return 5e6 * scale * rng.lognormal(0, sigma, n)


def test_identical_runs_are_no_change() -> None:
    rng = np.random.default_rng(11)
    for _ in range(5):
        d = decide(run(rng), run(rng), run_sd=QUIET)
        assert d.status == "no change", d.reason
        assert d.n_reference == d.n_candidate == 1000
        assert d.ci[0] < d.ratio < d.ci[1]
    # with the default (noisier) run-to-run sd a single pair may be too noisy to call, but
    # is never a regression
    d = decide(run(rng), run(rng))
    assert d.status in ("no change", "inconclusive") and d.run_sd == DEFAULT_RUN_SD


def test_planted_slowdown_is_a_regression() -> None:
    rng = np.random.default_rng(12)
    d = decide(run(rng), run(rng, scale=1.10))
    assert d.status == "regression", d.reason
    assert d.ratio == pytest.approx(1.10, rel=0.01)
    assert d.ci[0] > 1.0 and d.p_value < 0.01
    assert d.reason.startswith(f"p50 {(d.ratio - 1) * 100:+.1f}% [")
    assert d.reason.endswith("beyond threshold 3%")


def test_planted_speed_up_is_an_improvement() -> None:
    rng = np.random.default_rng(13)
    d = decide(run(rng), run(rng, scale=0.90))
    assert d.status == "improvement", d.reason
    assert d.ci[1] < 1.0


def test_small_real_change_below_threshold_is_no_change() -> None:
    rng = np.random.default_rng(14)
    d = decide(run(rng, n=5000), run(rng, n=5000, scale=1.01), run_sd=QUIET)
    assert d.status == "no change", d.reason
    assert d.ratio == pytest.approx(1.01, abs=0.004)


def test_beyond_threshold_but_noisy_is_inconclusive_not_regression() -> None:
    rng = np.random.default_rng(15)
    # a 6% difference between two single runs of a device whose runs vary by 5% run to run
    d = decide(run(rng), run(rng, scale=1.06), run_sd=0.05)
    assert d.status == "inconclusive", d.reason
    assert "not significant" in d.reason
    # the iid Mann-Whitney test alone would have called it: the guard is not the rule
    assert d.mwu_p < 1e-6


def test_repeated_runs_narrow_the_run_to_run_part() -> None:
    rng = np.random.default_rng(16)
    offsets = rng.normal(0, 0.015, 10)
    base = [run(rng, n=300, scale=math.exp(o)) for o in offsets[:5]]
    cand = [run(rng, n=300, scale=1.05 * math.exp(o)) for o in offsets[5:]]
    single = decide(base[0], cand[0], run_sd=0.015)
    several = decide(base, cand, run_sd=0.015)
    assert several.n_reference == 1500
    assert several.se < single.se
    assert several.status == "regression", several.reason


def test_throughput_like_metric_and_other_statistics() -> None:
    rng = np.random.default_rng(17)
    base, cand = run(rng), run(rng, scale=0.9)
    d = decide(base, cand, higher_is_worse=False)
    assert d.status == "regression"
    d = decide(base, cand, statistic="p90")
    assert d.statistic == "p90" and d.status == "improvement"
    assert decide(base, cand, statistic="mean").statistic == "mean"
    with pytest.raises(ValueError, match="unknown statistic"):
        decide(base, cand, statistic="average")
    with pytest.raises(ValueError, match="positive"):
        decide([1, 2, -3, 4, 5], cand)


def test_missing_and_tiny_samples() -> None:
    d = decide([], [1.0, 2.0])
    assert d.status == "missing" and d.reason == "no baseline samples" and d.ratio is None
    assert decide(None, None).reason == "no baseline and candidate samples"
    d = decide([1.0, 2.0, 3.0], [1.0, 2.0, 3.0, 4.0, 5.0, 6.0])
    assert d.status == "inconclusive" and "at least" in d.reason
    assert isinstance(d, Decision)


# --------------------------------------------------------------------------- pairing

def record(run_id: str, model: str, variant: str = "fp32", status: str = "ok", samples=(1, 2, 3),
           metric: str = "latency", target: str = "local", id: int | None = None) -> MeasurementRecord:
    meta = {"error": "agent crashed"} if status != "ok" else {}
    return MeasurementRecord(run_id=run_id, target=target, model=model, variant=variant, metric=metric,
                             unit="ms", status=status, summary={}, meta=meta,
                             samples=samples if status == "ok" else None, samples_unit="ns", id=id)


def test_pair_runs_lists_everything_missing() -> None:
    baseline = [record("b", "a"), record("b", "both"), record("b", "fails"), record("b", "gone"),
                record("b", "both", metric="memory")]
    candidate = [record("c", "both"), record("c", "fails", status="error"), record("c", "new"),
                 record("c", "nosamples", samples=())]
    pairs, missing = pair_runs(baseline, candidate)
    assert [p.model for p in pairs] == ["both"]
    assert pairs[0].reference.run_id == "b" and pairs[0].candidate.run_id == "c"
    by_model = {m.model: m for m in missing}
    assert set(by_model) == {"a", "fails", "gone", "new", "nosamples"}
    assert by_model["a"].side == "candidate" and "not measured in the candidate run" in by_model["a"].reason
    assert by_model["fails"].side == "candidate" and "agent crashed" in by_model["fails"].reason
    assert by_model["new"].side == "baseline"
    assert by_model["nosamples"].side == "both"
    assert all(isinstance(m, MissingPair) for m in missing)
    # every key lands in exactly one list
    pairs_all, missing_all = pair_runs(baseline, candidate, metric=None)
    assert len(pairs_all) + len(missing_all) == 7


def test_pair_runs_uses_the_later_of_duplicate_records() -> None:
    pairs, missing = pair_runs([record("b", "m", id=1, samples=(1,)), record("b", "m", id=2, samples=(2,))],
                               [record("c", "m", id=3)])
    assert not missing and pairs[0].reference.samples == (2,)


# --------------------------------------------------------------------------- step detection

def nightly(rng: np.random.Generator, levels: np.ndarray, sd: float = 0.01) -> list[float]:
    return (5.0 * levels * np.exp(rng.normal(0, sd, levels.size))).tolist()


@pytest.mark.parametrize("seed", range(10))
def test_step_at_night_12_is_found_at_12(seed: int) -> None:
    rng = np.random.default_rng(seed)
    levels = np.ones(30)
    levels[12:] = 1.08
    steps = detect_steps(nightly(rng, levels))
    assert len(steps) == 1, steps
    assert steps[0].index == 12 and steps[0].kind == "step"
    assert steps[0].ratio == pytest.approx(1.08, abs=0.015)
    assert steps[0].before == pytest.approx(5.0, rel=0.01)


@pytest.mark.parametrize("seed", range(10))
def test_slow_drift_of_one_percent_a_night_is_flagged(seed: int) -> None:
    rng = np.random.default_rng(100 + seed)
    levels = np.ones(30)
    levels[10:18] = 1.01 ** np.arange(1, 9)
    levels[18:] = 1.01 ** 8
    steps = detect_steps(nightly(rng, levels, sd=0.005))
    assert steps, "drift not flagged"
    assert all(s.ratio > 1 for s in steps)
    first = steps[0]
    assert 9 <= first.index <= 16
    # the flagged change covers most of the 8.3% drift
    assert max(s.ratio for s in steps) > 1.04


@pytest.mark.parametrize("seed", range(20))
def test_flat_noisy_series_has_no_step(seed: int) -> None:
    rng = np.random.default_rng(200 + seed)
    assert detect_steps(nightly(rng, np.ones(40), sd=0.01)) == []


def test_detect_steps_edge_cases() -> None:
    assert detect_steps([]) == []
    assert detect_steps([1.0, 2.0, 3.0]) == []
    # one bad night is not a step
    assert detect_steps([5.0] * 10 + [9.0] + [5.0] * 10) == []
    # nor is the newest night alone (not blamed on the night before it); two nights are
    assert detect_steps([5.0] * 10 + [9.0]) == []
    (step,) = detect_steps([5.0] * 10 + [9.0] * 2)
    assert (step.index, step.ratio) == (10, pytest.approx(1.8))
    # missing nights keep the indexes of the history as given
    history = [5.0] * 10 + [None, float("nan")] + [6.0] * 10
    steps = detect_steps(history)
    assert steps == [Step(index=12, before=pytest.approx(5.0), after=pytest.approx(6.0),
                          ratio=pytest.approx(1.2), kind="step", end_index=12)]
    # a step down
    steps = detect_steps([6.0] * 8 + [5.0] * 8)
    assert len(steps) == 1 and steps[0].ratio == pytest.approx(5 / 6)
    with pytest.raises(ValueError, match="positive"):
        detect_steps([1.0, 0.0, 1.0, 1.0])


def test_estimate_run_sd_ignores_steps() -> None:
    rng = np.random.default_rng(21)
    values = np.exp(rng.normal(0, 0.02, 60))
    values[30:] *= 1.3
    estimate = estimate_run_sd(values.tolist())
    assert 0.013 < estimate < 0.03
    assert estimate_run_sd([1.0, 2.0]) is None


def contended(rng: np.random.Generator, n: int = 1000) -> np.ndarray:
    """A run that shared the cores with another job: 30% slower and much noisier."""
    return run(rng, n=n, scale=1.3, sigma=0.25)


def test_contended_run_blocks_a_verdict_and_is_left_out_of_several() -> None:
    rng = np.random.default_rng(18)
    d = decide(run(rng), contended(rng))
    assert d.status == "inconclusive", d.reason
    assert "candidate run: robust CV" in d.reason and "re-run" in d.reason
    assert d.flags and d.flags[0].startswith("candidate run: robust CV")
    # without the screen the same pair is (wrongly) a regression
    assert decide(run(rng), contended(rng), screen=False).status == "regression"
    # among several runs the flagged one is left out and the verdict stands on the others
    base = [run(rng, n=500) for _ in range(3)]
    cand = [run(rng, n=500, scale=1.10), contended(rng, 500), run(rng, n=500, scale=1.10)]
    d = decide(base, cand)
    assert d.status == "regression", d.reason
    assert d.n_candidate == 1000 and d.flags == (d.flags[0],) and d.flags[0].endswith("(left out)")
    assert d.ratio == pytest.approx(1.10, rel=0.02)
