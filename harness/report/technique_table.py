"""The seeds' compression table, measured: per target and model, one row per variant with
technique, size ratio, task accuracy (binomial 95 % interval) and its change against fp32 in
points, speed-up and peak memory, all from the run's stored records.

- technique: the variant's kind and the tool its build-info names (record meta "provenance");
- size ratio: the model's root baseline (its fp32) model files' bytes over the variant's;
- accuracy: the fidelity record's "accuracy" (top-1 counted on the target on the held-out
  images; harness.analysis.accuracy), its change in points against the root baseline's on the
  same target (not against the immediate baseline: onnx_int8's baseline is onnx). The root is
  the farthest ancestor measured there: fp32, or onnx on a target without Paddle Inference;
- speed-up: the variant's paired speed-up against the root where the two were timed
  interleaved in one job (docs/paired.md), with its 95% interval; else root baseline p50 /
  the variant's p50 from their separate jobs, marked unpaired;
- peak memory: the memory record's peak RSS (else the latency job's).
Only models whose fidelity records carry accuracy (a manifest `dataset`) get a table. The
seeds' claims are shown beside the measured numbers, as claims.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from harness.records import MeasurementRecord

#: What the seeds claim per technique (seed 002's table; seed 001's int8 figures).
SEED_CLAIMS: Mapping[str, str] = {
    "int8-qat": "4x smaller, under 1 % accuracy loss (seed 002)",
    "int8-ptq": "8-bit weights: 75 % smaller, 3x faster (seed 001)",
    "pruned": "2-10x smaller, 1-3 % loss (seed 002)",
    "distilled": "2-5x smaller, 0.5-2 % loss (seed 002)",
}


def _bytes(record: MeasurementRecord) -> int | None:
    files = record.meta.get("files") or {}
    total = sum(int(f.get("bytes") or 0) for f in files.values() if isinstance(f, dict))
    return total or None


def _root(variant: str, baselines: Mapping[str, str | None], measured: set[str]) -> str:
    """The farthest ancestor along the baseline chain whose accuracy was measured on this target
    (fp32; on a target without Paddle Inference, onnx), else the variant itself."""
    root, current, seen = variant, variant, {variant}
    while baselines.get(current):
        current = str(baselines[current])
        if current in seen:
            break
        seen.add(current)
        if current in measured:
            root = current
    return root


def _paired_against(latency: MeasurementRecord | None, root: str) -> Mapping[str, Any] | None:
    """The latency record's paired ratio against the arm `root`, if the two ran in one job."""
    paired = (latency.meta.get("paired") or {}) if latency is not None else {}
    return next((r for r in paired.get("ratios") or () if r.get("against") == root), None)


def technique_rows(records: Sequence[MeasurementRecord]) -> list[dict[str, Any]]:
    """The table's rows for one target's records, grouped by model (models with accuracy only)."""
    ok = [r for r in records if r.status == "ok" and "@" not in r.variant]  # a sweep point is not the variant
    by_metric: dict[tuple[str, str, str], MeasurementRecord] = {}
    for record in ok:
        by_metric.setdefault((record.metric, record.model, record.variant), record)
    models = sorted({r.model for r in ok if r.metric == "fidelity" and r.summary.get("accuracy")})
    rows = []
    for model in models:
        mine = [r for r in ok if r.model == model]
        baselines = {r.variant: r.meta.get("baseline") for r in mine}
        measured = {r.variant for r in mine if r.metric == "fidelity" and r.summary.get("accuracy")}
        variants = list(dict.fromkeys(r.variant for r in mine))
        for variant in variants:
            fidelity = by_metric.get(("fidelity", model, variant))
            accuracy = (fidelity.summary.get("accuracy") if fidelity is not None else None) or {}
            root = _root(variant, baselines, measured)
            root_fidelity = by_metric.get(("fidelity", model, root))
            root_accuracy = (root_fidelity.summary.get("accuracy") if root_fidelity is not None else None) or {}
            any_record = fidelity or next(r for r in mine if r.variant == variant)
            size, root_size = _bytes(any_record), None
            root_record = root_fidelity or next((r for r in mine if r.variant == root), None)
            if root_record is not None:
                root_size = _bytes(root_record)
            latency = by_metric.get(("latency", model, variant))
            root_latency = by_metric.get(("latency", model, root))
            p50 = latency.summary.get("p50") if latency is not None else None
            root_p50 = root_latency.summary.get("p50") if root_latency is not None else None
            memory = by_metric.get(("memory", model, variant))
            peak = (memory.summary.get("peak_rss_bytes") if memory is not None else None) or (
                latency.summary.get("peak_rss_bytes") if latency is not None else None)
            provenance = any_record.meta.get("provenance") or {}
            kind = str(any_record.meta.get("kind") or "")
            change = None
            if accuracy.get("count") and root_accuracy.get("count") and variant != root:
                change = (accuracy["top1"] - root_accuracy["top1"]) * 100.0
            paired = _paired_against(latency, root)
            rows.append({
                "model": model, "variant": variant, "kind": kind, "root": root,
                "tool": provenance.get("tool") or "", "runtime": any_record.meta.get("runtime"),
                "size_bytes": size, "size_ratio": (root_size / size) if size and root_size else None,
                "correct": accuracy.get("correct"), "count": accuracy.get("count"), "top1": accuracy.get("top1"),
                "ci95": accuracy.get("ci95"), "change_points": change,
                "speedup": paired["speedup"] if paired else ((root_p50 / p50) if p50 and root_p50 else None),
                "speedup_ci95": paired["speedup_ci95"] if paired else None, "paired": paired is not None,
                "p50_ms": p50,
                "peak_rss_bytes": peak, "claim": SEED_CLAIMS.get(kind, ""),
                "build_correct": ((provenance.get("task_accuracy") or {}).get("correct")),
            })
    return rows
