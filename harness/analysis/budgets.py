"""Budget verdicts (latency, memory, power) and variant-vs-baseline comparisons: pure
functions over records. ``harness.analysis.record_verdict`` picks the check for a record.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from harness.analysis.verdict import Verdict
from harness.records import MeasurementRecord


def format_latency_ms(value_ms: float) -> str:
    """A latency with a unit that keeps its significant digits: 12.345 ms, 2.400 µs, 1.0 ns."""
    if value_ms >= 1.0:
        return f"{value_ms:.3f} ms"
    if value_ms >= 0.001:
        return f"{value_ms * 1e3:.3f} µs"
    return f"{value_ms * 1e6:.1f} ns"


def latency_verdict(target: str, variant_id: str, summary: Mapping[str, Any],
                    budget: Mapping[str, Any] | None) -> Verdict:
    """Check a latency summary (ms) against a budget as stored in measurement meta."""
    if not budget or budget.get("target_latency_s") is None:
        return Verdict("no-budget", f"{target}: {variant_id}: no latency budget declared")
    statistic = budget.get("statistic") or "p90"
    value = summary.get(statistic)
    if value is None:
        return Verdict("error", f"{target}: {variant_id}: summary has no '{statistic}' to check against "
                       "the budget", statistic=statistic)
    limit = budget["target_latency_s"] * 1000.0
    ok = value <= limit
    relation = "meets" if ok else "exceeds"
    message = (f"{target}: {variant_id} {statistic} latency {format_latency_ms(value)} {relation} the budget "
               f"{format_latency_ms(limit)} ({budget.get('source', 'manifest')})")
    return Verdict("pass" if ok else "fail", message, value=value, limit=limit, statistic=statistic)


def format_bytes(value: float) -> str:
    return f"{value / 2**20:.1f} MiB" if value < 2**30 else f"{value / 2**30:.2f} GiB"


def memory_verdict(target: str, variant_id: str, summary: Mapping[str, Any],
                   budget: Mapping[str, Any] | None) -> Verdict:
    """Peak RSS of the fresh agent process against the budget's max_memory."""
    if not budget or budget.get("max_memory_bytes") is None:
        return Verdict("no-budget", f"{target}: {variant_id}: no memory budget declared")
    value, limit = summary["peak_rss_bytes"], budget["max_memory_bytes"]
    ok = value <= limit
    split = ", ".join(f"{name} {format_bytes(summary[key])}" for name, key in (
        ("runtime import", "import_peak_bytes"), ("model load +", "load_delta_bytes"),
        ("inference +", "inference_delta_bytes")) if summary.get(key) is not None)
    message = (f"{target}: {variant_id} peak memory {format_bytes(value)} {'meets' if ok else 'exceeds'} the budget "
               f"{format_bytes(limit)} ({split}; {budget.get('source', 'manifest')})")
    return Verdict("pass" if ok else "fail", message, value=value, limit=limit, statistic="peak_rss")


def power_verdict(target: str, variant_id: str, summary: Mapping[str, Any],
                  budget: Mapping[str, Any] | None) -> Verdict:
    """Mean power under load against max_power; an unavailable sensor is said, not zeroed."""
    status = summary.get("status") or ""
    label = " (ESTIMATED from CPU time, not measured)" if summary.get("estimated") else ""
    if status.startswith("unavailable"):
        return Verdict("unavailable", f"{target}: {variant_id}: power {status}")
    if status != "ok":
        return Verdict("error", f"{target}: {variant_id}: power {status}: {summary.get('reason') or ''}".rstrip(": "))
    load, energy = summary.get("load_mean_w"), summary.get("energy_per_inference_mj")
    shown = f"{load:.2f} W under load, {energy:.3f} mJ per inference" if energy is not None else f"{load:.2f} W"
    if not budget or budget.get("max_power_w") is None:
        return Verdict("no-budget", f"{target}: {variant_id}: {shown}{label}; no power budget declared", value=load)
    limit = budget["max_power_w"]
    ok = load <= limit
    return Verdict("pass" if ok else "fail", f"{target}: {variant_id} mean power {shown}{label} "
                   f"{'meets' if ok else 'exceeds'} the budget {limit:.2f} W ({budget.get('source', 'manifest')})",
                   value=load, limit=limit, statistic="load_mean_w")


@dataclass(frozen=True)
class BaselineComparison:
    """One variant against its baseline variant on the same target in the same run."""

    target: str
    model: str
    variant: str
    baseline: str | None
    statistic: str
    value: float | None
    baseline_value: float | None
    delta_pct: float | None  # +10 = 10% slower than the baseline
    speedup: float | None  # 2.0 = twice as fast as the baseline
    note: str = ""
    # Paired evidence (issue 15): the speed-up measured interleaved with the baseline in one job,
    # its 95% CI, and why a comparison is unpaired where it is (an old run, another input shape).
    paired: bool = False
    speedup_ci95: tuple[float, float] | None = None
    unpaired_reason: str = ""


def compare_to_baselines(records: Sequence[MeasurementRecord], statistic: str = "p50"
                         ) -> list[BaselineComparison]:
    """Pair every latency record with its baseline variant's record (same run, same target).

    A variant whose baseline was not measured (or failed) is listed with a note, not dropped.
    """
    latency = [r for r in records if r.metric == "latency"]
    by_key = {(r.target, r.model, r.variant): r for r in latency}
    rows = []
    for record in latency:
        baseline_name = record.meta.get("baseline")
        value = record.summary.get(statistic) if record.status == "ok" else None
        if baseline_name is None:
            rows.append(BaselineComparison(record.target, record.model, record.variant, None, statistic,
                                           value, value, 0.0 if value is not None else None,
                                           1.0 if value is not None else None, "baseline"))
            continue
        base = by_key.get((record.target, record.model, baseline_name))
        base_value = base.summary.get(statistic) if base is not None and base.status == "ok" else None
        note = ""
        if base is None:
            note = f"baseline {baseline_name} not measured in this run"
        elif base_value is None:
            note = f"baseline {baseline_name} failed"
        elif value is None:
            note = "variant failed"
        delta = speedup = None
        if value is not None and base_value:
            delta = (value / base_value - 1.0) * 100.0
            speedup = base_value / value if value > 0 else None
        paired, speedup_ci, unpaired = _paired_evidence(record, baseline_name)
        if paired is not None and value is not None:  # measured interleaved: the paired ratio is the figure
            speedup, delta = paired["speedup"], (paired["ratio"] - 1.0) * 100.0
        rows.append(BaselineComparison(record.target, record.model, record.variant, baseline_name, statistic,
                                       value, base_value, delta, speedup, note, paired=paired is not None,
                                       speedup_ci95=speedup_ci, unpaired_reason=unpaired))
    return rows


def _paired_evidence(record: MeasurementRecord, baseline_name: str
                     ) -> tuple[dict[str, Any] | None, tuple[float, float] | None, str]:
    """(the paired ratio against `baseline_name`, its speed-up interval, why unpaired) of a record."""
    paired = record.meta.get("paired") if record.status == "ok" else None
    if not isinstance(paired, dict):
        return None, None, "measured alone (not interleaved with its baseline)"
    if not paired.get("paired"):
        return None, None, str(paired.get("reason", "not paired"))
    for ratio in paired.get("ratios", ()):
        if ratio.get("against") == baseline_name:
            low, high = ratio["speedup_ci95"]
            return ratio, (float(low), float(high)), ""
    return None, None, f"paired, but not against {baseline_name}"
