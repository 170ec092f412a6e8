"""Diagnosis hints grouped by cause for the run page: one group per (rule, target), naming
the variants it covers and the range of each of its numbers.

`harness.analysis.diagnosis` gives one hint per variant; a run of 24 variants on one
runtime gave "runtime import dominates peak memory" 24 times with only the numbers changed.
The group says it once; every variant's own line stays in the group's detail.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

SEVERITY_ORDER = {"error": 0, "warning": 1, "info": 2}

#: What each rule's group is called (harness.analysis.diagnosis lists the rules).
TITLES = {
    "int8-slower-no-int8-isa": "int8 slower than fp32: the CPU has no int8 dot-product instructions",
    "int8-slower": "int8 slower than fp32",
    "paddle-optimisation-off": "runtime graph optimisation is off",
    "memory-budget-missed": "peak memory over budget",
    "fidelity-drop-after-quantization": "outputs disagree with the baseline after quantization",
    "unsupported-operator": "an operator the runtime does not support",
    "high-latency-variance": "high latency variance",
    "runtime-import-dominates-memory": "runtime import dominates peak memory",
}


def _shown(key: str, value: float) -> str:
    """An evidence number in the unit its key names."""
    if key.endswith("_bytes"):
        return f"{value / 2**20:.0f} MiB"
    if key in ("share", "cv", "robust_cv", "top1_agreement") or key.endswith("_share"):
        return f"{value:.0%}"
    if key.endswith("_ms"):
        return f"{value:.3g} ms"
    return f"{value:.3g}"


def _name(key: str) -> str:
    return key.removesuffix("_bytes").removesuffix("_ms").replace("_", " ")


def _ranges(hints: Sequence[Mapping[str, Any]]) -> list[dict[str, str]]:
    """Each numeric evidence key the hints share: its name and "low–high" (one value: itself)."""
    keys: dict[str, list[float]] = {}
    for hint in hints:
        for key, value in (hint.get("evidence") or {}).items():
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                keys.setdefault(key, []).append(float(value))
    out = []
    for key, values in keys.items():
        if len(values) != len(hints):
            continue  # not every hint has it: a range of some would mislead
        low, high = min(values), max(values)
        text = _shown(key, low) if _shown(key, low) == _shown(key, high) else f"{_shown(key, low)}–{_shown(key, high)}"
        out.append({"name": _name(key), "range": text})
    return out


def group_hints(hints: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """One group per (rule, target), most severe first, then in the order the rules gave
    them: {"rule", "target", "title", "severity", "metric", "variants", "count", "ranges",
    "messages", "message"} (`message`: the hint's own line when the group has one hint)."""
    groups: dict[tuple[str, str], list[Mapping[str, Any]]] = {}
    for hint in hints:
        groups.setdefault((hint["rule"], hint["target"]), []).append(hint)
    out = []
    for (rule, target), members in groups.items():
        severity = min((h["severity"] for h in members), key=lambda s: SEVERITY_ORDER.get(s, 3))
        variants = list(dict.fromkeys(h["applies_to"] for h in members))
        out.append({
            "rule": rule, "target": target, "title": TITLES.get(rule, rule.replace("-", " ")),
            "severity": severity, "metric": members[0].get("metric"), "variants": variants,
            "count": len(members), "ranges": _ranges(members) if len(members) > 1 else [],
            "messages": [{"variant": h["applies_to"], "severity": h["severity"], "text": h["message"]}
                         for h in members],
            "message": members[0]["message"] if len(members) == 1 else "",
        })
    return sorted(out, key=lambda g: SEVERITY_ORDER.get(g["severity"], 3))
