"""The regression rule: one (target, model, variant, metric) of a candidate run against the
same of a reference run (the stored run ``--baseline`` names), from the raw samples of both.
Pure, no I/O.

The rule (``decide``)
---------------------
Samples inside one run are autocorrelated, and two runs of the same code on the same device
differ by a run-to-run offset that is larger than the within-run noise (measured on this
project's local target: docs/regression.md). A test that treats 1,000 samples of one run as
independent draws calls almost every identical-code (A/A) pair significant. So:

1. ``ratio`` = statistic(candidate) / statistic(reference), the statistic (default the
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
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from harness.analysis.regression.bootstrap import block_length, bootstrap_replicates
from harness.analysis.regression.draws import Draws
from harness.analysis.regression.normal import normal_quantile, normal_sf
from harness.analysis.regression.pairing import CANDIDATE_SIDE, REFERENCE_SIDE
from harness.analysis.regression.ranks import mann_whitney_u
from harness.analysis.regression.samples import (
    as_positive,
    as_samples,
    check_statistic,
    compute_statistic,
    median_of_sorted,
    statistic_label,
)
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
STATUSES = ("regression", "improvement", "no change", "inconclusive", "missing")


@dataclass(frozen=True)
class Decision:
    """The verdict on one (target, model, variant, metric) pair of runs."""

    status: str  # one of STATUSES
    ratio: float | None  # candidate / reference of the statistic
    ci: tuple[float, float] | None  # of the ratio, at `level`
    p_value: float | None  # two-sided, of log(ratio) against its within + run-to-run se
    threshold: float
    statistic: str
    n_reference: int  # samples used (flagged runs left out of a multi-run side do not count)
    n_candidate: int
    reason: str  # one line for humans
    se: float | None = None  # standard error of log(ratio)
    mwu_p: float | None = None  # Mann-Whitney p on the pooled samples (iid assumption: a guard)
    run_sd: float | None = None  # the run-to-run sd that went into se
    level: float | None = None  # of ci
    flags: tuple[str, ...] = ()  # runs the harness flags as noisy or drifting (see decide)

    @property
    def change(self) -> float | None:
        """ratio - 1: +0.05 = 5% higher than in the reference run."""
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
    runs = [as_positive(group, name) for group in groups]
    return [run for run in runs if run.size]


def run_flags(samples: npt.ArrayLike) -> list[str]:
    """Why a run is not trusted for a regression call: the harness's own noise and drift
    flags (``harness.analysis.stats.is_noisy`` / ``is_drifting``, the ones behind a latency
    summary's warnings), worded for a decision's reason. On the shared local target every
    run that came out 20-70% slow (another job on the cores) carried one of them; see
    docs/regression.md."""
    x = as_samples(samples, "samples")
    return _flags(x, np.sort(x))


def _flags(x: np.ndarray, ordered: np.ndarray) -> list[str]:
    """``run_flags`` of a run's samples `x`, with them sorted (`ordered`)."""
    if x.size == 0:
        return []
    flags = []
    noise = robust_cv(ordered.tolist())
    if is_noisy(noise):
        flags.append(f"robust CV {noise:.0%} > {HIGH_CV:.0%}")
    drift = drift_ratio(x.tolist())
    if drift is not None and is_drifting(drift):
        flags.append(f"drift {drift - 1:+.0%} from first to last third")
    return flags


def _pct(ratio: float) -> str:
    return f"{(ratio - 1) * 100:+.1f}%"


def _p(p: float) -> str:
    return f"{p:.2g}" if p >= 1e-3 else f"{p:.0e}"


@dataclass(frozen=True)
class Question:
    """A decide call's checked options and runs (``ask``): what the rule is applied to."""

    threshold: float
    alpha: float
    statistic: str
    higher_is_worse: bool
    run_sd: float
    level: float
    screen: bool
    resamples: int
    seed: int
    ref_runs: list[np.ndarray]
    cand_runs: list[np.ndarray]


@dataclass(frozen=True)
class Screened:
    """The screen's outcome (``screened``): flag lines, what they block or leave out, and the
    runs in use."""

    flags: list[str]
    blocking: list[str]
    left_out: list[str]
    ref_runs: list[np.ndarray]
    cand_runs: list[np.ndarray]


def ask(reference_samples: Any, candidate_samples: Any, *, threshold: float = DEFAULT_THRESHOLD,
        alpha: float = DEFAULT_ALPHA, statistic: str = "median", higher_is_worse: bool = True,
        run_sd: float | None = None, level: float | None = None, screen: bool = True,
        resamples: int = DECIDE_RESAMPLES, seed: int = 0) -> Question | Decision:
    """``decide``'s arguments checked (ValueError as decide raises it), and the runs as
    arrays; a Decision when there is nothing to compute (a side missing or too short)."""
    check_statistic(statistic)
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
    ref_runs = _runs(reference_samples, REFERENCE_SIDE)
    cand_runs = _runs(candidate_samples, CANDIDATE_SIDE)
    question = Question(threshold, alpha, statistic, higher_is_worse, run_sd, level, screen, resamples, seed,
                        ref_runs, cand_runs)
    sides = ((REFERENCE_SIDE, ref_runs), (CANDIDATE_SIDE, cand_runs))
    if not ref_runs or not cand_runs:
        side = " and ".join(s for s, runs in sides if not runs)
        return Decision("missing", None, None, None, reason=f"no {side} samples", **_common(question))
    short = [f"{side} has {min(r.size for r in runs)} samples in a run"
             for side, runs in sides
             if min(r.size for r in runs) < MIN_SAMPLES]
    if short:
        return Decision("inconclusive", None, None, None,
                        reason="; ".join(short) + f" (need at least {MIN_SAMPLES})", **_common(question))
    return question


def _common(question: Question, ref_runs: list[np.ndarray] | None = None,
            cand_runs: list[np.ndarray] | None = None) -> dict[str, Any]:
    ref_runs = question.ref_runs if ref_runs is None else ref_runs
    cand_runs = question.cand_runs if cand_runs is None else cand_runs
    return dict(threshold=question.threshold, statistic=statistic_label(question.statistic),
                n_reference=sum(run.size for run in ref_runs), n_candidate=sum(run.size for run in cand_runs),
                run_sd=question.run_sd, level=question.level)


def screened(question: Question, flags_of: Callable[[str, int], list[str]]) -> Screened:
    """The screen: runs the harness flags as noisy or drifting; with several runs on a side
    the flagged ones are left out (if a clean one remains), otherwise they block the verdict.
    `flags_of(side, i)`: the ``run_flags`` of that side's run i."""
    flags: list[str] = []
    blocking: list[str] = []
    left_out: list[str] = []
    used: dict[str, list[np.ndarray]] = {}
    for side, runs in ((REFERENCE_SIDE, question.ref_runs), (CANDIDATE_SIDE, question.cand_runs)):
        per_run = [flags_of(side, i) for i in range(len(runs))] if question.screen else [[] for _ in runs]
        names = [f"{side} run {i + 1}" if len(runs) > 1 else f"{side} run" for i in range(len(runs))]
        clean = [run for run, found in zip(runs, per_run, strict=True) if not found]
        drop = bool(clean) and len(clean) < len(runs)
        for name, found in zip(names, per_run, strict=True):
            if found:
                flags.append(f"{name}: {', '.join(found)}" + (" (left out)" if drop else ""))
                (left_out if drop else blocking).append(f"{name}: {', '.join(found)}")
        used[side] = clean if drop else runs
    return Screened(flags, blocking, left_out, used[REFERENCE_SIDE], used[CANDIDATE_SIDE])


def replicates_per_run(question: Question, runs: int) -> int:
    """Bootstrap resamples of each of a side's runs: the side's within-run variance is the
    mean over its runs, so `resamples` in all keeps its precision."""
    return max(20, -(-question.resamples // runs))


def side_level(logs: list[float], within: list[float]) -> tuple[float, float, float]:
    """From its runs' log statistics and their within-run variances: a side's mean log
    statistic, its within-run variance, and the spread (sum of squares) of its runs' logs."""
    k = len(logs)
    if k == 1:  # what the expressions below give for one run, without their numpy calls
        return logs[0], within[0], 0.0
    spread = float(np.var(logs, ddof=1)) * (k - 1)
    return float(np.mean(logs)), float(np.sum(within)) / (k * k), spread


def answer(question: Question, screen: Screened, reference: tuple[float, float, float],
           candidate: tuple[float, float, float], mwu_p: float) -> Decision:
    """The rule's verdict (module docstring) from the two sides' levels (``side_level``) and
    the rank test's p-value."""
    threshold, alpha, level, higher_is_worse = (question.threshold, question.alpha, question.level,
                                                question.higher_is_worse)
    label = statistic_label(question.statistic)
    log_a, within_a, ss_a = reference
    log_b, within_b, ss_b = candidate
    k_a, k_b = len(screen.ref_runs), len(screen.cand_runs)
    df = (k_a - 1) + (k_b - 1)
    run_var = question.run_sd ** 2
    if df > 0:  # the runs' own spread (which includes within-run noise) pooled with the prior
        run_var = (PRIOR_RUNS * run_var + ss_a + ss_b) / (PRIOR_RUNS + df)
    se = math.sqrt(within_a + within_b + run_var * (1 / k_a + 1 / k_b))
    log_ratio = log_b - log_a
    ratio = math.exp(log_ratio)
    if se > 0:
        p_value = min(1.0, 2 * normal_sf(abs(log_ratio) / se))
    else:
        p_value = 0.0 if log_ratio != 0 else 1.0
    z = normal_quantile(0.5 + level / 2)
    ci = (math.exp(log_ratio - z * se), math.exp(log_ratio + z * se))

    worse = ratio > 1 + threshold if higher_is_worse else ratio < 1 - threshold
    better = ratio < 1 - threshold if higher_is_worse else ratio > 1 + threshold
    significant = p_value < alpha and mwu_p < alpha
    summary = f"{label} {_pct(ratio)} [{_pct(ci[0])}, {_pct(ci[1])}], p={_p(p_value)}"
    limit = f"threshold {threshold:.0%}" if threshold * 100 == round(threshold * 100) else f"threshold {threshold:.1%}"
    noise = f"run-to-run sd {math.sqrt(run_var):.1%}" + (f" over {k_a}+{k_b} runs" if df > 0 else "")
    if screen.blocking:
        status = "inconclusive"
        reason = f"{summary}, but {'; '.join(screen.blocking)}: re-run before calling it"
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
    if screen.left_out:
        reason += f" (left out as flagged: {'; '.join(screen.left_out)})"
    return Decision(status, ratio, ci, p_value, se=se, mwu_p=mwu_p, reason=reason,
                    flags=tuple(screen.flags), **_common(question, screen.ref_runs, screen.cand_runs))


def decide(reference_samples: Any, candidate_samples: Any, *, threshold: float = DEFAULT_THRESHOLD,
           alpha: float = DEFAULT_ALPHA, statistic: str = "median", higher_is_worse: bool = True,
           run_sd: float | None = None, level: float | None = None, screen: bool = True,
           resamples: int = DECIDE_RESAMPLES, seed: int = 0) -> Decision:
    """Decide whether the candidate regressed against the reference (rule: module docstring).

    `reference_samples` / `candidate_samples`: one run's raw samples in time order, or a list
    of runs' samples (repeated runs narrow the run-to-run part). `threshold` is the smallest
    relative change worth calling (0.03 = 3%); `alpha` the significance level; `run_sd` the
    sd of log(statistic) between runs of identical code on this target (None: DEFAULT_RUN_SD);
    `higher_is_worse` False for throughput-like metrics. `screen` makes any verdict
    "inconclusive" when a run in use is flagged noisy or drifting (``run_flags``; flagged
    runs among several on a side are left out instead): such runs were contended, and their
    offset is not the code's doing. `resamples` and `seed` drive the within-run bootstrap.
    Many pairs at once: ``regression.batch.decide_all`` (the same decisions, faster).
    """
    question = ask(reference_samples, candidate_samples, threshold=threshold, alpha=alpha, statistic=statistic,
                   higher_is_worse=higher_is_worse, run_sd=run_sd, level=level, screen=screen,
                   resamples=resamples, seed=seed)
    return question if isinstance(question, Decision) else decide_question(question)


def decide_question(question: Question) -> Decision:
    """``decide`` on checked arguments."""
    statistic = question.statistic
    # each run sorted once: its median, its flags, its bootstrap medians and the rank test read it
    runs = {id(run): run for run in question.ref_runs + question.cand_runs}
    orders = {key: np.argsort(run, kind="stable") for key, run in runs.items()}
    ordered = {key: run[orders[key]] for key, run in runs.items()}
    sides = {REFERENCE_SIDE: question.ref_runs, CANDIDATE_SIDE: question.cand_runs}
    screen = screened(question, lambda side, i: _flags(sides[side][i], ordered[id(sides[side][i])]))

    # the bootstrap's draws: those of default_rng(seed), replayed when an earlier pair of the
    # same sizes and block lengths drew them (Draws)
    draws = Draws(question.seed)

    def level_of(side_runs: list[np.ndarray]) -> tuple[float, float, float]:
        logs, within = [], []
        per_run = replicates_per_run(question, len(side_runs))
        for run in side_runs:
            logs.append(math.log(median_of_sorted(ordered[id(run)]) if statistic == "median"
                                 else float(compute_statistic(run, statistic))))
            replicates = np.log(bootstrap_replicates(run, statistic, per_run, block_length(run), draws,
                                                     orders[id(run)]))
            within.append(float(np.var(replicates, ddof=1)))
        return side_level(logs, within)

    reference = level_of(screen.ref_runs)
    candidate = level_of(screen.cand_runs)
    # U and its p-value do not depend on the samples' order: the sorted runs rank fastest
    _, mwu_p = mann_whitney_u(np.concatenate([ordered[id(run)] for run in screen.ref_runs]),
                              np.concatenate([ordered[id(run)] for run in screen.cand_runs]))
    return answer(question, screen, reference, candidate, mwu_p)
