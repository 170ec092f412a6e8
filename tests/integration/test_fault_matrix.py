"""Issue 7's fault-injection matrix, on the real lab: one test per row, nothing lost.

Each test injects one fault into a device of its own small lab (prefix ``hlabf`` on
10.200.0.128/26, serialised with the other lab test modules by /tmp/harness-lab-tests.lock)
and checks what the harness does, what it keeps, and how long it took to notice. The faults
are real: the device's sshd and its sessions killed, nftables rules in the device's network
namespace, the kernel's OOM killer in the device's memory cgroup, the device's own tmpfs
filling up, SIGKILLed orchestrator processes, an interpreter on the device that breaks the
protocol. Most rows drive the suites as users do (a `pytest suites/...` subprocess against
the lab's target files, results read back from the store); rows that test_fleet_lab.py and
test_orchestrator_killed.py also check are run here on this lab through the same checks
(tests/helpers: device_lock_checks, killed_orchestrator).

Each test prints a ``fault matrix:`` line with its time to detect (run with ``-s`` to see).
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from types import MappingProxyType

import pytest
import yaml
from helpers.device_lock_checks import check_a_killed_orchestrator_leaves_no_lock, check_two_orchestrators_on_one_device
from helpers.faulty_transports import CorruptingSSHTransport
from helpers.killed_orchestrator import check_killed_run_is_intact_reportable_and_resumable
from helpers.paths import REPO
from helpers.processes import cmdline as _cmdline
from helpers.project import noop_manifest
from helpers.results import junit_cases, records
from helpers.suites import run_suites as run_pytest
from helpers.suites import shown as _shown
from helpers.suites import start_suites as start_pytest
from helpers.suites import suites_argv

from harness import lab
from harness.config.target_files import load_inventory
from harness.errors import TransportError
from harness.lab import cgroups, network
from harness.lab.devices import HOST_VENV, HOST_VENV_PYTHON, DeviceSpec, LabSpec, MiB, PythonEnv
from harness.transport.base import ContentCache, sha256_file
from harness.transport.local import MAX_LINE_BYTES
from harness.transport.ssh import KEEPALIVE_S, LINK_TIMEOUT_S, RECONNECT_BACKOFF_S, SSHTransport

pytestmark = [
    pytest.mark.usefixtures("lab_tests_lock"),  # one lab test module at a time (helpers.lab_lock)
    pytest.mark.skipif(os.geteuid() != 0, reason="the lab needs root (users, cgroups, mounts, namespaces)"),
    pytest.mark.skipif(not os.path.exists("/usr/sbin/sshd") or shutil.which("ssh") is None,
                       reason="needs OpenSSH server and client (apt-get install -y openssh-server)"),
    pytest.mark.skipif(shutil.which("nft") is None, reason="needs nftables (apt-get install -y nftables)"),
]

FAKE_PYTHON = "fake-python"  # in the lab's state dir (device users can reach it there)
FAKE_PYTHON_SCRIPT = """#!/bin/sh
# A device "interpreter" that breaks the agent protocol: the agent's job gets garbage back,
# chosen by the job's input name; everything else (the lock helper, the lab's checks) runs
# the real Python.
if [ "$1" = "-m" ] && [ "$2" = "harness_agent" ]; then
    job=$(cat)
    case "$job" in
        *'"name": "as_text"'*) echo "this is not json" ;;
        *'"name": "as_binary"'*) printf '\\377\\376 not utf-8\\n' ;;
        *'"name": "as_huge"'*) head -c 1073741824 /dev/zero | tr '\\000' x ;;
    esac
    exit 0
fi
exec {python} "$@"
"""


def _device(name: str, **changes) -> DeviceSpec:
    base = dict(kind="x86-cpu", arch="x86_64", description=f"fault-matrix device {name}", cpu_quota=1.0,
                memory_limit=512 * MiB, disk_size=64 * MiB, link_rate=None, tags=("lab", "faults"),
                python=HOST_VENV)
    return DeviceSpec(name=name, **{**base, **changes})


def fault_spec(fake_python: str) -> LabSpec:
    """The matrix's lab. ``fake_python``: where the garbage device's interpreter script is."""
    return LabSpec(
        devices=(
            _device("alpha", tags=("lab", "faults", "fleet")),
            _device("beta", tags=("lab", "faults", "fleet")),
            _device("gamma", tags=("lab", "faults", "fleet"), disk_size=24 * MiB),  # disk full
            _device("stuck", job_timeout="7s"),  # agent hang: the device's watchdog at 2 s, the host's kill at 7 s
            _device("tight", memory_limit=96 * MiB,  # Paddle Inference's import does not fit
                    runtimes=MappingProxyType({"paddle-inference": HOST_VENV})),
            # the runtime entry makes the lab bind the host venv's base interpreter in for the script
            _device("garbage", python=PythonEnv(name="fake-python", base=fake_python, venv=False),
                    runtimes=MappingProxyType({"onnxruntime": HOST_VENV})),
        ),
        prefix="hlabf",
        subnet="10.200.0.128/26",
        cgroup_parent="harness-lab-faults-test",
    )


@pytest.fixture(scope="module")
def faults(lab_tests_lock):
    """The matrix's lab, up for the module; taken down at the end with nothing left over."""
    state_dir = Path(tempfile.mkdtemp(prefix="hlabf-", dir="/tmp"))
    os.chmod(state_dir, 0o755)  # device users traverse it (authorized_keys, the fake interpreter)
    fake = state_dir / FAKE_PYTHON
    fake.write_text(FAKE_PYTHON_SCRIPT.format(python=HOST_VENV_PYTHON))
    fake.chmod(0o755)
    spec = fault_spec(str(fake))
    lines: list[str] = []
    try:
        state = lab.up(state_dir, spec, progress=lines.append, install=False)
        if state.mode != "netns":
            pytest.skip(f"the fault matrix needs network namespaces; the lab fell back: {state.mode_reason}")
        state.spec = spec
        yield state
    finally:
        try:
            lab.down(state_dir, progress=lambda line: None, spec=spec)
            assert lab.leftovers(spec, state_dir) == []
        finally:
            shutil.rmtree(state_dir, ignore_errors=True)


# ----------------------------------------------------------------------------- helpers


def report(fault: str, detected: str) -> None:
    print(f"\nfault matrix: {fault}: {detected}")


def agent_pids(device: lab.DeviceState) -> list[int]:
    """Agent processes (not lock helpers) running in the device's cgroups."""
    return [pid for pid in cgroups.pids(device.cgroups) if b"harness_agent" in _cmdline(pid).split(b"\0")]


def agent_jobs(device: lab.DeviceState) -> dict[str, list[int]]:
    """Job id -> its processes (the agent and its watchdog) running in the device's cgroups."""
    jobs: dict[str, list[int]] = {}
    for pid in agent_pids(device):
        argv = _cmdline(pid).split(b"\0")
        if b"--job-id" in argv[:-1]:
            jobs.setdefault(argv[argv.index(b"--job-id") + 1].decode(), []).append(pid)
    return jobs


def _is_agent_itself(pid: int) -> bool:
    """The job's process is the agent, not the pid-reporting wrapper (``sh -c WRAPPER sh ARGV``
    or ``setsid ARGV``) whose command line carries the job id too."""
    program = os.path.basename(_cmdline(pid).split(b"\0")[0])
    return program not in (b"sh", b"dash", b"bash", b"setsid", b"")


def wait_for(condition: Callable[[], object], what: str, timeout: float = 60, poll: float = 0.05):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = condition()
        if found:
            return found
        time.sleep(poll)
    raise AssertionError(f"timed out after {timeout:g}s waiting for {what}")


def stored(out: Path, target: str, variant: str, status: str):
    """The stored record of target x variant with that status, or None (not there yet)."""
    if not (out / "results.sqlite").exists():
        return None
    measured = records(out)[2]
    return next((m for m in measured if (m.target, m.variant, m.status) == (target, variant, status)), None)


def outcomes(out: Path) -> dict[str, tuple[float, str]]:
    """test name -> (seconds, the one-line failure as the user saw it, '' when it passed)."""
    return {name: (seconds, message.removeprefix("Failed: ")) for name, (seconds, message) in junit_cases(out).items()}


def seconds_after(recorded_at: str, wall: float) -> float:
    return datetime.fromisoformat(recorded_at).timestamp() - wall


def kill_sshd_and_sessions(state: lab.LabState, name: str) -> float:
    """The device's sshd dies with its sessions (what runs in its cgroups); returns when (epoch s)."""
    device = state.devices[name]
    lab.stop_sshd(state.state_dir, name)  # the listener: new connections are refused
    killed_at = time.time()
    cgroups.kill_all(device.cgroups)  # its sessions: open connections break, their commands die
    return killed_at


def restart(state: lab.LabState, name: str) -> None:
    """Put a device back as `up` made it: its sshd (same address, port, host key), no fault,
    nothing left running in it."""
    device = state.devices[name]
    network.clear_faults(device.link)
    lab.stop_sshd(state.state_dir, name)
    cgroups.kill_all(device.cgroups)
    lab.up(state.state_dir, state.spec, devices=[name], progress=lambda line: None, install=False)
    assert lab.reachable(device.address, device.port)


QUICK = {"warmup_iterations": 0, "warmup_duration": "0s", "min_iterations": 5, "min_duration": "0s",
         "max_duration": "60s"}


def manifest(path: Path, models: dict[str, dict[str, dict]], runtime: str = "noop", fmt: str = "none",
             files: dict[str, str] | None = None) -> Path:
    """A manifest of quick jobs: model -> {variant: extra variant keys}. Each model's input is
    named after it (the garbage device's interpreter reads that name from the job)."""
    document = {"version": 1, "defaults": {"latency": QUICK}, "models": {
        model: {"input": {"name": model, "shape": [1], "dtype": "float32"},
                "variants": {variant: {"kind": "fp32", "format": fmt, "runtime": runtime, "files": files or {},
                                       **extra} for variant, extra in variants.items()}}
        for model, variants in models.items()}}
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    return path


# ----------------------------------------------------------------------------- 1. sshd killed

LONGER = {"latency": {"warmup_duration": "2.5s"}}  # the job the fault hits: long enough to catch it in


def test_sshd_killed_mid_measurement_fails_that_test_the_fleet_carries_on_nothing_measured_is_lost(
        faults, tmp_path) -> None:
    fleet = ("alpha", "beta", "gamma")
    models = manifest(tmp_path / "models.yaml", {"m": {"v0": {}, "v1": LONGER, "v2": {}}})
    out = tmp_path / "out"
    beta = faults.devices["beta"]
    killed: dict[str, float] = {}

    def kill_when_beta_measures_v1() -> None:
        wait_for(lambda: stored(out, "beta", "v0", "ok"), "beta's first measurement in the store", timeout=180)
        wait_for(lambda: agent_pids(beta), "beta's second job on the device", timeout=60, poll=0.02)
        time.sleep(0.5)  # into its warm-up
        killed["at"] = kill_sshd_and_sessions(faults, "beta")

    killer = threading.Thread(target=kill_when_beta_measures_v1, daemon=True)
    killer.start()
    try:
        done = run_pytest(["suites/test_latency.py", f"--target={','.join(fleet)}",
                           f"--targets-dir={faults.targets_dir}", f"--manifest={models}"], out, timeout=300)
        killer.join(timeout=10)
    finally:
        restart(faults, "beta")
    assert "at" in killed, _shown(done)
    cases = outcomes(out)
    lost = cases["test_latency[beta-m-v1]"][1]
    assert re.fullmatch(r"connection lost to beta during the job's (warmup|first-inference|load|import) phase "
                        r"\(`\S+ -m harness_agent --job-id \w+`\)", lost), lost
    gone = cases["test_latency[beta-m-v2]"][1]
    assert re.fullmatch(rf"beta: unreachable: {re.escape(beta.address)}:22 \(connection refused: .*\); "
                        r"gave up after 3 reconnect attempts in \d+\.\ds", gone), gone
    for attempt, delay in enumerate(RECONNECT_BACKOFF_S, 1):
        assert f"harness: beta: connection lost; reconnecting in {delay:g}s (attempt {attempt}/3)" in done.stdout, \
            _shown(done)
    assert "Traceback" not in done.stdout and done.returncode == 1, _shown(done)
    # the other devices carried on; everything measured before the kill is in the store
    assert all(message == "" for name, (_, message) in cases.items() if "beta" not in name), cases
    _, runs, measured = records(out)
    ok = sorted((m.target, m.variant) for m in measured if m.status == "ok")
    assert ok == sorted([(t, v) for t in fleet for v in ("v0", "v1", "v2") if t != "beta"] + [("beta", "v0")])
    # both of beta's failures are stored: the measurement cut off, and the one it never reached
    errors = {m.variant: m for m in measured if m.status == "error"}
    assert sorted(errors) == ["v1", "v2"] and {m.target for m in errors.values()} == {"beta"}, errors
    error = errors["v1"]
    assert error.meta["error"] == lost and errors["v2"].meta["error"] == gone, errors
    assert len(runs) == 1 and runs[0].status == "complete"
    detect = seconds_after(error.recorded_at, killed["at"])
    assert 0 <= detect < 5, f"the loss was recorded {detect:.2f}s after the kill"
    give_up = cases["test_latency[beta-m-v2]"][0]
    report("sshd killed mid-measurement", f"connection lost recorded {detect:.3f}s after the kill; the next test "
           f"gave up reconnecting after {give_up:.1f}s; {len(ok)} ok records kept")


def test_a_device_whose_sshd_comes_back_is_reconnected_relocked_and_measured_on(faults, tmp_path) -> None:
    models = manifest(tmp_path / "models.yaml", {"m": {"v0": {}, "v1": LONGER, "v2": {}, "v3": {}}})
    out = tmp_path / "out"
    beta = faults.devices["beta"]
    killed: dict[str, float] = {}

    def kill_then_restart() -> None:
        wait_for(lambda: stored(out, "beta", "v0", "ok"), "beta's first measurement in the store", timeout=180)
        wait_for(lambda: agent_pids(beta), "beta's second job on the device", timeout=60, poll=0.02)
        time.sleep(0.5)
        killed["at"] = kill_sshd_and_sessions(faults, "beta")
        restart(faults, "beta")  # well inside the reconnect series (0.5 + 1 + 2 s)
        killed["back"] = time.time()

    killer = threading.Thread(target=kill_then_restart, daemon=True)
    killer.start()
    try:
        done = run_pytest(["suites/test_latency.py", "--target=beta", f"--targets-dir={faults.targets_dir}",
                           f"--manifest={models}"], out, timeout=300)
        killer.join(timeout=30)
    finally:
        if not lab.reachable(beta.address, beta.port):
            restart(faults, "beta")
    assert "back" in killed, _shown(done)
    cases = outcomes(out)
    assert cases["test_latency[beta-m-v1]"][1].startswith("connection lost to beta during the job's"), cases
    assert cases["test_latency[beta-m-v2]"][1] == cases["test_latency[beta-m-v3]"][1] == "", _shown(done)
    assert "harness: beta: connection lost; reconnecting in 0.5s (attempt 1/3)" in done.stdout, _shown(done)
    reconnected = re.search(r"harness: beta: reconnected \(attempt (\d)/3\)", done.stdout)
    assert reconnected, _shown(done)
    assert "harness: beta: the device lock was lost with the connection; taking it again" in done.stdout
    measured = records(out)[2]
    assert sorted((m.variant, m.status) for m in measured) == [("v0", "ok"), ("v1", "error"), ("v2", "ok"),
                                                                ("v3", "ok")]
    v2 = next(m for m in measured if m.variant == "v2")
    assert seconds_after(v2.recorded_at, killed["back"]) > 0  # measured on the restarted device
    report("sshd killed, then back", f"reconnected on attempt {reconnected.group(1)}/3 "
           f"{seconds_after(v2.recorded_at, killed['at']):.1f}s after the kill (sshd back after "
           f"{killed['back'] - killed['at']:.1f}s), lock retaken, the run measured on")


# ----------------------------------------------------------------------------- 2. unreachable


def test_a_device_blackholed_from_the_start_fails_within_its_connect_timeout(faults, tmp_path) -> None:
    gamma = faults.devices["gamma"]
    targets = tmp_path / "targets"
    targets.mkdir()
    for name in ("alpha", "gamma"):
        document = yaml.safe_load(Path(faults.targets_dir, f"{name}.yaml").read_text())
        document["connection"]["connect_timeout"] = "3s"
        (targets / f"{name}.yaml").write_text(yaml.safe_dump(document))
    out = tmp_path / "out"
    network.blackhole(gamma.link)
    try:
        done = run_pytest(["suites/test_latency.py", "--target=gamma,alpha", f"--targets-dir={targets}",
                           f"--manifest={noop_manifest(tmp_path / 'noop.yaml')}"], out, timeout=120)
        dropped = network.dropped(gamma.link)
    finally:
        network.clear_faults(gamma.link)
    assert dropped > 0  # the connection attempt met the blackhole
    cases = outcomes(out)
    seconds, message = cases["test_latency[gamma-noop-v0]"]
    assert message.startswith(f"gamma: unreachable: {gamma.address}:22 (no answer within 3s"), _shown(done)
    assert 3 <= seconds < 5, f"a blackholed device's test took {seconds:.1f}s with a 3 s connect timeout"
    assert cases["test_latency[alpha-noop-v0]"][1] == "", cases
    # the unreachable device's error row is stored beside alpha's measurement
    stored_rows = {(m.target, m.status): m for m in records(out)[2]}
    assert sorted(stored_rows) == [("alpha", "ok"), ("gamma", "error")], _shown(done)
    assert stored_rows[("gamma", "error")].meta["error"] == message
    report("device blackholed from the start", f"unreachable after {seconds:.2f}s (connect timeout 3 s)")


# ----------------------------------------------------------------------------- 3. agent hangs


def test_a_hung_agent_is_killed_at_the_job_timeout_on_the_device_and_on_the_host(faults, tmp_path) -> None:
    stuck = faults.devices["stuck"]
    hang = {"runtime_options": {"sleep_us": 1_000_000_000}}  # 1000 s per inference: a runtime that never returns
    models = manifest(tmp_path / "models.yaml", {"hang": {"watchdog": hang, "frozen": hang}})
    out = tmp_path / "out"
    frozen: dict[str, float] = {}

    def freeze_the_second_agent() -> None:
        """SIGSTOP the second job's agent and its watchdog (one process group): only the
        host's timeout can end it now. Jobs are told apart by the job id on their command
        line: the first job's agent may still be dying when the second one starts."""
        first = wait_for(lambda: agent_jobs(stuck), "the first job's agent", timeout=120, poll=0.02)
        (first_job,) = first
        wait_for(lambda: stored(out, "stuck", "watchdog", "error"), "the first job's timeout", timeout=120)
        # only once the wrapper shell has reported the pid and exec'd the agent: a wrapper frozen
        # before that leaves the host no pid to kill (it then waits out its 5 s kill grace)
        second = wait_for(lambda: {job: pids for job, pids in agent_jobs(stuck).items()
                                   if job != first_job and all(_is_agent_itself(pid) for pid in pids)},
                          "the second job's agent", timeout=60, poll=0.02)
        (pids,) = second.values()
        wait_for(lambda: first_job not in agent_jobs(stuck), "the first job's agent to be gone", timeout=10,
                 poll=0.02)
        (group,) = {os.getpgid(pid) for pid in pids}
        os.killpg(group, signal.SIGSTOP)
        frozen["at"] = time.time()

    freezer = threading.Thread(target=freeze_the_second_agent, daemon=True)
    freezer.start()
    done = run_pytest(["suites/test_latency.py", "--target=stuck", f"--targets-dir={faults.targets_dir}",
                       f"--manifest={models}"], out, timeout=180)
    freezer.join(timeout=10)
    assert "at" in frozen, _shown(done)
    cases = outcomes(out)
    device_seconds, device_kill = cases["test_latency[stuck-hang-watchdog]"]
    host_seconds, host_kill = cases["test_latency[stuck-hang-frozen]"]
    assert device_kill.startswith("stuck: timeout: job exceeded its 2s timeout on the device during "
                                  "first-inference; the agent was killed"), device_kill
    assert re.match(r"stuck: timeout: job did not finish within 7s \(during [\w-]+\); the agent was killed",
                    host_kill), host_kill
    assert device_seconds < 7 and 7 <= host_seconds < 12, \
        f"watchdog test {device_seconds:.2f}s, frozen test {host_seconds:.2f}s (load average "\
        f"{os.getloadavg()[0]:.1f}); frozen at {frozen['at']:.3f}\n{_shown(done)}"
    assert {(m.variant, m.status) for m in records(out)[2]} == {("watchdog", "error"), ("frozen", "error")}
    # nothing of either job is left on the device: only its sshd
    assert_only_sshd_left(stuck)
    report("agent hangs", f"device watchdog: test failed after {device_seconds:.2f}s (device timeout 2 s); frozen "
           f"agent: host killed it, test failed after {host_seconds:.2f}s (host timeout 7 s); no process left")


def _is_sshd(pid: int) -> bool:
    try:
        return os.readlink(f"/proc/{pid}/exe") == "/usr/sbin/sshd"
    except OSError:
        return True  # gone meanwhile


def assert_only_sshd_left(device: lab.DeviceState, timeout: float = 10) -> None:
    """Within `timeout`, the device's cgroups hold its sshd processes and nothing else."""
    deadline = time.monotonic() + timeout
    while True:
        left = {pid: _cmdline(pid) for pid in cgroups.pids(device.cgroups) if not _is_sshd(pid)}
        if not left or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert not left, f"processes left on {device.name}: {left}"
    assert cgroups.pids(device.cgroups), f"{device.name}'s sshd should still run"


# ----------------------------------------------------------------------------- 4. out of memory


def test_a_job_over_the_devices_memory_limit_gets_an_out_of_memory_verdict(faults, tmp_path) -> None:
    tight = faults.devices["tight"]
    for name in ("inference.pdmodel", "inference.pdiparams"):  # never loaded: the import does not fit
        (tmp_path / name).write_bytes(b"not a model")
    models = manifest(tmp_path / "models.yaml", {"big": {"fp32": {}}}, runtime="paddle-inference", fmt="paddle",
                      files={"model": str(tmp_path / "inference.pdmodel"),
                             "params": str(tmp_path / "inference.pdiparams")})
    before = cgroups.usage(tight.cgroups).oom_kills
    done = run_pytest(["suites/test_latency.py", "--target=tight", f"--targets-dir={faults.targets_dir}",
                       f"--manifest={models}"], tmp_path / "out", timeout=120)
    seconds, message = outcomes(tmp_path / "out")["test_latency[tight-big-fp32]"]
    pattern = (r"tight: out-of-memory: out of memory at (runtime import|model load|inference) \(memory limit 96 MiB\): "
               r"the agent was killed by the kernel's OOM killer")
    assert re.fullmatch(pattern, message), _shown(done)
    (record,) = records(tmp_path / "out")[2]
    assert record.status == "error" and record.meta["error"] == message
    assert cgroups.usage(tight.cgroups).oom_kills > before  # the kernel's OOM killer did it
    assert lab.reachable(tight.address, tight.port)  # the device itself survives
    report("agent killed for memory", f"out-of-memory verdict, test failed after {seconds:.2f}s")


# ----------------------------------------------------------------------------- 5. upload / disk


def test_a_corrupted_upload_and_a_full_disk_are_named_and_do_not_poison_the_cache(faults, tmp_path) -> None:
    gamma = faults.devices["gamma"]
    target = load_inventory(faults.targets_dir).targets["gamma"]
    cache_dir = Path(gamma.home, "harness-work", "cache")
    # corrupted on the way: the device's hash disagrees
    weights = tmp_path / "weights.bin"
    weights.write_bytes(os.urandom(200_003))
    corrupting = CorruptingSSHTransport(target, known_hosts_path=Path(faults.known_hosts))
    started = time.monotonic()
    try:
        with pytest.raises(TransportError) as corrupted:
            ContentCache(corrupting).push_file(weights)
    finally:
        corrupting.close()
    corrupt_seconds = time.monotonic() - started
    assert str(corrupted.value).startswith("gamma: upload of weights.bin corrupted"), corrupted.value
    assert sha256_file(weights)[:12] in str(corrupted.value)
    # bigger than the device's disk (its own 24 MiB tmpfs)
    big = tmp_path / "model.pdiparams"
    big.write_bytes(b"\x01" * (32 * MiB))
    transport = SSHTransport(target, known_hosts_path=Path(faults.known_hosts))
    try:
        cache = ContentCache(transport)
        started = time.monotonic()
        with pytest.raises(TransportError) as full:
            cache.push_file(big)
        full_seconds = time.monotonic() - started
        message = str(full.value)
        assert re.match(rf"gamma: no space left on gamma:{re.escape(str(cache_dir))}/\S+ \([\d.]+ MiB free, "
                        r"32.0 MiB needed\)", message), message
        assert not [p for p in cache_dir.rglob("*") if p.is_file()], "a partial or corrupt file was left in the cache"
        # the cache still works and serves what is pushed next
        weights_remote = cache.push_file(weights)
        assert Path(weights_remote).read_bytes() == weights.read_bytes()
    finally:
        transport.close()
    report("corrupted upload / disk full", f"hash mismatch after {corrupt_seconds:.2f}s; no space left after "
           f"{full_seconds:.2f}s; cache clean")


# ----------------------------------------------------------------------------- 6. orchestrator killed


def test_an_orchestrator_killed_mid_run_leaves_a_reportable_resumable_run(faults, tmp_path) -> None:
    stored_before_kill = check_killed_run_is_intact_reportable_and_resumable(tmp_path, "alpha",
                                                                            Path(faults.targets_dir))
    report("orchestrator SIGKILLed mid-run", f"{stored_before_kill} stored cases kept, report marked incomplete, "
           "--resume measured the rest (nothing to detect: the next run finds the run 'running')")


# ----------------------------------------------------------------------------- 7. lock


def test_two_orchestrators_on_one_device_wait_or_give_up_naming_the_holder(faults, tmp_path) -> None:
    wall = check_two_orchestrators_on_one_device(faults, "gamma", tmp_path, warmup="12s")
    report("two orchestrators on one device", f"the second gave up after its 1 s lock wait ({wall:.1f}s wall, "
           "pytest start-up included), naming the holder; the third waited and measured after it")


def test_an_orchestrator_sigkilled_while_holding_the_lock_does_not_block_the_next_run(faults, tmp_path) -> None:
    wall = check_a_killed_orchestrator_leaves_no_lock(faults, "beta", tmp_path)
    report("orchestrator SIGKILLed holding the lock", f"the next run got the lock at once ({wall:.1f}s wall for "
           "the whole next run)")


# ----------------------------------------------------------------------------- 9. flaky link


def test_a_lossy_link_still_completes_the_run(faults, tmp_path) -> None:
    alpha = faults.devices["alpha"]
    out = tmp_path / "out"
    network.set_loss(alpha.link, 15)
    try:
        assert "numgen random mod 100 < 15 counter" in network.faults(alpha.link)
        done = run_pytest(["suites/test_latency.py", "--target=alpha", f"--targets-dir={faults.targets_dir}",
                           f"--manifest={noop_manifest(tmp_path / 'noop.yaml', variants=3, duration='0.2s')}"],
                          out, timeout=300)
        dropped = network.dropped(alpha.link)
    finally:
        network.clear_faults(alpha.link)
    assert dropped > 0, "the lossy link dropped nothing: the run proves nothing"
    assert done.returncode == 0, _shown(done)
    measured = records(out)[2]
    assert sorted(m.variant for m in measured if m.status == "ok") == ["v0", "v1", "v2"], _shown(done)
    seconds = sum(seconds for seconds, _ in outcomes(out).values())
    report("flaky link (15% loss)", f"{dropped} packets dropped on the way to the device; run completed, 3/3 "
           f"stored, tests took {seconds:.1f}s")


def test_a_link_that_dies_mid_run_fails_with_a_clear_reason_in_bounded_time(faults, tmp_path) -> None:
    """All packets to the device dropped during a silent job: that test fails once the keepalive
    goes unanswered for LINK_TIMEOUT_S. The link then comes back: the same run reconnects, kills
    what the lost connection left running on the device (the agent and the lock helper, which
    the device's sshd never learnt were orphaned), takes the lock again and measures on."""
    alpha = faults.devices["alpha"]
    out = tmp_path / "out"
    models = manifest(tmp_path / "models.yaml", {"m": {"v": {"latency": {"warmup_duration": "120s"}}, "w": {}}})
    times: dict[str, float] = {}

    def heal_once_noticed() -> None:
        wait_for(lambda: stored(out, "alpha", "v", "error"), "the lost connection in the store",
                 timeout=KEEPALIVE_S + LINK_TIMEOUT_S + 60)
        times["dropped"] = network.dropped(alpha.link)
        network.clear_faults(alpha.link)
        times["healed"] = time.time()

    run = start_pytest(["suites/test_latency.py", "--target=alpha", f"--targets-dir={faults.targets_dir}",
                        f"--manifest={models}"], out)
    try:
        (orphans,) = wait_for(lambda: agent_jobs(alpha), "the job on alpha", timeout=120).values()
        time.sleep(1.0)  # into its (silent) warm-up
        network.set_loss(alpha.link, 100)
        times["cut"] = time.time()
        healer = threading.Thread(target=heal_once_noticed, daemon=True)
        healer.start()
        stdout, stderr = run.communicate(timeout=KEEPALIVE_S + LINK_TIMEOUT_S + 90)
        healer.join(timeout=10)
        assert_only_sshd_left(alpha, timeout=5)  # the orphans were killed by the run itself
    finally:
        if run.poll() is None:
            run.kill()
            run.communicate()
        restart(faults, "alpha")
    lost = stored(out, "alpha", "v", "error")
    assert lost is not None, stdout + stderr
    assert re.fullmatch(r"connection lost to alpha during the job's warmup phase \(`\S+ -m harness_agent --job-id \w+`\)",
                        lost.meta["error"]), lost.meta["error"]
    assert f"\n{lost.meta['error']}\n" in stdout, stdout  # the test's one line
    assert stored(out, "alpha", "w", "ok") is not None and run.returncode == 1, stdout + stderr
    assert "harness: alpha: the device lock was lost with the connection; taking it again" in stdout + stderr
    assert re.search(r"harness: alpha: reconnected \(attempt \d/3\)", stdout + stderr), stdout + stderr
    assert not set(orphans) & cgroups.pids(alpha.cgroups)
    assert times["dropped"] > 0  # the keepalives (at least) met the dead link
    detect = seconds_after(lost.recorded_at, times["cut"])
    bound = KEEPALIVE_S + LINK_TIMEOUT_S + 5
    assert detect < bound, f"a dead link took {detect:.1f}s to notice (bound {bound}s)"
    report("link dead mid-run (100% loss)", f"connection lost recorded {detect:.1f}s after the cut (keepalive "
           f"{KEEPALIVE_S}s + TCP_USER_TIMEOUT {LINK_TIMEOUT_S}s); link back: reconnected, orphans killed, "
           f"next case measured")


# ----------------------------------------------------------------------------- 10. bad output


def test_device_output_that_is_not_json_not_utf8_or_huge_is_a_protocol_error_naming_the_target(
        faults, tmp_path) -> None:
    models = manifest(tmp_path / "models.yaml", {"as_text": {"v": {}}, "as_binary": {"v": {}}, "as_huge": {"v": {}}})
    out = tmp_path / "out"
    done, peak_rss = run_measuring_memory(
        ["suites/test_latency.py", "--target=garbage", f"--targets-dir={faults.targets_dir}",
         f"--manifest={models}"], out)
    cases = outcomes(out)
    assert cases["test_latency[garbage-as_text-v]"][1] == (
        "garbage: protocol: agent output is not protocol JSON: 'this is not json' (something on the device "
        "writes to stdout?)"), _shown(done)
    assert cases["test_latency[garbage-as_binary-v]"][1] == (
        r"garbage: protocol: agent output is not UTF-8: b'\xff\xfe not utf-8'"), _shown(done)
    huge_seconds, huge = cases["test_latency[garbage-as_huge-v]"]
    assert huge == f"garbage: a protocol line exceeded {MAX_LINE_BYTES >> 20} MiB", _shown(done)
    assert {(m.model, m.status) for m in records(out)[2]} == {
        ("as_text", "error"), ("as_binary", "error"), ("as_huge", "error")}
    # the orchestrator kept at most about one line's limit of it in memory, not the gigabyte
    assert peak_rss < MAX_LINE_BYTES * 4, f"orchestrator peak RSS {peak_rss / MiB:.0f} MiB"
    assert_only_sshd_left(faults.devices["garbage"])  # the endless stream was stopped on the device
    report("device output not JSON / not UTF-8 / huge", f"protocol errors at once; the 1 GiB line stopped after "
           f"{huge_seconds:.2f}s at the {MAX_LINE_BYTES >> 20} MiB limit; orchestrator peak RSS "
           f"{peak_rss / MiB:.0f} MiB")


# Forks and execs the command from a fresh, small interpreter and writes the child's peak RSS
# (KiB) to argv[1]. os.wait4 straight from this pytest process would not do: Linux carries
# the RSS a child had before exec (a copy of this process, paddle and all: ~680 MiB in a
# full test run) into the ru_maxrss that wait4 reports.
PEAK_RSS_WRAPPER = """
import os, sys
pid = os.fork()
if pid == 0:
    os.execv(sys.argv[2], sys.argv[2:])
_, status, usage = os.wait4(pid, 0)
with open(sys.argv[1], "w") as out:
    out.write(str(usage.ru_maxrss))
sys.exit(os.waitstatus_to_exitcode(status))
"""


def run_measuring_memory(args: list[str], out: Path) -> tuple[subprocess.CompletedProcess, int]:
    """Like `run_pytest`, plus the pytest process's own peak RSS in bytes."""
    argv = suites_argv(args, out)
    peak_file = out / "peak-rss-kib"
    done = subprocess.run([sys.executable, "-c", PEAK_RSS_WRAPPER, str(peak_file), *argv], cwd=REPO,
                          capture_output=True, text=True, timeout=600)
    return done, int(peak_file.read_text()) * 1024  # KiB on Linux
