"""An agent that never finishes is killed at the job timeout on the device (its watchdog
names the phase) and on the host, and leaves no process behind."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import pytest

from harness.config.manifest import load_manifest
from harness.config.target_files import load_target
from harness.errors import AgentError
from harness.records import RunInfo
from harness.run.device import Device
from harness.run.measure import measure_latency
from harness.store import open_store

TARGET = """
name: box
kind: x86-cpu
arch: x86_64
connection: {{transport: local}}
workdir: {workdir}
python: {python}
limits: {{job_timeout: 7s}}
"""

MANIFEST = """
version: 1
models:
  stuck:
    input: {name: x, shape: [1], dtype: float32}
    variants:
      v:
        kind: fp32
        format: none
        runtime: noop
        files: {}
        runtime_options: {sleep_us: 30000000}   # 30 s per inference: a runtime that hangs
"""


def test_hung_runtime_is_killed_on_the_device_with_its_phase(tmp_path: Path) -> None:
    (tmp_path / "box.yaml").write_text(TARGET.format(workdir=tmp_path / "work", python=sys.executable))
    (tmp_path / "models.yaml").write_text(MANIFEST)
    device = Device(load_target(tmp_path / "box.yaml"))
    (variant,) = load_manifest(tmp_path / "models.yaml").variants
    store = open_store(tmp_path / "r.sqlite")
    store.create_run(RunInfo(id="r", label=None, started_at="", host="", harness_version=""))
    started = time.monotonic()
    with pytest.raises(AgentError) as failure:
        measure_latency(device, variant, store, "r")
    elapsed = time.monotonic() - started
    assert failure.value.kind == "timeout", failure.value
    assert "box: timeout: job exceeded its 2s timeout on the device during first-inference" in str(failure.value)
    assert elapsed < 7, f"the device-side watchdog (2 s) should fire before the host's 7 s: {elapsed:.1f}s"
    (record,) = store.measurements("r")
    assert record.status == "error" and "timeout" in record.meta["error"]
    agents = [pid for pid in os.listdir("/proc") if pid.isdigit() and _is_agent_in(Path(f"/proc/{pid}"), tmp_path)]
    assert agents == [], f"agent processes left behind: {agents}"


def _is_agent_in(proc: Path, workdir: Path) -> bool:
    try:
        return str(workdir / "work") in os.readlink(proc / "cwd") and b"harness_agent" in (proc / "cmdline").read_bytes()
    except OSError:
        return False
