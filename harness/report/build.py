"""Render a run's report from the store: reports/<run>/index.html and report.json.

Data flow: store records -> pandas frame (one row per target x variant) -> template. The
same rows go to report.json, so a machine reads exactly what a person sees.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, Sequence

import pandas as pd
from jinja2 import Environment, PackageLoader, select_autoescape

from .. import __version__
from ..compare import compare_to_baselines, record_verdict
from ..errors import HarnessError
from ..records import MeasurementRecord
from ..store import Store
from . import figures

REPORT_VERSION = 1
COLUMNS = ("target", "model", "variant", "variant_id", "kind", "runtime", "precision", "status", "n",
           "p50", "p50_ci", "p90", "p95", "p99", "mean", "std", "min", "max", "throughput", "load_ms",
           "first_inference_ms", "peak_rss_mb", "baseline", "delta_pct", "speedup", "comparison_note",
           "verdict", "verdict_message", "budget_ms", "budget_statistic", "warnings", "error")


def latency_rows(records: Sequence[MeasurementRecord]) -> pd.DataFrame:
    """One row per latency record, joined with its baseline comparison and budget verdict."""
    comparisons = {(c.target, c.model, c.variant): c for c in compare_to_baselines(records)}
    rows = []
    for record in records:
        if record.metric != "latency":
            continue
        summary = record.summary
        verdict = record_verdict(record)
        comparison = comparisons.get((record.target, record.model, record.variant))
        runtime_info = record.meta.get("runtime_info", {})
        peak = summary.get("peak_rss_bytes")
        rows.append({
            "target": record.target, "model": record.model, "variant": record.variant,
            "variant_id": record.variant_id, "kind": record.meta.get("kind"),
            "runtime": f"{record.meta.get('runtime')} {runtime_info.get('version', '')}".strip(),
            "precision": runtime_info.get("precision"),
            "status": record.status, "n": summary.get("n"),
            **{key: summary.get(key) for key in ("p50", "p50_ci", "p90", "p95", "p99", "mean", "std", "min",
                                                  "max", "throughput", "load_ms", "first_inference_ms")},
            "peak_rss_mb": peak / 2**20 if peak else None,
            "baseline": comparison.baseline if comparison else None,
            "delta_pct": comparison.delta_pct if comparison else None,
            "speedup": comparison.speedup if comparison else None,
            "comparison_note": comparison.note if comparison else "",
            "verdict": verdict.status, "verdict_message": verdict.message,
            "budget_ms": verdict.limit, "budget_statistic": verdict.statistic,
            "warnings": list(summary.get("warnings", [])) + _precision_warning(runtime_info),
            "error": record.meta.get("error"),
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
    return env


def build_run_report_data(store: Store, run_id: str) -> dict[str, Any]:
    run = store.get_run(run_id)
    if run is None:
        raise HarnessError(f"no run '{run_id}' in {store.url}; `harness runs` lists the stored runs")
    records = store.measurements(run_id)
    frame = latency_rows(records)
    environments = store.environments(run_id)
    targets = []
    for target in sorted(set(frame["target"])) if not frame.empty else []:
        rows = frame[frame["target"] == target]
        series = {
            f"{r.model}-{r.variant}": [s / 1e6 for s in r.samples]
            for r in records if r.target == target and r.metric == "latency" and r.status == "ok" and r.samples
        }
        targets.append({
            "name": target,
            "rows": [_clean(row) for row in rows.to_dict(orient="records")],
            "environment": environments.get(target, {}),
            "figure": figures.latency_distribution(target, series) if series else None,
        })
    counts = frame["verdict"].value_counts().to_dict() if not frame.empty else {}
    return {
        "report_version": REPORT_VERSION,
        "harness_version": __version__,
        "run": _clean(run.__dict__ | {"options": dict(run.options)}),
        "complete": run.status == "complete",
        "counts": {k: int(v) for k, v in counts.items()},
        "targets": targets,
    }


def render_run_report(store: Store, run_id: str, report_dir: Path) -> Path:
    """Write index.html and report.json under report_dir/<run_id>/; returns the HTML path."""
    data = build_run_report_data(store, run_id)
    out = Path(report_dir) / run_id
    try:
        out.mkdir(parents=True, exist_ok=True)
        html = _environment().get_template("run.html.j2").render(**data)
        (out / "index.html").write_text(html, encoding="utf-8")
        for_json = {**data, "targets": [{k: v for k, v in t.items() if k != "figure"} for t in data["targets"]]}
        (out / "report.json").write_text(json.dumps(for_json, indent=2, default=str), encoding="utf-8")
    except OSError as exc:
        raise HarnessError(f"cannot write the report to {out}: {exc.strerror}") from None
    return out / "index.html"
