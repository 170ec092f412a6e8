"""The verdict on one (target, model, variant, metric) of a candidate run against the
reference run (``RunVerdict``), and how each kind of pair is worded: missing, one value per
run, decided on samples (``regression.decide``), paired in the same job. Pure."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass
from statistics import NormalDist
from typing import Any

from harness.analysis.metric_rules import RULES, MetricRule
from harness.analysis.paired import REFERENCE_ARM, PairedRatio, paired_verdict
from harness.analysis.regression import CANDIDATE_SIDE, REFERENCE_SIDE, Decision, MissingPair, Pair

Key = tuple[str, str, str, str]  # (target, model, variant, metric)


@dataclass(frozen=True)
class RunVerdict:
    """One (target, model, variant, metric) of the candidate run against the reference run."""

    target: str
    model: str
    variant: str
    metric: str
    status: str  # regression | improvement | no change | inconclusive | missing
    reason: str  # one line
    statistic: str = ""
    unit: str = ""
    reference_value: float | None = None  # "baseline_value" in as_dict (report.json)
    candidate_value: float | None = None
    ratio: float | None = None  # candidate / reference
    ci: tuple[float, float] | None = None
    p_value: float | None = None
    threshold: float | None = None
    run_sd: float | None = None
    run_sd_source: str = ""
    method: str = ""  # "samples" (regression.decide) | "single value" | "paired" (same job) | "" (missing)
    side: str | None = None  # for missing: REFERENCE_SIDE ("baseline") | CANDIDATE_SIDE | "both"
    higher_is_worse: bool = True

    @property
    def variant_id(self) -> str:
        return f"{self.model}-{self.variant}"

    @property
    def key(self) -> Key:
        return (self.target, self.model, self.variant, self.metric)

    @property
    def change_pct(self) -> float | None:
        return None if self.ratio is None else (self.ratio - 1.0) * 100.0

    def line(self) -> str:
        """`local: tiny_cnn-int8 latency regression: p50 +9.8% [...] beyond threshold 3%`."""
        return f"{self.target}: {self.variant_id} {self.metric} {self.status}: {self.reason}"

    def as_dict(self) -> dict[str, Any]:
        # dataclasses.asdict's recursion, written out: the fields are plain values and one tuple
        data = {("baseline_value" if name == "reference_value" else name): getattr(self, name)
                for name in _VERDICT_FIELDS}  # the key report.json has always had
        if self.ci is not None:
            data["ci"] = tuple(self.ci)
        data["variant_id"] = self.variant_id
        data["change_pct"] = self.change_pct
        return data


_VERDICT_FIELDS = tuple(field.name for field in dataclasses.fields(RunVerdict))


def missing_verdict(item: MissingPair, why: Mapping[tuple[Key, str], str]) -> RunVerdict:
    """The verdict on a key pair_runs could not pair; `why` (by key and side) replaces its
    generic "no raw samples" with what the metric lacked (no p50 latency, power unavailable)."""
    reason = item.reason
    for side in (REFERENCE_SIDE, CANDIDATE_SIDE):
        if item.side in (side, "both") and (item.key, side) in why:
            reason = reason.replace(f"no raw samples stored in the {side} run",
                                    f"{why[item.key, side]} in the {side} run")
    rule = RULES.get(item.metric)
    return RunVerdict(item.target, item.model, item.variant, item.metric, "missing", reason,
                      statistic=_shown_statistic(rule.statistic) if rule else "", unit=rule.unit if rule else "",
                      side=item.side, higher_is_worse=rule.higher_is_worse if rule else True)


def _shown_statistic(statistic: str) -> str:
    return "p50" if statistic == "median" else statistic


def single_value_verdict(pair: Pair, rule: MetricRule, threshold: float, run_sd: float | None,
                          run_sd_source: str, alpha: float) -> RunVerdict:
    """Memory, fidelity: one number per run. Threshold first; significance from the history's
    run-to-run sd when there is one."""
    ref_value, cand_value = rule.value(pair.reference), rule.value(pair.candidate)
    assert ref_value is not None and cand_value is not None  # with_samples pairs only records with a value
    ref, cand = float(ref_value), float(cand_value)
    ratio = cand / ref
    log_ratio = math.log(ratio)
    ci = p_value = None
    if run_sd is not None:
        se = run_sd * math.sqrt(2.0)
        if se > 0:
            p_value = min(1.0, 2 * (1 - NormalDist().cdf(abs(log_ratio) / se)))
            z = NormalDist().inv_cdf(1 - alpha / 2)
            ci = (math.exp(log_ratio - z * se), math.exp(log_ratio + z * se))
        else:
            p_value = 0.0 if log_ratio != 0 else 1.0
            ci = (ratio, ratio)
    worse = ratio > 1 + threshold if rule.higher_is_worse else ratio < 1 - threshold
    better = ratio < 1 - threshold if rule.higher_is_worse else ratio > 1 + threshold
    limit = f"threshold {threshold:.0%}" if threshold * 100 == round(threshold * 100) else f"threshold {threshold:.1%}"
    shown = f"{rule.what} {(ratio - 1) * 100:+.1f}%"
    if ci is not None:
        shown += f" [{(ci[0] - 1) * 100:+.1f}%, {(ci[1] - 1) * 100:+.1f}%], p={p_value:.2g}"
    basis = ("one value per run, run-to-run sd " + (f"{run_sd:.1%} ({run_sd_source})" if run_sd is not None
                                                    else f"unknown ({run_sd_source}): called on the threshold alone"))
    if worse or better:
        if p_value is None or p_value < alpha:
            status = "regression" if worse else "improvement"
            reason = f"{shown} beyond {limit} ({basis})"
        else:
            status = "inconclusive"
            reason = f"{shown}: beyond {limit} but not significant (p >= alpha {alpha:g}; {basis})"
    else:
        status = "no change"
        reason = f"{shown} within {limit} ({basis})"
    return RunVerdict(pair.target, pair.model, pair.variant, pair.metric, status, reason,
                      statistic=rule.statistic, unit=rule.unit, reference_value=ref, candidate_value=cand,
                      ratio=ratio, ci=ci, p_value=p_value, threshold=threshold, run_sd=run_sd,
                      run_sd_source=run_sd_source, method="single value", higher_is_worse=rule.higher_is_worse)


def paired_run_verdict(pair: Pair, rule: MetricRule, ratio: Mapping[str, Any], threshold: float) -> RunVerdict:
    """Latency measured interleaved with the reference run's own artifacts in one job."""
    found = PairedRatio(pair.variant, REFERENCE_ARM, "median", float(ratio["ratio"]),
                        (float(ratio["ci95"][0]), float(ratio["ci95"][1])), int(ratio.get("rounds") or 0), 1)
    status, reason = paired_verdict(found, threshold, settled=ratio.get("stopped_by") in ("precision", "rounds"))
    return RunVerdict(pair.target, pair.model, pair.variant, pair.metric, status,
                      f"{reason} (against the baseline run's artifacts, in the same job)",
                      statistic="p50", unit=rule.unit, reference_value=rule.value(pair.reference),
                      candidate_value=rule.value(pair.candidate), ratio=found.ratio, ci=found.ci95,
                      threshold=threshold, method="paired", higher_is_worse=True)


def unpaired(verdict: RunVerdict, unpaired_why: str) -> RunVerdict:
    """Every latency verdict says whether it was paired."""
    return dataclasses.replace(verdict, reason=f"unpaired ({unpaired_why}): {verdict.reason}") if unpaired_why \
        else verdict


@dataclass(frozen=True)
class SampledPair:
    """A pair decided on its samples: what decide is asked, and how its decision is shown."""

    pair: Pair
    rule: MetricRule
    threshold: float
    run_sd: float
    run_sd_source: str
    unpaired_why: str
    options: dict[str, Any]

    def verdict(self, decision: Decision) -> RunVerdict:
        pair, rule = self.pair, self.rule
        reason = decision.reason.replace("p50", rule.what, 1) if rule.metric == "latency" else \
            decision.reason.replace(rule.statistic, rule.what, 1)
        return unpaired(RunVerdict(
            pair.target, pair.model, pair.variant, pair.metric, decision.status, reason,
            statistic=decision.statistic, unit=rule.unit, reference_value=rule.value(pair.reference),
            candidate_value=rule.value(pair.candidate), ratio=decision.ratio, ci=decision.ci,
            p_value=decision.p_value, threshold=self.threshold, run_sd=self.run_sd, run_sd_source=self.run_sd_source,
            method="samples", higher_is_worse=rule.higher_is_worse), self.unpaired_why)
