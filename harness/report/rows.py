"""The table every run page shows: one row per (target, variant), latency joined with its
comparison to the variant's baseline model, memory, fidelity, power and each metric's verdict.

The run report (build.py) and the sign-off page (signoff.py) both start from `latency_rows`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pandas as pd

from harness.analysis.budgets import compare_to_baselines
from harness.analysis.record_verdict import record_verdict
from harness.records import MeasurementRecord

COLUMNS = ("target", "model", "variant", "variant_id", "kind", "runtime", "precision", "status", "n",
           "p50", "p50_ci", "p90", "p95", "p99", "mean", "std", "min", "max", "throughput", "load_ms",
           "first_inference_ms", "peak_rss_mb", "model_mib", "baseline", "delta_pct", "speedup", "speedup_ci95",
           "paired", "unpaired_reason", "comparison_note",
           "verdict", "verdict_message", "failures", "budget_ms", "budget_statistic", "warnings", "error",
           "memory", "fidelity", "power", "verdicts")
SEVERITY = {"error": 4, "fail": 3, "pass": 1, "unavailable": 0, "no-budget": 0, "not measured": 0}


def _mib(count: float | None) -> float | None:
    return count / 2**20 if count is not None else None


def model_mib(record: MeasurementRecord) -> float | None:
    """The size on disk of a variant's model files, in MiB (None when the record lists none)."""
    files = record.meta.get("files") or {}
    total = sum(int(f.get("bytes") or 0) for f in files.values() if isinstance(f, dict))
    return total / 2**20 if total else None


def _memory_cell(record: MeasurementRecord | None) -> dict[str, Any] | None:
    if record is None:
        return None
    verdict = record_verdict(record)
    summary = record.summary
    mib = {key: _mib(summary.get(key)) for key in ("peak_rss_bytes", "import_peak_bytes", "load_delta_bytes",
                                                   "inference_delta_bytes", "model_file_bytes", "memory_limit_bytes")}
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
            "model_mib": next((size for m in by_metric.values() if key in m
                               for size in (model_mib(m[key]),) if size is not None), None),
            "baseline": any_record.meta.get("baseline"),
            "delta_pct": comparison.delta_pct if comparison else None,
            "speedup": None if wrong else (comparison.speedup if comparison else None),
            "speedup_ci95": None if wrong or comparison is None else comparison.speedup_ci95,
            "paired": bool(comparison and comparison.paired),
            "unpaired_reason": comparison.unpaired_reason if comparison and comparison.baseline else "",
            "comparison_note": ("wrong outputs: no speed-up is claimed" if wrong
                                else (comparison.note if comparison else "")),
            "verdict": overall, "verdict_message": " | ".join(
                m for m in (verdict.message if verdict else "", (memory or {}).get("message", ""),
                            (fidelity or {}).get("message", ""), (power or {}).get("message", "")) if m),
            "failures": [m for status, m in ((verdict.status, verdict.message) if verdict else ("", ""),
                                             *(((cell or {}).get("verdict", ""), (cell or {}).get("message", ""))
                                               for cell in (memory, fidelity, power)))
                         if status in ("fail", "error") and m],
            "budget_ms": verdict.limit if verdict else None, "budget_statistic": verdict.statistic if verdict else None,
            "warnings": list(summary.get("warnings", [])) + _precision_warning(runtime_info),
            "error": record.meta.get("error") if record is not None else None,
            "memory": memory, "fidelity": fidelity, "power": power, "verdicts": verdicts,
        })
    return pd.DataFrame(rows, columns=list(COLUMNS))


def _precision_warning(runtime_info: dict[str, Any]) -> list[str]:
    note = runtime_info.get("precision_note")
    return [note] if note and runtime_info.get("precision") == "fp32-fake-quant" else []
