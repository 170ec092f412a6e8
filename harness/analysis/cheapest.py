"""The cheapest sweep point that meets every budget, from stored records (pure).

`point_results` groups a run's records of sweep points (harness.run.sweep_points) into one
`PointResult` per point; `cheapest_point(points, budget)` returns the point with the lowest
cost that meets every limit of the budget (latency statistic, peak memory, power), each
limit checked as the suites check it (harness.analysis.budgets); `sweep_curves` does both for
every sweep in a run, as the report draws them.

Cost order, cheapest first: threads ascending (cores held), batch ascending and resolution
ascending by pixels (memory and compute per request), precision int4 < int8 < fp16 < bf16 <
fp32 < fp64 (bits per value), power_mode from the lowest-power mode up (Paddle Lite's ladder,
else the order the sweep lists them in).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from harness.analysis.budgets import Verdict, latency_verdict, memory_verdict, power_verdict
from harness.config.sweep_specs import (
    POWER_LADDER,
    PRECISIONS,
    SweepSpecError,
    SweepValue,
    parse_point_id,
    parse_sweep_value,
)
from harness.config.variants import Budget
from harness.records import MeasurementRecord

BudgetLimits = Budget | Mapping[str, Any] | None
"""A manifest `Budget`, or the mapping stored in a record's ``meta["budget"]``; None: no limits."""

COST_ORDER = {
    "threads": "fewest threads first",
    "batch": "smallest batch first",
    "resolution": "fewest pixels first",
    "precision": "fewest bits first (int8 < fp16 < fp32)",
    "power_mode": "lowest-power mode first",
}


@dataclass(frozen=True)
class PointResult:
    """What was measured at one point (from stored records)."""

    id: str  # point id: <variant id>@<parameter>=<value>
    target: str
    base: str
    parameter: str
    label: str
    value: SweepValue  # the label parsed back; the label itself when it does not parse
    latency_ms: Mapping[str, float] = field(default_factory=dict)  # p50, p90, ..., mean
    throughput_per_s: float | None = None  # inputs per second (batch counted)
    peak_memory_bytes: int | None = None
    power_w: float | None = None
    errors: tuple[str, ...] = ()
    index: int = 0  # order written in the sweep, when known


@dataclass(frozen=True)
class CheapestChoice:
    point: PointResult | None  # None: no point meets every limit
    parameter: str
    cost_order: str
    checks: tuple[Mapping[str, Any], ...]  # per point, cheapest first: {"id", "label", "meets", "failures"}
    message: str


@dataclass(frozen=True)
class SweepCurve:
    """One sweep as the report draws it: points in cost order, the budget, the cheapest point."""

    target: str
    base: str
    parameter: str
    points: tuple[PointResult, ...]
    budget: Mapping[str, Any] | None
    choice: CheapestChoice


def point_results(records: Iterable[MeasurementRecord]) -> list[PointResult]:
    """Group latency / memory / power records of sweep points into one PointResult each."""
    grouped: dict[tuple[str, str], dict[str, Any]] = {}
    for record in records:
        parsed = parse_point_id(record.variant_id)
        if parsed is None:
            continue
        base, parameter, label = parsed
        entry = grouped.setdefault((record.target, record.variant_id), {
            "id": record.variant_id, "target": record.target, "base": base, "parameter": parameter,
            "label": label, "latency_ms": {}, "errors": []})
        if record.status != "ok":
            entry["errors"].append(f"{record.metric}: {record.meta.get('error', 'failed')}")
            continue
        summary = record.summary
        if record.metric == "latency":
            entry["latency_ms"] = {k: summary[k] for k in ("p50", "p90", "p95", "p99", "mean", "min", "max")
                                   if isinstance(summary.get(k), (int, float))}
            batch = ((record.meta.get("input") or {}).get("shape") or [1])[0] or 1
            if summary.get("throughput") is not None:
                entry["throughput_per_s"] = summary["throughput"] * batch
            if summary.get("peak_rss_bytes") is not None and "peak_memory_bytes" not in entry:
                entry["peak_memory_bytes"] = summary["peak_rss_bytes"]
        elif record.metric == "memory" and summary.get("peak_rss_bytes") is not None:
            entry["peak_memory_bytes"] = summary["peak_rss_bytes"]  # the memory job's peak wins
        elif record.metric == "power" and summary.get("load_mean_w") is not None:
            entry["power_w"] = summary["load_mean_w"]
    results = []
    for entry in grouped.values():
        value: SweepValue
        try:
            value = parse_sweep_value(entry["parameter"], entry["label"], entry["id"])
        except SweepSpecError:
            value = entry["label"]
        results.append(PointResult(value=value, errors=tuple(entry.pop("errors")), **entry))
    return results


def cost_key(parameter: str, value: SweepValue, index: int = 0) -> tuple[int, ...]:
    """Sort key of a point's cost (see the module docstring): smaller is cheaper."""
    if parameter in ("threads", "batch") and not isinstance(value, tuple):
        return (int(value),)
    if parameter == "resolution":
        width, height = value if isinstance(value, tuple) else (int(value), int(value))
        return (width * height, width)
    if parameter == "precision":
        return (PRECISIONS.index(value) if value in PRECISIONS else len(PRECISIONS), index)
    if parameter == "power_mode":
        return (POWER_LADDER.index(value) if value in POWER_LADDER else len(POWER_LADDER), index)
    return (index,)


def _limits(budget: BudgetLimits) -> Mapping[str, Any]:
    """The budget as harness.analysis.budgets reads it (the form stored in a record's meta)."""
    if budget is None:
        return {}
    if isinstance(budget, Budget):
        return {"target_latency_s": budget.target_latency_s, "max_memory_bytes": budget.max_memory_bytes,
                "max_power_w": budget.max_power_w, "statistic": budget.statistic, "source": budget.source}
    return budget


def check_point(point: PointResult, budget: BudgetLimits) -> list[str]:
    """The limits `point` misses (or cannot be shown to meet); empty = meets every limit."""
    limits = _limits(budget)
    failures = list(point.errors)
    latency = latency_verdict(point.target, point.id, point.latency_ms, limits)
    if latency.status == "error":  # the budget's statistic was not measured
        failures.append(f"no {latency.statistic} latency measured")
    elif (over := _exceeded(latency)) is not None:
        failures.append(f"{latency.statistic} {over[0]:.3f} ms > {over[1]:.3f} ms")
    if limits.get("max_memory_bytes") is not None:
        if point.peak_memory_bytes is None:
            failures.append("no peak memory measured")
        else:
            memory = memory_verdict(point.target, point.id, {"peak_rss_bytes": point.peak_memory_bytes}, limits)
            if (over := _exceeded(memory)) is not None:
                failures.append(f"peak memory {over[0] / 2**20:.1f} MiB > {over[1] / 2**20:.1f} MiB")
    if limits.get("max_power_w") is not None:
        if point.power_w is None:
            failures.append("no power measured")
        else:
            power = power_verdict(point.target, point.id, {"status": "ok", "load_mean_w": point.power_w}, limits)
            if (over := _exceeded(power)) is not None:
                failures.append(f"power {over[0]:.2f} W > {over[1]:.2f} W")
    return failures


def _exceeded(verdict: Verdict) -> tuple[float, float] | None:
    """(measured, limit) of a verdict that failed its limit; None for any other verdict."""
    if verdict.status != "fail" or verdict.value is None or verdict.limit is None:
        return None
    return verdict.value, verdict.limit


def cheapest_point(points: Sequence[PointResult], budget: BudgetLimits) -> CheapestChoice:
    """The cheapest point of ONE sweep (one target, one base variant, one parameter) that meets
    every limit of `budget` (a manifest Budget, or the dict stored in a record's meta["budget"]).

    A budget with no limit at all makes every measured point qualify, so the cheapest one wins."""
    if not points:
        return CheapestChoice(None, "", "", (), "no points measured")
    parameters = {p.parameter for p in points}
    groups = {(p.target, p.base) for p in points}
    if len(parameters) > 1 or len(groups) > 1:
        raise ValueError("cheapest_point compares the points of one sweep: one target, one variant, one parameter "
                         f"(got {sorted(parameters)} over {sorted(groups)})")
    parameter = points[0].parameter
    ordered = sorted(points, key=lambda p: cost_key(parameter, p.value, p.index))
    checks: list[dict[str, Any]] = []
    chosen = None
    for point in ordered:
        failures = check_point(point, budget)
        checks.append({"id": point.id, "label": point.label, "meets": not failures, "failures": failures})
        if chosen is None and not failures:
            chosen = point
    if chosen is None:
        message = (f"no {parameter} point of {points[0].base} on {points[0].target} meets the budget "
                   f"(cheapest tried: {checks[0]['label']}: {'; '.join(checks[0]['failures'])})")
    else:
        message = (f"cheapest point meeting every budget: {parameter}={chosen.label} "
                   f"({COST_ORDER.get(parameter, 'sweep order')})")
    return CheapestChoice(chosen, parameter, COST_ORDER.get(parameter, "sweep order"), tuple(checks), message)


def sweep_curves(records: Sequence[MeasurementRecord]) -> list[SweepCurve]:
    """Every sweep found in `records` (grouped by target, base variant and parameter)."""
    results = point_results(records)
    budgets: dict[tuple[str, str], Mapping[str, Any]] = {}
    for record in records:
        if parse_point_id(record.variant_id) and record.meta.get("budget"):
            budgets.setdefault((record.target, record.variant_id), record.meta["budget"])
    grouped: dict[tuple[str, str, str], list[PointResult]] = {}
    for result in results:
        grouped.setdefault((result.target, result.base, result.parameter), []).append(result)
    curves = []
    for (target, base, parameter), group in sorted(grouped.items()):
        ordered = tuple(sorted(group, key=lambda p: cost_key(parameter, p.value, p.index)))
        budget = next((budgets[(target, p.id)] for p in ordered if (target, p.id) in budgets), None)
        curves.append(SweepCurve(target, base, parameter, ordered, budget, cheapest_point(ordered, budget)))
    return curves
