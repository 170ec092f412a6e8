"""Task accuracy (top-1 on a labelled image set) and its budgets: pure functions over counts.

What the agent counted on the target (harness.agent.accuracy) arrives as {"correct", "count"};
`accuracy_figures` adds the top-1 share, its binomial 95 % confidence interval (Wilson score
interval) and, against the baseline measured on the same images on the same target, the change
in percentage points. `accuracy_verdict` checks a budget's ``min_accuracy`` (a share, e.g.
0.9) and ``max_accuracy_drop`` (the largest allowed fall against the baseline, as a share of
images: 0.02 = 2 percentage points).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from harness.analysis.verdict import Verdict

Z_95 = 1.959963984540054


def wilson_interval(correct: int, count: int, z: float = Z_95) -> tuple[float, float]:
    """The Wilson score interval of a binomial proportion correct / count (95 % by default)."""
    if count <= 0:
        return (0.0, 1.0)
    p = correct / count
    denominator = 1.0 + z * z / count
    centre = (p + z * z / (2 * count)) / denominator
    half = z * math.sqrt(p * (1.0 - p) / count + z * z / (4 * count * count)) / denominator
    return (max(0.0, centre - half), min(1.0, centre + half))


def accuracy_figures(counts: Mapping[str, Any], baseline: Mapping[str, Any] | None = None,
                     images: str = "") -> dict[str, Any]:
    """{"correct", "count", "top1", "ci95", "images"} and, with the baseline's counts on the same
    images, {"baseline_correct", "baseline_count", "baseline_top1", "change_points"}."""
    correct, count = int(counts["correct"]), int(counts["count"])
    top1 = correct / count if count else 0.0
    low, high = wilson_interval(correct, count)
    figures: dict[str, Any] = {"correct": correct, "count": count, "top1": top1, "ci95": [low, high],
                               "interval": "Wilson score, 95 %", "images": images}
    if baseline is not None and baseline.get("count"):
        base_top1 = int(baseline["correct"]) / int(baseline["count"])
        figures.update(baseline_correct=int(baseline["correct"]), baseline_count=int(baseline["count"]),
                       baseline_top1=base_top1, change_points=(top1 - base_top1) * 100.0)
    return figures


def _pct(share: float) -> str:
    return f"{share * 100:.1f}%"


def accuracy_verdict(target: str, variant_id: str, figures: Mapping[str, Any] | None,
                     budget: Mapping[str, Any] | None) -> Verdict:
    """``min_accuracy`` and ``max_accuracy_drop`` of `budget` against measured `figures`."""
    limits = budget or {}
    minimum, max_drop = limits.get("min_accuracy"), limits.get("max_accuracy_drop")
    if minimum is None and max_drop is None:
        return Verdict("no-budget", f"{target}: {variant_id}: no accuracy budget declared")
    if not figures:
        return Verdict("error", f"{target}: {variant_id}: an accuracy budget is declared but no accuracy was "
                       "measured (the model declares no dataset in the manifest)")
    shown = (f"top-1 {_pct(figures['top1'])} ({figures['correct']}/{figures['count']} "
             f"{figures.get('images') or 'images'}, 95% CI {_pct(figures['ci95'][0])}-{_pct(figures['ci95'][1])})")
    problems = []
    if minimum is not None and figures["top1"] < minimum:
        problems.append(f"below min_accuracy {_pct(minimum)}")
    change = figures.get("change_points")
    if max_drop is not None and change is not None:  # a baseline has nothing to drop against
        if -change > max_drop * 100.0 + 1e-9:
            problems.append(f"{-change:.1f} points below its baseline ({_pct(figures['baseline_top1'])}), more "
                            f"than max_accuracy_drop {max_drop * 100:.1f} points")
    if change is not None:
        shown += f", {change:+.1f} points vs baseline {_pct(figures['baseline_top1'])}"
    source = limits.get("source", "manifest")
    if problems:
        return Verdict("fail", f"{target}: {variant_id} accuracy {shown}: {'; '.join(problems)} ({source})",
                       value=figures["top1"], limit=minimum, statistic="top1")
    return Verdict("pass", f"{target}: {variant_id} accuracy {shown} meets its budget ({source})",
                   value=figures["top1"], limit=minimum, statistic="top1")


def combine(fidelity: Verdict, accuracy: Verdict) -> Verdict:
    """One verdict for a fidelity record that also carries accuracy: the worse of the two, both said."""
    if accuracy.status == "no-budget":
        return fidelity
    order = ("error", "fail", "unavailable", "pass", "no-budget")
    worst = min((fidelity, accuracy), key=lambda v: order.index(v.status) if v.status in order else 0)
    return Verdict(worst.status, f"{fidelity.message}; {accuracy.message}", value=accuracy.value,
                   limit=accuracy.limit, statistic=accuracy.statistic)


def with_accuracy(summary: dict[str, Any], meta: Mapping[str, Any], baseline_meta: Mapping[str, Any] | None
                  ) -> dict[str, Any]:
    """`summary` plus "accuracy" (accuracy_figures) where the agent counted top-1 hits (meta's
    "accuracy_counts"), against the baseline's counts on the same images where there is one."""
    counts = meta.get("accuracy_counts")
    if not counts:
        return summary
    baseline_counts = (baseline_meta or {}).get("accuracy_counts")
    images = str(meta.get("accuracy_images") or "images")
    return {**summary, "accuracy": accuracy_figures(counts, baseline_counts, images)}
