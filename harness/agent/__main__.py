"""Entry point: ``python -m <agent package> [--self-test | --probe RUNTIME | --job-id ID]``;
otherwise reads one Job on stdin (``--job-id`` names it on the command line).

Writes JSON-lines events to stdout (see protocol.py) and exits 0 after a `result`, 1 after
an `error`. Everything that is not protocol goes to stderr.
"""

import os
import sys
import traceback

from . import AGENT_VERSION, PROTOCOL_VERSION
from .accuracy import run_accuracy
from .clock import CLOCK_NAME, clock_resolution_ns, now_ns
from .env import capture, thermal_snapshot
from .job import parse_job
from .memory import memory_snapshot
from .outputs import encode_tensor, outputs_result
from .profiling import profile_adapter
from .protocol import AgentFailure, EventStream
from .runtimes import load_adapter_class
from .timing import timed_loop, warm_up
from .watchdog import start_watchdog, stop_watchdog

TYPE_CHECKING = False  # mypy takes this name as True: type-comment names only (sensors load for power jobs alone)
if TYPE_CHECKING:
    from typing import Callable  # noqa: F401 (named only in type comments, which ruff does not read)

    from .runtimes.base import BaseAdapter  # noqa: F401 (named only in type comments, which ruff does not read)
    from .sensors import Sampler  # noqa: F401 (named only in type comments, which ruff does not read)

SELF_TEST_JOB = (b'{"protocol": 1, "job_id": "self-test", "runtime": {"name": "noop"}, '
                 b'"model": {"files": {}}, "input": {"shape": [1]}, '
                 b'"latency": {"warmup_iterations": 5, "warmup_duration_s": 0, '
                 b'"min_iterations": 1000, "min_duration_s": 0.01}}')


def run_job(job, stream):
    # type: (dict, EventStream) -> dict
    if job["kind"] == "paired":
        from .paired_job import run_paired

        return run_paired(job, stream)
    runtime = job["runtime"]
    settings = job["latency"]
    adapter = load_adapter_class(runtime["name"])(runtime.get("options") or {})

    stream.emit("progress", phase="import", runtime=runtime["name"])
    t0 = now_ns()
    adapter.import_runtime()
    import_ns = now_ns() - t0
    memory = {"after_import": memory_snapshot()}

    stream.emit("progress", phase="load")
    t0 = now_ns()
    adapter.load(job["model"].get("files", {}), job["input"])
    load_ns = now_ns() - t0
    memory["after_load"] = memory_snapshot()
    adapter.set_inputs(int(job["input"].get("seed", 0)))
    run_once = adapter.runner()

    try:
        stream.emit("progress", phase="first-inference")
        t0 = now_ns()
        run_once()
        first_ns = now_ns() - t0
        if job["kind"] == "fidelity":
            return _fidelity(job, adapter, run_once, stream, import_ns, load_ns, first_ns, memory)
        if job["kind"] == "accuracy":
            return run_accuracy(job, adapter, run_once, stream, import_ns, load_ns, first_ns, memory)
        sampler, power_failure = (None, None)
        if job["kind"] == "power":
            sampler, power_failure = _start_power(job["power"], stream)
        stream.emit("progress", phase="warmup")
        warmed = warm_up(run_once, int(settings["warmup_iterations"]),
                         int(settings["warmup_duration_s"] * 1e9))
        stream.emit("progress", phase="measure")
        if sampler is not None:
            sampler.mark("load_begin")
        def progress(count, elapsed):
            # type: (int, int) -> None
            stream.emit("progress", phase="measure", iterations=count, elapsed_ns=elapsed)

        if settings["precision"] > 0:
            from .precise import timed_until_precise

            timing = timed_until_precise(run_once, settings, progress)
        else:
            timing = timed_loop(run_once, int(settings["min_iterations"]), int(settings["min_duration_s"] * 1e9),
                                int(settings["max_duration_s"] * 1e9), int(settings["max_iterations"]), progress)
        if sampler is not None:
            sampler.mark("load_end")
    except AgentFailure:
        raise
    except Exception as exc:
        raise AgentFailure("runtime-error", "%s failed while running: %s" % (runtime["name"], exc),
                           traceback.format_exc()) from exc
    memory["end"] = memory_snapshot()
    if job["kind"] == "power":
        _emit_power(sampler, power_failure, timing, stream)
    if job.get("profile_ops"):  # after the last memory snapshot, outside the timed window
        _emit_profile(adapter, runtime["name"], timing["latency_ns"], stream)

    stream.emit("samples", latency_ns=timing["latency_ns"])
    result = {
        "job_id": job.get("job_id"),
        "kind": job["kind"],
        "runtime": dict(adapter.describe(), name=runtime["name"], version=adapter.version()),
        "import_ns": import_ns,
        "load_ns": load_ns,
        "first_inference_ns": first_ns,
        "warmup_iterations": warmed,
        "iterations": len(timing["latency_ns"]),
        "window_ns": timing["window_ns"],
        "stopped_by": timing["stopped_by"],
        "halfwidths": timing.get("halfwidths"),
        "precision": settings["precision"],
        "memory": memory,
        "thermal_after": thermal_snapshot(),
        "clock": CLOCK_NAME,
        "clock_resolution_ns": clock_resolution_ns(),
    }
    stream.emit("result", **result)
    return result


MAX_TIMELINE_POINTS = 2000


def _start_power(spec, stream):
    # type: (dict, EventStream) -> tuple[Sampler | None, str | None]
    """Open the target's power sensor and sample an idle window before any load.

    Returns (sampler, None) or (None, reason): a sensor that cannot work is reported as
    "unavailable: <reason>", never as zeros."""
    from .sensors import Sampler, SensorOptionError, SensorUnavailable, open_sensor

    options = dict(spec.get("options") or {})
    root = options.pop("root", "/")
    try:
        sensor = open_sensor(spec["sensor"], options, root=root)
        sensor.probe()
        sampler = Sampler(sensor, spec.get("interval_s")).start()
    except SensorOptionError as exc:
        raise AgentFailure("bad-option", "power sensor %s: %s" % (spec["sensor"], exc)) from exc
    except SensorUnavailable as exc:
        return None, str(exc)
    stream.emit("progress", phase="idle", seconds=spec.get("idle_s"))
    sampler.idle_window(spec.get("idle_s"))
    return sampler, None


def _emit_power(sampler, failure, timing, stream):
    # type: (Sampler | None, str | None, dict, EventStream) -> None
    from .sensors import summarize_run, unavailable_summary

    if sampler is None:
        assert failure is not None, "_start_power gives a sampler or the reason it has none"
        stream.emit("power", summary=unavailable_summary(failure), timeline=[], markers={})
        return
    run = sampler.stop()
    samples = timing["latency_ns"]
    mean_ms = sum(samples) / len(samples) / 1e6 if samples else None
    summary = summarize_run(run, inferences=len(samples), latency_ms_mean=mean_ms)
    origin = run["markers"].get("idle_begin") or (run["samples"][0]["t_ns"] if run["samples"] else 0)
    step = max(1, len(run["samples"]) // MAX_TIMELINE_POINTS)
    timeline = [[(s["t_ns"] - origin) / 1e6, s.get("total_w")] for s in run["samples"][::step]]
    markers = dict((name, (t - origin) / 1e6) for name, t in run["markers"].items())
    stream.emit("power", summary=summary, timeline=timeline, markers=markers, errors=run.get("errors", [])[:20])


def _emit_profile(adapter, name, samples, stream):
    # type: (BaseAdapter, str, list[int], EventStream) -> None
    """Per-operator times from the runtime's own profiler; a failure is a profile that says why."""
    stream.emit("progress", phase="profile")
    mean_ns = max(1.0, float(sum(samples)) / max(1, len(samples)))
    stream.emit("profile", runtime=name, **profile_adapter(adapter, name, mean_ns, len(samples)))


def _fidelity(job, adapter, run_once, stream, import_ns, load_ns, first_ns, memory):
    # type: (dict, BaseAdapter, Callable[[], object], EventStream, int, int, int, dict) -> dict
    """Run the model once per seeded input and send every output back (outputs event)."""
    stream.emit("progress", phase="outputs")
    seeds = job["fidelity"]["seeds"]
    outputs = []
    for seed in seeds:
        adapter.set_inputs(seed)
        run_once()
        outputs.append([encode_tensor(array) for array in adapter.outputs()])
    memory["end"] = memory_snapshot()
    stream.emit("outputs", seeds=seeds, outputs=outputs)
    return outputs_result(job, adapter, "fidelity", (import_ns, load_ns, first_ns), memory, stream)


def probe_runtime(name, stream):
    # type: (str, EventStream) -> None
    """Import one runtime and report its version: what `harness targets check` asks."""
    adapter = load_adapter_class(name)({})
    t0 = now_ns()
    adapter.import_runtime()
    stream.emit("result", probe=name, version=adapter.version(), import_ns=now_ns() - t0,
                memory=memory_snapshot())


def _hello(stream, job_or_none):
    # type: (EventStream, dict | None) -> None
    files, commands = (), ()  # type: tuple[str, ...], tuple[list[str], ...]
    if isinstance(job_or_none, dict):
        wanted = job_or_none.get("env") or {}
        files = tuple(p for p in wanted.get("files") or () if isinstance(p, str))
        commands = tuple(c for c in wanted.get("commands") or ()
                         if isinstance(c, list) and c and all(isinstance(a, str) for a in c))
    stream.emit("hello", agent_version=AGENT_VERSION, protocol_version=PROTOCOL_VERSION,
                pid=os.getpid(), clock=CLOCK_NAME, env=capture(files, commands))


def _check_job_id(argv, job):
    # type: (list, dict) -> None
    """``--job-id ID`` (the host names the job on the command line, so the job's processes can
    be told apart on the device) must be the Job's own id."""
    if "--job-id" not in argv:
        return
    index = argv.index("--job-id") + 1
    named = argv[index] if index < len(argv) else ""
    if named != str(job.get("job_id", "")):
        raise AgentFailure("protocol", "--job-id %r does not match the job's job_id %r" % (named, job.get("job_id")))


def main(argv=None):
    # type: (list[str] | None) -> int
    argv = sys.argv[1:] if argv is None else argv
    self_test = "--self-test" in argv
    if "--arm" in argv:  # one arm of a paired job, driven by its conductor (arm_process.py)
        from .arm_process import serve_arm

        return serve_arm()
    stream = EventStream.take_stdout()
    job = None
    try:
        if "--probe" in argv:
            _hello(stream, None)
            probe_runtime(argv[argv.index("--probe") + 1], stream)
            return 0
        raw = SELF_TEST_JOB if self_test else sys.stdin.buffer.read()
        try:
            job = parse_job(raw)
            _check_job_id(argv, job)
        finally:
            _hello(stream, job)
        watchdog = start_watchdog(float(job.get("timeout_s") or 0), stream.fileno())
        try:
            result = run_job(job, stream)
        finally:
            stop_watchdog(watchdog)
        if self_test:
            sys.stderr.write("agent self-test ok: python %s, %d noop iterations, clock %s\n"
                             % (sys.version.split()[0], result["iterations"], CLOCK_NAME))
        return 0
    except AgentFailure as failure:
        stream.error(failure)
        return 1
    except Exception as exc:  # a bug in the agent: still speak the protocol
        stream.error(AgentFailure("internal", "%s: %s" % (type(exc).__name__, exc), traceback.format_exc()))
        return 1


if __name__ == "__main__":
    sys.exit(main())
