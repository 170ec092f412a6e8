"""The agent runs on Python 3.6 (JetPack 4), pushed under another package name.

Needs pyenv with Python 3.6.15. A missing interpreter is a failure, not a skip: the 3.6
promise is part of the agent's contract and must be checked on every run.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
from helpers.interpreters import pyenv_python_or_fail

import harness.agent
from harness.agent import AGENT_VERSION, PROTOCOL_VERSION

PY36 = "3.6.15"
PACKAGE = "harness_agent"  # the name harness.run.agent_client pushes it under
AGENT_DIR = Path(harness.agent.__file__).resolve().parent


@pytest.fixture(scope="module")
def python36() -> str:
    python = pyenv_python_or_fail(PY36)  # fails, saying what to install: this check must not be skipped
    version = subprocess.run([str(python), "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
                             capture_output=True, text=True, timeout=30)
    assert version.stdout.strip() == "3.6", version
    return python


@pytest.fixture
def pushed_agent(tmp_path: Path) -> Path:
    """A copy of harness/agent as `harness_agent/` (sources only, as the client pushes it)."""
    shutil.copytree(AGENT_DIR, tmp_path / PACKAGE, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    return tmp_path


def _run(python: str, root: Path, args: list[str], stdin: bytes = b"") -> subprocess.CompletedProcess:
    env = {key: value for key, value in os.environ.items() if not key.startswith("PYTHON")}
    env["PYTHONPATH"] = str(root)
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    return subprocess.run([python, *args], input=stdin, capture_output=True, cwd=str(root), env=env, timeout=120)


def _events(stdout: bytes) -> list[dict]:
    return [json.loads(line) for line in stdout.decode("utf-8").splitlines()]


def test_self_test_under_python36(python36: str, pushed_agent: Path) -> None:
    done = _run(python36, pushed_agent, ["-m", PACKAGE, "--self-test"])
    assert done.returncode == 0, done.stderr.decode()
    events = _events(done.stdout)
    names = [e["event"] for e in events]
    assert names[0] == "hello" and names[-2:] == ["samples", "result"]
    assert all(e["protocol"] == PROTOCOL_VERSION for e in events)
    hello = events[0]
    assert hello["agent_version"] == AGENT_VERSION
    assert hello["env"]["python"] == PY36
    assert hello["clock"] == "perf_counter"  # no perf_counter_ns before 3.7
    result = events[-1]
    assert result["iterations"] == len(events[-2]["latency_ns"]) >= 1000
    assert all(isinstance(s, int) and s >= 0 for s in events[-2]["latency_ns"])
    assert "python 3.6.15" in done.stderr.decode()


def test_error_path_under_python36(python36: str, pushed_agent: Path) -> None:
    job = {"protocol": PROTOCOL_VERSION, "runtime": {"name": "noop", "options": {"bogus": 1}},
           "model": {"files": {}}, "input": {"shape": [1]}}
    done = _run(python36, pushed_agent, ["-m", PACKAGE], stdin=json.dumps(job).encode())
    assert done.returncode == 1, done.stderr.decode()
    events = _events(done.stdout)
    assert events[-1]["event"] == "error" and events[-1]["kind"] == "bad-option"
    assert "bogus" in events[-1]["message"]


def test_all_agent_modules_import_under_python36(python36: str, pushed_agent: Path) -> None:
    modules = sorted(
        PACKAGE + "." + ".".join(path.relative_to(pushed_agent / PACKAGE).with_suffix("").parts)
        for path in (pushed_agent / PACKAGE).rglob("*.py")
        if path.name not in ("__init__.py", "__main__.py"))
    required = {f"{PACKAGE}.runtimes.paddle_inference", f"{PACKAGE}.runtimes.noop", f"{PACKAGE}.env",
                f"{PACKAGE}.inputs"}
    assert required <= set(modules), modules
    done = _run(python36, pushed_agent, ["-c", "import " + ", ".join(modules)])
    assert done.returncode == 0, done.stderr.decode()


def test_agent_copy_compiles_under_python36(python36: str, pushed_agent: Path) -> None:
    done = _run(python36, pushed_agent, ["-m", "compileall", "-q", PACKAGE])
    assert done.returncode == 0, (done.stdout + done.stderr).decode()
    compiled = list((pushed_agent / PACKAGE).rglob("*.cpython-36.pyc"))
    sources = list((pushed_agent / PACKAGE).rglob("*.py"))
    assert len(compiled) == len(sources)
