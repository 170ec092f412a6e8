"""The device lock, checked through the suites on a lab device: two orchestrators at once,
and a holder SIGKILLed mid-job. test_fleet_lab.py runs these on its fleet lab and
test_fault_matrix.py on its fault lab (each with its own timing), so they live here."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import time
from pathlib import Path

from harness import lab
from harness.lab import cgroups
from helpers.processes import cmdline
from helpers.project import noop_manifest
from helpers.results import records
from helpers.suites import run_suites, shown, start_suites


def holder(device: lab.DeviceState) -> dict:
    """The lock holder's info file on the device ({} while nobody holds the lock)."""
    try:
        return json.loads(Path(device.home, "harness-work", "device.lock.info").read_text())
    except (OSError, ValueError):
        return {}


def wait_for_holder(device: lab.DeviceState, process: subprocess.Popen[str], timeout: float = 120) -> dict:
    """Polls until ``process`` holds the device's lock; its holder info."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = holder(device)
        if found.get("pid") == process.pid:
            return found
        if process.poll() is not None:
            out, err = process.communicate()
            raise AssertionError(f"the first orchestrator ended before it held the lock: {out[-2000:]} {err[-1000:]}")
        time.sleep(0.1)
    raise AssertionError(f"the first orchestrator did not take the lock within {timeout}s")


def check_two_orchestrators_on_one_device(state: lab.LabState, name: str, tmp_path: Path,
                                          warmup: str = "15s") -> float:
    """A second orchestrator with a 1 s lock wait gives up naming the holder, its one test
    failing with an error row; a third waits and measures after it. Returns the impatient
    one's wall time (pytest start-up included). ``warmup``: how long the holder's job runs
    (long enough for both others to start)."""
    device = state.devices[name]
    common = ["suites/test_latency.py", f"--target={name}", f"--targets-dir={state.targets_dir}"]
    slow = noop_manifest(tmp_path / "slow.yaml", warmup=warmup)
    quick = noop_manifest(tmp_path / "quick.yaml")
    first = start_suites([*common, f"--manifest={slow}"], tmp_path / "first")
    impatient = patient = None
    try:
        held = wait_for_holder(device, first)
        started = time.monotonic()
        impatient = start_suites([*common, f"--manifest={quick}", "--lock-timeout=1s"], tmp_path / "impatient")
        patient = start_suites([*common, f"--manifest={quick}", "--lock-timeout=300s"], tmp_path / "patient")
        out, err = impatient.communicate(timeout=120)
        gave_up = time.monotonic() - started
        assert impatient.returncode == 1, out + err
        busy = re.search(rf"{re.escape(name)}: device busy: lock held by (\S+) pid (\d+) run (\S+) since (\S+); "
                         r"gave up after 1s", out)
        assert busy, out
        assert (busy.group(1), int(busy.group(2))) == (socket.gethostname(), first.pid)
        assert busy.group(3) == held["run"] and busy.group(4) == held["since"]
        first_out, first_err = first.communicate(timeout=300)
        assert first.returncode == 0, first_out + first_err
        patient_out, patient_err = patient.communicate(timeout=300)
        assert patient.returncode == 0, patient_out + patient_err
        waiting = f"{name}: waiting for the device lock held by {socket.gethostname()} pid {first.pid}"
        assert waiting in patient_out + patient_err, patient_out + patient_err
    finally:
        for process in (first, impatient, patient):
            if process is not None and process.poll() is None:
                process.kill()
                process.communicate()
    (first_record,) = records(tmp_path / "first")[2]
    (patient_record,) = records(tmp_path / "patient")[2]
    # the refusal is on record: the impatient run's one test is an error row naming the holder,
    # not a run that stored nothing (which is also what a run that never got going leaves)
    (refused,) = records(tmp_path / "impatient")[2]
    assert refused.status == "error" and f"{name}: device busy: lock held by" in refused.meta["error"], refused.meta
    assert first_record.status == patient_record.status == "ok"
    assert patient_record.recorded_at > first_record.recorded_at  # it measured after the holder
    return gave_up


def check_a_killed_orchestrator_leaves_no_lock(state: lab.LabState, name: str, tmp_path: Path) -> float:
    """SIGKILL an orchestrator holding the device's lock mid-job: the next run gets the lock
    at once, and nothing of the killed run keeps running on the device. Returns the next
    run's wall time (seconds)."""
    device = state.devices[name]
    common = ["suites/test_latency.py", f"--target={name}", f"--targets-dir={state.targets_dir}"]
    doomed = start_suites([*common, f"--manifest={noop_manifest(tmp_path / 'long.yaml', warmup='4s')}"],
                          tmp_path / "doomed")
    try:
        wait_for_holder(device, doomed)
        time.sleep(1.0)  # into its job
        os.kill(doomed.pid, signal.SIGKILL)
        doomed.communicate(timeout=30)
    finally:
        if doomed.poll() is None:
            doomed.kill()
    started = time.monotonic()
    done = run_suites([*common, f"--manifest={noop_manifest(tmp_path / 'quick.yaml')}", "--lock-timeout=120s"],
                      tmp_path / "next")
    waited = time.monotonic() - started
    assert done.returncode == 0, shown(done)
    assert "device busy" not in done.stdout
    (record,) = records(tmp_path / "next")[2]
    assert record.status == "ok"
    # nothing of the killed run keeps running on the device (its agent ends when its output breaks)
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        left = [pid for pid in cgroups.pids(device.cgroups) if b"harness_agent" in cmdline(pid)]
        if not left:
            break
        time.sleep(0.2)
    assert not left, [cmdline(pid) for pid in left]
    print(f"\nnext run after a SIGKILLed holder: {waited:.1f}s in all")
    return waited
