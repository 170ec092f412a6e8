"""Render a run's report from the store: reports/<run>/index.html, report.json, summary.md,
benchmark.json (pytest-benchmark's format) and junit.xml (when pytest wrote none there).

Data flow: store records -> pandas frame (one row per target x variant, rows.py) ->
template. The same rows go to report.json, so a machine reads exactly what a person sees.
The comparison with a reference run (harness.analysis.run_comparison) is added when the run
was made with --baseline (the resolved run id is stored with the run's options) or when a
run spec for one is given here. report.json keeps its keys ("baseline_run", "vs_baseline_run").
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from harness import __version__
from harness.analysis.cheapest import sweep_curves
from harness.analysis.diagnosis import diagnose
from harness.analysis.run_comparison import RunComparison, compare_runs
from harness.errors import HarnessError
from harness.records import MeasurementRecord
from harness.report import exports, figures
from harness.report.pages import environment, json_safe, write_page
from harness.report.rows import latency_rows
from harness.report.technique_table import technique_rows
from harness.store import Store

REPORT_VERSION = 1


def _model_mib(record: MeasurementRecord) -> float | None:
    files = record.meta.get("files") or {}
    total = sum(int(f.get("bytes") or 0) for f in files.values() if isinstance(f, dict))
    return total / 2**20 if total else None


def _tradeoff_figure(target: str, rows: list[dict[str, Any]], sizes: dict[str, float | None]) -> tuple[str | None, str]:
    """Latency vs agreement (when any variant has one) else vs model size; the caption says
    which variants are left out and why."""
    usable = [r for r in rows if r.get("p50") is not None and r.get("status") == "ok"]
    agreements = {r["variant_id"]: (r.get("fidelity") or {}).get("top1_agreement") for r in usable}
    y_kind = "agreement" if any(v is not None for v in agreements.values()) else "size"
    points: list[figures.TradeoffPoint] = []
    left_out: list[str] = []
    for row in usable:
        size = sizes.get(row["variant_id"])
        if y_kind == "agreement":
            value = agreements[row["variant_id"]]
            if value is None and not row.get("baseline"):
                value = 1.0  # a baseline model agrees with itself by definition
            y = None if value is None else value * 100
        else:
            y = size
        if y is None:
            left_out.append(row["variant_id"])
            continue
        points.append(figures.TradeoffPoint(label=str(row["variant_id"]), p50=row["p50"], y=y, size_mib=size,
                                             is_baseline=not row.get("baseline")))
    if not points:
        return None, ""
    note = ("y: top-1 agreement with the baseline model (baselines at 100% by definition)" if y_kind == "agreement"
            else "y: model size on disk (no fidelity measured in this run)")
    if left_out:
        note += f"; not plotted (no {'agreement' if y_kind == 'agreement' else 'size'}): {', '.join(left_out[:20])}"
        note += f" and {len(left_out) - 20} more" if len(left_out) > 20 else ""
    return figures.tradeoff(target, points, y_kind), note


def _reference_run_section(store: Store, run_id: str, reference_spec: str | None,
                           comparison: RunComparison | None) -> tuple[RunComparison | None, dict[str, Any] | None]:
    """The comparison to show: the one given, one against the run `reference_spec` names, or
    against the run the pytest session resolved --baseline to (stored with the run's options)."""
    run = store.get_run(run_id)
    spec = reference_spec
    if comparison is None and spec is None and run is not None and run.options.get("baseline"):
        stored = run.options.get("baseline_run_id")
        if stored is None:
            return None, {"note": f"--baseline {run.options['baseline']}: there was no earlier run to compare with",
                          "compared": False}
        spec = stored
    if comparison is None and spec is not None:
        comparison = compare_runs(store, run_id, spec)
        if comparison is None:
            return None, {"note": f"--baseline {spec}: no earlier complete run to compare with", "compared": False}
    if comparison is None:
        return None, None
    reference = comparison.reference_run
    return comparison, {
        "compared": True, "note": comparison.note, "counts": comparison.counts(),
        "summary": comparison.summary_line(),
        "run": {"id": reference.id, "label": reference.label, "started_at": reference.started_at,
                "git_sha": reference.git_sha, "status": reference.status},
        "history_label": comparison.history_label, "history_runs": comparison.history_runs,
        "missing": [json_safe(v.as_dict()) for v in comparison.missing],
    }


def build_run_report_data(store: Store, run_id: str, reference_spec: str | None = None,
                          comparison: RunComparison | None = None) -> dict[str, Any]:
    """Everything the run report shows, as plain values (figures as data URIs)."""
    return _build(store, run_id, reference_spec, comparison)[0]


def _provenance_by_sha(records: Sequence[MeasurementRecord]) -> dict[str, Any]:
    """sha256 of a model file -> how it was made, from what each record stored."""
    index: dict[str, Any] = {}
    for record in records:
        made = record.meta.get("provenance")
        if made:
            for entry in (record.meta.get("files") or {}).values():
                if entry.get("sha256"):
                    index[entry["sha256"]] = made
    return index


def _provenance_rows(records: Sequence[MeasurementRecord]) -> list[dict[str, Any]]:
    """Per variant: how it was made, and its task accuracy where the build measured one."""
    rows: dict[str, dict[str, Any]] = {}
    for record in records:
        made = record.meta.get("provenance")
        if not made or record.variant_id in rows:
            continue
        accuracy = made.get("task_accuracy") or {}
        calibration = made.get("calibration") or {}
        calibration_size = calibration.get("size") if isinstance(calibration, dict) else None
        rows[record.variant_id] = {
            "variant_id": record.variant_id, "tool": made.get("tool"), "source": made.get("source"),
            "options": made.get("options"), "calibration_size": calibration_size,
            "expected": made.get("expected"), "arch": made.get("arch"),
            "character_accuracy": accuracy.get("character_accuracy"), "accuracy_count": accuracy.get("count"),
        }
    return list(rows.values())


def _op_profiles(records: Sequence[MeasurementRecord], top: int = 5) -> list[dict[str, Any]]:
    """Top operators by share of time per variant (from --profile-ops), or why there are none."""
    found = []
    for record in records:
        profile = record.meta.get("op_profile") if record.metric == "latency" else None
        if profile is None:
            continue
        found.append({"variant_id": record.variant_id, "supported": profile.get("supported"),
                      "reason": profile.get("reason"), "profiler": profile.get("profiler"),
                      "coverage": profile.get("coverage"), "ops": list(profile.get("ops") or [])[:top]})
    return found


def _sweep_sections(records: Sequence[MeasurementRecord]) -> list[dict[str, Any]]:
    sections = []
    for curve in sweep_curves(records):
        statistic = (curve.budget or {}).get("statistic") or "p90"
        labels = [p.label for p in curve.points]
        latency = [p.latency_ms.get(statistic) for p in curve.points]
        throughput = [p.throughput_per_s for p in curve.points]
        budget_s = (curve.budget or {}).get("target_latency_s")
        chosen = curve.choice.point.label if curve.choice.point is not None else None
        sections.append({
            "base": curve.base, "parameter": curve.parameter, "message": curve.choice.message,
            "points": [{"label": p.label, "latency_ms": p.latency_ms.get(statistic), "throughput": p.throughput_per_s,
                        "peak_memory_mib": p.peak_memory_bytes / 2**20 if p.peak_memory_bytes else None,
                        "errors": list(p.errors)} for p in curve.points],
            "figure": figures.sweep_curve(f"{curve.target}: {curve.base} vs {curve.parameter}", curve.parameter,
                                          labels, latency, throughput, budget_s * 1000 if budget_s else None,
                                          chosen, statistic),
        })
    return sections


def _build(store: Store, run_id: str, reference_spec: str | None, comparison: RunComparison | None
           ) -> tuple[dict[str, Any], Sequence[MeasurementRecord], Any]:
    run = store.get_run(run_id)
    if run is None:
        raise HarnessError(f"no run '{run_id}' in {store.url}; `harness runs` lists the stored runs")
    records = store.measurements(run_id)
    frame = latency_rows(records)
    environments = store.environments(run_id)
    comparison, reference_run_data = _reference_run_section(store, run_id, reference_spec, comparison)
    by_target: dict[str, list[MeasurementRecord]] = {}
    for record in records:
        by_target.setdefault(record.target, []).append(record)
    hints = diagnose(records, environments, _provenance_by_sha(records))
    targets = []
    for target in sorted(set(frame["target"])) if not frame.empty else []:
        rows = [json_safe(row) for row in frame[frame["target"] == target].to_dict(orient="records")]
        mine = by_target.get(target, [])
        sampled = [r for r in mine if r.metric == "latency" and r.status == "ok" and r.samples]
        series = {r.variant_id: (np.asarray(r.samples, dtype=float) / 1e6).tolist()  # ns -> ms; only what is drawn
                  for r in sampled[:figures.MAX_SERIES]}
        timelines = {
            f"{r.model}-{r.variant}": (r.meta.get("power_timeline") or [], r.meta.get("power_markers") or {})
            for r in mine if r.metric == "power" and r.status == "ok" and r.meta.get("power_timeline")
        }
        sizes: dict[str, float | None] = {}
        for r in mine:
            if sizes.get(r.variant_id) is None:
                sizes[r.variant_id] = _model_mib(r)
        estimated = any(r.summary.get("estimated") for r in mine if r.metric == "power")
        tradeoff, tradeoff_note = _tradeoff_figure(target, rows, sizes)
        verdicts = comparison.for_target(target) if comparison is not None else []
        targets.append({
            "name": target,
            "sweeps": _sweep_sections(mine),
            "profiles": _op_profiles(mine),
            "hints": [dict(h) for h in hints if h["target"] == target],
            "provenance": _provenance_rows(mine),
            "techniques": technique_rows(mine),
            "power_figure": figures.power_timeline(target, timelines, estimated) if timelines else None,
            "rows": rows,
            "environment": environments.get(target, {}),
            "figure": figures.latency_distribution(target, series) if series else None,
            "figure_note": (f"the figure shows the first {figures.MAX_SERIES} of {len(sampled)} variants; the table "
                            "holds all") if len(sampled) > figures.MAX_SERIES else "",
            "tradeoff_figure": tradeoff,
            "tradeoff_note": tradeoff_note,
            "vs_baseline_run": [json_safe(v.as_dict()) for v in verdicts],
        })
    counts: dict[str, int] = {}
    for verdicts in frame["verdicts"] if not frame.empty else []:
        for status in verdicts.values():
            counts[status] = counts.get(status, 0) + 1
    data = {
        "report_version": REPORT_VERSION,
        "harness_version": __version__,
        "run": json_safe(run.__dict__ | {"options": dict(run.options)}),
        "complete": run.status == "complete",
        "counts": {k: int(v) for k, v in counts.items()},
        "baseline_run": reference_run_data,
        "targets": targets,
    }
    return data, records, environments


FIGURE_KEYS = ("figure", "power_figure", "tradeoff_figure")
JSON_INDENT_LIMIT = 1000  # measurements; larger runs get compact JSON files


def render_run_report(store: Store, run_id: str, report_dir: Path, *, reference_spec: str | None = None,
                      comparison: RunComparison | None = None, junit: bool = True) -> Path:
    """Write index.html, report.json, summary.md, benchmark.json and junit.xml under
    report_dir/<run_id>/; returns the HTML path. `baseline` (a run id, latest or
    latest:LABEL) adds the comparison with that run; `comparison` is one already made.
    junit.xml is written from the store only when `junit` is set and none is there yet (a
    pytest session places its own there instead)."""
    data, records, environments = _build(store, run_id, reference_spec, comparison)
    out = Path(report_dir) / run_id
    for_json = {**data, "targets": [{k: v for k, v in t.items() if k not in FIGURE_KEYS}
                                    for t in data["targets"]]}
    indent = 2 if len(records) <= JSON_INDENT_LIMIT else None  # indenting is Python-speed: 2 s at 10,000
    files = {
        "index.html": environment().get_template("run.html.j2").render(**data),
        "report.json": json.dumps(for_json, indent=indent, default=str),
        "summary.md": exports.summary_markdown(data),
        "benchmark.json": json.dumps(exports.pytest_benchmark_json(data["run"], records, environments),
                                     indent=indent),
    }
    if junit and not (out / "junit.xml").exists():
        vs_reference_run = [v for t in data["targets"] for v in t["vs_baseline_run"]]
        files["junit.xml"] = exports.junit_from_store(data["run"], records, vs_reference_run)
    write_page(out, "report", files)
    return out / "index.html"
