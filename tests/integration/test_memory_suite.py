"""The memory suite on a real model: phases, the budget check, and an out-of-memory kill.

The OOM case runs the agent's interpreter inside a cgroup v1 memory limit (a wrapper moves
itself into the cgroup and execs the real Python: the same trick a lab device uses), so
the kernel's OOM killer really kills it while paddle is being imported.
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from harness.store import open_store

REPO = Path(__file__).resolve().parents[2]
VENV_PYTHON = REPO / ".venv" / "bin" / "python"
MEMORY_ROOT = Path("/sys/fs/cgroup/memory")
# Shared libraries already in the page cache are charged to the cgroup that read them first,
# so importing paddle (VmHWM ~290 MB) charges only ~135 MB here: the limit must sit below that.
LIMIT_MIB = 64

MANIFEST = """
version: 1
zoo_dir: {zoo}
models:
  tiny_cnn:
    input: {{name: x, shape: [1, 3, 64, 64], dtype: float32}}
    budgets:
      "*": {{max_memory: {budget}}}
    variants:
      fp32:
        kind: fp32
        format: paddle
        runtime: paddle-inference
        files: {{model: "{{zoo}}/tiny_cnn/fp32/inference.pdmodel", params: "{{zoo}}/tiny_cnn/fp32/inference.pdiparams"}}
        runtime_options: {{threads: 1}}
"""

TARGET = """
name: {name}
kind: x86-cpu
arch: x86_64
connection: {{transport: local}}
workdir: {workdir}
python: {python}
runtimes:
  paddle-inference: {python}
"""


def run_memory_suite(tmp_path: Path, zoo: Path, python: Path | str, budget: str = "4GB") -> subprocess.CompletedProcess:
    targets = tmp_path / "targets"
    targets.mkdir(exist_ok=True)
    (targets / "box.yaml").write_text(TARGET.format(name="box", workdir=tmp_path / "work", python=python))
    manifest = tmp_path / "models.yaml"
    manifest.write_text(MANIFEST.format(zoo=zoo, budget=budget))
    return subprocess.run(
        [sys.executable, "-m", "pytest", str(REPO / "suites" / "test_memory.py"), "--target=box",
         f"--targets-dir={targets}", f"--manifest={manifest}", f"--store={tmp_path / 'r.sqlite'}",
         "--no-report", "-p", "no:cacheprovider", "-q", "-rA"],
        cwd=REPO, capture_output=True, text=True, timeout=300)


def only_record(tmp_path: Path):
    store = open_store(tmp_path / "r.sqlite")
    (run,) = store.runs()
    (record,) = store.measurements(run.id)
    return record


def test_peak_memory_is_split_by_phase(tmp_path: Path, demo_zoo: Path) -> None:
    done = run_memory_suite(tmp_path, demo_zoo, VENV_PYTHON)
    assert done.returncode == 0, done.stdout[-2000:]
    summary = only_record(tmp_path).summary
    assert summary["import_peak_bytes"] > 100 * 2**20  # paddle.inference alone is ~290 MB
    assert summary["load_delta_bytes"] >= 0 and summary["inference_delta_bytes"] >= 0
    assert summary["peak_rss_bytes"] == (summary["import_peak_bytes"] + summary["load_delta_bytes"]
                                         + summary["inference_delta_bytes"])
    fp32 = demo_zoo / "tiny_cnn" / "fp32"
    assert summary["model_file_bytes"] == sum(f.stat().st_size for f in (fp32 / "inference.pdmodel",
                                                                         fp32 / "inference.pdiparams"))


def test_memory_budget_miss_names_value_budget_and_split(tmp_path: Path, demo_zoo: Path) -> None:
    done = run_memory_suite(tmp_path, demo_zoo, VENV_PYTHON, budget="100MB")
    assert done.returncode == 1
    line = next(l for l in done.stdout.splitlines() if "peak memory" in l and "exceeds the budget 100.0 MiB" in l)
    assert line.startswith("box: tiny_cnn-fp32") and "runtime import" in line and "model load +" in line
    assert "Traceback" not in done.stdout


@pytest.fixture
def memory_cgroup():
    if not (MEMORY_ROOT / "memory.limit_in_bytes").exists():
        pytest.fail("cgroup v1 memory controller not mounted at /sys/fs/cgroup/memory: this test needs it")
    own = next(line.split(":", 2)[2] for line in Path("/proc/self/cgroup").read_text().splitlines()
               if ":memory:" in line)
    group = MEMORY_ROOT / own.lstrip("/") / f"harness-test-oom-{uuid.uuid4().hex[:6]}"
    group.mkdir()
    (group / "memory.limit_in_bytes").write_text(str(LIMIT_MIB * 2**20))
    if (group / "memory.memsw.limit_in_bytes").exists():
        (group / "memory.memsw.limit_in_bytes").write_text(str(LIMIT_MIB * 2**20))
    yield group
    for pid in (group / "cgroup.procs").read_text().split():
        try:
            os.kill(int(pid), 9)
        except ProcessLookupError:
            pass
    group.rmdir()


def test_out_of_memory_is_reported_with_phase_and_limit(tmp_path: Path, demo_zoo: Path, memory_cgroup: Path) -> None:
    wrapper = tmp_path / "python-in-cgroup"
    wrapper.write_text(f"#!/bin/sh\necho $$ > {memory_cgroup}/cgroup.procs\nexec {VENV_PYTHON} \"$@\"\n")
    wrapper.chmod(0o755)
    done = run_memory_suite(tmp_path, demo_zoo, wrapper)
    assert done.returncode == 1, done.stdout[-2000:]
    assert f"box: out-of-memory: out of memory at runtime import (memory limit {LIMIT_MIB} MiB)" in done.stdout, done.stdout[-2000:]
    record = only_record(tmp_path)
    assert record.status == "error" and "out of memory at runtime import" in record.meta["error"]
    assert "Traceback" not in done.stdout
