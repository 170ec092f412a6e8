"""The ratio of two arms timed interleaved on the device, and its uncertainty. Pure.

A paired job (agent/interleave.py) gives, per arm, `rounds` turns of `k` samples each; round
r of every arm ran back to back, in a shuffled order. Round r's ratio is the ratio of the
arms' medians in that round; the paired ratio is the median of those over rounds (a
geometric median: computed on logs). Whatever moved both arms within a round cancels in its
ratio, so drift between rounds (a neighbour's load, frequency steps) does not widen it, as
it would a ratio of medians pooled over all rounds. Its 95% interval is a percentile
bootstrap over ROUNDS, the pairing unit, in moving blocks whose length comes from the
autocorrelation of the per-round ratios (the rule of regression/bootstrap.block_length).
The device's stopping check (agent/paired_stats.py) uses the same estimator, without blocks.
Each arm's own percentiles stay those of its pooled samples.

The verdict on a paired ratio (`paired_verdict`) reads regression / no change / improvement
/ inconclusive, against the same threshold as the unpaired rule (regression/rule.py).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from harness.analysis.regression.bootstrap import block_length

RESAMPLES = 1000
REFERENCE_ARM = "reference-run"  # the arm re-running a reference run's artifacts (no variant name has a '-')
PAIRED_STATUSES = ("regression", "no change", "improvement", "inconclusive")


@dataclass(frozen=True)
class PairedRatio:
    """The candidate's latency over the other arm's, paired: 1.05 = the candidate is 5% slower."""

    candidate: str
    other: str
    statistic: str
    ratio: float
    ci95: tuple[float, float]
    rounds: int
    block: int  # bootstrap block length, in rounds

    @property
    def speedup(self) -> float:
        return 1.0 / self.ratio

    @property
    def speedup_ci95(self) -> tuple[float, float]:
        return (1.0 / self.ci95[1], 1.0 / self.ci95[0])

    @property
    def halfwidth(self) -> float:
        """Half the interval's width relative to the ratio (0.01 = +-1%)."""
        return (self.ci95[1] - self.ci95[0]) / 2.0 / self.ratio


def turns(samples: Sequence[int], k: int) -> np.ndarray:
    """An arm's flat samples as a (rounds, k) array."""
    x = np.asarray(samples, dtype=np.float64)
    if k < 1 or x.size % k:
        raise ValueError(f"{x.size} samples are not whole turns of {k}")
    return x.reshape(-1, k)


def _round_index(rounds: int, block: int, resamples: int, rng: np.random.Generator) -> np.ndarray:
    blocks = -(-rounds // block)
    starts = rng.integers(0, rounds - block + 1, size=(resamples, blocks))
    return (starts[:, :, None] + np.arange(block)).reshape(resamples, -1)[:, :rounds]


def round_log_ratios(candidate: np.ndarray, other: np.ndarray) -> np.ndarray:
    """log(median of the candidate's turn / median of the other's turn), round by round."""
    return np.log(np.median(candidate, axis=1)) - np.log(np.median(other, axis=1))


def paired_ratio(candidate: np.ndarray, other: np.ndarray, candidate_name: str = "candidate",
                 other_name: str = "baseline", level: float = 0.95, resamples: int = RESAMPLES,
                 seed: int = 0) -> PairedRatio:
    """The paired ratio of two arms' (rounds, k) turn arrays, with its bootstrap interval."""
    rounds = candidate.shape[0]
    if rounds != other.shape[0] or rounds < 2:
        raise ValueError(f"paired arms need the same number of rounds (>= 2): {rounds} vs {other.shape[0]}")
    d = round_log_ratios(candidate, other)
    block = block_length(np.exp(d))
    rng = np.random.default_rng(seed)
    replicates = np.median(d[_round_index(rounds, block, resamples, rng)], axis=1)
    tail = (1 - level) / 2
    low, high = np.quantile(replicates, [tail, 1 - tail])
    return PairedRatio(candidate_name, other_name, "median", float(math.exp(np.median(d))),
                       (math.exp(low), math.exp(high)), rounds, block)


def switching_overhead(arm_turns: np.ndarray) -> float | None:
    """How much slower the first inference of a turn is than the rest of it (0.02 = 2%),
    from medians; None with one inference per turn."""
    if arm_turns.shape[1] < 2:
        return None
    return float(np.median(arm_turns[:, 0]) / np.median(arm_turns[:, 1:]) - 1.0)


def paired_verdict(ratio: PairedRatio, threshold: float, settled: bool) -> tuple[str, str]:
    """(status, reason) of a candidate paired against its reference arm.

    regression: the ratio is at least 1 + threshold and its interval excludes 1; improvement:
    the mirror image; no change: the ratio is within the threshold; otherwise (a change
    beyond the threshold that the interval cannot confirm) inconclusive. `settled` says the
    run stopped because its interval was as narrow as asked (or after the fixed rounds): an
    unsettled run whose interval reaches past the threshold is inconclusive too."""
    low, high = ratio.ci95
    span = (f"p50 latency {(ratio.ratio - 1) * 100:+.1f}% [{(low - 1) * 100:+.1f}%, {(high - 1) * 100:+.1f}%] "
            f"over {ratio.rounds} paired rounds")
    limit = f"threshold {threshold:.0%}" if threshold * 100 == round(threshold * 100) else f"threshold {threshold:.1%}"
    upper, lower = 1.0 + threshold, 1.0 / (1.0 + threshold)
    if ratio.ratio >= upper and low > 1.0:
        return "regression", f"paired: {span}: beyond {limit}"
    if ratio.ratio <= lower and high < 1.0:
        return "improvement", f"paired: {span}: beyond {limit}"
    if lower < ratio.ratio < upper and (settled or (lower <= low and high <= upper)):
        return "no change", f"paired: {span}: within {limit}"
    return "inconclusive", (f"paired: {span}: the interval did not settle before max_duration ran out; "
                            "raise latency.max_duration")


def paired_summary(event: Mapping[str, Any], statistic: str = "median") -> dict[str, Any]:
    """What a record stores about a paired job (meta["paired"]): the ratios of arm 0 against
    every other arm with their intervals, and how the job ran (mode, rounds, seed, what
    stopped it, switching and conductor costs). The other arms' samples are kept too."""
    arms = event["arms"]
    matrices = [turns(arm["latency_ns"], arm["turn_iterations"]) for arm in arms]
    ratios = [paired_ratio(matrices[0], matrices[i], arms[0]["name"], arms[i]["name"], seed=i)
              for i in range(1, len(arms))] if len(event["orders"]) >= 2 else []
    return {
        "paired": True,
        "mode": event.get("mode"),
        "seed": event.get("seed"),
        "rounds": len(event["orders"]),
        "first_in_round": [sum(1 for order in event["orders"] if order[0] == i) for i in range(len(arms))],
        "stopped_by": event.get("stopped_by"),
        "precision": event.get("precision"),
        "device_halfwidth": event.get("device_halfwidth"),
        "statistic": statistic,
        "ratios": [{"against": r.other, "ratio": r.ratio, "ci95": list(r.ci95), "speedup": r.speedup,
                    "speedup_ci95": list(r.speedup_ci95), "halfwidth": r.halfwidth, "block_rounds": r.block}
                   for r in ratios],
        "arms": [{"name": arm["name"], "turn_iterations": arm["turn_iterations"],
                  "p50_ms": float(np.median(m)) / 1e6 if m.size else None,
                  "switching_overhead": switching_overhead(m) if m.size else None,
                  "conductor_us_per_turn": (float(np.median(arm["overhead_ns"])) / 1e3
                                            if arm.get("overhead_ns") else None),
                  **({"latency_ns": list(arm["latency_ns"])} if index else {})}
                 for index, (arm, m) in enumerate(zip(arms, matrices, strict=True))],
    }


def reference_run_ratio(record_meta: Mapping[str, Any], reference_run_id: str) -> tuple[dict[str, Any] | None, str]:
    """(the paired ratio of a record against `reference_run_id`'s artifacts, or None; why not)."""
    paired = record_meta.get("paired")
    if not isinstance(paired, Mapping):
        return None, "measured alone"
    if paired.get("reference_run") == reference_run_id:
        for ratio in paired.get("ratios") or ():
            if ratio.get("against") == REFERENCE_ARM:
                return dict(ratio, rounds=paired.get("rounds"), stopped_by=paired.get("stopped_by")), ""
    return None, str((paired.get("unpaired") or {}).get("reference_run") or "not timed against this baseline run")
