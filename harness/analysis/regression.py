"""Regression decisions: a candidate run against a stored baseline run. Pure, no I/O.

The question users ask is "did this model get slower on this target since last night (or
since release X)?". One answer per (target, model, variant, metric), from the raw samples of
the two runs. This module holds the rule, its statistics, the pairing of two runs' records,
and step detection over a per-run history (asv's ``step_detect`` idea).

The rule (``decide``)
---------------------
Samples inside one run are autocorrelated, and two runs of the same code on the same device
differ by a run-to-run offset that is larger than the within-run noise (measured on this
project's local target: docs/regression.md). A test that treats 1,000 samples of one run as
independent draws calls almost every identical-code (A/A) pair significant. So:

1. ``ratio`` = statistic(candidate) / statistic(baseline), the statistic (default the
   median) computed on the raw samples of each run. With several runs per side, the
   geometric mean of the per-run statistics.
2. Its uncertainty has two parts, added on the log scale:
   - within-run: the variance of log(statistic) from a *moving-block* bootstrap of each run
     (blocks of contiguous samples, length chosen from the lag-1 autocorrelation), so
     autocorrelation widens the interval instead of faking precision;
   - run-to-run: ``run_sd``, the standard deviation of log(statistic) between repeated runs
     of identical code, which no single run can show. It must come from outside the pair:
     ``estimate_run_sd`` over the target's history (nightly p50s) or over a few A/A runs;
     the default ``DEFAULT_RUN_SD`` is what this project measured on its local target for
     its smallest model. With several runs per side it is pooled with the spread of the
     per-run statistics (``PRIOR_RUNS`` runs' worth of weight on the prior).
   ``se`` = sqrt(within_a + within_b + run_var * (1/k_a + 1/k_b)); ``p_value`` is the
   two-sided normal p of log(ratio)/se and ``ci`` = exp(log(ratio) +- z * se) at
   ``level`` (default 1 - alpha, so "ci excludes 1" and "p < alpha" are the same thing).
3. The status, first match wins:
   - "missing": a side has no samples at all;
   - "inconclusive": a run has fewer than ``MIN_SAMPLES`` samples;
   - "inconclusive": a run in use carries the harness's own noise or drift flag
     (``run_flags``: robust CV > 10%, or > 10% drift across the run). On the shared local
     target every run that came out 20-70% slow had one (another job on the cores), and no
     within-pair statistic can tell such an offset from a code change. With several runs
     on a side, flagged runs are left out instead, as long as one clean run stays;
   - "regression": the ratio is beyond the threshold in the worse direction
     (> 1 + threshold when higher is worse, < 1 - threshold otherwise) AND p < alpha AND
     the samples differ by rank (Mann-Whitney p < alpha: a guard for tiny samples; it
     assumes independent samples, so on long runs it never binds);
   - "improvement": the same in the better direction;
   - "inconclusive": beyond the threshold but not significant;
   - "no change": within the threshold and the ci inside 1 +- 2 x threshold (a significant
     change smaller than the threshold is still "no change", and says so);
   - "inconclusive": within the threshold, but the ci reaches past 2 x threshold: the pair
     is too noisy to tell a 2 x threshold change from none (say so rather than "no change").
   With ``run_sd`` right, A/A pairs are called a regression (or an improvement) about
   alpha/2 of the time each; tests/bench/test_regression_quality.py measures it.

Step detection (``detect_steps``)
---------------------------------
Over a per-run series in time order (one value per night), an optimal piecewise-constant
fit of log(values) by dynamic programming (least squares plus a penalty per segment of
``PENALTY_FACTOR * sigma^2 * ln(n)``, sigma the robust night-to-night noise; every segment
at least ``min_size`` long, and points further than 4 sigma from a running median of
``2 min_size - 1`` points clipped first, so one bad night is never a step). Consecutive
level changes in the same direction separated by short segments (at most ``max_ramp_gap``
points) are one event: a slow drift is fitted as a staircase of small steps, each below the threshold,
whose sum is not. An event is reported when its total change reaches the threshold; kind
"step" for a single level change, "drift" for a ramp.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from statistics import NormalDist
from typing import Any, Iterable, Sequence

import numpy as np
import numpy.typing as npt

from harness.records import MeasurementRecord
from harness.analysis.stats import HIGH_CV, drift_ratio, is_drifting, is_noisy, robust_cv

DEFAULT_THRESHOLD = 0.03
DEFAULT_ALPHA = 0.01
# sd of log(p50) between repeated 1-s runs of identical code: tiny_cnn fp32 on the local
# target (2-core shared VM), 2026-11-22, clean runs, see docs/regression.md. Targets differ:
# pass the value estimated from the target's own history (``estimate_run_sd``).
DEFAULT_RUN_SD = 0.02
PRIOR_RUNS = 4  # weight of run_sd, in runs, when several runs per side let the data speak
MIN_SAMPLES = 5
EQUIVALENCE_FACTOR = 2.0  # "no change" needs the ci inside 1 +- EQUIVALENCE_FACTOR x threshold
DECIDE_RESAMPLES = 100  # bootstrap resamples for the within-run variance (an se, not a tail)
PENALTY_FACTOR = 3.0
STATUSES = ("regression", "improvement", "no change", "inconclusive", "missing")

_SQRT2 = math.sqrt(2.0)
_MAX_CHUNK_ELEMENTS = 2_000_000  # bootstrap memory bound: resamples x samples per chunk


# --------------------------------------------------------------------------- helpers

def _normal_sf(z: float) -> float:
    return 0.5 * math.erfc(z / _SQRT2)


def _normal_quantile(p: float) -> float:
    if not 0.0 < p < 1.0:
        raise ValueError(f"normal quantile of {p}: must be strictly between 0 and 1")
    return NormalDist().inv_cdf(p)


def _as_samples(values: Any, name: str) -> np.ndarray:
    x = np.asarray(values, dtype=float).ravel()
    if x.size and not np.all(np.isfinite(x)):
        raise ValueError(f"{name}: samples contain NaN or infinity")
    return x


def _as_positive(values: Any, name: str) -> np.ndarray:
    x = _as_samples(values, name)
    if x.size and np.any(x <= 0):
        raise ValueError(f"{name}: samples must be positive (latencies, throughputs), got {x.min()!r}")
    return x


def _statistic_label(statistic: str) -> str:
    return "p50" if statistic == "median" else statistic


def _check_statistic(statistic: str) -> None:
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


def _statistic(x: np.ndarray, statistic: str, axis: int = -1) -> np.ndarray:
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


# --------------------------------------------------------------------------- Mann-Whitney

def _ranks_with_ties(values: np.ndarray) -> tuple[np.ndarray, float]:
    """1-based average ranks and the tie term sum(t^3 - t) over tie groups."""
    n = values.size
    order = np.argsort(values, kind="mergesort")
    ordered = values[order]
    new_group = np.empty(n, dtype=bool)
    new_group[0] = True
    np.not_equal(ordered[1:], ordered[:-1], out=new_group[1:])
    starts = np.flatnonzero(new_group)
    counts = np.diff(np.append(starts, n))
    average = starts + (counts + 1) / 2.0
    ranks = np.empty(n, dtype=float)
    ranks[order] = np.repeat(average, counts)
    tie_term = float(np.sum(counts.astype(float) ** 3 - counts))
    return ranks, tie_term


def _exact_u_counts(n1: int, n2: int) -> np.ndarray:
    """Number of orderings giving U = 0..n1*n2 (coefficients of the Gaussian binomial)."""
    m, other = (n1, n2) if n1 <= n2 else (n2, n1)
    size = m * other + 1
    poly = np.zeros(size)
    poly[0] = 1.0
    for i in range(1, m + 1):
        k = other + i  # times (1 - q^k) / (1 - q^i): the result is [other+i choose i]_q again
        if k < size:
            poly[k:] -= poly[:size - k].copy()
        for r in range(i):
            poly[r::i] = np.cumsum(poly[r::i])
    return np.maximum(poly, 0.0)


def mann_whitney_u(a: Sequence[float], b: Sequence[float], *, method: str = "auto",
                   use_continuity: bool = True) -> tuple[float, float]:
    """Mann-Whitney U of `a` against `b` and its two-sided p-value.

    U is the statistic of `a` (the count of pairs with a > b, ties counting one half), as in
    scipy >= 1.7. method "asymptotic" uses the normal approximation with the tie correction
    and (by default) the continuity correction; "exact" the exact null distribution (no ties
    allowed); "auto" picks exact when a side has at most 8 samples and there are no ties,
    like scipy. O((n1 + n2) log(n1 + n2)): 10^4 samples a side take a few milliseconds.
    """
    x = _as_samples(a, "a")
    y = _as_samples(b, "b")
    n1, n2 = x.size, y.size
    if n1 == 0 or n2 == 0:
        raise ValueError("Mann-Whitney U needs at least one sample on each side")
    if method not in ("auto", "asymptotic", "exact"):
        raise ValueError(f"method {method!r}: use auto, asymptotic or exact")
    n = n1 + n2
    ranks, tie_term = _ranks_with_ties(np.concatenate([x, y]))
    u1 = float(ranks[:n1].sum() - n1 * (n1 + 1) / 2.0)
    u_big = max(u1, n1 * n2 - u1)
    if method == "auto":
        method = "exact" if (min(n1, n2) <= 8 and tie_term == 0) else "asymptotic"
    if method == "exact":
        if tie_term != 0:
            raise ValueError("exact Mann-Whitney p-value needs samples without ties; use asymptotic")
        counts = _exact_u_counts(n1, n2)
        tail = counts[int(round(u_big)):].sum() / counts.sum()  # P(U >= u_big)
        return u1, float(min(1.0, 2.0 * tail))
    mean = n1 * n2 / 2.0
    variance = n1 * n2 / 12.0 * ((n + 1) - tie_term / (n * (n - 1)))
    if variance <= 0:  # every value tied: no evidence of a difference
        return u1, 1.0
    z = (u_big - mean - (0.5 if use_continuity else 0.0)) / math.sqrt(variance)
    return u1, float(min(1.0, 2.0 * _normal_sf(z)))


# --------------------------------------------------------------------------- bootstrap

def block_length(samples: Sequence[float]) -> int:
    """Moving-block length for a run's samples in time order: 1 when they look independent,
    else the Politis-White-style rule n^(1/3) * (2 rho / (1 - rho^2))^(2/3) on the lag-1
    autocorrelation of log values, winsorised so a few outliers do not set it."""
    x = _as_samples(samples, "samples")
    n = x.size
    if n < 8:
        return 1
    y = np.log(x) if np.all(x > 0) else x
    center = np.median(y)
    spread = 1.4826 * np.median(np.abs(y - center))
    if spread > 0:
        y = np.clip(y, center - 4 * spread, center + 4 * spread)
    y = y - y.mean()
    denominator = float(np.dot(y, y))
    if denominator == 0:
        return 1
    rho = float(np.dot(y[1:], y[:-1]) / denominator)
    if rho <= 2.0 / math.sqrt(n):  # indistinguishable from independent
        return 1
    rho = min(rho, 0.95)
    length = math.ceil(n ** (1 / 3) * (2 * rho / (1 - rho * rho)) ** (2 / 3))
    return int(max(1, min(length, n // 4)))


def _bootstrap_statistic(x: np.ndarray, statistic: str, resamples: int, block: int,
                         rng: np.random.Generator) -> np.ndarray:
    """`resamples` moving-block bootstrap replicates of statistic(x), vectorised in chunks."""
    n = x.size
    block = max(1, min(block, n))
    blocks_per_resample = -(-n // block)
    offsets = np.arange(block)
    out = np.empty(resamples)
    chunk = max(1, _MAX_CHUNK_ELEMENTS // max(n, 1))
    for start in range(0, resamples, chunk):
        rows = min(chunk, resamples - start)
        if block == 1:
            index = rng.integers(0, n, size=(rows, n))
        else:
            starts = rng.integers(0, n - block + 1, size=(rows, blocks_per_resample))
            index = (starts[:, :, None] + offsets).reshape(rows, -1)[:, :n]
        resampled = x[index]
        if statistic == "median":  # in place: the resample is a fresh array (2x faster than np.median)
            half = n // 2
            resampled.partition([half - 1, half] if n % 2 == 0 and n > 1 else [half], axis=1)
            out[start:start + rows] = (resampled[:, half] if n % 2 else
                                       0.5 * (resampled[:, half - 1] + resampled[:, half]))
        else:
            out[start:start + rows] = _statistic(resampled, statistic, axis=1)
    return out


def bootstrap_ratio_ci(a: Sequence[float], b: Sequence[float], statistic: str = "median",
                       level: float = 0.95, resamples: int = 2000, seed: int = 0,
                       block: int | None = None) -> tuple[float, float]:
    """Percentile bootstrap interval of statistic(b) / statistic(a).

    Each side is resampled on its own (the runs are independent), in contiguous blocks of
    `block` samples so within-run autocorrelation is kept; None picks the length from the
    data (``block_length``), 1 is the classic iid bootstrap. Seeded, so the same inputs give
    the same interval. Only within-run noise is in it: see ``decide`` for run-to-run noise.
    """
    _check_statistic(statistic)
    if not 0 < level < 1:
        raise ValueError(f"level {level}: must be between 0 and 1")
    if resamples < 10:
        raise ValueError(f"resamples {resamples}: need at least 10")
    x = _as_positive(a, "a")
    y = _as_positive(b, "b")
    if x.size == 0 or y.size == 0:
        raise ValueError("bootstrap interval needs samples on both sides")
    rng = np.random.default_rng(seed)
    stat_a = _bootstrap_statistic(x, statistic, resamples, block or block_length(x), rng)
    stat_b = _bootstrap_statistic(y, statistic, resamples, block or block_length(y), rng)
    log_ratio = np.log(stat_b) - np.log(stat_a)
    tail = (1 - level) / 2
    low, high = np.quantile(log_ratio, [tail, 1 - tail])
    return float(math.exp(low)), float(math.exp(high))


# --------------------------------------------------------------------------- run-to-run noise

def estimate_run_sd(run_statistics: Sequence[float | None], *, min_size: int = 2) -> float | None:
    """The sd of log(statistic) between runs of unchanged code, from a per-run series in
    time order (nightly p50s of one target/model/variant) or from repeated A/A runs.

    The series is cut at its level changes first (the segmentation of ``detect_steps``, any
    size), so code changes do not inflate it, while slow machine-state wander between runs
    still counts (it separates a baseline from a candidate run as much as noise does). Runs
    further than 3.5 robust sds from their segment's median are dropped: contended runs,
    which ``decide`` screens by their flags anyway; better still, leave out the runs whose
    summary carries a noise or drift warning before calling this. None with < 4 values.
    Includes within-run sampling noise, which makes it slightly conservative in ``decide``.
    """
    fitted = _fit_levels(run_statistics, threshold=DEFAULT_THRESHOLD, min_size=min_size, penalty=None)
    if fitted is None or len(fitted[0]) < 4:
        return None
    _, y, _, starts, ends, _ = fitted
    residuals = np.concatenate([y[s:e] - np.median(y[s:e]) for s, e in zip(starts, ends)])
    spread = 1.4826 * float(np.median(np.abs(residuals)))
    keep = np.abs(residuals) <= 3.5 * spread if spread > 0 else np.ones(residuals.size, dtype=bool)
    dof = int(keep.sum()) - len(starts)
    if dof < 2:
        return None
    return float(math.sqrt(np.sum(residuals[keep] ** 2) / dof))


# --------------------------------------------------------------------------- decide

@dataclass(frozen=True)
class Decision:
    """The verdict on one (target, model, variant, metric) pair of runs."""

    status: str  # one of STATUSES
    ratio: float | None  # candidate / baseline of the statistic
    ci: tuple[float, float] | None  # of the ratio, at `level`
    p_value: float | None  # two-sided, of log(ratio) against its within + run-to-run se
    threshold: float
    statistic: str
    n_baseline: int  # samples used (flagged runs left out of a multi-run side do not count)
    n_candidate: int
    reason: str  # one line for humans
    se: float | None = None  # standard error of log(ratio)
    mwu_p: float | None = None  # Mann-Whitney p on the pooled samples (iid assumption: a guard)
    run_sd: float | None = None  # the run-to-run sd that went into se
    level: float | None = None  # of ci
    flags: tuple[str, ...] = ()  # runs the harness flags as noisy or drifting (see decide)

    @property
    def change(self) -> float | None:
        """ratio - 1: +0.05 = 5% higher than the baseline."""
        return None if self.ratio is None else self.ratio - 1.0


def _runs(samples: Any, name: str) -> list[np.ndarray]:
    """One run's samples, or a list of runs' samples, as a list of arrays (empty runs kept
    out; None or nothing at all gives an empty list)."""
    if samples is None:
        return []
    if isinstance(samples, np.ndarray):
        groups = [samples] if samples.ndim <= 1 else list(samples)
    else:
        items = list(samples)
        if items and all(isinstance(item, (Sequence, np.ndarray)) and not isinstance(item, (str, bytes))
                         for item in items):
            groups = items
        else:
            groups = [items]
    runs = [_as_positive(group, name) for group in groups]
    return [run for run in runs if run.size]


def run_flags(samples: npt.ArrayLike) -> list[str]:
    """Why a run is not trusted for a regression call: the harness's own noise and drift
    flags (``harness.analysis.stats.is_noisy`` / ``is_drifting``, the ones behind a latency
    summary's warnings), worded for a decision's reason. On the shared local target every
    run that came out 20-70% slow (another job on the cores) carried one of them; see
    docs/regression.md."""
    x = _as_samples(samples, "samples")
    if x.size == 0:
        return []
    in_time_order = x.tolist()
    flags = []
    noise = robust_cv(sorted(in_time_order))
    if is_noisy(noise):
        flags.append(f"robust CV {noise:.0%} > {HIGH_CV:.0%}")
    drift = drift_ratio(in_time_order)
    if drift is not None and is_drifting(drift):
        flags.append(f"drift {drift - 1:+.0%} from first to last third")
    return flags


def _pct(ratio: float) -> str:
    return f"{(ratio - 1) * 100:+.1f}%"


def _p(p: float) -> str:
    return f"{p:.2g}" if p >= 1e-3 else f"{p:.0e}"


def decide(baseline_samples: Any, candidate_samples: Any, *, threshold: float = DEFAULT_THRESHOLD,
           alpha: float = DEFAULT_ALPHA, statistic: str = "median", higher_is_worse: bool = True,
           run_sd: float | None = None, level: float | None = None, screen: bool = True,
           resamples: int = DECIDE_RESAMPLES, seed: int = 0) -> Decision:
    """Decide whether the candidate regressed against the baseline (rule: module docstring).

    `baseline_samples` / `candidate_samples`: one run's raw samples in time order, or a list
    of runs' samples (repeated runs narrow the run-to-run part). `threshold` is the smallest
    relative change worth calling (0.03 = 3%); `alpha` the significance level; `run_sd` the
    sd of log(statistic) between runs of identical code on this target (None: DEFAULT_RUN_SD);
    `higher_is_worse` False for throughput-like metrics. `screen` makes any verdict
    "inconclusive" when a run in use is flagged noisy or drifting (``run_flags``; flagged
    runs among several on a side are left out instead): such runs were contended, and their
    offset is not the code's doing. `resamples` and `seed` drive the within-run bootstrap.
    """
    _check_statistic(statistic)
    if not threshold > 0:
        raise ValueError(f"threshold {threshold}: must be > 0 (0.03 = 3%)")
    if not 0 < alpha < 1:
        raise ValueError(f"alpha {alpha}: must be between 0 and 1")
    run_sd = DEFAULT_RUN_SD if run_sd is None else float(run_sd)
    if run_sd < 0 or not math.isfinite(run_sd):
        raise ValueError(f"run_sd {run_sd}: must be a finite sd >= 0 of log(statistic)")
    level = 1 - alpha if level is None else level
    if not 0 < level < 1:
        raise ValueError(f"level {level}: must be between 0 and 1")
    label = _statistic_label(statistic)
    base_runs = _runs(baseline_samples, "baseline")
    cand_runs = _runs(candidate_samples, "candidate")
    n_base = sum(run.size for run in base_runs)
    n_cand = sum(run.size for run in cand_runs)
    common = dict(threshold=threshold, statistic=label, n_baseline=n_base, n_candidate=n_cand,
                  run_sd=run_sd, level=level)
    if not base_runs or not cand_runs:
        side = " and ".join(s for s, runs in (("baseline", base_runs), ("candidate", cand_runs)) if not runs)
        return Decision("missing", None, None, None, reason=f"no {side} samples", **common)
    short = [f"{side} has {min(r.size for r in runs)} samples in a run"
             for side, runs in (("baseline", base_runs), ("candidate", cand_runs))
             if min(r.size for r in runs) < MIN_SAMPLES]
    if short:
        return Decision("inconclusive", None, None, None,
                        reason="; ".join(short) + f" (need at least {MIN_SAMPLES})", **common)

    # the screen: runs the harness flags as noisy or drifting; with several runs on a side the
    # flagged ones are left out (if a clean one remains), otherwise they block the verdict
    flags: list[str] = []
    blocking: list[str] = []
    left_out: list[str] = []
    used: dict[str, list[np.ndarray]] = {}
    for side, runs in (("baseline", base_runs), ("candidate", cand_runs)):
        per_run = [run_flags(run) for run in runs] if screen else [[] for _ in runs]
        names = [f"{side} run {i + 1}" if len(runs) > 1 else f"{side} run" for i in range(len(runs))]
        clean = [run for run, found in zip(runs, per_run) if not found]
        drop = bool(clean) and len(clean) < len(runs)
        for name, found in zip(names, per_run):
            if found:
                flags.append(f"{name}: {', '.join(found)}" + (" (left out)" if drop else ""))
                (left_out if drop else blocking).append(f"{name}: {', '.join(found)}")
        used[side] = clean if drop else runs
    base_runs, cand_runs = used["baseline"], used["candidate"]
    common.update(n_baseline=sum(run.size for run in base_runs), n_candidate=sum(run.size for run in cand_runs))

    rng = np.random.default_rng(seed)

    def side_level(runs: list[np.ndarray]) -> tuple[float, float, float]:
        """mean log statistic over runs, its within-run variance, spread of runs' logs."""
        logs, within = [], []
        # the side's within-run variance is the mean over its runs: `resamples` in all keeps
        # its precision, so each of k runs needs only resamples / k of them
        per_run = max(20, -(-resamples // len(runs)))
        for run in runs:
            logs.append(math.log(float(_statistic(run, statistic))))
            replicates = np.log(_bootstrap_statistic(run, statistic, per_run, block_length(run), rng))
            within.append(float(np.var(replicates, ddof=1)))
        k = len(runs)
        spread = float(np.var(logs, ddof=1)) * (k - 1) if k > 1 else 0.0  # sum of squares
        return float(np.mean(logs)), float(np.sum(within)) / (k * k), spread

    log_a, within_a, ss_a = side_level(base_runs)
    log_b, within_b, ss_b = side_level(cand_runs)
    k_a, k_b = len(base_runs), len(cand_runs)
    df = (k_a - 1) + (k_b - 1)
    run_var = run_sd ** 2
    if df > 0:  # the runs' own spread (which includes within-run noise) pooled with the prior
        run_var = (PRIOR_RUNS * run_var + ss_a + ss_b) / (PRIOR_RUNS + df)
    se = math.sqrt(within_a + within_b + run_var * (1 / k_a + 1 / k_b))
    log_ratio = log_b - log_a
    ratio = math.exp(log_ratio)
    if se > 0:
        p_value = min(1.0, 2 * _normal_sf(abs(log_ratio) / se))
    else:
        p_value = 0.0 if log_ratio != 0 else 1.0
    z = _normal_quantile(0.5 + level / 2)
    ci = (math.exp(log_ratio - z * se), math.exp(log_ratio + z * se))
    _, mwu_p = mann_whitney_u(np.concatenate(base_runs), np.concatenate(cand_runs))

    worse = ratio > 1 + threshold if higher_is_worse else ratio < 1 - threshold
    better = ratio < 1 - threshold if higher_is_worse else ratio > 1 + threshold
    significant = p_value < alpha and mwu_p < alpha
    summary = f"{label} {_pct(ratio)} [{_pct(ci[0])}, {_pct(ci[1])}], p={_p(p_value)}"
    limit = f"threshold {threshold:.0%}" if threshold * 100 == round(threshold * 100) else f"threshold {threshold:.1%}"
    noise = f"run-to-run sd {math.sqrt(run_var):.1%}" + (f" over {k_a}+{k_b} runs" if df > 0 else "")
    if blocking:
        status = "inconclusive"
        reason = f"{summary}, but {'; '.join(blocking)}: re-run before calling it"
    elif (worse or better) and significant:
        status = "regression" if worse else "improvement"
        reason = f"{summary} beyond {limit}"
    elif worse or better:
        status = "inconclusive"
        why = (f"p >= alpha {alpha:g}" if p_value >= alpha
               else f"samples do not differ by rank (Mann-Whitney p={_p(mwu_p)})")
        reason = f"{summary}: beyond {limit} but not significant ({why}; {noise})"
    elif ci[0] > 1 - EQUIVALENCE_FACTOR * threshold and ci[1] < 1 + EQUIVALENCE_FACTOR * threshold:
        status = "no change"
        reason = f"{summary} within {limit}" + (" (significant, but smaller)" if significant else "")
    else:
        status = "inconclusive"
        reason = (f"{summary}: within {limit}, but too noisy to rule out a "
                  f"{EQUIVALENCE_FACTOR * threshold:.0%} change ({noise})")
    if left_out:
        reason += f" (left out as flagged: {'; '.join(left_out)})"
    return Decision(status, ratio, ci, p_value, se=se, mwu_p=mwu_p, reason=reason,
                    flags=tuple(flags), **common)


# --------------------------------------------------------------------------- pairing

@dataclass(frozen=True)
class Pair:
    """The same (target, model, variant, metric) measured in the baseline and candidate runs."""

    target: str
    model: str
    variant: str
    metric: str
    baseline: MeasurementRecord
    candidate: MeasurementRecord

    @property
    def key(self) -> tuple[str, str, str, str]:
        return (self.target, self.model, self.variant, self.metric)


@dataclass(frozen=True)
class MissingPair:
    """A key that cannot be compared: absent, failed or sample-less on `side`."""

    target: str
    model: str
    variant: str
    metric: str
    side: str  # "baseline" | "candidate" | "both"
    reason: str

    @property
    def key(self) -> tuple[str, str, str, str]:
        return (self.target, self.model, self.variant, self.metric)


def _unusable(record: MeasurementRecord | None, side: str) -> str | None:
    if record is None:
        return f"not measured in the {side} run"
    if record.status != "ok":
        return f"failed in the {side} run: {record.meta.get('error', 'measurement failed')}"
    if not record.samples:
        return f"no raw samples stored in the {side} run"
    return None


def pair_runs(baseline_records: Iterable[MeasurementRecord], candidate_records: Iterable[MeasurementRecord],
              metric: str | None = "latency") -> tuple[list[Pair], list[MissingPair]]:
    """Pair two runs' records by (target, model, variant, metric); metric None pairs all.

    Every key seen on either side ends up in exactly one list: `pairs` (usable on both
    sides) or `missing` (with the side and why: not measured, failed, no samples). If a run
    holds a key twice (a re-measurement), the later record (higher id) is used.
    """
    def index(records: Iterable[MeasurementRecord]) -> dict[tuple[str, str, str, str], MeasurementRecord]:
        out: dict[tuple[str, str, str, str], MeasurementRecord] = {}
        for record in records:
            if metric is not None and record.metric != metric:
                continue
            key = (record.target, record.model, record.variant, record.metric)
            previous = out.get(key)
            if previous is None or (record.id or 0) >= (previous.id or 0):
                out[key] = record
        return out

    base = index(baseline_records)
    cand = index(candidate_records)
    pairs: list[Pair] = []
    missing: list[MissingPair] = []
    for key in sorted(set(base) | set(cand)):
        base_problem = _unusable(base.get(key), "baseline")
        cand_problem = _unusable(cand.get(key), "candidate")
        if base_problem is None and cand_problem is None:
            pairs.append(Pair(*key, baseline=base[key], candidate=cand[key]))
        elif base_problem is not None and cand_problem is not None:
            missing.append(MissingPair(*key, side="both", reason=f"{base_problem}; {cand_problem}"))
        elif base_problem is not None:
            missing.append(MissingPair(*key, side="baseline", reason=base_problem))
        else:
            missing.append(MissingPair(*key, side="candidate", reason=str(cand_problem)))
    return pairs, missing


# --------------------------------------------------------------------------- step detection

@dataclass(frozen=True)
class Step:
    """A lasting level change in a per-run series.

    `index` is the first point at the new level (for a drift, where the ramp starts) and
    `end_index` the first point of the last level of the ramp (== index for a step).
    `before` / `after` are the fitted levels (geometric means of the segments around it).
    """

    index: int
    before: float
    after: float
    ratio: float  # after / before
    kind: str = "step"  # "step" | "drift"
    end_index: int | None = None


def _segment(y: np.ndarray, penalty: float, min_size: int) -> list[int]:
    """Optimal segmentation of y (least squares + penalty per segment): segment starts."""
    n = y.size
    s1 = np.concatenate([[0.0], np.cumsum(y)])
    s2 = np.concatenate([[0.0], np.cumsum(y * y)])
    best = np.full(n + 1, np.inf)
    best[0] = -penalty  # the first segment carries no penalty
    previous = np.zeros(n + 1, dtype=int)
    for end in range(min_size, n + 1):
        starts = np.arange(0, end - min_size + 1)
        starts = starts[np.isfinite(best[starts])]
        if starts.size == 0:
            continue
        length = end - starts
        total = s1[end] - s1[starts]
        cost = (s2[end] - s2[starts]) - total * total / length
        candidate = best[starts] + np.maximum(cost, 0.0) + penalty
        j = int(np.argmin(candidate))
        best[end] = candidate[j]
        previous[end] = starts[j]
    bounds = []
    end = n
    while end > 0:
        start = int(previous[end])
        bounds.append(start)
        end = start
    return sorted(bounds)


def _fit_levels(history: Sequence[float | None], *, threshold: float, min_size: int, penalty: float | None
                ) -> tuple[list[int], np.ndarray, np.ndarray, list[int], list[int], list[float]] | None:
    """Positions of the usable points, their raw and clipped logs, and the optimal
    piecewise-constant fit (segment starts, ends, mean levels); None if too short."""
    if not threshold > 0:
        raise ValueError(f"threshold {threshold}: must be > 0")
    if min_size < 1:
        raise ValueError(f"min_size {min_size}: must be >= 1")
    positions, values = [], []
    for i, value in enumerate(history):
        if value is None or not math.isfinite(float(value)):
            continue
        if value <= 0:
            raise ValueError(f"history[{i}] = {value!r}: values must be positive")
        positions.append(i)
        values.append(float(value))
    n = len(values)
    if n < 2 * min_size or n < 2:
        return None
    raw = np.log(np.asarray(values))
    y = raw
    diffs = np.diff(y)
    sigma = 1.4826 * float(np.median(np.abs(diffs - np.median(diffs)))) / _SQRT2
    sigma = max(sigma, threshold / 20, 1e-9)
    beta = PENALTY_FACTOR * sigma * sigma * math.log(max(n, 3)) if penalty is None else float(penalty)
    if min_size >= 2:  # tame single-point outliers: clip to 4 sigma around a short running median
        width = min(2 * min_size - 1, n - (1 - n % 2))
        padded = np.pad(y, width // 2, mode="edge")
        running = np.median(np.lib.stride_tricks.sliding_window_view(padded, width), axis=1)
        y = np.clip(y, running - 4 * sigma, running + 4 * sigma)
    starts = _segment(y, beta, min_size)
    ends = starts[1:] + [n]
    levels = [float(np.mean(y[s:e])) for s, e in zip(starts, ends)]
    return positions, raw, y, starts, ends, levels


def detect_steps(history: Sequence[float | None], *, threshold: float = DEFAULT_THRESHOLD,
                 min_size: int = 2, max_ramp_gap: int = 4, penalty: float | None = None) -> list[Step]:
    """Lasting steps and slow drifts in a per-run series (e.g. nightly p50s), oldest first.

    Missing nights (None or NaN) are skipped; indexes refer to `history` as given. A change
    is reported when its total relative size reaches `threshold`; `min_size` is the shortest
    run of points that counts as a level (2: one bad night is not a step). `penalty`
    overrides the per-segment cost (in squared log units). Method: module docstring.
    """
    fitted = _fit_levels(history, threshold=threshold, min_size=min_size, penalty=penalty)
    if fitted is None:
        return []
    positions, _, _, starts, ends, levels = fitted
    steps: list[Step] = []
    b = 1  # boundary b sits between segment b-1 and segment b
    while b < len(starts):
        direction = np.sign(levels[b] - levels[b - 1])
        last = b
        while (last + 1 < len(starts) and np.sign(levels[last + 1] - levels[last]) == direction
               and ends[last] - starts[last] <= max_ramp_gap):
            last += 1
        ratio = math.exp(levels[last] - levels[b - 1])
        if abs(ratio - 1) >= threshold:
            steps.append(Step(index=positions[starts[b]], before=math.exp(levels[b - 1]),
                              after=math.exp(levels[last]), ratio=ratio,
                              kind="step" if last == b else "drift", end_index=positions[starts[last]]))
        b = last + 1
    return _placed(steps, history)


def _placed(steps: list[Step], history: Sequence[float | None]) -> list[Step]:
    """Steps moved to the first run actually nearer the new level.

    A segment holds at least ``min_size`` runs, so when only the newest run moved, the last
    segment also holds the run before it and its boundary lands one run early, with a level
    halfway. Such a change is one run, not a step: it is dropped (a caller shows it as
    unconfirmed) rather than blamed on a run that did not change."""
    out = []
    for step in steps:
        if step.kind != "step":
            out.append(step)
            continue
        before, after = math.log(step.before), math.log(step.after)
        usable = [i for i in range(step.index, len(history))
                  if history[i] is not None and math.isfinite(float(history[i]))]  # type: ignore[arg-type]
        first = next((i for i in usable if abs(math.log(history[i]) - after)  # type: ignore[arg-type]
                      < abs(math.log(history[i]) - before)), None)  # type: ignore[arg-type]
        if first is None or (first == usable[-1] and len(usable) > 1):
            continue
        out.append(Step(index=first, before=step.before, after=step.after, ratio=step.ratio, kind=step.kind,
                        end_index=first))
    return out
