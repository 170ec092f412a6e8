"""The host's paired ratio: pooled medians, a bootstrap over rounds that keeps the pairing,
the paired verdict, and how the speed-up column reads paired evidence. Seeded synthetic
rounds with drift shared by both arms, as on a busy device."""

from __future__ import annotations

import numpy as np
import pytest
from helpers.records import measurement

from harness.analysis.budgets import compare_to_baselines
from harness.analysis.paired import PairedRatio, paired_ratio, paired_verdict, switching_overhead
from harness.analysis.regression import bootstrap_ratio_ci


def _rounds(ratio: float, rounds: int = 200, k: int = 20, drift: float = 0.15, noise: float = 0.03,
            seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Two arms' (rounds, k) turns in ns: each round's drift moves both arms alike."""
    rng = np.random.default_rng(seed)
    shared = np.exp(rng.normal(0, drift, size=(rounds, 1)))
    base = 2e6 * shared * np.exp(rng.normal(0, noise, size=(rounds, k)))
    candidate = ratio * 2e6 * shared * np.exp(rng.normal(0, noise, size=(rounds, k)))
    return candidate, base


@pytest.mark.parametrize("true_ratio", [1.0, 1.05, 0.8])
def test_the_interval_covers_the_planted_ratio_under_shared_drift(true_ratio: float) -> None:
    candidate, base = _rounds(true_ratio)
    found = paired_ratio(candidate, base, "int8", "fp32")
    assert found.ci95[0] < true_ratio < found.ci95[1], found
    assert found.halfwidth < 0.01, "pairing cancels the drift both arms share"
    assert found.speedup == pytest.approx(1 / found.ratio)
    assert found.speedup_ci95[0] < 1 / true_ratio < found.speedup_ci95[1]


def test_drift_both_arms_share_widens_the_unpaired_interval_but_not_the_paired_one() -> None:
    def widths(drift: float) -> tuple[float, float]:
        candidate, base = _rounds(1.05, drift=drift)
        paired = paired_ratio(candidate, base)
        unpaired = bootstrap_ratio_ci(base.ravel(), candidate.ravel(), block=1)  # same samples, pairing ignored
        return paired.ci95[1] - paired.ci95[0], unpaired[1] - unpaired[0]

    steady_paired, steady_unpaired = widths(0.0)
    drifting_paired, drifting_unpaired = widths(0.3)
    assert drifting_paired < 1.5 * steady_paired
    assert drifting_unpaired > 3 * steady_unpaired


def test_arms_with_different_round_counts_are_refused() -> None:
    candidate, base = _rounds(1.0)
    with pytest.raises(ValueError, match="same number of rounds"):
        paired_ratio(candidate[:-1], base)


def test_switching_overhead_reads_the_first_inference_of_each_turn() -> None:
    turns = np.full((50, 10), 1000.0)
    turns[:, 0] = 1100.0
    assert switching_overhead(turns) == pytest.approx(0.10)
    assert switching_overhead(np.full((5, 1), 1000.0)) is None


def _ratio(value: float, low: float, high: float) -> PairedRatio:
    return PairedRatio("int8", "fp32", "median", value, (low, high), 100, 1)


@pytest.mark.parametrize("ratio, settled, status", [
    (_ratio(1.05, 1.04, 1.06), True, "regression"),
    (_ratio(0.95, 0.94, 0.96), True, "improvement"),
    (_ratio(1.01, 1.00, 1.02), True, "no change"),
    (_ratio(1.02, 1.015, 1.035), True, "no change"),  # within the threshold though the interval reaches past it
    (_ratio(1.02, 0.95, 1.09), False, "inconclusive"),  # time ran out with a wide interval
    (_ratio(1.05, 0.99, 1.11), False, "inconclusive"),  # beyond the threshold, not confirmed
    (_ratio(1.01, 0.995, 1.02), False, "no change"),  # unsettled, but inside the band anyway
])
def test_paired_verdicts(ratio: PairedRatio, settled: bool, status: str) -> None:
    found, reason = paired_verdict(ratio, threshold=0.03, settled=settled)
    assert found == status, reason
    assert reason.startswith("paired: ") and "100 paired rounds" in reason


def _paired_meta(against: str, ratio: float, low: float, high: float) -> dict:
    return {"baseline": against, "paired": {"paired": True, "ratios": [
        {"against": against, "ratio": ratio, "ci95": [low, high], "speedup": 1 / ratio,
         "speedup_ci95": [1 / high, 1 / low]}]}}


def test_the_speed_up_column_uses_the_paired_ratio_and_says_when_it_is_unpaired() -> None:
    records = [
        measurement(variant="fp32", summary={"p50": 10.0}, meta={"baseline": None}),
        measurement(variant="int8", summary={"p50": 8.0}, meta=_paired_meta("fp32", 0.5, 0.49, 0.51)),
        measurement(variant="pruned", summary={"p50": 5.0},
                    meta={"baseline": "fp32", "paired": {"paired": False, "reason": "input differs"}}),
        measurement(variant="old", summary={"p50": 20.0}, meta={"baseline": "fp32"}),
    ]
    rows = {c.variant: c for c in compare_to_baselines(records)}
    assert rows["int8"].paired and rows["int8"].speedup == pytest.approx(2.0)
    assert rows["int8"].speedup_ci95 == pytest.approx((1 / 0.51, 1 / 0.49))
    assert rows["int8"].delta_pct == pytest.approx(-50.0), "the paired ratio, not the unpaired p50s (8 vs 10)"
    assert not rows["pruned"].paired and rows["pruned"].speedup == pytest.approx(2.0)
    assert rows["pruned"].unpaired_reason == "input differs"
    assert not rows["old"].paired and "measured alone" in rows["old"].unpaired_reason


def test_a_record_timed_against_the_reference_runs_artifacts_gets_the_paired_verdict(tmp_path) -> None:
    from helpers.records import run_info

    from harness.analysis.run_comparison import Comparer
    from harness.store import open_store

    store = open_store(tmp_path / "s.sqlite")
    base, cand = run_info("base", started_at="2026-11-01T02:00:00"), run_info("cand", started_at="2026-11-02T02:00:00")
    for run in (base, cand):
        store.create_run(run)
    samples = tuple(range(1_000_000, 1_000_100))
    store.record_measurement(measurement("base", samples=samples, summary={"p50": 1.0}))
    paired = {"paired": True, "reference_run": "base", "rounds": 150, "stopped_by": "precision",
              "ratios": [{"against": "reference-run", "ratio": 1.06, "ci95": [1.05, 1.07]}]}
    fresh = measurement("cand", samples=samples, summary={"p50": 1.0}, meta={"paired": paired})
    verdict = Comparer(store, base, candidate_run_id="cand").verdict(fresh)
    assert verdict is not None and verdict.method == "paired" and verdict.status == "regression"
    assert verdict.ratio == pytest.approx(1.06) and verdict.ci == (1.05, 1.07)
    assert verdict.reason.startswith("paired: p50 latency +6.0% [+5.0%, +7.0%] over 150 paired rounds")
    stale = measurement("cand", samples=samples, summary={"p50": 1.0},
                        meta={"paired": {**paired, "reference_run": "another"}})
    verdict = Comparer(store, base, candidate_run_id="cand").verdict(stale)
    assert verdict is not None and verdict.method == "samples" and verdict.reason.startswith("unpaired (")
