"""AgentClient over the real LocalTransport and ContentCache: jobs, failures, pushes.

Broken agents are real executables written into tmp_path and given as the interpreter.
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from helpers.faulty_transports import CorruptingLocalTransport

from harness.agent import PROTOCOL_VERSION
from harness.errors import AgentError, TransportError
from harness.run.agent_client import AGENT_PACKAGE, AGENT_SOURCE, AgentClient, AgentRun
from harness.transport.base import ContentCache, agent_files, tree_sha256
from harness.transport.local import LocalTransport

TARGET = "lab-board"


def _job(**overrides: Any) -> dict[str, Any]:
    job: dict[str, Any] = {
        "protocol": PROTOCOL_VERSION, "job_id": "c1", "runtime": {"name": "noop"},
        "model": {"files": {}}, "input": {"shape": [1]},
        "latency": {"warmup_iterations": 2, "warmup_duration_s": 0, "min_iterations": 25,
                    "min_duration_s": 0.01},
    }
    job.update(overrides)
    return job


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    return tmp_path / "device-workdir"


@pytest.fixture
def client(workdir: Path) -> AgentClient:
    transport = LocalTransport(TARGET, str(workdir))
    return AgentClient(transport, ContentCache(transport))


def fake_interpreter(tmp_path: Path, name: str, body: str) -> str:
    """An executable that stands in for `python -m harness_agent` (it ignores its arguments)."""
    path = tmp_path / name
    path.write_text(f"#!{sys.executable}\n{body}\n")
    path.chmod(path.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return str(path)


def _agent_error(client: AgentClient, python: str, timeout_s: float = 30) -> AgentError:
    with pytest.raises(AgentError) as caught:
        client.run_job(_job(), python, timeout_s)
    error = caught.value
    assert str(error).startswith(f"{TARGET}: "), str(error)
    assert error.target == TARGET
    return error


# --- a real job -------------------------------------------------------------------------

def test_noop_job_returns_samples(client: AgentClient) -> None:
    progress: list[dict[str, Any]] = []
    run = client.run_job(_job(), sys.executable, timeout_s=60, on_progress=progress.append)
    assert isinstance(run, AgentRun)
    assert len(run.latency_ns) == run.result["iterations"] >= 25
    assert all(isinstance(v, int) and v >= 0 for v in run.latency_ns)
    assert run.result["job_id"] == "c1"
    assert run.result["stopped_by"] == "min-reached"
    assert run.hello["event"] == "hello"
    assert run.hello["env"]["python_executable"]
    phases = [p["phase"] for p in run.progress]
    assert phases[:5] == ["import", "load", "first-inference", "warmup", "measure"]
    assert progress == run.progress  # the callback saw each progress event


def test_agent_reported_error_keeps_its_kind(client: AgentClient) -> None:
    with pytest.raises(AgentError) as caught:
        client.run_job(_job(runtime={"name": "noop", "options": {"threads": 2}}), sys.executable, 60)
    assert caught.value.kind == "bad-option"
    assert str(caught.value).startswith(f"{TARGET}: bad-option: ")
    assert "threads" in caught.value.message


# --- broken agents ----------------------------------------------------------------------

def test_non_json_output_is_a_protocol_error(client: AgentClient, tmp_path: Path) -> None:
    python = fake_interpreter(tmp_path, "chatty", 'print("not json", flush=True)')
    error = _agent_error(client, python)
    assert error.kind == "protocol"
    assert "not json" in error.message


def test_invalid_utf8_output_is_a_protocol_error(client: AgentClient, tmp_path: Path) -> None:
    python = fake_interpreter(tmp_path, "binary",
                              'import sys\nsys.stdout.buffer.write(b"\\xff\\xfe\\xfa oops\\n")\nsys.stdout.flush()')
    error = _agent_error(client, python)
    assert error.kind == "protocol"
    assert "UTF-8" in error.message


def test_json_that_is_not_an_event_is_a_protocol_error(client: AgentClient, tmp_path: Path) -> None:
    python = fake_interpreter(tmp_path, "alien", 'print(\'{"hello": "world"}\', flush=True)')
    assert _agent_error(client, python).kind == "protocol"


def test_other_protocol_version_is_a_protocol_error(client: AgentClient, tmp_path: Path) -> None:
    python = fake_interpreter(tmp_path, "future", 'print(\'{"event": "hello", "protocol": 99}\', flush=True)')
    error = _agent_error(client, python)
    assert error.kind == "protocol"
    assert "99" in error.message


def test_result_without_samples_is_a_protocol_error(client: AgentClient, tmp_path: Path) -> None:
    body = ("import json\n"
            f"print(json.dumps({{'event': 'hello', 'protocol': {PROTOCOL_VERSION}}}))\n"
            f"print(json.dumps({{'event': 'result', 'protocol': {PROTOCOL_VERSION}}}))\n")
    error = _agent_error(client, fake_interpreter(tmp_path, "nosamples", body))
    assert error.kind == "protocol"
    assert "samples" in error.message


def test_negative_samples_are_a_protocol_error(client: AgentClient, tmp_path: Path) -> None:
    body = ("import json\n"
            f"print(json.dumps({{'event': 'samples', 'protocol': {PROTOCOL_VERSION}, 'latency_ns': [5, -1]}}))\n")
    error = _agent_error(client, fake_interpreter(tmp_path, "negative", body))
    assert error.kind == "protocol"


def test_hung_agent_times_out_and_is_killed(client: AgentClient, tmp_path: Path) -> None:
    pids = tmp_path / "pids"
    body = (
        "import os, subprocess, sys, time\n"
        "child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(3600)'])\n"
        f"open({str(pids)!r}, 'w').write('%d %d' % (os.getpid(), child.pid))\n"
        "time.sleep(3600)\n")
    python = fake_interpreter(tmp_path, "hung", body)
    started = time.monotonic()
    error = _agent_error(client, python, timeout_s=1)
    elapsed = time.monotonic() - started
    assert error.kind == "timeout"
    assert "1s" in error.message and "killed" in error.message
    assert 1.0 <= elapsed < 10, elapsed
    agent_pid, child_pid = (int(p) for p in pids.read_text().split())
    for pid in (agent_pid, child_pid):  # the whole process group is gone (or a zombie awaiting init)
        assert _gone_within(pid, seconds=5.0), f"process {pid} survived the timeout"


def _gone_within(pid: int, seconds: float) -> bool:
    """SIGKILL is delivered at once, but a dying process shows as running until the kernel
    has torn it down; on a loaded machine that takes a moment."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        status = Path(f"/proc/{pid}/status")
        try:
            state = next(line for line in status.read_text().splitlines() if line.startswith("State:"))
        except (FileNotFoundError, ProcessLookupError):
            return True
        if "Z" in state:
            return True
        time.sleep(0.05)
    return False


def test_silent_exit_is_a_crash_with_the_exit_code(client: AgentClient, tmp_path: Path) -> None:
    python = fake_interpreter(tmp_path, "quitter", "import sys\nsys.exit(3)")
    error = _agent_error(client, python)
    assert error.kind == "crashed"
    assert "exited with code 3" in error.message


def test_crash_message_carries_the_stderr_tail(client: AgentClient, tmp_path: Path) -> None:
    body = 'import sys\nsys.stderr.write("line one\\nSegmentation fault in libfoo\\n")\nsys.exit(139)'
    error = _agent_error(client, fake_interpreter(tmp_path, "segv", body))
    assert error.kind == "crashed"
    assert "exited with code 139" in error.message
    assert "Segmentation fault in libfoo" in error.message


def test_killed_agent_is_a_crash_naming_the_signal(client: AgentClient, tmp_path: Path) -> None:
    python = fake_interpreter(tmp_path, "oom", "import os, signal\nos.kill(os.getpid(), signal.SIGKILL)")
    error = _agent_error(client, python)
    assert error.kind == "crashed"
    assert "signal 9" in error.message and "SIGKILL" in error.message


def test_missing_interpreter_is_an_interpreter_error(client: AgentClient, tmp_path: Path) -> None:
    missing = str(tmp_path / "no" / "python3.6")
    error = _agent_error(client, missing)
    assert error.kind == "interpreter"
    assert missing in error.message
    assert f"harness targets check {TARGET}" in error.message


# --- pushing the agent and model files ----------------------------------------------------

def test_agent_is_pushed_once_per_client_and_reused_by_the_next(workdir: Path) -> None:
    expected_files = agent_files(AGENT_SOURCE, AGENT_PACKAGE)
    transport = LocalTransport(TARGET, str(workdir))
    first = AgentClient(transport, ContentCache(transport))
    first.run_job(_job(), sys.executable, 60)
    assert first.cache.stats.files_sent == len(expected_files) > 5
    sent_bytes = first.cache.stats.bytes_sent
    assert sent_bytes == sum(p.stat().st_size for p in expected_files.values())
    first.run_job(_job(), sys.executable, 60)
    assert first.cache.stats.files_sent == len(expected_files)  # nothing more
    assert first.cache.stats.bytes_sent == sent_bytes

    agent_dir = Path(first.agent_dir())
    assert agent_dir == workdir.resolve() / "agent" / tree_sha256(expected_files)
    assert (agent_dir / ".complete").is_file()
    assert (agent_dir / AGENT_PACKAGE / "__main__.py").read_bytes() == (AGENT_SOURCE / "__main__.py").read_bytes()

    transport2 = LocalTransport(TARGET, str(workdir))
    second = AgentClient(transport2, ContentCache(transport2))
    run = second.run_job(_job(), sys.executable, 60)
    assert run.latency_ns
    assert second.cache.stats.files_sent == 0
    assert second.cache.stats.bytes_sent == 0
    assert second.cache.stats.cache_hits == 1


def test_push_file_lands_under_its_sha256(tmp_path: Path, workdir: Path) -> None:
    model = tmp_path / "inference.pdmodel"
    content = os.urandom(50_000)
    model.write_bytes(content)
    digest = hashlib.sha256(content).hexdigest()
    transport = LocalTransport(TARGET, str(workdir))
    cache = ContentCache(transport)
    remote = cache.push_file(model)
    assert Path(remote) == workdir.resolve() / "cache" / digest / "inference.pdmodel"
    assert Path(remote).read_bytes() == content
    assert (cache.stats.files_sent, cache.stats.bytes_sent) == (1, len(content))
    assert os.listdir(Path(remote).parent) == ["inference.pdmodel"]  # no .part leftovers

    assert cache.push_file(model) == remote
    assert (cache.stats.files_sent, cache.stats.bytes_sent) == (1, len(content))

    fresh = ContentCache(LocalTransport(TARGET, str(workdir)))
    assert fresh.push_file(model, sha256=digest) == remote
    assert (fresh.stats.files_sent, fresh.stats.bytes_sent, fresh.stats.cache_hits) == (0, 0, 1)


def test_push_file_of_a_missing_file(tmp_path: Path, workdir: Path) -> None:
    cache = ContentCache(LocalTransport(TARGET, str(workdir)))
    with pytest.raises(TransportError, match="no such file"):
        cache.push_file(tmp_path / "absent.onnx")


def test_corrupted_upload_is_refused_and_nothing_is_cached(tmp_path: Path, workdir: Path) -> None:
    model = tmp_path / "model.onnx"
    model.write_bytes(b"\x08\x07" * 4096)
    digest = hashlib.sha256(model.read_bytes()).hexdigest()
    cache = ContentCache(CorruptingLocalTransport(TARGET, str(workdir)))
    with pytest.raises(TransportError) as caught:
        cache.push_file(model)
    message = str(caught.value)
    assert message.startswith(f"{TARGET}: ")
    assert "sha256" in message and "corrupted" in message
    assert digest[:12] in message
    cache_dir = workdir / "cache" / digest
    assert not cache_dir.exists() or os.listdir(cache_dir) == []

    # the next push over a good link uploads again instead of trusting a poisoned entry
    good = ContentCache(LocalTransport(TARGET, str(workdir)))
    remote = good.push_file(model)
    assert good.stats.files_sent == 1
    assert Path(remote).read_bytes() == model.read_bytes()


def test_corrupted_agent_push_leaves_no_usable_tree(workdir: Path) -> None:
    transport = CorruptingLocalTransport(TARGET, str(workdir))
    client = AgentClient(transport, ContentCache(transport))
    with pytest.raises(TransportError, match="corrupted"):
        client.run_job(_job(), sys.executable, 60)
    tree = workdir / "agent" / tree_sha256(agent_files(AGENT_SOURCE, AGENT_PACKAGE))
    assert not tree.exists()
    good = LocalTransport(TARGET, str(workdir))
    run = AgentClient(good, ContentCache(good)).run_job(_job(), sys.executable, 60)
    assert run.latency_ns
    assert (tree / ".complete").is_file()


def test_job_is_sent_as_json_on_stdin(client: AgentClient, tmp_path: Path) -> None:
    """The client's side of the wire: one JSON Job on stdin, then EOF."""
    seen = tmp_path / "stdin.json"
    body = (f"import shutil, sys\nshutil.copyfileobj(sys.stdin.buffer, open({str(seen)!r}, 'wb'))\n"
            "sys.exit(0)")
    _agent_error(client, fake_interpreter(tmp_path, "recorder", body))
    assert json.loads(seen.read_bytes()) == _job()
