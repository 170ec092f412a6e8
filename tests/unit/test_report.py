"""The report renders from the store alone and escapes everything that came from a device."""

from __future__ import annotations

import json
from pathlib import Path

from harness.records import MeasurementRecord, RunInfo
from harness.report.build import render_run_report
from harness.store import open_store

HOSTILE = '<script>alert("device")</script>'


def _store_with_run(tmp_path: Path):
    store = open_store(tmp_path / "r.sqlite")
    store.create_run(RunInfo(id="run-1", label="nightly", started_at="2026-11-22T00:00:00+00:00",
                             host="ci", harness_version="0.1.0", git_sha="abc", git_dirty=False))
    store.record_environment("run-1", "local", {"declared": {"kind": "local"},
                                                "device": {"os": HOSTILE, "cpu_model": HOSTILE}})
    samples = tuple(range(1_000_000, 1_100_000, 1000))  # 1.0 .. 1.099 ms
    store.record_measurement(MeasurementRecord(
        run_id="run-1", target="local", model="m", variant="fp32", metric="latency", unit="ms", status="ok",
        summary={"n": len(samples), "p50": 1.05, "p90": 1.09, "mean": 1.05, "warnings": [HOSTILE]},
        meta={"baseline": None, "budget": {"target_latency_s": 0.002, "statistic": "p90", "source": "m.yaml"},
              "runtime_info": {"version": HOSTILE}}, samples=samples, samples_unit="ns"))
    store.record_measurement(MeasurementRecord(
        run_id="run-1", target="local", model="m", variant="int8", metric="latency", unit="ms",
        status="error", summary={}, meta={"baseline": "fp32", "error": f"local: model-load: {HOSTILE}"}))
    return store


def test_device_strings_are_escaped(tmp_path: Path) -> None:
    store = _store_with_run(tmp_path)
    html = render_run_report(store, "run-1", tmp_path / "reports").read_text()
    assert "<script" not in html
    assert "&lt;script&gt;alert(" in html
    assert html.count("&lt;script&gt;") >= 4  # os, cpu model, warning, runtime version, error


def test_report_reads_only_the_store_and_marks_incomplete_runs(tmp_path: Path) -> None:
    store = _store_with_run(tmp_path)  # never finished: status is still "running"
    path = render_run_report(store, "run-1", tmp_path / "reports")
    html = path.read_text()
    assert 'id="incomplete"' in html and "running" in html
    data = json.loads((path.parent / "report.json").read_text())
    assert data["complete"] is False
    rows = {row["variant_id"]: row for row in data["targets"][0]["rows"]}
    assert rows["m-fp32"]["verdict"] == "pass" and rows["m-fp32"]["budget_ms"] == 2.0
    assert rows["m-int8"]["verdict"] == "error" and "model-load" in rows["m-int8"]["error"]
    assert rows["m-int8"]["comparison_note"] == "variant failed"
    store.finish_run("run-1", "2026-11-22T00:01:00+00:00", "complete")
    html = render_run_report(store, "run-1", tmp_path / "reports").read_text()
    assert 'id="incomplete"' not in html
