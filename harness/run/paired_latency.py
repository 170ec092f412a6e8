"""Latency measured paired: the variant and its baseline timed interleaved in one job.

The variant's record is a latency record like any other (its own samples, its own
percentiles), plus meta["paired"]: the ratio against the baseline arm with its 95% interval,
and how the job ran (harness.analysis.paired.paired_summary). Where the pair cannot run
(another input shape, a baseline the target cannot run), the variant is measured alone and
meta["paired"] says why it is unpaired; nothing is silently compared unpaired.
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Callable
from typing import Any

from harness.agent import PROTOCOL_VERSION
from harness.analysis.paired import paired_summary
from harness.analysis.stats import summarize_latency
from harness.errors import AgentError, HarnessError
from harness.records import MeasurementRecord
from harness.run.device import Device
from harness.run.measure import (
    DEVICE_TIMEOUT_MARGIN_S,
    MEASUREMENT_SEED,
    Progress,
    agent_meta,
    arch_mismatch,
    latency_summary,
    measure_latency,
    op_profile_meta,
    record_measured,
    run_agent,
)
from harness.store import Store

Arm = tuple[str, Any]  # (arm name, the variant it runs)


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


def paired_job(device: Device, arms: list[Arm], settings, profile_ops: bool = False) -> tuple[dict[str, Any], str]:
    """The Job timing `arms` interleaved (the first is the candidate), and the interpreter to start."""
    for _, variant in arms:
        if variant.arch and variant.arch != device.target.arch:
            raise HarnessError(arch_mismatch(variant, device.target))
        if variant.missing_files():
            raise HarnessError(f"{variant.id}: model file not found: {variant.missing_files()[0]} "
                               "(run `harness zoo build`, or fix the path in the manifest)")
    pythons = [device.interpreter_for(variant.runtime) for _, variant in arms]
    mode = "in-process" if len(set(pythons)) == 1 else "process-per-arm"
    specs = []
    for (name, variant), python in zip(arms, pythons, strict=True):
        specs.append({
            "name": name,
            "runtime": {"name": variant.runtime, "options": dict(variant.runtime_options)},
            "model": {"files": device.push_model_files(dict(variant.files))},
            "input": {"name": variant.input.name, "shape": list(variant.input.shape), "dtype": variant.input.dtype,
                      "seed": MEASUREMENT_SEED},
            "python": python,
        })
    latency = arms[0][1].latency
    env = device.target.env_capture
    job = {
        "protocol": PROTOCOL_VERSION,
        "job_id": uuid.uuid4().hex[:12],
        "kind": "paired",
        "runtime": specs[0]["runtime"], "model": specs[0]["model"], "input": specs[0]["input"],
        "arms": specs,
        "latency": {"warmup_iterations": latency.warmup_iterations, "warmup_duration_s": latency.warmup_duration_s,
                    "min_iterations": latency.min_iterations, "min_duration_s": latency.min_duration_s,
                    "max_duration_s": latency.max_duration_s, "max_iterations": latency.max_iterations},
        "paired": {"mode": mode, "seed": settings.seed, "precision": settings.precision, "rounds": settings.rounds},
        "env": {"files": list(env.files), "commands": [list(c) for c in env.commands]} if env is not None else {},
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
                           profile_ops: bool = False) -> MeasurementRecord:
    """Measure `variant` interleaved with `baseline` and record the variant's latency with the
    paired ratio; measure it alone (meta["paired"] saying why) where the pair cannot run."""
    reason = unpaired_reason(device, variant, baseline)
    if reason is not None:
        return measure_latency(device, variant, store, run_id, on_progress, on_environment, profile_ops,
                               extra_meta={"paired": {"paired": False, "reason": reason}})
    chosen = settings or PairingSettings(seed=int(uuid.uuid4().int % 2**31))

    def produce(meta):
        job, python = paired_job(device, [(variant.name, variant), (baseline.name, baseline)], chosen, profile_ops)
        try:
            run = device.agent.run_job(job, python, device.target.limits.job_timeout_s, on_progress)
        except AgentError as exc:
            partial = exc.partial_paired
            baseline_failed = f"arm {baseline.name} ({baseline.runtime})" in exc.message
            if partial is not None and partial.get("failed_arm") == baseline.name and partial["orders"]:
                # the baseline arm died mid-run: the variant's own samples are good, only the pairing is lost
                return _unpaired_from_partial(partial, exc)
            if baseline_failed and partial is None:  # it never ran: the variant is measured alone
                return _alone(device, variant, on_progress, profile_ops, f"baseline arm failed: {exc.message}")
            if partial is not None and partial["orders"]:
                meta["paired_before_failure"] = _kept_arms(partial)
            raise
        assert run.paired is not None, "a paired job's result always follows its paired event"
        extra = {"op_profile": op_profile_meta(run)} if profile_ops else {}
        return (latency_summary(run), {**agent_meta(run), **extra, "paired": paired_summary(run.paired),
                                       "arms": run.result.get("arms"), "_hello_env": run.hello.get("env", {})},
                tuple(run.latency_ns))

    return record_measured(device, variant, store, run_id, "latency", produce, on_environment)


def _alone(device: Device, variant, on_progress: Progress | None, profile_ops: bool, reason: str
           ) -> tuple[dict[str, Any], dict[str, Any], tuple[int, ...]]:
    """The variant's latency measured on its own (a single-arm job), saying why it is unpaired."""
    run = run_agent(device, variant, "latency", on_progress, **({"profile_ops": True} if profile_ops else {}))
    extra = {"op_profile": op_profile_meta(run)} if profile_ops else {}
    return (latency_summary(run), {**agent_meta(run), **extra, "paired": {"paired": False, "reason": reason},
                                   "_hello_env": run.hello.get("env", {})}, tuple(run.latency_ns))


def _kept_arms(partial: dict[str, Any]) -> dict[str, Any]:
    """What a failed paired job had measured: every arm's samples of the whole rounds done."""
    return {"rounds": len(partial["orders"]), "failed_arm": partial.get("failed_arm"),
            "arms": [{"name": arm["name"], "turn_iterations": arm["turn_iterations"], "latency_ns": arm["latency_ns"]}
                     for arm in partial["arms"]]}


def _unpaired_from_partial(partial: dict[str, Any], exc: AgentError
                           ) -> tuple[dict[str, Any], dict[str, Any], tuple[int, ...]]:
    samples = partial["arms"][0]["latency_ns"]
    summary = summarize_latency(samples, partial.get("window_ns"))
    summary["warnings"].append(f"unpaired: {exc.message}; the variant's {len(samples)} samples before it are kept")
    return summary, {"paired": {"paired": False, "reason": f"the baseline arm failed mid-run: {exc.message}"},
                     "paired_before_failure": _kept_arms(partial), "stopped_by": "arm-failed"}, tuple(samples)
