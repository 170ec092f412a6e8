"""Render a run's report from the store: reports/<run>/index.html, report.json, summary.md,
benchmark.json (pytest-benchmark's format) and junit.xml (when pytest wrote none there).

Data flow: store records -> pandas frame (one row per target x variant, rows.py) ->
template. The same rows go to report.json, so a machine reads exactly what a person sees.
The comparison with a reference run (harness.analysis.run_comparison) is added when the run
was made with --baseline (the resolved run id is stored with the run's options) or when a
run spec for one is given here. report.json keeps its keys ("baseline_run", "vs_baseline_run").
"""

from __future__ import annotations

import gc
import json
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from harness import __version__
from harness.analysis.cheapest import sweep_curves
from harness.analysis.diagnosis import diagnose
from harness.analysis.run_comparison import RunComparison, compare_runs
from harness.errors import HarnessError
from harness.records import MeasurementRecord
from harness.report import exports, figures, model_figures, power_figures
from harness.report.hint_groups import group_hints
from harness.report.overview import model_blocks, speedup_text
from harness.report.pages import environment, inline_script, json_safe, write_page
from harness.report.rows import latency_rows
from harness.report.technique_table import technique_rows
from harness.store import Store

REPORT_VERSION = 1


def _model_figures(target: str, rows: Sequence[dict[str, Any]], records: Sequence[MeasurementRecord],
                   task_accuracy: dict[str, float | None]) -> list[dict[str, Any]]:
    """Per model: latency vs agreement (or build-time task accuracy) with its Pareto front,
    when two or more variants have both; the ECDF of each variant's latency, when two or more
    have samples. A model with neither gets no figure: a lone point carries nothing."""
    samples = {r.variant_id: r.samples for r in records
               if r.metric == "latency" and r.status == "ok" and r.samples}
    scale = {r.variant_id: {"ns": 1e-6, "us": 1e-3, "ms": 1.0, "s": 1e3}.get(r.samples_unit or "ns", 1e-6)
             for r in records if r.metric == "latency"}
    by_model: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        by_model.setdefault(row["model"], []).append(row)
    out = []
    for model, members in by_model.items():
        usable = [r for r in members if r.get("p50") is not None and r.get("status") == "ok"]
        agreement = [r for r in usable if (r.get("fidelity") or {}).get("top1_agreement") is not None]
        points: list[model_figures.TradeoffPoint] = []
        y_label = ""
        if agreement:
            y_label = "top-1 agreement (%)"
            for r in usable:
                value = (r.get("fidelity") or {}).get("top1_agreement")
                if value is None and not r.get("baseline"):
                    value = 1.0  # a baseline agrees with itself by definition
                if value is not None:
                    points.append(model_figures.TradeoffPoint(r["variant"], r["p50"], value * 100,
                                                              not r.get("baseline")))
        elif any(task_accuracy.get(r["variant_id"]) is not None for r in usable):
            y_label = "task accuracy (%)"
            points = [model_figures.TradeoffPoint(r["variant"], r["p50"], float(accuracy) * 100, not r.get("baseline"))
                      for r in usable for accuracy in (task_accuracy.get(r["variant_id"]),) if accuracy is not None]
        series = {r["variant"]: np.asarray(samples[r["variant_id"]], dtype=float) * scale[r["variant_id"]]
                  for r in usable if r["variant_id"] in samples}
        figure: dict[str, Any] = {"model": model, "tradeoff": None, "ecdf": None, "note": ""}
        if len(points) >= 2:
            figure["tradeoff"] = model_figures.tradeoff(f"{model} on {target}", points, y_label)
        if len(series) >= 2:
            figure["ecdf"] = model_figures.ecdf(f"{model} on {target}", series)
            if len(series) > model_figures.MAX_ECDF_LINES:
                figure["note"] = (f"the distribution shows the first {model_figures.MAX_ECDF_LINES} of "
                                  f"{len(series)} variants; the table holds all")
        if figure["tradeoff"] or figure["ecdf"]:
            out.append(figure)
    return out


def _power_panels(records: Sequence[MeasurementRecord]) -> tuple[list[dict[str, object]], int]:
    """Small multiples of the variants' power timelines (estimated ones marked), and how many
    variants have one."""
    series = [power_figures.PowerSeries(r.variant_id, r.meta.get("power_timeline") or [],
                                        r.meta.get("power_markers") or {}, bool(r.summary.get("estimated")))
              for r in records if r.metric == "power" and r.status == "ok" and r.meta.get("power_timeline")]
    return power_figures.panels(series), len(series)


def _warnings(rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per variant, every warning line the table marks with ⚠ (the full text of the marks)."""
    out = []
    for row in rows:
        lines = list(row.get("warnings") or [])
        fidelity, memory, power = row.get("fidelity") or {}, row.get("memory") or {}, row.get("power") or {}
        if fidelity.get("verdict") in ("fail", "error") and fidelity.get("message"):
            lines.append(fidelity["message"])
        if memory.get("verdict") == "fail" and memory.get("message"):
            lines.append(memory["message"])
        lines += [f"power: {note}" for note in power.get("notes") or []]
        if power.get("never_run_on_hardware"):
            lines.append(f"power: the {power.get('sensor')} reader has only been tested on recorded formats, never "
                         "run on this kind of hardware")
        if lines:
            out.append({"variant_id": row["variant_id"], "lines": lines})
    return out


#: Extra sections of a target on the run page, after the answer block. Each builder gets the
#: target's name, its records and its rows and returns None (nothing to show) or
#: {"id", "title", "template": a partial under templates/, ...what the partial reads}; the
#: run template includes each partial with the section as `section`.
SectionBuilder = Callable[[str, Sequence[MeasurementRecord], Sequence[dict[str, Any]]], "dict[str, Any] | None"]
SECTIONS: tuple[SectionBuilder, ...] = ()


def _reference_run_section(store: Store, run_id: str, reference_spec: str | None,
                           comparison: RunComparison | None, records: Sequence[MeasurementRecord]
                           ) -> tuple[RunComparison | None, dict[str, Any] | None]:
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
        comparison = compare_runs(store, run_id, spec, candidate_records=records)
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
    comparison, reference_run_data = _reference_run_section(store, run_id, reference_spec, comparison, records)
    by_target: dict[str, list[MeasurementRecord]] = {}
    for record in records:
        by_target.setdefault(record.target, []).append(record)
    hints = diagnose(records, environments, _provenance_by_sha(records))
    targets = []
    for target in sorted(set(frame["target"])) if not frame.empty else []:
        rows = [json_safe(row) for row in frame[frame["target"] == target].to_dict(orient="records")]
        warnings = _warnings(rows)
        marks = {w["variant_id"]: w["lines"] for w in warnings}
        for row in rows:
            row["marks"] = marks.get(row["variant_id"], [])
            row["speedup_text"] = list(speedup_text(row))
        mine = by_target.get(target, [])
        provenance = _provenance_rows(mine)
        accuracy = {p["variant_id"]: p["character_accuracy"] for p in provenance}
        panels, with_power = _power_panels(mine)
        verdicts = comparison.for_target(target) if comparison is not None else []
        target_hints = [dict(h) for h in hints if h["target"] == target]
        targets.append({
            "name": target,
            "answer": model_blocks(rows, accuracy),
            "sections": [s for s in (build(target, mine, rows) for build in SECTIONS) if s],
            "sweeps": _sweep_sections(mine),
            "profiles": _op_profiles(mine),
            "hints": target_hints,
            "hint_groups": group_hints(target_hints),
            "provenance": provenance,
            "power_panels": panels,
            "power_note": (f"the first {len(panels)} of {with_power} variants; the table holds every variant's power"
                           if with_power > len(panels) else ""),
            "techniques": technique_rows(mine),
            "rows": rows,
            "warnings": warnings,
            "environment": environments.get(target, {}),
            "model_figures": _model_figures(target, rows, mine, accuracy),
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


@contextmanager
def _collection_paused() -> Iterator[None]:
    """Python's cyclic garbage collector paused while a report is built. A run's records
    (10,000 of them: their summary and meta dicts, power timelines, samples tuples) and the
    rows, verdicts and figures made from them are a heap that only grows until the files are
    written, and each full collection walks all of it again: at 10,000 measurements that was
    0.4 s of a 1.8 s render, 1.1 s of 4.3 s with a reference run. Nothing built here needs
    collecting before then; the collector runs again as soon as the report is written."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


FIGURE_KEYS = ("model_figures", "power_panels")
JSON_INDENT_LIMIT = 1000  # measurements; larger runs get compact JSON files


def render_run_report(store: Store, run_id: str, report_dir: Path, *, reference_spec: str | None = None,
                      comparison: RunComparison | None = None, junit: bool = True) -> Path:
    """Write index.html, report.json, summary.md, benchmark.json and junit.xml under
    report_dir/<run_id>/; returns the HTML path. `baseline` (a run id, latest or
    latest:LABEL) adds the comparison with that run; `comparison` is one already made.
    junit.xml is written from the store only when `junit` is set and none is there yet (a
    pytest session places its own there instead)."""
    with _collection_paused():
        return _render(store, run_id, Path(report_dir) / run_id, reference_spec, comparison, junit)


def _render(store: Store, run_id: str, out: Path, reference_spec: str | None, comparison: RunComparison | None,
            junit: bool) -> Path:
    data, records, environments = _build(store, run_id, reference_spec, comparison)
    for_json = {**data, "targets": [{k: v for k, v in t.items() if k not in FIGURE_KEYS}
                                    for t in data["targets"]]}
    indent = 2 if len(records) <= JSON_INDENT_LIMIT else None  # indenting is Python-speed: 2 s at 10,000
    files = {
        "index.html": environment().get_template("run.html.j2").render(**data, script=inline_script("run_table.js")),
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
