"""An agent that never finishes is killed at the job timeout on the device (its watchdog
names the phase) and on the host, and leaves no process behind."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import pytest
from helpers.project import NOOP_INPUT, local_target, noop_variant, write_manifest, write_target
from helpers.records import run_info

from harness.config.manifest import load_manifest
from harness.config.target_files import load_target
from harness.errors import AgentError
from harness.run.device import Device
from harness.run.measure import measure_latency
from harness.store import open_store


def test_hung_runtime_is_killed_on_the_device_with_its_phase(tmp_path: Path) -> None:
    target = write_target(tmp_path, local_target("box", workdir=tmp_path / "work", python=sys.executable,
                                                 limits={"job_timeout": "7s"}))
    # 30 s per inference: a runtime that hangs
    stuck = noop_variant(files={}, runtime_options={"sleep_us": 30_000_000})
    manifest = write_manifest(tmp_path / "models.yaml", {"stuck": {"input": NOOP_INPUT, "variants": {"v": stuck}}})
    device = Device(load_target(target))
    (variant,) = load_manifest(manifest).variants
    store = open_store(tmp_path / "r.sqlite")
    store.create_run(run_info("r", label=None))
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
