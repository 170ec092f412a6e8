"""MeasurementRecord and RunInfo factories, for tests that write a store or a report directly.

A test names only the fields its check is about; the rest get the plain values below (one
local target, model ``m``, a latency measurement in ms, a nightly run of harness 0.1.0)."""

from __future__ import annotations

from typing import Any

from harness.records import MeasurementRecord, RunInfo


def run_info(run_id: str = "r", **fields: Any) -> RunInfo:
    """A run as the plugin creates it; ``fields`` replace any RunInfo field."""
    values: dict[str, Any] = {"id": run_id, "label": "nightly", "started_at": "2026-11-01T02:00:00.000+00:00",
                              "host": "ci", "harness_version": "0.1.0", "git_sha": "abc", "git_dirty": False}
    values.update(fields)
    return RunInfo(**values)


def measurement(run_id: str = "r", **fields: Any) -> MeasurementRecord:
    """A measurement of ``run_id``; ``fields`` replace any MeasurementRecord field. Latency
    records with ``samples`` get ``samples_unit="ns"`` unless told otherwise."""
    values: dict[str, Any] = {"run_id": run_id, "target": "local", "model": "m", "variant": "fp32",
                              "metric": "latency", "unit": "ms", "status": "ok", "summary": {}, "meta": {}}
    values.update(fields)
    if values.get("samples") is not None:
        values.setdefault("samples_unit", "ns")
    return MeasurementRecord(**values)
