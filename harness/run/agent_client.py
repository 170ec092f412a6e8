"""Host side of the agent protocol: start a fresh agent per Job, read its events.

The agent's stdout is protocol only; every line must be a JSON object with an "event" and
the protocol version. Anything else is a protocol error naming the target, never a crash
or a silently wrong number.
"""

from __future__ import annotations

import json
import signal
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.agent import PROTOCOL_VERSION
from harness.agent.protocol import EVENTS
from harness.errors import AgentError, ConnectionLost, TransportError, Unreachable
from harness.transport.base import ContentCache, Transport, agent_files, lines_until

AGENT_PACKAGE = "harness_agent"  # the agent's package name on the device
AGENT_SOURCE = Path(__file__).resolve().parents[1] / "agent"
# agent phases as users name them in "out of memory at <phase>"
PHASE_NAMES = {"start": "start-up", "import": "runtime import", "load": "model load", "idle": "idle power window",
               "first-inference": "inference", "warmup": "inference", "measure": "inference", "outputs": "inference",
               "profile": "operator profile"}
STDERR_LINES_IN_ERRORS = 3


@dataclass
class AgentRun:
    """Everything one agent process reported."""

    hello: dict[str, Any]
    result: dict[str, Any]
    latency_ns: list[int]
    stderr: str
    progress: list[dict[str, Any]] = field(default_factory=list)
    outputs: list[list[dict[str, Any]]] | None = None  # per seed, per output tensor (encoded)
    seeds: list[int] | None = None
    power: dict[str, Any] | None = None  # the power event: summary, timeline, markers
    profile: dict[str, Any] | None = None  # the profile event (job.profile_ops): per-operator times
    paired: dict[str, Any] | None = None  # the paired event (kind "paired"): every arm's samples, turn by turn


class AgentCrashed(Exception):
    """The agent ended without a result or an error event (internal to this module)."""

    def __init__(self, returncode: int, phase: str, hello: dict[str, Any] | None, stderr: str) -> None:
        super().__init__(returncode)
        self.returncode = returncode
        self.phase = phase
        self.hello = hello
        self.stderr = stderr


class AgentClient:
    def __init__(self, transport: Transport, cache: ContentCache) -> None:
        self.transport = transport
        self.cache = cache
        self._agent_dir: str | None = None

    def agent_dir(self) -> str:
        """Push the agent (by content hash) once per session; its directory on the device."""
        if self._agent_dir is None:
            self._agent_dir = self.cache.push_tree(agent_files(AGENT_SOURCE, AGENT_PACKAGE), kind="agent")
        return self._agent_dir

    def _start(self, python: str, args: list[str]):
        target = self.transport.target_name
        agent_dir = self.agent_dir()
        env = {"PYTHONPATH": agent_dir, "PYTHONDONTWRITEBYTECODE": "1", "PYTHONUNBUFFERED": "1"}
        try:
            return self.transport.start([python, "-m", AGENT_PACKAGE, *args], cwd=agent_dir, env=env)
        except (Unreachable, ConnectionLost):
            raise  # the device or the link, not the interpreter
        except TransportError as exc:
            raise AgentError(target, "interpreter", f"cannot start {python}: {exc}; "
                             f"run `harness targets check {target}`") from None

    def run_job(self, job: Mapping[str, Any], python: str, timeout_s: float,
                on_progress: Callable[[dict[str, Any]], None] | None = None) -> AgentRun:
        """Run one Job in a fresh agent process; AgentError on any failure."""
        # the job id on the command line names the job's processes on the device (ps, orphans)
        process = self._start(python, ["--job-id", str(job.get("job_id", ""))])
        process.send_stdin(json.dumps(job).encode("utf-8"))
        try:
            got = _collect(process, self.transport.target_name, timeout_s, on_progress)
        except AgentCrashed as crash:
            raise self._crash_error(crash, python) from None
        if job.get("kind", "latency") in ("fidelity", "accuracy"):  # outputs, no timed loop
            if got.outputs is None:
                raise AgentError(self.transport.target_name, "protocol", "agent sent a result without outputs")
        elif not got.latency:
            raise AgentError(self.transport.target_name, "protocol", "agent sent a result without latency samples")
        return AgentRun(hello=got.hello, result=got.result, latency_ns=got.latency, stderr=got.stderr,
                        progress=got.progress, outputs=got.outputs, seeds=got.seeds, power=got.power,
                        profile=got.profile, paired=got.paired)

    def _crash_error(self, crash: AgentCrashed, python: str) -> AgentError:
        """Tell an out-of-memory kill from other crashes, using the device's cgroup counter."""
        target = self.transport.target_name
        code = crash.returncode
        if crash.hello is None and code in (126, 127):  # the remote shell could not run it
            return AgentError(target, "interpreter", f"cannot start {python} on the device (exit {code}: "
                              f"{_last_lines(crash.stderr)}); run `harness targets check {target}`")
        where = PHASE_NAMES.get(crash.phase, crash.phase)
        cgroup = ((crash.hello or {}).get("env") or {}).get("memory_cgroup") or {}
        limit = cgroup.get("limit_bytes")
        limit_text = f" (memory limit {limit / 2**20:.0f} MiB)" if limit else ""
        if code == -signal.SIGKILL or code == 128 + signal.SIGKILL:
            before = cgroup.get("oom_kills")
            after = self._read_oom_kills(cgroup.get("oom_counter_file"))
            if before is not None and after is not None and after > before:
                return AgentError(target, "out-of-memory", f"out of memory at {where}{limit_text}: the agent was "
                                  "killed by the kernel's OOM killer", detail=crash.stderr)
            return AgentError(target, "crashed", f"agent was killed by {_signal_name(9)} at {where}: out of memory?"
                              f"{limit_text}; stderr: {_last_lines(crash.stderr)}", detail=crash.stderr)
        how = f"was killed by {_signal_name(-code)}" if code < 0 else f"exited with code {code}"
        return AgentError(target, "crashed", f"agent {how} during {crash.phase} without a result; "
                          f"stderr: {_last_lines(crash.stderr)}", detail=crash.stderr)

    def _read_oom_kills(self, counter_file: str | None) -> int | None:
        if not counter_file:
            return None
        try:
            done = self.transport.run(["cat", counter_file], timeout=10)
        except TransportError:
            return None
        for line in done.stdout.decode("utf-8", "replace").splitlines():
            key, _, value = line.partition(" ")
            if key == "oom_kill" and value.strip().isdigit():
                return int(value)
        return None

    def probe(self, python: str, runtime: str, timeout_s: float = 120.0) -> dict[str, Any]:
        """Import `runtime` under `python` on the device: {"version", "import_ns", ...}."""
        process = self._start(python, ["--probe", runtime])
        process.send_stdin(b"")
        try:
            got = _collect(process, self.transport.target_name, timeout_s, None)
        except AgentCrashed as crash:
            raise self._crash_error(crash, python) from None
        return {**got.result, "python": got.hello.get("env", {}).get("python")}


@dataclass
class _Collected:
    hello: dict[str, Any]
    result: dict[str, Any]
    latency: list[int]
    progress: list[dict[str, Any]]
    stderr: str
    outputs: list[list[dict[str, Any]]] | None = None
    seeds: list[int] | None = None
    power: dict[str, Any] | None = None
    profile: dict[str, Any] | None = None
    paired: dict[str, Any] | None = None


def _collect(process, target: str, timeout_s: float,
             on_progress: Callable[[dict[str, Any]], None] | None) -> _Collected:
    """Read events until the agent exits; raise AgentError for errors, hangs and crashes."""
    deadline = time.monotonic() + timeout_s
    hello: dict[str, Any] | None = None
    result: dict[str, Any] | None = None
    error: dict[str, Any] | None = None
    latency: list[int] = []
    progress: list[dict[str, Any]] = []
    outputs: list[list[dict[str, Any]]] | None = None
    seeds: list[int] | None = None
    power: dict[str, Any] | None = None
    profile: dict[str, Any] | None = None
    paired: dict[str, Any] | None = None
    phase = "start"
    try:
        for line in lines_until(process, deadline):
            event = _decode_event(line, target)
            kind = event["event"]
            if kind == "hello":
                hello = event
            elif kind == "progress":
                phase = event.get("phase", phase)
                progress.append(event)
                if on_progress is not None:
                    on_progress(event)
            elif kind == "samples":
                latency = _checked_samples(event.get("latency_ns"), target)
            elif kind == "power":
                if not isinstance(event.get("summary"), dict):
                    raise AgentError(target, "protocol", "power event without a summary")
                power = event
            elif kind == "profile":
                if not isinstance(event.get("supported"), bool) or not isinstance(event.get("ops", []), list):
                    raise AgentError(target, "protocol", "profile event without supported/ops")
                profile = event
            elif kind == "outputs":
                outputs, seeds = _checked_outputs(event, target)
            elif kind == "paired":
                paired = _checked_paired(event, target)
            elif kind == "result":
                result = event
            elif kind == "error":
                error = event
        returncode = process.wait(timeout=max(1.0, deadline - time.monotonic()))
    except TimeoutError:
        process.kill()
        raise AgentError(target, "timeout",
                         f"job did not finish within {timeout_s:.0f}s (during {phase}); the agent "
                         "was killed; raise limits.job_timeout in the target file if this is expected") from None
    except ConnectionLost as lost:
        process.kill()  # over a dead link: remembered and done by the next connection
        raise ConnectionLost(target, f"the job's {phase} phase ({lost.phase})", lost.reason) from None
    except (AgentError, TransportError):
        process.kill()
        raise
    stderr = process.stderr_tail()
    if error is not None:
        failed = AgentError(target, str(error.get("kind", "internal")), str(error.get("message", "")),
                            detail=str(error.get("traceback") or "") + stderr)
        failed.partial_paired = paired  # a paired job's rounds before an arm failed: kept, not lost
        raise failed
    if result is None or hello is None:
        raise AgentCrashed(returncode, phase, hello, stderr)
    return _Collected(hello=hello, result=result, latency=latency, progress=progress, stderr=stderr,
                      outputs=outputs, seeds=seeds, power=power, profile=profile, paired=paired)


def _decode_event(line: bytes, target: str) -> dict[str, Any]:
    try:
        text = line.decode("utf-8")
    except UnicodeDecodeError:
        raise AgentError(target, "protocol", f"agent output is not UTF-8: {line[:60]!r}") from None
    try:
        event = json.loads(text)
    except ValueError:
        raise AgentError(target, "protocol", f"agent output is not protocol JSON: {text[:80]!r} "
                         "(something on the device writes to stdout?)") from None
    if not isinstance(event, dict) or event.get("event") not in EVENTS:
        raise AgentError(target, "protocol", f"unexpected agent message: {text[:80]!r}")
    if event.get("protocol") != PROTOCOL_VERSION:
        raise AgentError(target, "protocol", f"agent speaks protocol {event.get('protocol')!r}, "
                         f"the host speaks {PROTOCOL_VERSION}")
    return event


def _checked_samples(values: Any, target: str) -> list[int]:
    if not isinstance(values, list) or not all(isinstance(v, int) and v >= 0 for v in values):
        raise AgentError(target, "protocol", "samples.latency_ns must be a list of non-negative integers")
    return values


def _checked_paired(event: dict[str, Any], target: str) -> dict[str, Any]:
    arms, orders = event.get("arms"), event.get("orders")
    if not isinstance(arms, list) or len(arms) < 2 or not isinstance(orders, list):
        raise AgentError(target, "protocol", "paired event must carry at least two arms and the round orders")
    for arm in arms:
        k = arm.get("turn_iterations") if isinstance(arm, dict) else None
        if not isinstance(k, int) or k < 1 or not isinstance(arm.get("name"), str):
            raise AgentError(target, "protocol", "each paired arm needs a name and turn_iterations >= 1")
        samples = _checked_samples(arm.get("latency_ns"), target)
        if len(samples) != k * len(orders):
            raise AgentError(target, "protocol", f"paired arm {arm['name']}: {len(samples)} samples for "
                             f"{len(orders)} rounds of {k}")
    return event


def _checked_outputs(event: dict[str, Any], target: str) -> tuple[list[list[dict[str, Any]]], list[int]]:
    outputs, seeds = event.get("outputs"), event.get("seeds")
    if not isinstance(outputs, list) or not isinstance(seeds, list) or len(outputs) != len(seeds):
        raise AgentError(target, "protocol", "outputs event must carry one list of tensors per seed")
    for per_seed in outputs:
        if not isinstance(per_seed, list) or not all(
                isinstance(t, dict) and {"shape", "dtype", "data_b64"} <= set(t) for t in per_seed):
            raise AgentError(target, "protocol", "each output tensor needs shape, dtype and data_b64")
    return outputs, seeds


def _signal_name(number: int) -> str:
    try:
        return f"signal {number} ({signal.Signals(number).name})"
    except ValueError:
        return f"signal {number}"


def _last_lines(text: str) -> str:
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return " | ".join(lines[-STDERR_LINES_IN_ERRORS:])[:500] or "(empty)"
