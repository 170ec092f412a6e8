"""Measuring one variant on one device: build the Job, run the agent, summarise, record.

The record is written to the store the moment it exists, success or failure, so a crash
later in the run loses nothing already measured.
"""

from __future__ import annotations

import dataclasses
import os
import uuid
from datetime import datetime, timezone
from typing import Any, Callable

from .agent import PROTOCOL_VERSION
from .client import AgentRun
from .device import Device
from .errors import HarnessError
from .records import RECORD_VERSION, MeasurementRecord
from .stats import summarize_latency
from .store import Store
from .transport.base import sha256_file

MEASUREMENT_SEED = 0  # the seed of the input used for timing; fidelity uses its own set


def latency_job(variant, remote_files: dict[str, str], env_capture=None) -> dict[str, Any]:
    """The Job (protocol v1) that measures `variant`'s latency."""
    settings = variant.latency
    env = {}
    if env_capture is not None:
        env = {"files": list(env_capture.files), "commands": [list(c) for c in env_capture.commands]}
    return {
        "protocol": PROTOCOL_VERSION,
        "job_id": uuid.uuid4().hex[:12],
        "kind": "latency",
        "runtime": {"name": variant.runtime, "options": dict(variant.runtime_options)},
        "model": {"files": remote_files},
        "input": {"name": variant.input.name, "shape": list(variant.input.shape),
                  "dtype": variant.input.dtype, "seed": MEASUREMENT_SEED},
        "latency": {
            "warmup_iterations": settings.warmup_iterations,
            "warmup_duration_s": settings.warmup_duration_s,
            "min_iterations": settings.min_iterations,
            "min_duration_s": settings.min_duration_s,
            "max_duration_s": settings.max_duration_s,
        },
        "env": env,
    }


def _describe_files(files: dict[str, str]) -> dict[str, dict[str, Any]]:
    described = {}
    for role, path in files.items():
        described[role] = {"name": os.path.basename(path), "bytes": os.path.getsize(path),
                           "sha256": sha256_file(path)}
    return described


def _budget_meta(budget) -> dict[str, Any] | None:
    if budget is None:
        return None
    return {"target_latency_s": budget.target_latency_s, "max_memory_bytes": budget.max_memory_bytes,
            "max_power_w": budget.max_power_w, "statistic": budget.statistic, "source": budget.source}


def variant_meta(variant, target_name: str) -> dict[str, Any]:
    """What the report needs to know about the variant, stored with each measurement."""
    return {
        "record_version": RECORD_VERSION,
        "kind": variant.kind,
        "format": variant.format,
        "runtime": variant.runtime,
        "runtime_options": dict(variant.runtime_options),
        "baseline": variant.baseline,
        "input": {"name": variant.input.name, "shape": list(variant.input.shape), "dtype": variant.input.dtype},
        "budget": _budget_meta(variant.budget_for(target_name)),
    }


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


def measure_latency(device: Device, variant, store: Store, run_id: str,
                    on_progress: Callable[[dict[str, Any]], None] | None = None,
                    on_environment: Callable[[dict[str, Any]], None] | None = None) -> MeasurementRecord:
    """Measure and record; on failure record an error row and re-raise the HarnessError."""
    target = device.target
    meta = variant_meta(variant, target.name)
    try:
        missing = variant.missing_files()
        if missing:
            raise HarnessError(f"{variant.id}: model file not found: {missing[0]} "
                               "(run `harness zoo build`, or fix the path in the manifest)")
        meta["files"] = _describe_files(dict(variant.files))
        python = device.interpreter_for(variant.runtime)
        remote = device.push_model_files(dict(variant.files))
        run = device.agent.run_job(latency_job(variant, remote, target.env_capture), python, target.limits.job_timeout_s,
                                   on_progress)
    except HarnessError as exc:
        record = MeasurementRecord(
            run_id=run_id, target=target.name, model=variant.model, variant=variant.name, metric="latency",
            unit="ms", status="error", summary={}, meta={**meta, "error": str(exc)}, recorded_at=_now())
        store.record_measurement(record)
        raise
    if on_environment is not None:
        on_environment(run.hello.get("env", {}))
    record = MeasurementRecord(
        run_id=run_id, target=target.name, model=variant.model, variant=variant.name, metric="latency",
        unit="ms", status="ok", summary=latency_summary(run), meta={**meta, **agent_meta(run)},
        samples=tuple(run.latency_ns), samples_unit="ns", recorded_at=_now())
    record_id = store.record_measurement(record)
    return dataclasses.replace(record, id=record_id)


def latency_summary(run: AgentRun) -> dict[str, Any]:
    result = run.result
    summary = summarize_latency(run.latency_ns, result.get("window_ns"))
    summary["load_ms"] = result["load_ns"] / 1e6
    summary["first_inference_ms"] = result["first_inference_ns"] / 1e6
    summary["import_ms"] = result["import_ns"] / 1e6
    peak = (result.get("memory") or {}).get("end", {}).get("peak_rss")
    summary["peak_rss_bytes"] = peak
    if result.get("stopped_by") != "min-reached":
        summary["warnings"].append(
            f"stopped by {result.get('stopped_by')} after {result.get('iterations')} iterations: "
            "fewer than the minimum; raise latency.max_duration or lower min_iterations")
    return summary


def agent_meta(run: AgentRun) -> dict[str, Any]:
    result = run.result
    return {
        "runtime_info": result.get("runtime", {}),
        "agent": {"version": run.hello.get("agent_version"), "python": run.hello.get("env", {}).get("python"),
                  "clock": result.get("clock"), "clock_resolution_ns": result.get("clock_resolution_ns")},
        "iterations": result.get("iterations"),
        "warmup_iterations": result.get("warmup_iterations"),
        "window_ns": result.get("window_ns"),
        "stopped_by": result.get("stopped_by"),
        "memory": result.get("memory"),
    }
