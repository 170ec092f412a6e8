"""The seeds' technique table (harness.report.technique_table) from stored records."""

from __future__ import annotations

from typing import Any

import pytest
from helpers.records import measurement

from harness.analysis.accuracy import accuracy_figures
from harness.records import MeasurementRecord
from harness.report.technique_table import technique_rows


def _variant(variant: str, baseline: str | None, kind: str, size: int, correct: int, p50: float, peak: int,
             **extra: Any) -> list[MeasurementRecord]:
    meta = {"baseline": baseline, "kind": kind, "runtime": "onnxruntime", "files": {"model": {"bytes": size}},
            "provenance": {"tool": f"{kind} tool", "task_accuracy": {"correct": correct}}}
    summary = {"accuracy": accuracy_figures({"correct": correct, "count": 360}), **extra}
    return [measurement(variant=variant, metric="fidelity", summary=summary, meta=meta),
            measurement(variant=variant, metric="latency", summary={"p50": p50}, meta=meta),
            measurement(variant=variant, metric="memory", summary={"peak_rss_bytes": peak}, meta=meta)]


def test_rows_measure_each_technique_against_the_reference() -> None:
    records = [*_variant("onnx", "fp32", "fp32", 4000, 351, 2.0, 100 << 20, baseline_not_run="no paddle"),
               *_variant("onnx_int8", "onnx", "int8-ptq", 1000, 349, 1.0, 90 << 20),
               *_variant("distilled", "onnx", "distilled", 500, 340, 0.5, 80 << 20),
               measurement(variant="onnx_int8@threads=2", metric="latency", summary={"p50": 0.1})]
    rows = {r["variant"]: r for r in technique_rows(records)}
    assert set(rows) == {"onnx", "onnx_int8", "distilled"}  # a sweep point is not a technique
    int8 = rows["onnx_int8"]
    assert int8["root"] == "onnx" and int8["size_ratio"] == pytest.approx(4.0)
    assert int8["change_points"] == pytest.approx((349 - 351) / 360 * 100)
    assert int8["speedup"] == pytest.approx(2.0) and int8["peak_rss_bytes"] == 90 << 20
    assert int8["ci95"][0] < int8["top1"] < int8["ci95"][1] and int8["build_correct"] == 349
    assert "seed 001" in int8["claim"] and "seed 002" in rows["distilled"]["claim"]
    assert rows["onnx"]["change_points"] is None and rows["onnx"]["root"] == "onnx"


def test_models_without_accuracy_get_no_table() -> None:
    assert technique_rows([measurement(metric="fidelity", summary={"top1_agreement": 1.0})]) == []
