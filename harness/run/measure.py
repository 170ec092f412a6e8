"""Measuring one variant on one device: build the Job, run the agent, summarise, record.

Every record is written to the store the moment it exists, success or failure, so a crash
later in the run loses nothing already measured. Three metrics share one path:
latency (timed loop), memory (peak RSS by phase, fresh process) and fidelity (outputs on
seeded inputs vs the baseline's, which are computed once per run and target).
"""

from __future__ import annotations

import dataclasses
import os
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from harness.agent import PROTOCOL_VERSION
from harness.analysis.accuracy import with_accuracy
from harness.analysis.fidelity import baseline_diversity, decode_outputs, fidelity_metrics, fidelity_seeds
from harness.analysis.stats import summarize_latency
from harness.config.targets import Target
from harness.config.variants import LatencySettings
from harness.errors import HarnessError
from harness.records import RECORD_VERSION, MeasurementRecord
from harness.run.agent_client import AgentRun
from harness.run.device import Device
from harness.run.latency_summary import latency_summary
from harness.store import Store
from harness.transport.base import sha256_file

MEASUREMENT_SEED = 0  # the seed of the input used for timing; fidelity uses its own set
# a memory job needs only a few inferences to reach its steady-state peak
MEMORY_LATENCY = {"warmup_iterations": 3, "warmup_duration_s": 0.0, "min_iterations": 10,
                  "min_duration_s": 0.1, "max_duration_s": 30.0,
                  "max_iterations": LatencySettings().max_iterations}

Progress = Callable[[dict[str, Any]], None]
DEVICE_TIMEOUT_MARGIN_S = 5.0


def job_latency(settings) -> dict[str, Any]:
    """A Job's `latency` section from a variant's LatencySettings (single and paired jobs)."""
    return {"warmup_iterations": settings.warmup_iterations, "warmup_duration_s": settings.warmup_duration_s,
            "min_iterations": settings.min_iterations, "min_duration_s": settings.min_duration_s,
            "max_duration_s": settings.max_duration_s, "max_iterations": settings.max_iterations,
            "precision": settings.precision}


def job_env(env_capture) -> dict[str, Any]:
    """A Job's `env` section: the extra files and commands the target file asks to capture."""
    if env_capture is None:
        return {}
    return {"files": list(env_capture.files), "commands": [list(c) for c in env_capture.commands]}


def _job(kind: str, variant, remote_files: dict[str, str], env_capture=None, **extra: Any) -> dict[str, Any]:
    return {
        "protocol": PROTOCOL_VERSION,
        "job_id": uuid.uuid4().hex[:12],
        "kind": kind,
        "runtime": {"name": variant.runtime, "options": dict(variant.runtime_options)},
        "model": {"files": remote_files},
        "input": {"name": variant.input.name, "shape": list(variant.input.shape),
                  "dtype": variant.input.dtype, "seed": MEASUREMENT_SEED},
        "latency": job_latency(variant.latency),
        "env": job_env(env_capture),
        **extra,
    }


def latency_job(variant, remote_files: dict[str, str], env_capture=None) -> dict[str, Any]:
    """The Job (protocol v1) that measures `variant`'s latency."""
    return _job("latency", variant, remote_files, env_capture)


def _describe_files(files: dict[str, str]) -> dict[str, dict[str, Any]]:
    return {role: {"name": os.path.basename(path), "bytes": os.path.getsize(path), "sha256": sha256_file(Path(path))}
            for role, path in files.items()}


def variant_provenance(files: dict[str, dict[str, Any]], paths: dict[str, str]) -> dict[str, Any] | None:
    """How the variant's files were made (tool, versions, options, calibration, task accuracy),
    from the zoo's build-info next to them, matched by sha256; None for files made elsewhere."""
    from harness.analysis.provenance import provenance_index

    model = paths.get("model")
    if not model:
        return None
    index = provenance_index(Path(model).resolve().parent.parent.parent)
    for described in files.values():
        entry = index.get(described.get("sha256", ""))
        if entry is not None:
            kept = {k: v for k, v in entry.items() if k != "files"}
            calibration = kept.get("calibration")
            if isinstance(calibration, dict):
                kept["calibration"] = {k: v for k, v in calibration.items() if k != "examples"}
            return kept
    return None


def _budget_meta(budget) -> dict[str, Any] | None:
    if budget is None:
        return None
    return {"target_latency_s": budget.target_latency_s, "max_memory_bytes": budget.max_memory_bytes,
            "max_power_w": budget.max_power_w, "statistic": budget.statistic, "source": budget.source,
            "min_accuracy": budget.min_accuracy, "max_accuracy_drop": budget.max_accuracy_drop}


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
        "fidelity_settings": dataclasses.asdict(variant.fidelity),
        "regression_threshold": dict(getattr(variant, "regression_threshold", None) or {}),  # metric|"*" -> fraction
        # which orchestrator process measured it (fleet runs with pytest-xdist have several)
        "orchestrator": {"pid": os.getpid(), "worker": os.environ.get("PYTEST_XDIST_WORKER")},
    }


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def arch_mismatch(variant, target) -> str:
    return (f"{variant.id} is built for {variant.arch} only and {target.name} is {target.arch}: not pushed "
            f"(a foreign-arch .nb loads and returns garbage); build it for {target.arch} or select another target")


def run_agent(device: Device, variant, kind: str, on_progress: Progress | None, **extra: Any) -> AgentRun:
    if variant.arch and variant.arch != device.target.arch:
        raise HarnessError(arch_mismatch(variant, device.target))
    missing = variant.missing_files()
    if missing:
        raise HarnessError(f"{variant.id}: model file not found: {missing[0]} "
                           "(run `harness zoo build`, or fix the path in the manifest)")
    python = device.interpreter_for(variant.runtime)
    remote = device.push_model_files(dict(variant.files))
    host_timeout = device.target.limits.job_timeout_s
    # the device's watchdog fires first and says in which phase; the host's kill is the backstop
    job = _job(kind, variant, remote, device.target.env_capture,
               timeout_s=max(1.0, host_timeout - DEVICE_TIMEOUT_MARGIN_S), **extra)
    job["latency"]["percentiles"] = precise_percentiles(variant, device.target.name)
    return device.agent.run_job(job, python, host_timeout, on_progress)


def precise_percentiles(variant, target_name: str) -> list[int]:
    """What latency.precision bounds: p50, and the budget's percentile where it is one above p50."""
    budget = variant.budget_for(target_name)
    statistic = budget.statistic if budget is not None else ""
    wanted = [50]
    if statistic.startswith("p") and statistic[1:].isdigit() and int(statistic[1:]) > 50:
        wanted.append(int(statistic[1:]))
    return wanted


def _record(store: Store, record: MeasurementRecord) -> MeasurementRecord:
    return dataclasses.replace(record, id=store.record_measurement(record))


METRIC_UNITS = {"latency": "ms", "memory": "bytes", "fidelity": "ratio", "power": "W"}


def record_failure(store: Store, run_id: str, target: Target, variant, metric: str, message: str,
                   meta: dict[str, Any] | None = None, record_name: str | None = None) -> MeasurementRecord:
    """Store the error row of a measurement that could not be made, so the report and the
    sign-off page show it (a device unreachable, its lock not taken, the agent failing)."""
    return _record(store, MeasurementRecord(
        run_id=run_id, target=record_name or target.name, model=variant.model, variant=variant.name, metric=metric,
        unit=METRIC_UNITS[metric], status="error", summary={},
        meta={**(meta if meta is not None else variant_meta(variant, target.name)), "error": message},
        recorded_at=_now()))


def record_measured(device: Device, variant, store: Store, run_id: str, metric: str,
             produce: Callable[[dict[str, Any]], tuple[dict[str, Any], dict[str, Any], tuple[int, ...] | None]],
             on_environment: Callable[[dict[str, Any]], None] | None) -> MeasurementRecord:
    """Record what `produce(meta)` returns (summary, extra meta, samples), or an error row."""
    target = device.target
    meta = variant_meta(variant, target.name)
    if device.board_meta is not None:
        meta["board"] = device.board_meta  # which labgrid place and exporter measured it
    base = dict(run_id=run_id, target=device.record_name, model=variant.model, variant=variant.name, metric=metric,
                unit=METRIC_UNITS[metric])
    try:
        meta["files"] = _describe_files(dict(variant.files)) if not variant.missing_files() else {}
        meta["provenance"] = variant_provenance(meta["files"], dict(variant.files)) if meta["files"] else None
        summary, extra_meta, samples = produce(meta)
    except HarnessError as exc:
        record_failure(store, run_id, target, variant, metric, str(exc), meta, device.record_name)
        raise
    if on_environment is not None and extra_meta.get("_hello_env") is not None:
        on_environment(extra_meta["_hello_env"])
    extra_meta.pop("_hello_env", None)
    return _record(store, MeasurementRecord(
        **base, status="ok", summary=summary, meta={**meta, **extra_meta}, samples=samples,
        samples_unit="ns" if samples is not None else None, recorded_at=_now()))


def measure_latency(device: Device, variant, store: Store, run_id: str, on_progress: Progress | None = None,
                    on_environment: Callable[[dict[str, Any]], None] | None = None,
                    profile_ops: bool = False, extra_meta: dict[str, Any] | None = None) -> MeasurementRecord:
    """Measure and record latency; on failure record an error row and re-raise the HarnessError.
    `extra_meta` is stored with the record (a paired measurement's "why unpaired").

    With `profile_ops`, the agent also runs the runtime's own op profiler after the timed loop
    (outside the timed window) and the profile is stored in meta["op_profile"]."""
    def produce(meta):
        run = run_agent(device, variant, "latency", on_progress, **({"profile_ops": True} if profile_ops else {}))
        extra = {"op_profile": op_profile_meta(run)} if profile_ops else {}
        return (latency_summary(run), {**agent_meta(run), **extra, **(extra_meta or {}),
                                       "_hello_env": run.hello.get("env", {})}, tuple(run.latency_ns))

    return record_measured(device, variant, store, run_id, "latency", produce, on_environment)


def op_profile_meta(run: AgentRun) -> dict[str, Any]:
    """The agent's profile event as stored in meta["op_profile"] (protocol keys dropped)."""
    if run.profile is None:
        return {"supported": False, "reason": "the agent sent no profile event (agent too old?)", "ops": []}
    return {key: value for key, value in run.profile.items() if key not in ("event", "protocol")}


def measure_memory(device: Device, variant, store: Store, run_id: str, on_progress: Progress | None = None,
                   on_environment: Callable[[dict[str, Any]], None] | None = None) -> MeasurementRecord:
    """Peak RSS of a fresh agent process, split into runtime import, model load and inference."""
    quick = dataclasses.replace(variant, latency=dataclasses.replace(variant.latency, **{
        key: MEMORY_LATENCY[key] for key in ("warmup_iterations", "warmup_duration_s", "min_iterations",
                                             "min_duration_s", "max_duration_s", "max_iterations")}))

    def produce(meta):
        run = run_agent(device, quick, "memory", on_progress)
        model_bytes = sum(f["bytes"] for f in meta.get("files", {}).values())
        return (memory_summary(run, model_bytes), {**agent_meta(run), "_hello_env": run.hello.get("env", {})},
                None)

    return record_measured(device, variant, store, run_id, "memory", produce, on_environment)


def memory_summary(run: AgentRun, model_file_bytes: int) -> dict[str, Any]:
    phases = run.result.get("memory") or {}

    def peak(phase: str) -> int | None:
        return (phases.get(phase) or {}).get("peak_rss")

    imported, loaded, end = peak("after_import"), peak("after_load"), peak("end")
    if end is None:
        raise HarnessError(f"{run.hello.get('env', {}).get('hostname', 'device')}: the agent could not read "
                           "/proc/self/status: peak memory unavailable on this device")
    cgroup = run.hello.get("env", {}).get("memory_cgroup") or {}
    return {
        "peak_rss_bytes": end,
        "import_peak_bytes": imported,
        "load_delta_bytes": None if loaded is None or imported is None else loaded - imported,
        "inference_delta_bytes": None if loaded is None else end - loaded,
        "rss_end_bytes": (phases.get("end") or {}).get("rss"),
        "model_file_bytes": model_file_bytes,
        "memory_limit_bytes": cgroup.get("limit_bytes"),
        "iterations": run.result.get("iterations"),
    }


def measure_fidelity(device: Device, variant, baseline, store: Store, run_id: str,
                     baseline_outputs: dict[tuple, Any], on_progress: Progress | None = None,
                     baseline_not_run: str = "") -> MeasurementRecord:
    """Outputs of `variant` vs `baseline` (None when `variant` is itself a baseline) on seeded inputs
    (on the model's dataset where it has one). `baseline_not_run` says why a variant with a baseline
    is measured alone (its accuracy, no agreement).

    `baseline_outputs` caches decoded baseline outputs per (target, baseline id, seeds) for
    the session, so a baseline runs once however many variants compare against it."""
    seeds = fidelity_seeds(variant.fidelity.inputs)
    reference = baseline or variant

    def outputs_of(which) -> tuple[list[list[Any]], dict[str, Any]]:
        if which.dataset:  # held-out labelled images instead of seeded inputs, top-1 counted on the device
            run = run_agent(device, which, "accuracy", on_progress, accuracy=_image_set(device, which))
            return decode_outputs(run.outputs or []), {**agent_meta(run), **image_set_meta(which, run)}
        run = run_agent(device, which, "fidelity", on_progress, fidelity={"seeds": seeds})
        return decode_outputs(run.outputs or []), agent_meta(run)

    def produce(meta):
        key = (device.target.name, reference.id, reference.dataset or tuple(seeds))
        if key not in baseline_outputs:
            try:
                baseline_outputs[key] = outputs_of(reference)
            except HarnessError as exc:
                if baseline is None:
                    raise
                raise HarnessError(f"{variant.id}: its baseline {reference.id} could not run: {exc}") from None
        reference_outputs, reference_meta = baseline_outputs[key]
        if baseline is None:
            summary = {"baseline_only": True, "baseline": baseline_diversity(reference_outputs),
                       **({"baseline_not_run": baseline_not_run} if baseline_not_run else {})}
            return with_accuracy(summary, reference_meta, None), reference_meta, None
        outputs, run_meta = outputs_of(variant)
        return with_accuracy(fidelity_metrics(reference_outputs, outputs), run_meta, reference_meta), run_meta, None

    return record_measured(device, variant, store, run_id, "fidelity", produce, None)


def _image_set(device: Device, variant) -> dict[str, Any]:
    """The accuracy job's field: the variant's image set, pushed to the device by content hash."""
    if not os.path.isfile(variant.dataset):
        raise HarnessError(f"{variant.id}: dataset not found: {variant.dataset} (run `harness zoo build`, or fix "
                           "the model's dataset in the manifest)")
    return {"file": device.push_model_files({"images": variant.dataset})["images"]}


def image_set_meta(variant, run: AgentRun) -> dict[str, Any]:
    """What a record says about the images an accuracy job ran: the file, its sha256, the counts."""
    counts = run.result.get("accuracy") or {}
    return {"accuracy_counts": counts, "dataset": {"file": os.path.basename(variant.dataset),
                                                   "sha256": sha256_file(Path(variant.dataset))},
            "accuracy_images": f"held-out images of {os.path.basename(variant.dataset)}"}


POWER_MIN_DURATION_S = 3.0  # enough load-window samples for a 10 Hz sensor, with margin
POWER_IDLE_S = 1.5


def measure_power(device: Device, variant, store: Store, run_id: str, on_progress: Progress | None = None,
                  on_environment: Callable[[dict[str, Any]], None] | None = None) -> MeasurementRecord:
    """Power on the target's declared sensor: idle window, then the timed loop under load.

    Energy per inference = (mean load power - idle power) x mean latency. A sensor that
    cannot work is recorded as "unavailable: <reason>" (status ok, no numbers)."""
    sensor = device.target.power
    longer = dataclasses.replace(variant, latency=dataclasses.replace(
        variant.latency, min_duration_s=max(variant.latency.min_duration_s, POWER_MIN_DURATION_S),
        max_duration_s=max(variant.latency.max_duration_s, POWER_MIN_DURATION_S * 2)))
    spec = {"sensor": sensor.kind, "options": dict(sensor.options), "idle_s": POWER_IDLE_S}

    def produce(meta):
        run = run_agent(device, longer, "power", on_progress, power=spec)
        if run.power is None:
            raise HarnessError(f"{device.target.name}: the agent ran a power job but sent no power event")
        summary = dict(run.power["summary"])
        summary["latency_p50_ms"] = summarize_latency(run.latency_ns)["p50"] if run.latency_ns else None
        extra = {**agent_meta(run), "_hello_env": run.hello.get("env", {}),
                 "power_timeline": run.power.get("timeline", []), "power_markers": run.power.get("markers", {}),
                 "power_errors": run.power.get("errors", [])}
        return summary, extra, None

    return record_measured(device, variant, store, run_id, "power", produce, on_environment)


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
        "thermal_after": result.get("thermal_after"),
    }
