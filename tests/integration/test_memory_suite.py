"""The memory suite on a real model: phases, the budget check, and an out-of-memory kill.

The OOM case runs the agent's interpreter inside a cgroup v1 memory limit (a wrapper moves
itself into the cgroup and execs the real Python: the same trick a lab device uses), so
the kernel's OOM killer really kills it while paddle is being imported.
"""

from __future__ import annotations

import os
import subprocess
import uuid
from pathlib import Path

import pytest
from helpers.paths import VENV_PYTHON
from helpers.project import TINY_CNN_INPUT, local_target, tiny_cnn_paddle, write_manifest, write_target
from helpers.results import only_record
from helpers.suites import run_suites

MEMORY_ROOT = Path("/sys/fs/cgroup/memory")
# Shared libraries already in the page cache are charged to the cgroup that read them first,
# so importing paddle (VmHWM ~290 MB) charges only ~135 MB here: the limit must sit below that.
LIMIT_MIB = 64

def run_memory_suite(tmp_path: Path, zoo: Path, python: Path | str, budget: str = "4GB") -> subprocess.CompletedProcess:
    """The memory suite on tiny_cnn (``budget``: its max_memory) on a local box whose agent and
    paddle-inference run under ``python``."""
    targets = tmp_path / "targets"
    write_target(targets, local_target("box", workdir=tmp_path / "work", python=python,
                                       runtimes={"paddle-inference": python}))
    manifest = write_manifest(tmp_path / "models.yaml", {"tiny_cnn": {
        "input": TINY_CNN_INPUT, "budgets": {"*": {"max_memory": budget}}, "variants": {"fp32": tiny_cnn_paddle()}}},
        zoo=zoo)
    return run_suites(["suites/test_memory.py", "--target=box", f"--targets-dir={targets}", f"--manifest={manifest}"],
                      tmp_path, report=False, junit=False, timeout=300)


def test_peak_memory_is_split_by_phase(tmp_path: Path, demo_zoo: Path) -> None:
    done = run_memory_suite(tmp_path, demo_zoo, VENV_PYTHON)
    assert done.returncode == 0, done.stdout[-2000:]
    summary = only_record(tmp_path / "results.sqlite").summary
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
    record = only_record(tmp_path / "results.sqlite")
    assert record.status == "error" and "out of memory at runtime import" in record.meta["error"]
    assert "Traceback" not in done.stdout
