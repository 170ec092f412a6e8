"""Render a run's report from the store: reports/<run>/index.html, report.json, summary.md,
benchmark.json (pytest-benchmark's format) and junit.xml (when pytest wrote none there).

Data flow: store records -> pandas frame (one row per target x variant) -> template. The
same rows go to report.json, so a machine reads exactly what a person sees. The comparison
with a reference run (harness.analysis.run_comparison) is added when the run was made with
--baseline (the resolved run id is stored with the run's options) or when a run spec for
one is given here. report.json keeps its keys ("baseline_run", "vs_baseline_run").
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from jinja2 import Environment, PackageLoader, select_autoescape

from harness import __version__
from harness.analysis.budgets import compare_to_baselines, format_bytes, format_latency_ms
from harness.analysis.diagnosis import diagnose
from harness.analysis.record_verdict import record_verdict
from harness.analysis.run_comparison import RunComparison, compare_runs
from harness.errors import HarnessError
from harness.records import MeasurementRecord
from harness.report import exports, figures
from harness.run.sweep_points import sweep_curves
from harness.store import Store

REPORT_VERSION = 1
COLUMNS = ("target", "model", "variant", "variant_id", "kind", "runtime", "precision", "status", "n",
           "p50", "p50_ci", "p90", "p95", "p99", "mean", "std", "min", "max", "throughput", "load_ms",
           "first_inference_ms", "peak_rss_mb", "baseline", "delta_pct", "speedup", "comparison_note",
           "verdict", "verdict_message", "budget_ms", "budget_statistic", "warnings", "error",
           "memory", "fidelity", "power", "verdicts")
SEVERITY = {"error": 4, "fail": 3, "pass": 1, "unavailable": 0, "no-budget": 0, "not measured": 0}


def _memory_cell(record: MeasurementRecord | None) -> dict[str, Any] | None:
    if record is None:
        return None
    verdict = record_verdict(record)
    summary = record.summary
    in_bytes: dict[str, float | None] = {
        key: summary.get(key) for key in ("peak_rss_bytes", "import_peak_bytes", "load_delta_bytes",
                                          "inference_delta_bytes", "model_file_bytes", "memory_limit_bytes")}
    mib = {key: (value / 2**20 if value is not None else None) for key, value in in_bytes.items()}
    budget = (record.meta.get("budget") or {}).get("max_memory_bytes")
    return {"status": record.status, "verdict": verdict.status, "message": verdict.message,
            "error": record.meta.get("error"), "budget_mib": budget / 2**20 if budget else None,
            **{key.replace("_bytes", "_mib"): value for key, value in mib.items()}}


def _fidelity_cell(record: MeasurementRecord | None) -> dict[str, Any] | None:
    if record is None:
        return None
    verdict = record_verdict(record)
    summary = record.summary
    return {"status": record.status, "verdict": verdict.status, "message": verdict.message,
            "error": record.meta.get("error"), "baseline_only": bool(summary.get("baseline_only")),
            **{key: summary.get(key) for key in ("top1_agreement", "top5_agreement", "relative_error_mean",
                                                 "relative_error_max", "cosine_min", "max_abs_error", "inputs")},
            "distinct_top1": (summary.get("baseline") or {}).get("distinct_top1")}


def _power_cell(record: MeasurementRecord | None) -> dict[str, Any] | None:
    if record is None:
        return None
    verdict = record_verdict(record)
    summary = record.summary
    return {"status": record.status, "verdict": verdict.status, "message": verdict.message,
            "error": record.meta.get("error"), "estimated": bool(summary.get("estimated")),
            "state": summary.get("status"), "reason": summary.get("reason"),
            "notes": [n for n in summary.get("notes") or [] if not n.startswith("estimated, not measured")],
            **{key: summary.get(key) for key in ("idle_mean_w", "load_mean_w", "load_peak_w",
                                                 "energy_per_inference_mj", "sample_rate_hz", "sensor",
                                                 "lower_bound", "never_run_on_hardware")}}


def latency_rows(records: Sequence[MeasurementRecord]) -> pd.DataFrame:
    """One row per (target, variant): latency joined with its baseline comparison, memory,
    fidelity, and each metric's verdict. A variant whose outputs are wrong never shows a
    speed-up: the comparison note says so instead."""
    comparisons = {(c.target, c.model, c.variant): c for c in compare_to_baselines(records)}
    by_metric: dict[str, dict[tuple[str, str, str], MeasurementRecord]] = {}
    for measured in records:
        by_metric.setdefault(measured.metric, {})[(measured.target, measured.model, measured.variant)] = measured
    keys = list(dict.fromkeys((r.target, r.model, r.variant) for r in records))
    rows = []
    for key in keys:
        record = by_metric.get("latency", {}).get(key)
        memory = _memory_cell(by_metric.get("memory", {}).get(key))
        fidelity = _fidelity_cell(by_metric.get("fidelity", {}).get(key))
        power = _power_cell(by_metric.get("power", {}).get(key))
        any_record = record or next(by_metric[m][key] for m in by_metric if key in by_metric[m])
        summary = record.summary if record is not None else {}
        verdict = record_verdict(record) if record is not None else None
        comparison = comparisons.get(key)
        runtime_info = (any_record.meta.get("runtime_info") or {})
        peak = summary.get("peak_rss_bytes")
        verdicts = {"latency": verdict.status if verdict else "not measured",
                    "memory": memory["verdict"] if memory else "not measured",
                    "fidelity": fidelity["verdict"] if fidelity else "not measured",
                    "power": power["verdict"] if power else "not measured"}
        overall = max(verdicts.values(), key=lambda v: SEVERITY.get(v, 0))
        wrong = fidelity is not None and fidelity["verdict"] == "fail"
        rows.append({
            "target": key[0], "model": key[1], "variant": key[2], "variant_id": f"{key[1]}-{key[2]}",
            "kind": any_record.meta.get("kind"),
            "runtime": f"{any_record.meta.get('runtime')} {runtime_info.get('version', '')}".strip(),
            "precision": runtime_info.get("precision"),
            "status": record.status if record is not None else "not measured", "n": summary.get("n"),
            **{k: summary.get(k) for k in ("p50", "p50_ci", "p90", "p95", "p99", "mean", "std", "min", "max",
                                            "throughput", "load_ms", "first_inference_ms")},
            "peak_rss_mb": peak / 2**20 if peak else None,
            "baseline": any_record.meta.get("baseline"),
            "delta_pct": comparison.delta_pct if comparison else None,
            "speedup": None if wrong else (comparison.speedup if comparison else None),
            "comparison_note": ("wrong outputs: no speed-up is claimed" if wrong
                                else (comparison.note if comparison else "")),
            "verdict": overall, "verdict_message": " | ".join(
                m for m in (verdict.message if verdict else "", (memory or {}).get("message", ""),
                            (fidelity or {}).get("message", ""), (power or {}).get("message", "")) if m),
            "budget_ms": verdict.limit if verdict else None, "budget_statistic": verdict.statistic if verdict else None,
            "warnings": list(summary.get("warnings", [])) + _precision_warning(runtime_info),
            "error": record.meta.get("error") if record is not None else None,
            "memory": memory, "fidelity": fidelity, "power": power, "verdicts": verdicts,
        })
    return pd.DataFrame(rows, columns=list(COLUMNS))


def _precision_warning(runtime_info: dict[str, Any]) -> list[str]:
    note = runtime_info.get("precision_note")
    return [note] if note and runtime_info.get("precision") == "fp32-fake-quant" else []


def _clean(value: Any) -> Any:
    """JSON-safe: NaN/inf (pandas' missing values) become null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    return value


def _environment():
    env = Environment(loader=PackageLoader("harness.report", "templates"),
                      autoescape=select_autoescape(["html", "j2"]), trim_blocks=True, lstrip_blocks=True)
    env.filters["ms"] = lambda v: "–" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.3f}"
    env.filters["num"] = lambda v, fmt="{:.1f}": "–" if v is None or (isinstance(v, float) and math.isnan(v)) \
        else fmt.format(v)
    env.filters["value"] = format_value
    env.filters["pct"] = lambda ratio: "–" if ratio is None else f"{(ratio - 1) * 100:+.1f}%"
    env.filters["pvalue"] = lambda p: "–" if p is None else (f"{p:.2g}" if p >= 1e-3 else f"{p:.0e}")
    return env


def format_value(value: Any, unit: str) -> str:
    """A metric value with its unit, for the comparison tables."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    if unit == "ms":
        return format_latency_ms(value)
    if unit == "bytes":
        return format_bytes(value)
    if unit == "W":
        return f"{value:.2f} W"
    if unit == "ratio":
        return f"{value * 100:.1f}%"
    return f"{value:g} {unit}".strip()


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
    points, left_out = [], []
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
        points.append({"label": row["variant_id"], "p50": row["p50"], "y": y, "size_mib": size,
                       "is_baseline": not row.get("baseline")})
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
        "missing": [_clean(v.as_dict()) for v in comparison.missing],
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
        rows[record.variant_id] = {
            "variant_id": record.variant_id, "tool": made.get("tool"), "source": made.get("source"),
            "options": made.get("options"),
            "calibration_size": calibration.get("size") if isinstance(calibration, dict) else None,
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
        rows = [_clean(row) for row in frame[frame["target"] == target].to_dict(orient="records")]
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
            "power_figure": figures.power_timeline(target, timelines, estimated) if timelines else None,
            "rows": rows,
            "environment": environments.get(target, {}),
            "figure": figures.latency_distribution(target, series) if series else None,
            "figure_note": (f"the figure shows the first {figures.MAX_SERIES} of {len(sampled)} variants; the table "
                            "holds all") if len(sampled) > figures.MAX_SERIES else "",
            "tradeoff_figure": tradeoff,
            "tradeoff_note": tradeoff_note,
            "vs_baseline_run": [_clean(v.as_dict()) for v in verdicts],
        })
    counts: dict[str, int] = {}
    for verdicts in frame["verdicts"] if not frame.empty else []:
        for status in verdicts.values():
            counts[status] = counts.get(status, 0) + 1
    data = {
        "report_version": REPORT_VERSION,
        "harness_version": __version__,
        "run": _clean(run.__dict__ | {"options": dict(run.options)}),
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
    report_dir/<run_id>/; returns the HTML path. `reference_spec` (a run id, latest or
    latest:LABEL, as --baseline takes) adds the comparison with that run; `comparison` is one already made.
    junit.xml is written from the store only when `junit` is set and none is there yet (a
    pytest session places its own there instead)."""
    data, records, environments = _build(store, run_id, reference_spec, comparison)
    out = Path(report_dir) / run_id
    try:
        out.mkdir(parents=True, exist_ok=True)
        html = _environment().get_template("run.html.j2").render(**data)
        (out / "index.html").write_text(html, encoding="utf-8")
        for_json = {**data, "targets": [{k: v for k, v in t.items() if k not in FIGURE_KEYS}
                                        for t in data["targets"]]}
        indent = 2 if len(records) <= JSON_INDENT_LIMIT else None  # indenting is Python-speed: 2 s at 10,000
        (out / "report.json").write_text(json.dumps(for_json, indent=indent, default=str), encoding="utf-8")
        (out / "summary.md").write_text(exports.summary_markdown(data), encoding="utf-8")
        (out / "benchmark.json").write_text(
            json.dumps(exports.pytest_benchmark_json(data["run"], records, environments), indent=indent),
            encoding="utf-8")
        if junit and not (out / "junit.xml").exists():
            vs_reference_run = [v for t in data["targets"] for v in t["vs_baseline_run"]]
            (out / "junit.xml").write_text(exports.junit_from_store(data["run"], records, vs_reference_run),
                                           encoding="utf-8")
    except OSError as exc:
        raise HarnessError(f"cannot write the report to {out}: {exc.strerror}") from None
    return out / "index.html"
