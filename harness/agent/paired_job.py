"""A paired latency job: every arm loaded and warmed, then timed interleaved (interleave.py).

Mode "in-process": all arms in this process (one interpreter). Mode "process-per-arm": each
arm in its own child agent under its own interpreter (arm_process.py), this process only
conducting. Sends a `paired` event with every arm's samples turn by turn (also when an arm
failed mid-run: the whole rounds before the failure are kept, and the error that follows
names the arm), then `samples` (arm 0's, for hosts that read only those) and `result`.
"""

from .arm_process import ProcessArm
from .arms import LoadedArm
from .clock import CLOCK_NAME, clock_resolution_ns
from .env import thermal_snapshot
from .interleave import interleave
from .memory import memory_snapshot
from .protocol import AgentFailure

TYPE_CHECKING = False  # mypy takes this name as True: typing is for the type comments, not imported on the device
if TYPE_CHECKING:
    from typing import Callable  # noqa: F401 (named only in type comments, which ruff does not read)

    from .protocol import EventStream  # noqa: F401 (named only in type comments, which ruff does not read)


def run_paired(job, stream):
    # type: (dict, EventStream) -> dict
    paired = job["paired"]
    in_process = paired["mode"] == "in-process"
    job_id = str(job.get("job_id", ""))
    arms = [LoadedArm(spec) if in_process else ProcessArm(spec, job_id) for spec in job["arms"]]
    try:
        infos = []
        for arm in arms:
            infos.append(arm.prepare(job["latency"], _phase_reporter(stream, arm.name)))
        stream.emit("progress", phase="measure", arms=[{"name": a.name, "pid": a.pid} for a in arms])
        outcome = interleave(arms, [info["warmup_mean_ns"] for info in infos], job["latency"], paired,
                             lambda rounds, elapsed, halfwidth: stream.emit(
                                 "progress", phase="measure", rounds=rounds, elapsed_ns=elapsed,
                                 halfwidth=None if halfwidth == float("inf") else round(halfwidth, 5)))
        profile = None
        if job.get("profile_ops") and outcome["failure"] is None:  # outside the timed rounds
            stream.emit("progress", phase="profile")
            first_turns = outcome["turns"][0]
            mean_ns = float(sum(sum(t) for t in first_turns)) / max(1, sum(len(t) for t in first_turns))
            profile = arms[0].profile(mean_ns)
    finally:
        for arm in arms:
            arm.close()
    failure = outcome["failure"]
    stream.emit("paired", mode=paired["mode"], seed=paired["seed"], orders=outcome["orders"],
                stopped_by=outcome["stopped_by"], window_ns=outcome["window_ns"],
                device_halfwidth=outcome["device_halfwidth"], precision=paired["precision"],
                failed_arm=outcome["failed_arm"],
                failure=None if failure is None else {"kind": failure.kind, "message": failure.message},
                arms=[{"name": arm.name, "turn_iterations": k, "latency_ns": [ns for turn in turns for ns in turn],
                       "overhead_ns": overhead}
                      for arm, k, turns, overhead in zip(arms, outcome["turn_iterations"], outcome["turns"],
                                                         outcome["overhead_ns"])])
    if failure is not None:
        raise failure
    first = [ns for turn in outcome["turns"][0] for ns in turn]
    if profile is not None:
        stream.emit("profile", runtime=arms[0].runtime, **profile)
    stream.emit("samples", latency_ns=first)
    head = infos[0]
    result = {
        "job_id": job.get("job_id"),
        "kind": "paired",
        "runtime": head["runtime"],
        "arms": infos,
        "import_ns": head["import_ns"],
        "load_ns": head["load_ns"],
        "first_inference_ns": head["first_inference_ns"],
        "warmup_iterations": head["warmup_iterations"],
        "iterations": len(first),
        "window_ns": outcome["window_ns"],
        "stopped_by": outcome["stopped_by"],
        "memory": {"end": memory_snapshot()},
        "thermal_after": thermal_snapshot(),
        "clock": CLOCK_NAME,
        "clock_resolution_ns": clock_resolution_ns(),
    }
    stream.emit("result", **result)
    return result


def _phase_reporter(stream, arm):
    # type: (EventStream, str) -> Callable[[str], None]
    def report(phase):
        # type: (str) -> None
        stream.emit("progress", phase=phase, arm=arm)

    return report


def check_paired(job):
    # type: (dict) -> None
    """Validate job.arms and job.paired (parse_job's part for kind "paired")."""
    from .interleave import PAIRED_DEFAULTS

    arms = job.get("arms")
    if not isinstance(arms, list) or len(arms) < 2:
        raise AgentFailure("protocol", "job.arms must list at least two arms (the candidate first)")
    names = set()
    for index, arm in enumerate(arms):
        where = "job.arms[%d]" % index
        if not isinstance(arm, dict) or not isinstance(arm.get("name"), str) or not arm["name"]:
            raise AgentFailure("protocol", "%s must be an object with a name" % where)
        if arm["name"] in names:
            raise AgentFailure("protocol", "%s: arm name %r is used twice" % (where, arm["name"]))
        names.add(arm["name"])
        for key in ("runtime", "model", "input"):
            if not isinstance(arm.get(key), dict):
                raise AgentFailure("protocol", "%s.%s must be an object" % (where, key))
        if not isinstance(arm["runtime"].get("name"), str):
            raise AgentFailure("protocol", "%s.runtime.name must be a string" % where)
        if arm.get("python") is not None and not isinstance(arm["python"], str):
            raise AgentFailure("protocol", "%s.python must be a path" % where)
    paired = dict(PAIRED_DEFAULTS)  # type: dict
    paired.update(job.get("paired") or {})
    mode = paired.setdefault("mode", "in-process")
    if mode not in ("in-process", "process-per-arm"):
        raise AgentFailure("protocol", "job.paired.mode %r is not in-process or process-per-arm" % (mode,))
    for key, value in paired.items():
        if key == "mode":
            continue
        if key not in PAIRED_DEFAULTS:
            raise AgentFailure("protocol", "job.paired.%s is not a known setting" % key)
        if not isinstance(value, (int, float)) or isinstance(value, bool) or value < 0:
            raise AgentFailure("protocol", "job.paired.%s must be a non-negative number" % key)
    if paired["min_turn_iterations"] < 1:
        raise AgentFailure("protocol", "job.paired.min_turn_iterations must be at least 1")
    job["paired"] = paired
