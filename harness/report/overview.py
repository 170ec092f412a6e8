"""The answer at the top of the run page: per target and model, a compact block with the
baseline and each variant's speed-up (with its CI, paired or not), size ratio, accuracy or
agreement, memory, energy and one verdict mark. Models with a failure come first, and in a
block the failing variants come first.

Built from the rows of harness/report/rows.py (what the detail table shows too), so the
top and the detail never disagree.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from harness.report.rows import SEVERITY

#: verdict -> (mark, words): the mark is what the block shows, the words its tooltip's start
MARKS = {"fail": ("✗", "fails"), "error": ("!", "failed to measure"), "pass": ("✓", "meets every budget"),
         "no-budget": ("·", "no budget declared"), "unavailable": ("?", "a sensor was unavailable"),
         "not measured": ("–", "not measured")}


def speedup_text(row: Mapping[str, Any]) -> tuple[str, str, str]:
    """(text, tooltip, css class) of a variant's speed-up over its baseline model: e.g.
    "×1.42 [1.40–1.44] paired", or "×1.42 unpaired" with the reason as the tooltip."""
    if not row.get("baseline"):
        return "baseline", "the variant the others are compared with", "baseline"
    fidelity = row.get("fidelity") or {}
    if fidelity.get("verdict") == "fail":
        return "wrong outputs", row.get("comparison_note") or "", "fail"
    speedup = row.get("speedup")
    if speedup is None:
        return "–", row.get("comparison_note") or "no speed-up: the variant or its baseline has no latency", ""
    text = f"×{speedup:.2f}"
    ci = row.get("speedup_ci95")
    if ci:
        text += f" [{ci[0]:.2f}–{ci[1]:.2f}]"
    if row.get("paired"):
        return (text + " paired", "measured interleaved with the baseline in one job; 95% CI of the speed-up",
                "paired")
    reason = row.get("unpaired_reason") or "the variant and its baseline were measured apart, not interleaved"
    return text + " unpaired", reason, "unpaired"


def _accuracy(row: Mapping[str, Any], task_accuracy: float | None) -> tuple[str, str]:
    fidelity = row.get("fidelity") or {}
    agreement = fidelity.get("top1_agreement")
    if agreement is not None and not fidelity.get("baseline_only"):
        return f"{agreement * 100:.1f}% agree", "top-1 agreement with the baseline model on seeded inputs"
    if task_accuracy is not None:
        return f"{task_accuracy * 100:.1f}% acc", "task accuracy, measured when the variant was built"
    if fidelity.get("baseline_only"):
        return "reference", "the baseline's outputs are the reference the variants are compared with"
    return "–", "no fidelity or accuracy measured"


def _size_ratio(row: Mapping[str, Any], baseline_mib: float | None) -> str:
    size = row.get("model_mib")
    if size is None:
        return "–"
    if not row.get("baseline"):
        return f"{size:.1f} MiB"
    return f"×{size / baseline_mib:.2f}" if baseline_mib else f"{size:.1f} MiB"


def _energy(row: Mapping[str, Any]) -> tuple[str, bool]:
    power = row.get("power") or {}
    energy = power.get("energy_per_inference_mj")
    if power.get("status") != "ok" or power.get("state") != "ok" or energy is None:
        return "–", False
    return f"{energy:.3g} mJ", bool(power.get("estimated"))


def _severity(row: Mapping[str, Any]) -> int:
    return SEVERITY.get(row.get("verdict") or "", 0)


def model_blocks(rows: Sequence[Mapping[str, Any]],
                 task_accuracy: Mapping[str, float | None] | None = None) -> list[dict[str, Any]]:
    """One block per model of one target's rows, failures first (see the module docstring)."""
    accuracy = task_accuracy or {}
    by_model: dict[str, list[Mapping[str, Any]]] = {}
    for row in rows:
        by_model.setdefault(row["model"], []).append(row)
    blocks = []
    for model, members in by_model.items():
        baselines = {r["variant"]: r for r in members if not r.get("baseline")}
        entries = []
        for row in sorted(members, key=lambda r: (-_severity(r), bool(r.get("baseline")), r["variant"])):
            mark, words = MARKS.get(row.get("verdict") or "", ("?", row.get("verdict") or ""))
            speedup, speedup_tip, speedup_class = speedup_text(row)
            reference = baselines.get(row.get("baseline") or "")
            agreement, agreement_tip = _accuracy(row, accuracy.get(row["variant_id"]))
            energy, estimated = _energy(row)
            memory = (row.get("memory") or {}).get("peak_rss_mib") if (row.get("memory") or {}).get("status") == "ok" \
                else None
            entries.append({
                "variant": row["variant"], "variant_id": row["variant_id"], "is_baseline": not row.get("baseline"),
                "verdict": row.get("verdict"), "mark": mark,
                "mark_title": f"{words}: {row.get('verdict_message') or row.get('error') or ''}".rstrip(": "),
                "speedup": speedup, "speedup_title": speedup_tip, "speedup_class": speedup_class,
                "size": _size_ratio(row, reference.get("model_mib") if reference else None),
                "accuracy": agreement, "accuracy_title": agreement_tip,
                "memory": "–" if memory is None else f"{memory:.0f} MiB",
                "energy": energy, "energy_estimated": estimated,
                "warnings": len(row.get("warnings") or []),
            })
        worst = max(members, key=_severity).get("verdict")
        failing = sum(1 for r in members if r.get("verdict") in ("fail", "error"))
        blocks.append({"model": model, "verdict": worst, "failing": failing, "rows": entries})
    return sorted(blocks, key=lambda b: (-SEVERITY.get(b["verdict"] or "", 0), b["model"]))
