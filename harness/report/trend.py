"""The nightly trend report: per target and variant, each metric across the last runs of a
label, with regressions marked at the run where they appeared.

    harness report trend --label nightly --last 30   ->  reports/trend-nightly/index.html

From the store only. Each series (one value per run: p50 latency, peak RSS, mean power
under load, top-1 agreement) goes through ``regression.detect_steps`` (optimal
piecewise-constant fit of the log series; one bad night is not a step, a slow drift over
several nights is one event); an event in the worse direction is a regression, marked at
its first run at the new level.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from harness import __version__
from harness.analysis.metric_rules import RULES, threshold_for
from harness.analysis.paired import reference_run_ratio
from harness.analysis.regression import DEFAULT_THRESHOLD, detect_steps
from harness.errors import HarnessError
from harness.records import MeasurementRecord, RunInfo
from harness.report import figures
from harness.report.pages import environment, write_page
from harness.store import Store

TREND_VERSION = 1


@dataclass(frozen=True)
class TrendMetric:
    metric: str
    title: str
    unit: str
    higher_is_worse: bool
    shown: Callable[[float], float]  # stored value -> shown value


TREND_METRICS = (
    TrendMetric("latency", "p50 latency", "ms", True, lambda v: v),
    TrendMetric("memory", "peak memory (RSS)", "MiB", True, lambda v: v / 2**20),
    TrendMetric("power", "mean power under load", "W", True, lambda v: v),
    TrendMetric("fidelity", "top-1 agreement with the baseline model", "%", False, lambda v: v * 100),
)


def _run_tick(run: RunInfo) -> str:
    """`11-22 05:09` from the run's start (ISO, UTC)."""
    started = run.started_at or run.id
    return f"{started[5:10]} {started[11:19]}" if len(started) >= 19 else run.id


def _value(record: MeasurementRecord) -> float | None:
    if record.status != "ok" or record.metric not in RULES:
        return None
    if record.metric == "fidelity" and record.summary.get("baseline_only"):
        return None
    value = RULES[record.metric].value(record)
    return float(value) if value is not None and value > 0 else None


def _paired_evidence(record: MeasurementRecord) -> dict[str, Any] | None:
    """A latency record's ratio paired against its reference run's artifacts (same job), if any."""
    if record.metric != "latency" or record.status != "ok":
        return None
    reference = (record.meta.get("paired") or {}).get("reference_run")
    if not reference:
        return None
    ratio, _ = reference_run_ratio(record.meta, reference)
    if ratio is None:
        return None
    return {"against_run": reference, "change_pct": (ratio["ratio"] - 1) * 100,
            "ci_pct": [(ratio["ci95"][0] - 1) * 100, (ratio["ci95"][1] - 1) * 100]}


def build_trend_data(store: Store, label: str, last: int = 30) -> dict[str, Any]:
    if last < 2:
        raise HarnessError(f"--last {last}: a trend needs at least 2 runs")
    runs = list(reversed(store.runs(label=label, limit=last)))
    if not runs:
        raise HarnessError(f"no runs with label '{label}' in {store.url}; run the suites with --run-label {label}")
    # (target, metric) -> variant_id -> values per run; thresholds from the newest record
    series: dict[tuple[str, str], dict[str, list[float | None]]] = {}
    thresholds: dict[tuple[str, str, str], float] = {}
    notes: dict[tuple[str, str, str], list[str | None]] = {}
    # (target, variant_id) -> per run: the latency ratio paired against that run's reference run
    paired: dict[tuple[str, str], list[dict[str, Any] | None]] = {}
    index_of = {run.id: index for index, run in enumerate(runs)}
    for record in store.measurements_of_runs([run.id for run in runs]):  # one query, summaries only
        index = index_of[record.run_id]
        value = _value(record)
        key = (record.target, record.metric)
        if record.metric not in RULES or (record.metric == "fidelity" and record.summary.get("baseline_only")):
            continue
        column = series.setdefault(key, {}).setdefault(record.variant_id, [None] * len(runs))
        column[index] = value
        thresholds[(record.target, record.metric, record.variant_id)] = threshold_for(record, DEFAULT_THRESHOLD)
        if record.status != "ok":
            notes.setdefault((record.target, record.metric, record.variant_id), [None] * len(runs))[index] = \
                str(record.meta.get("error", "failed"))
        evidence = _paired_evidence(record)
        if evidence is not None:
            paired.setdefault((record.target, record.variant_id), [None] * len(runs))[index] = evidence
    run_rows: list[dict[str, Any]] = [
        {"index": i, "id": r.id, "tick": _run_tick(r), "started_at": r.started_at, "status": r.status,
         "git_sha": r.git_sha, "git_dirty": r.git_dirty} for i, r in enumerate(runs)]
    targets: dict[str, list[dict[str, Any]]] = {}
    events: list[dict[str, Any]] = []
    for spec in TREND_METRICS:
        for (target, metric), by_variant in sorted(series.items()):
            if metric != spec.metric:
                continue
            rows: list[dict[str, Any]] = []
            marks: dict[str, list[tuple[int, str]]] = {}
            for variant_id, values in sorted(by_variant.items()):
                threshold = thresholds[(target, metric, variant_id)]
                steps = detect_steps(values, threshold=threshold)
                cells: list[dict[str, Any]] = [
                    {"value": None if v is None else spec.shown(v), "mark": None, "note": None} for v in values]
                for i, note in enumerate(notes.get((target, metric, variant_id), [None] * len(runs))):
                    if note:
                        cells[i]["note"] = note
                nightly = paired.get((target, variant_id), [None] * len(runs)) if metric == "latency" else []
                for i, found_paired in enumerate(nightly):
                    cells[i]["paired"] = found_paired
                found: list[dict[str, Any]] = []
                for step in steps:
                    up = step.ratio > 1
                    worse = up == spec.higher_is_worse
                    kind = "worse" if worse else "better"
                    cells[step.index]["mark"] = kind
                    run = runs[step.index]
                    event = {
                        "target": target, "metric": metric, "variant_id": variant_id, "kind": kind,
                        "shape": step.kind, "run_index": step.index, "run": run.id, "tick": _run_tick(run),
                        "started_at": run.started_at, "git_sha": run.git_sha,
                        "end_run": runs[step.end_index].id if step.end_index is not None else run.id,
                        "before": spec.shown(step.before), "after": spec.shown(step.after),
                        "change_pct": (step.ratio - 1) * 100, "threshold": threshold, "unit": spec.unit,
                        "title": spec.title,
                        # the same night timed against the night before's own artifacts, where it was
                        "paired": cells[step.index].get("paired"),
                    }
                    found.append(event)
                    events.append(event)
                pending = _unconfirmed(values, steps, threshold, spec.higher_is_worse)
                newest = values[-1] if values else None
                if pending is not None and newest is not None:  # (no pending change without a newest value)
                    last = len(values) - 1
                    cells[last]["mark"] = "pending"
                    event = {"target": target, "metric": metric, "variant_id": variant_id, "kind": "unconfirmed",
                             "shape": "one run", "run_index": last, "run": runs[last].id, "tick": _run_tick(runs[last]),
                             "started_at": runs[last].started_at, "git_sha": runs[last].git_sha,
                             "end_run": runs[last].id, "before": spec.shown(pending[0]),
                             "after": spec.shown(newest), "change_pct": (pending[1] - 1) * 100,
                             "threshold": threshold, "unit": spec.unit, "title": spec.title,
                             "paired": cells[last].get("paired")}
                    found.append(event)
                    events.append(event)
                marks[variant_id] = [(e["run_index"], e["kind"]) for e in found if e["kind"] != "unconfirmed"]
                rows.append({"variant_id": variant_id, "cells": cells, "events": found, "threshold": threshold,
                             "measured": sum(v is not None for v in values)})
            # a figure only where something moved, holding only the variants that moved: a flat
            # line per variant says no more than the table's "–" events column
            moved = [row for row in rows if row["events"]]
            figure = figures.history(f"{target}: {spec.title} across {label} runs", spec.unit,
                                     [f"{r['index'] + 1} · {r['tick']}" for r in run_rows],
                                     {row["variant_id"]: [c["value"] for c in row["cells"]] for row in moved},
                                     marks) if moved else None
            targets.setdefault(target, []).append({"metric": metric, "title": spec.title, "unit": spec.unit,
                                                   "rows": rows, "figure": figure, "moved": len(moved)})
    regressions = [e for e in events if e["kind"] == "worse"]
    unconfirmed = [e for e in events if e["kind"] == "unconfirmed"]
    return {
        "trend_version": TREND_VERSION, "harness_version": __version__, "label": label, "last": last,
        "runs": run_rows, "targets": [{"name": name, "metrics": metrics} for name, metrics in sorted(targets.items())],
        "regressions": sorted(regressions, key=lambda e: (e["run_index"], e["target"], e["variant_id"])),
        "improvements": [e for e in events if e["kind"] == "better"],
        "unconfirmed": unconfirmed,
    }


def _unconfirmed(values: Sequence[float | None], steps: Sequence[Any], threshold: float,
                 higher_is_worse: bool) -> tuple[float, float] | None:
    """A change in the newest run alone, worse than the threshold against the median of the
    three runs before it: step detection needs two runs at a new level, so tonight's
    slowdown is shown as unconfirmed until the next run (`decide` against the previous run
    calls it the same night). (level before, ratio) or None."""
    if not values or values[-1] is None or any(step.index == len(values) - 1 for step in steps):
        return None
    before = [v for v in values[:-1] if v is not None][-3:]
    if len(before) < 2:
        return None
    level = float(np.median(before))
    ratio = values[-1] / level
    worse = ratio > 1 + threshold if higher_is_worse else ratio < 1 - threshold
    return (level, ratio) if worse else None


def trend_dir_name(label: str) -> str:
    return "trend-" + re.sub(r"[^A-Za-z0-9._-]", "_", label)


def render_trend_report(store: Store, label: str, last: int, report_dir: Path) -> Path:
    """Write index.html and trend.json under report_dir/trend-<label>/; returns the HTML path."""
    data = build_trend_data(store, label, last)
    out = Path(report_dir) / trend_dir_name(label)
    for_json = {**data, "targets": [{"name": t["name"], "metrics": [
        {k: v for k, v in m.items() if k != "figure"} for m in t["metrics"]]} for t in data["targets"]]}
    write_page(out, "trend report", {
        "index.html": environment().get_template("trend.html.j2").render(**data),
        "trend.json": json.dumps(for_json, indent=2, default=str),
    })
    return out / "index.html"


def regression_lines(data: dict[str, Any]) -> Sequence[str]:
    def paired(event: dict[str, Any]) -> str:
        found = event.get("paired")
        return (f"; paired that night against run {found['against_run']}: {found['change_pct']:+.1f}% "
                f"[{found['ci_pct'][0]:+.1f}%, {found['ci_pct'][1]:+.1f}%]" if found else "")

    return [f"{e['target']}: {e['variant_id']} {e['title']} {e['change_pct']:+.1f}% ({e['shape']}) at run {e['run']}"
            f"{paired(e)}" for e in data["regressions"]]
