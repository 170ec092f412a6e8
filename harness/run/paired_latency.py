"""Latency measured paired: the variant and its baseline timed interleaved in one job.

The variant's record is a latency record like any other (its own samples, its own
percentiles), plus meta["paired"]: the ratio against the baseline arm with its 95% interval,
and how the job ran (harness.analysis.paired.paired_summary). Where the pair cannot run
(another input shape, a baseline the target cannot run), the variant is measured alone and
meta["paired"] says why it is unpaired; nothing is silently compared unpaired.
"""

from __future__ import annotations

import dataclasses
import os
import posixpath
import uuid
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from harness.agent import PROTOCOL_VERSION
from harness.analysis.paired import REFERENCE_ARM, paired_summary
from harness.analysis.stats import summarize_latency
from harness.errors import AgentError, HarnessError
from harness.records import MeasurementRecord
from harness.run.device import Device
from harness.run.latency_summary import latency_summary
from harness.run.measure import (
    DEVICE_TIMEOUT_MARGIN_S,
    MEASUREMENT_SEED,
    Progress,
    agent_meta,
    arch_mismatch,
    job_env,
    job_latency,
    measure_latency,
    op_profile_meta,
    record_measured,
    run_agent,
)
from harness.store import Store
from harness.transport.base import sha256_file


def unpaired_reason(device: Device, variant, baseline) -> str | None:
    """Why `variant` cannot be timed interleaved with `baseline` on this device (None: it can)."""
    if baseline is None:
        return f"its baseline {variant.baseline} is not measured in this session"
    if baseline.runtime != "noop" and baseline.runtime not in device.target.runtimes:
        return f"baseline {baseline.name} needs the '{baseline.runtime}' runtime, which {device.target.name} lacks"
    if baseline.arch and baseline.arch != device.target.arch:
        return f"baseline {baseline.name} is built for {baseline.arch} only"
    if tuple(baseline.input.shape) != tuple(variant.input.shape) or baseline.input.dtype != variant.input.dtype:
        return (f"input {list(variant.input.shape)} {variant.input.dtype} differs from baseline {baseline.name}'s "
                f"{list(baseline.input.shape)} {baseline.input.dtype}: a ratio would compare different work")
    if baseline.missing_files():
        return f"baseline {baseline.name}'s file is missing: {baseline.missing_files()[0]}"
    return None


PAIRED_MODE = "process-per-arm"


@dataclasses.dataclass(frozen=True)
class ArmPlan:
    """One arm of a paired job: its name in the job, the variant it runs, and the roles whose
    files are already on the device (a reference run's artifacts in the device's cache)."""

    name: str
    variant: Any
    remote_files: Mapping[str, str] = dataclasses.field(default_factory=dict)


def paired_job(device: Device, arms: list[ArmPlan], settings, profile_ops: bool = False) -> tuple[dict[str, Any], str]:
    """The Job timing `arms` interleaved (the first is the candidate), and the interpreter to start."""
    for arm in arms:
        variant = arm.variant
        if variant.arch and variant.arch != device.target.arch:
            raise HarnessError(arch_mismatch(variant, device.target))
        missing = [path for role, path in variant.files.items() if role not in arm.remote_files
                   and not os.path.isfile(path)]
        if missing:
            raise HarnessError(f"{variant.id}: model file not found: {missing[0]} "
                               "(run `harness zoo build`, or fix the path in the manifest)")
    pythons = [device.interpreter_for(arm.variant.runtime) for arm in arms]
    # Every arm in its own process, also on one interpreter: two Paddle Inference predictors of
    # one model in one process measured A/A ratios of 1.014 (median of 8 jobs, the first-loaded
    # slower) against 1.003 one process per arm; ONNX Runtime showed no such bias either way.
    mode = PAIRED_MODE
    specs = []
    for arm, python in zip(arms, pythons, strict=True):
        variant = arm.variant
        local = {role: path for role, path in variant.files.items() if role not in arm.remote_files}
        specs.append({
            "name": arm.name,
            "runtime": {"name": variant.runtime, "options": dict(variant.runtime_options)},
            "model": {"files": {**device.push_model_files(local), **arm.remote_files}},
            "input": {"name": variant.input.name, "shape": list(variant.input.shape), "dtype": variant.input.dtype,
                      "seed": MEASUREMENT_SEED},
            "python": python,
        })
    job = {
        "protocol": PROTOCOL_VERSION,
        "job_id": uuid.uuid4().hex[:12],
        "kind": "paired",
        "runtime": specs[0]["runtime"], "model": specs[0]["model"], "input": specs[0]["input"],
        "arms": specs,
        "latency": {**job_latency(arms[0].variant.latency), "precision": 0},  # a paired job has its own precision
        "paired": {"mode": mode, "seed": settings.seed, "precision": settings.precision, "rounds": settings.rounds},
        "env": job_env(device.target.env_capture),
        "timeout_s": max(1.0, device.target.limits.job_timeout_s - DEVICE_TIMEOUT_MARGIN_S),
        "profile_ops": profile_ops,
    }
    return job, pythons[0]


@dataclasses.dataclass(frozen=True)
class PairingSettings:
    """How a paired job runs: adaptive to `precision` (default), or exactly `rounds` rounds."""

    precision: float = 0.01  # stop when the ratio's 95% interval is within +-1%
    rounds: int = 0  # > 0: a fixed count of rounds instead
    seed: int = 0  # of the round order; recorded with the result


def measure_paired_latency(device: Device, variant, baseline, store: Store, run_id: str,
                           settings: PairingSettings | None = None, on_progress: Progress | None = None,
                           on_environment: Callable[[dict[str, Any]], None] | None = None,
                           profile_ops: bool = False, reference: ReferenceArm | str | None = None
                           ) -> MeasurementRecord:
    """Measure `variant` interleaved with its `baseline` and, with `reference`, with the
    reference run's artifacts (a str: why they cannot run here); record the variant's latency
    with each paired ratio. What cannot be paired is said in meta["paired"]["unpaired"]
    (which comparison, why); with nothing to pair, the variant is measured alone."""
    others: list[ArmPlan] = []
    unpaired: dict[str, str] = {}  # "baseline" | "reference_run" -> why that comparison is unpaired
    if variant.baseline is not None:
        reason = unpaired_reason(device, variant, baseline)
        if reason is None:
            others.append(ArmPlan(baseline.name, baseline))
        else:
            unpaired["baseline"] = reason
    reference_run = None
    if isinstance(reference, ReferenceArm):
        others.append(reference.arm)
        reference_run = reference.run_id
    elif reference is not None:
        unpaired["reference_run"] = reference
    roles = {arm.name: ("baseline" if baseline is not None and arm.name == baseline.name else "reference_run")
             for arm in others}

    def unpaired_meta() -> dict[str, Any]:
        return {"paired": False, "reason": unpaired.get("baseline", "measured alone"), "unpaired": dict(unpaired),
                "reference_run": reference_run}

    if not others:
        return measure_latency(device, variant, store, run_id, on_progress, on_environment, profile_ops,
                               extra_meta={"paired": unpaired_meta()})
    chosen = settings or PairingSettings(seed=int(uuid.uuid4().int % 2**31))

    def produce(meta):
        arms = list(others)
        while True:
            job, python = paired_job(device, [ArmPlan(variant.name, variant), *arms], chosen, profile_ops)
            try:
                run = device.agent.run_job(job, python, device.target.limits.job_timeout_s, on_progress)
                break
            except AgentError as exc:
                partial = exc.partial_paired
                failed = next((a for a in arms if f"arm {a.name} ({a.variant.runtime})" in exc.message), None)
                if failed is None:  # the variant's own arm, or the job: the variant's measurement failed
                    if partial is not None and partial["orders"]:
                        meta["paired_before_failure"] = _kept_arms(partial)
                    raise
                unpaired[roles[failed.name]] = f"its arm {failed.name} failed: {exc.message}"
                if partial is not None and partial["orders"]:  # died mid-run: the rounds before it are kept
                    return _unpaired_from_partial(partial, exc, unpaired_meta())
                arms.remove(failed)  # never ran: the others are paired without it
                if not arms:
                    return _alone(device, variant, on_progress, profile_ops, unpaired_meta())
        assert run.paired is not None, "a paired job's result always follows its paired event"
        extra = {"op_profile": op_profile_meta(run)} if profile_ops else {}
        summary = {**paired_summary(run.paired), "unpaired": dict(unpaired), "reference_run": reference_run}
        return (latency_summary(run), {**agent_meta(run), **extra, "paired": summary,
                                       "arms": run.result.get("arms"), "_hello_env": run.hello.get("env", {})},
                tuple(run.latency_ns))

    return record_measured(device, variant, store, run_id, "latency", produce, on_environment)


def _alone(device: Device, variant, on_progress: Progress | None, profile_ops: bool, paired: dict[str, Any]
           ) -> tuple[dict[str, Any], dict[str, Any], tuple[int, ...]]:
    """The variant's latency measured on its own (a single-arm job), saying why it is unpaired."""
    run = run_agent(device, variant, "latency", on_progress, **({"profile_ops": True} if profile_ops else {}))
    extra = {"op_profile": op_profile_meta(run)} if profile_ops else {}
    return (latency_summary(run), {**agent_meta(run), **extra, "paired": paired,
                                   "_hello_env": run.hello.get("env", {})}, tuple(run.latency_ns))


def _kept_arms(partial: dict[str, Any]) -> dict[str, Any]:
    """What a failed paired job had measured: every arm's samples of the whole rounds done."""
    return {"rounds": len(partial["orders"]), "failed_arm": partial.get("failed_arm"),
            "arms": [{"name": arm["name"], "turn_iterations": arm["turn_iterations"], "latency_ns": arm["latency_ns"]}
                     for arm in partial["arms"]]}


def _unpaired_from_partial(partial: dict[str, Any], exc: AgentError, paired: dict[str, Any]
                           ) -> tuple[dict[str, Any], dict[str, Any], tuple[int, ...]]:
    """The variant's samples of the whole rounds before another arm died: its latency, unpaired."""
    samples = partial["arms"][0]["latency_ns"]
    summary = summarize_latency(samples, partial.get("window_ns"))
    summary["warnings"].append(f"unpaired: {exc.message}; the variant's {len(samples)} samples before it are kept")
    return summary, {"paired": paired, "paired_before_failure": _kept_arms(partial),
                     "stopped_by": "arm-failed"}, tuple(samples)


@dataclasses.dataclass(frozen=True)
class ReferenceArm:
    """The reference (--baseline) run's artifacts for one variant, runnable on this device."""

    run_id: str
    arm: ArmPlan


def reference_arm(device: Device, variant, reference: MeasurementRecord) -> ReferenceArm | str:
    """The arm that re-runs what `reference` (the reference run's latency record of `variant`)
    measured: its model files by sha256 (the variant's own files when unchanged, else the
    device's content cache), its runtime, options and input. A str says why it cannot run."""
    target = device.target
    meta = reference.meta
    if reference.status != "ok":
        return f"the baseline run's measurement failed ({meta.get('error', 'error')})"
    files = meta.get("files") or {}
    if not files and variant.files:
        return "the baseline run stored no sha256 of its model files"
    runtime = str(meta.get("runtime") or "")
    if runtime != "noop" and runtime not in target.runtimes:
        return f"its runtime '{runtime}' is no longer declared on {target.name}"
    shape = list((meta.get("input") or {}).get("shape") or [])
    if shape != list(variant.input.shape):
        return f"the baseline run's input {shape} differs from this run's {list(variant.input.shape)}"
    local: dict[str, str] = {}
    remote: dict[str, str] = {}
    for role, described in files.items():
        digest = str(described.get("sha256", ""))
        mine = variant.files.get(role)
        if mine and os.path.isfile(mine) and sha256_file(Path(mine)) == digest:
            local[role] = mine
            continue
        cached = posixpath.join(device.transport.workdir, "cache", digest, str(described.get("name", "")))
        if digest and device.transport.exists(cached):
            remote[role] = cached
            continue
        return f"baseline model {digest[:10]}... ({role}) is no longer on {target.name} or in the zoo"
    arm_input = meta.get("input") or {}
    arm_variant = dataclasses.replace(
        variant, name=REFERENCE_ARM, runtime=runtime, runtime_options=dict(meta.get("runtime_options") or {}),
        files={**local, **remote}, baseline=None,
        input=dataclasses.replace(variant.input, name=str(arm_input.get("name", variant.input.name)),
                                  dtype=str(arm_input.get("dtype", variant.input.dtype))))
    return ReferenceArm(reference.run_id, ArmPlan(REFERENCE_ARM, arm_variant, remote))
