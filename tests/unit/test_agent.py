"""The on-device agent: run as a real subprocess, protocol events parsed from its stdout.

Also the timing loop and job parsing in-process (they are plain stdlib functions).
"""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest
from helpers.interpreters import pyenv_python_or_fail

import harness
from harness.agent import PROTOCOL_VERSION, timing
from harness.agent.job import LATENCY_DEFAULTS, parse_job
from harness.agent.protocol import ERROR_KINDS, EVENTS, AgentFailure
from harness.agent.timing import timed_loop, warm_up

REPO_ROOT = Path(harness.__file__).resolve().parent.parent
AGENT_DIR = REPO_ROOT / "harness" / "agent"
FAST_LATENCY = {"warmup_iterations": 2, "warmup_duration_s": 0, "min_iterations": 20, "min_duration_s": 0.01}


def _job(**overrides: Any) -> dict[str, Any]:
    job: dict[str, Any] = {
        "protocol": PROTOCOL_VERSION, "job_id": "t1", "runtime": {"name": "noop"},
        "model": {"files": {}}, "input": {"shape": [1]}, "latency": dict(FAST_LATENCY),
    }
    job.update(overrides)
    return job


def run_agent(stdin: bytes = b"", args: tuple[str, ...] = (), python: str = sys.executable,
              timeout: float = 120) -> tuple[int, list[dict[str, Any]], str]:
    """Run `python -m harness.agent`; every stdout line must be a JSON object."""
    env = dict(os.environ, PYTHONPATH=str(REPO_ROOT), PYTHONDONTWRITEBYTECODE="1")
    done = subprocess.run([python, "-m", "harness.agent", *args], input=stdin, capture_output=True,
                          cwd=str(REPO_ROOT), env=env, timeout=timeout)
    events = []
    for line in done.stdout.decode("utf-8").splitlines():
        event = json.loads(line)  # fails the test on any non-protocol output
        assert isinstance(event, dict) and event["protocol"] == PROTOCOL_VERSION, line
        assert event["event"] in EVENTS, line
        events.append(event)
    return done.returncode, events, done.stderr.decode("utf-8", "replace")


def _error(events: list[dict[str, Any]]) -> dict[str, Any]:
    assert events, "agent wrote no events"
    last = events[-1]
    assert last["event"] == "error", events
    assert last["kind"] in ERROR_KINDS
    assert [e["event"] for e in events].count("error") == 1
    return last


# --- the agent as a process ------------------------------------------------------------

def test_self_test_emits_events_in_order() -> None:
    code, events, stderr = run_agent(args=("--self-test",))
    assert code == 0, stderr
    names = [e["event"] for e in events]
    assert names[0] == "hello"
    assert names[-2:] == ["samples", "result"]
    assert set(names[1:-2]) == {"progress"}
    phases = [e["phase"] for e in events if e["event"] == "progress"]
    assert phases[:5] == ["import", "load", "first-inference", "warmup", "measure"]
    hello = events[0]
    assert hello["protocol_version"] == PROTOCOL_VERSION
    assert hello["env"]["python"] == ".".join(map(str, sys.version_info[:3]))
    samples = events[-2]["latency_ns"]
    result = events[-1]
    assert len(samples) == result["iterations"] >= 1000  # the self-test job's min_iterations
    assert all(isinstance(s, int) and s >= 0 for s in samples)
    assert result["stopped_by"] == "min-reached"
    assert result["runtime"]["name"] == "noop"
    assert "self-test ok" in stderr


def test_a_job_on_stdin_runs_and_reports_its_settings() -> None:
    job = _job(env={"files": [str(REPO_ROOT / "pyproject.toml")], "commands": [["uname", "-s"]]})
    code, events, stderr = run_agent(json.dumps(job).encode())
    assert code == 0, stderr
    result = events[-1]
    assert result["event"] == "result" and result["job_id"] == "t1"
    assert result["iterations"] >= FAST_LATENCY["min_iterations"]
    assert result["window_ns"] >= FAST_LATENCY["min_duration_s"] * 1e9
    assert result["warmup_iterations"] >= FAST_LATENCY["warmup_iterations"]
    env = events[0]["env"]
    assert "edge-harness" in env["files"][str(REPO_ROOT / "pyproject.toml")]
    assert env["commands"]["uname -s"] == "Linux"


def test_stdout_carries_only_protocol_even_when_fd1_is_written() -> None:
    """After take_stdout(), print() and raw writes to fd 1 land on stderr, not in the protocol."""
    code = textwrap.dedent("""
        import os, sys
        from harness.agent.protocol import EventStream
        stream = EventStream.take_stdout()
        print("stray print from a runtime")
        sys.stdout.flush()
        os.write(1, b"native library banner on fd 1\\n")
        stream.emit("hello", note="first")
        print("another stray line")
        stream.emit("result", note="second")
    """)
    env = dict(os.environ, PYTHONPATH=str(REPO_ROOT))
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, env=env, timeout=60)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.decode().splitlines()
    assert [json.loads(line)["note"] for line in lines] == ["first", "second"]
    stderr = done.stderr.decode()
    for text in ("stray print from a runtime", "native library banner on fd 1", "another stray line"):
        assert text in stderr


def test_bad_json_job_is_a_protocol_error() -> None:
    code, events, _ = run_agent(b"{this is not json")
    assert code == 1
    assert events[0]["event"] == "hello"  # the host still learns who it talked to
    error = _error(events)
    assert error["kind"] == "protocol"
    assert "JSON" in error["message"]


def test_non_utf8_job_is_a_protocol_error() -> None:
    code, events, _ = run_agent(b"\xff\xfe\x00garbage")
    assert code == 1
    assert _error(events)["kind"] == "protocol"


def test_wrong_protocol_version_is_a_protocol_error() -> None:
    code, events, _ = run_agent(json.dumps(_job(protocol=99)).encode())
    assert code == 1
    error = _error(events)
    assert error["kind"] == "protocol"
    assert "99" in error["message"] and str(PROTOCOL_VERSION) in error["message"]


def test_unknown_runtime_is_a_bad_option() -> None:
    code, events, _ = run_agent(json.dumps(_job(runtime={"name": "tensorflow-magic"})).encode())
    assert code == 1
    error = _error(events)
    assert error["kind"] == "bad-option"
    assert "tensorflow-magic" in error["message"] and "noop" in error["message"]


def test_unknown_noop_option_is_a_bad_option() -> None:
    job = _job(runtime={"name": "noop", "options": {"threads": 4}})
    code, events, _ = run_agent(json.dumps(job).encode())
    assert code == 1
    error = _error(events)
    assert error["kind"] == "bad-option"
    assert "threads" in error["message"]


def test_invalid_paddle_option_value_is_a_bad_option() -> None:
    job = _job(runtime={"name": "paddle-inference", "options": {"precision": "int4"}})
    code, events, _ = run_agent(json.dumps(job).encode())
    assert code == 1
    error = _error(events)
    assert error["kind"] == "bad-option"
    assert "precision" in error["message"] and "int4" in error["message"]


def test_paddle_job_with_missing_model_file_is_model_missing(tmp_path: Path) -> None:
    model = tmp_path / "nowhere" / "inference.pdmodel"
    params = tmp_path / "nowhere" / "inference.pdiparams"
    job = _job(runtime={"name": "paddle-inference", "options": {"threads": 1}},
               model={"files": {"model": str(model), "params": str(params)}},
               input={"shape": [1, 3, 8, 8], "dtype": "float32"})
    code, events, stderr = run_agent(json.dumps(job).encode())
    assert code == 1, stderr
    error = _error(events)
    assert error["kind"] == "model-missing", error
    assert str(model) in error["message"]


def _pyenv_python(version: str) -> str:
    return pyenv_python_or_fail(version)


def test_paddle_job_under_an_interpreter_without_paddle_is_runtime_missing(tmp_path: Path) -> None:
    python = _pyenv_python("3.10.13")
    probe = subprocess.run([python, "-c", "import paddle"], capture_output=True, timeout=60)
    assert probe.returncode != 0, f"{python} has paddle installed; this test needs one without it"
    model = tmp_path / "inference.pdmodel"
    model.write_bytes(b"not really a model")
    job = _job(runtime={"name": "paddle-inference"},
               model={"files": {"model": str(model), "params": str(model)}})
    code, events, stderr = run_agent(json.dumps(job).encode(), python=python)
    assert code == 1, stderr
    assert events[0]["event"] == "hello" and events[0]["env"]["python"] == "3.10.13"
    error = _error(events)
    assert error["kind"] == "runtime-missing", error
    assert "paddle" in error["message"]


def test_job_missing_required_sections_is_a_protocol_error() -> None:
    job = _job()
    del job["input"]
    code, events, _ = run_agent(json.dumps(job).encode())
    assert code == 1
    error = _error(events)
    assert error["kind"] == "protocol" and "input" in error["message"]


# --- the timing loop, in-process -------------------------------------------------------

def _nothing() -> None:
    return None


def test_timed_loop_stops_at_min_iterations_when_duration_is_zero() -> None:
    out = timed_loop(_nothing, 500, 0, int(10e9), 10**6)
    assert len(out["latency_ns"]) == 500
    assert out["stopped_by"] == "min-reached"
    assert all(isinstance(s, int) and s >= 0 for s in out["latency_ns"])
    assert out["window_ns"] >= sum(out["latency_ns"])


def test_timed_loop_keeps_going_until_min_duration() -> None:
    min_duration_ns = 50_000_000
    out = timed_loop(_nothing, 1, min_duration_ns, int(10e9), 10**9)
    assert out["stopped_by"] == "min-reached"
    assert out["window_ns"] >= min_duration_ns
    assert len(out["latency_ns"]) > 1


def test_timed_loop_needs_both_count_and_duration() -> None:
    # a slow call: 20 ms of duration is reached after ~10 calls, but 30 are required
    out = timed_loop(lambda: time.sleep(0.002), 30, 20_000_000, int(10e9), 10**6)
    assert len(out["latency_ns"]) == 30
    assert out["stopped_by"] == "min-reached"
    assert all(s >= 2_000_000 for s in out["latency_ns"])


def test_timed_loop_stops_at_max_iterations() -> None:
    out = timed_loop(_nothing, 10**6, int(10e9), int(60e9), 1000)
    assert len(out["latency_ns"]) == 1000
    assert out["stopped_by"] == "max-iterations"


def test_timed_loop_stops_at_max_duration() -> None:
    started = time.monotonic()
    out = timed_loop(lambda: time.sleep(0.001), 10**9, int(60e9), 50_000_000, 10**9)
    elapsed = time.monotonic() - started
    assert out["stopped_by"] == "max-duration"
    assert out["window_ns"] >= 50_000_000
    assert elapsed < 5
    assert 0 < len(out["latency_ns"]) < 1000


def test_timed_loop_reports_progress(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(timing, "PROGRESS_INTERVAL_NS", 10_000_000)
    seen: list[tuple[int, int]] = []
    timed_loop(lambda: time.sleep(0.001), 1, 80_000_000, int(10e9), 10**9,
               on_progress=lambda count, elapsed: seen.append((count, elapsed)))
    assert len(seen) >= 3
    counts = [c for c, _ in seen]
    elapsed = [e for _, e in seen]
    assert counts == sorted(counts) and elapsed == sorted(elapsed)
    assert elapsed[0] >= 10_000_000


def test_warm_up_respects_iterations_and_duration() -> None:
    assert warm_up(_nothing, 25, 0) == 25
    calls = []
    started = time.monotonic()
    done = warm_up(lambda: calls.append(1), 1, 30_000_000)
    assert time.monotonic() - started >= 0.03
    assert done == len(calls) > 1


# --- parse_job, in-process -------------------------------------------------------------

def _raw(**overrides: Any) -> bytes:
    job = _job(**overrides)
    return json.dumps(job).encode()


def test_parse_job_fills_latency_defaults() -> None:
    job = parse_job(_raw(latency=None))
    assert job["latency"] == LATENCY_DEFAULTS
    partial = parse_job(_raw(latency={"min_iterations": 7}))
    assert partial["latency"] == dict(LATENCY_DEFAULTS, min_iterations=7)
    assert LATENCY_DEFAULTS["min_iterations"] != 7  # the module default is untouched
    assert parse_job(_raw(latency=None))["latency"]["min_iterations"] == LATENCY_DEFAULTS["min_iterations"]


@pytest.mark.parametrize("latency, needle", [
    ({"min_iters": 5}, "min_iters"),
    ({"min_duration_s": -1}, "min_duration_s"),
    ({"min_iterations": "50"}, "min_iterations"),
    ({"max_iterations": True}, "max_iterations"),
])
def test_parse_job_rejects_bad_latency_settings(latency: dict[str, Any], needle: str) -> None:
    with pytest.raises(AgentFailure) as caught:
        parse_job(_raw(latency=latency))
    assert caught.value.kind == "protocol"
    assert needle in caught.value.message


@pytest.mark.parametrize("overrides, needle", [
    ({"input": {"shape": [1, 0]}}, "shape"),
    ({"input": {"shape": "1x3"}}, "shape"),
    ({"runtime": {"name": 3}}, "runtime.name"),
    ({"model": {"files": ["a"]}}, "files"),
    ({"protocol": None}, "protocol"),
])
def test_parse_job_rejects_malformed_jobs(overrides: dict[str, Any], needle: str) -> None:
    with pytest.raises(AgentFailure) as caught:
        parse_job(_raw(**overrides))
    assert caught.value.kind == "protocol"
    assert needle in caught.value.message


def test_parse_job_rejects_a_json_array() -> None:
    with pytest.raises(AgentFailure, match="JSON object"):
        parse_job(b"[1, 2, 3]")


class _EventKinds(ast.NodeVisitor):
    """Collects the event kinds one agent module sends: the first argument of every emit(...)
    call, and the "event" of every event written by hand (a dict literal with "event" and
    "protocol" keys, as the watchdog's). The body of EventStream.emit itself, which builds the
    record for whatever kind it is given, is not a sender."""

    def __init__(self, where: str) -> None:
        self.where = where
        self.kinds: list[tuple[str, str]] = []  # (kind, "path:line")

    def visit_FunctionDef(self, node: ast.FunctionDef) -> None:
        if node.name != "emit":
            self.generic_visit(node)

    def visit_Call(self, node: ast.Call) -> None:
        func = node.func
        name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)
        if name == "emit" and node.args:
            self._kind(node.args[0], node.lineno)
        self.generic_visit(node)

    def visit_Dict(self, node: ast.Dict) -> None:
        keys = {key.value: value for key, value in zip(node.keys, node.values, strict=True)
                if isinstance(key, ast.Constant)}
        if "event" in keys and "protocol" in keys:
            self._kind(keys["event"], node.lineno)
        self.generic_visit(node)

    def _kind(self, expr: ast.expr, line: int) -> None:
        assert isinstance(expr, ast.Constant) and isinstance(expr.value, str), (
            f"{self.where}:{line}: an event kind must be a string literal, so this test can check it")
        self.kinds.append((expr.value, f"{self.where}:{line}"))


def _emitted_event_kinds() -> dict[str, list[str]]:
    """Event kind -> the places in the agent's source that send it.

    lock.py is left out: the device lock helper prints its own events ("waiting", "locked", ...)
    on its own stdout, outside the agent protocol."""
    kinds: dict[str, list[str]] = {}
    for path in sorted(AGENT_DIR.rglob("*.py")):
        if path.relative_to(AGENT_DIR).as_posix() == "lock.py":
            continue
        collector = _EventKinds(path.relative_to(REPO_ROOT).as_posix())
        collector.visit(ast.parse(path.read_text(encoding="utf-8")))
        for kind, where in collector.kinds:
            kinds.setdefault(kind, []).append(where)
    return kinds


def test_protocol_events_lists_every_event_kind_the_agent_emits() -> None:
    """protocol.EVENTS is the one list of event kinds: the host accepts exactly these, so a kind the
    agent sends that is not listed would be a protocol error on every host, and a listed kind
    nobody sends is a stale entry."""
    emitted = _emitted_event_kinds()
    unlisted = {kind: where for kind, where in emitted.items() if kind not in EVENTS}
    assert not unlisted, f"the agent emits event kinds missing from protocol.EVENTS: {unlisted}"
    never_sent = set(EVENTS) - set(emitted)
    assert not never_sent, f"protocol.EVENTS lists kinds the agent never emits: {never_sent}"
    assert "harness/agent/watchdog.py" in " ".join(emitted["error"])  # the hand-written event is seen too


def test_agent_failure_with_unknown_kind_becomes_internal() -> None:
    assert AgentFailure("no-such-kind", "x").kind == "internal"
    assert AgentFailure("model-load", "x").kind == "model-load"


def test_a_spin_job_computes_its_cpu_time_per_inference_whatever_the_wall_clock() -> None:
    """noop's spin_us is fixed in the thread's CPU time, and CPU time never runs ahead of the
    wall clock: every timed inference takes at least spin_us (a sleep or a no-op would not)."""
    job = _job(runtime={"name": "noop", "options": {"spin_us": 3000}},
               latency={**FAST_LATENCY, "min_iterations": 30})
    code, events, stderr = run_agent(json.dumps(job).encode())
    assert code == 0, stderr
    (samples,) = [e["latency_ns"] for e in events if e["event"] == "samples"]
    assert len(samples) >= 30 and min(samples) >= 3_000_000, sorted(samples)[:3]


def test_a_noop_job_with_both_sleep_and_spin_is_a_bad_option() -> None:
    job = _job(runtime={"name": "noop", "options": {"spin_us": 10, "sleep_us": 10}})
    code, events, _ = run_agent(json.dumps(job).encode())
    error = _error(events)
    assert code == 1 and error["kind"] == "bad-option" and "sleep_us or spin_us" in error["message"], error


def test_the_job_id_on_the_command_line_must_be_the_jobs_own() -> None:
    job = json.dumps(_job(job_id="abc123")).encode()
    code, events, stderr = run_agent(job, args=("--job-id", "abc123"))
    assert code == 0 and events[-1]["event"] == "result", stderr
    code, events, _ = run_agent(job, args=("--job-id", "other"))
    error = _error(events)
    assert code == 1 and error["kind"] == "protocol" and "'other'" in error["message"], error
