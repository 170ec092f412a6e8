"""The simulated device lab, for real: OpenSSH servers in network namespaces, cgroup-shaped.

A small lab (the default lab's `jetson-nano` and `slow-link`, under the test prefix ``hlabt``
on 10.200.0.128/25 so it can run beside a user's `harness lab up`) is brought up once for
the module and always taken down. The Python 3.6 image is used with onnxruntime only if it
is already cached (`test_py36_onnxruntime_image`, marked slow, builds it). The last test takes
the lab down and checks that nothing of it is left.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
from helpers.project import noop_manifest
from helpers.suites import run_suites

from harness import lab
from harness.config.target_files import load_inventory
from harness.lab import cgroups, network
from harness.lab.cli import add_lab_commands
from harness.lab.devices import DEFAULT_LAB, PY36_ORT, GiB, LabSpec
from harness.lab.images import build_env, cached_env

REPO = Path(__file__).resolve().parents[2]

pytestmark = [
    pytest.mark.usefixtures("lab_tests_lock"),  # one lab test module at a time: fixed names and addresses
    pytest.mark.skipif(os.geteuid() != 0, reason="the lab needs root (users, cgroups, mounts, namespaces)"),
    pytest.mark.skipif(not os.path.exists("/usr/sbin/sshd") or shutil.which("ssh") is None,
                       reason="needs OpenSSH server and client (apt-get install -y openssh-server)"),
]

TEST_SPEC = LabSpec(
    devices=tuple(d for d in DEFAULT_LAB.devices if d.name in ("jetson-nano", "slow-link")),
    prefix="hlabt",
    subnet="10.200.0.128/25",
    cgroup_parent="harness-lab-test",
)
BUSY_LOOP = (
    "import time\n"
    "w = time.time(); c = time.process_time()\n"
    "while time.time() - w < 2: pass\n"
    "print(round((time.process_time() - c) / (time.time() - w), 3))\n"
)


def _state_dir(name: str) -> Path:
    """A state dir device users can traverse (sshd reads AuthorizedKeysFile as the user;
    pytest's tmp dirs are 0700)."""
    path = Path(tempfile.mkdtemp(prefix=f"{name}-", dir="/tmp"))
    os.chmod(path, 0o755)
    return path


@pytest.fixture(scope="module")
def lab_up(lab_tests_lock):
    state_dir = _state_dir("hlabt")
    lines: list[str] = []
    started = time.monotonic()
    try:
        state = lab.up(state_dir, TEST_SPEC, progress=lines.append, install=False)
        yield state, lines, time.monotonic() - started
    finally:
        try:
            lab.down(state_dir, progress=lambda line: None)
        finally:
            shutil.rmtree(state_dir, ignore_errors=True)


def ssh(state: lab.LabState, device: str, command: str, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run(["ssh", "-F", state.ssh_config, state.devices[device].ssh_alias, command],
                          capture_output=True, text=True, timeout=timeout)


def _netns_only(state: lab.LabState) -> None:
    if state.mode != "netns":
        pytest.skip(f"lab fell back to {state.mode} mode: {state.mode_reason}")


# ----------------------------------------------------------------------------- the spec


def test_default_lab_declares_the_three_devices() -> None:
    devices = {d.name: d for d in DEFAULT_LAB.devices}
    assert list(devices) == ["jetson-nano", "edge-cpu", "slow-link"]
    nano = devices["jetson-nano"]
    assert (nano.kind, nano.arch, nano.cpu_quota, nano.memory_limit) == ("jetson", "x86_64", 0.5, 2 * GiB)
    assert nano.python.base == "pyenv:3.6.15" and "onnxruntime==1.10.0" in nano.python.packages
    assert dict(nano.runtimes) == {"onnxruntime": nano.python} and nano.power_sensor == "ina3221"
    edge = devices["edge-cpu"]
    assert (edge.kind, edge.cpu_quota, edge.memory_limit) == ("x86-cpu", 1.0, 1 * GiB)
    assert edge.runtimes["paddle-inference"].base == str(REPO / ".venv" / "bin" / "python")
    assert devices["slow-link"].link_rate == "20mbit"
    assert all(d.link_rate is None for d in (nano, edge))


# ----------------------------------------------------------------------------- up


def test_up_reports_each_step_and_writes_loadable_targets(lab_up) -> None:
    state, lines, seconds = lab_up
    for name in ("jetson-nano", "slow-link"):
        for step in ("[1/5] image", "[2/5] user", "[3/5] cgroups", "[4/5] network", "[5/5] sshd"):
            assert any(line.startswith(f"lab: {name} {step}") for line in lines), (name, step, lines)
    assert any(line.startswith("lab: up in") for line in lines)
    if state.mode != "netns":
        assert any("FALLBACK" in line for line in lines)
    assert seconds < 60

    inventory = load_inventory(state.targets_dir)
    assert sorted(inventory.targets) == ["jetson-nano", "slow-link"]
    for name, target in inventory.targets.items():
        device = state.devices[name]
        conn = target.connection
        assert (conn.transport, conn.host, conn.port, conn.user) == ("ssh", device.address, device.port, device.user)
        assert conn.known_hosts == "strict" and conn.key_file == state.client_key and os.path.exists(conn.key_file)
        assert target.workdir == "harness-work" and target.emulated and "lab" in target.tags
        assert os.path.exists(target.python)
    nano = inventory.targets["jetson-nano"]
    assert (nano.kind, nano.arch) == ("jetson", "x86_64")
    # half a core is calibrated before its sshd starts, and its target file says what it does
    assert any(line.startswith("lab: jetson-nano       cpu: calibrating 0.5 core") for line in lines), lines
    assert nano.shaping["cpu"].startswith("0.5 core: CFS bandwidth (cgroup v1)"), dict(nano.shaping)
    assert nano.shaping["statement"].startswith("CPU-bound work of "), \
        f"{dict(nano.shaping)} (load average now {os.getloadavg()[0]:.1f})"
    assert [row["work_ms"] for row in nano.shaping["calibration"]] == [1.5, 2.5, 20.0]
    assert state.devices["jetson-nano"].cpu_period_us == int(Path(state.devices["jetson-nano"].cgroups.cpu,
                                                                  "cpu.cfs_period_us").read_text())
    assert inventory.targets["slow-link"].shaping["statement"].startswith("one thread runs at the host's speed")
    assert nano.power.kind == "ina3221" and os.path.isdir(nano.power.options["root"])
    assert inventory.targets["slow-link"].runtimes["paddle-inference"].python == str(REPO / ".venv/bin/python")
    known = Path(state.known_hosts).read_text().splitlines()
    assert len(known) == 2
    assert "UserKnownHostsFile" in Path(state.ssh_config).read_text()


def test_ssh_login_reaches_each_device_as_its_own_user_in_its_cgroups(lab_up) -> None:
    state, _, _ = lab_up
    for name, device in state.devices.items():
        done = ssh(state, name, "id -un; cat /proc/self/cgroup; ip -4 -o addr show scope global")
        assert done.returncode == 0, done.stderr
        out = done.stdout.splitlines()
        assert out[0] == device.user
        groups = {line.split(":")[1]: line.split(":", 2)[2] for line in out[1:] if line.count(":") >= 2}
        assert groups["cpu"] == f"/harness-lab-test/{name}"
        assert groups["cpuacct"] == f"/harness-lab-test/{name}"
        assert groups["memory"].endswith(f"/harness-lab-test/{name}")
        if state.mode == "netns":
            addresses = [line.split()[3].split("/")[0] for line in out if " inet " in line]
            assert addresses == [device.address], out  # its own address, not the host's


def test_host_keys_differ_per_device_and_are_checked_strictly(lab_up, tmp_path) -> None:
    state, _, _ = lab_up
    keys = [line.split()[2] for line in Path(state.known_hosts).read_text().splitlines()]
    assert len(set(keys)) == len(keys) == 2
    # with an empty known_hosts file the strict client refuses to connect
    empty = tmp_path / "known_hosts"
    empty.write_text("")
    device = state.devices["jetson-nano"]
    done = subprocess.run(["ssh", "-F", state.ssh_config, "-o", f"UserKnownHostsFile={empty}", device.ssh_alias,
                           "true"], capture_output=True, text=True, timeout=30)
    assert done.returncode == 255


def test_sshd_runs_inside_the_device_cgroups(lab_up) -> None:
    state, _, _ = lab_up
    for device in state.devices.values():
        for directory in device.cgroups.dirs():
            procs = Path(directory, "cgroup.procs").read_text().split()
            assert str(device.sshd_pid) in procs, directory
        assert Path(device.cgroups.cpuacct_usage_path).exists()


def test_half_core_device_gets_half_a_core(lab_up) -> None:
    state, _, _ = lab_up
    nano = state.devices["jetson-nano"]
    stat = Path(nano.cgroups.cpu, "cpu.stat")
    throttled_before = int(dict(line.split() for line in stat.read_text().splitlines())["nr_throttled"])
    done = ssh(state, "jetson-nano", f"python3 -c '{BUSY_LOOP}'")
    assert done.returncode == 0, done.stderr
    device_share = float(done.stdout)
    throttled_after = int(dict(line.split() for line in stat.read_text().splitlines())["nr_throttled"])
    host_share = max(float(subprocess.run([sys.executable, "-c", BUSY_LOOP], capture_output=True, text=True,
                                          check=True).stdout) for _ in range(2))
    assert device_share <= 0.6, device_share
    assert throttled_after > throttled_before
    if host_share >= 0.8:
        assert host_share > device_share + 0.2
    else:
        # other work on this 2-core machine competes with the host loop; the device's cap (its
        # share and the throttle counter above) is what is under test
        load = float(Path("/proc/loadavg").read_text().split()[0])
        assert load >= 1.0, f"host loop got {host_share} of a core on an idle machine (load {load})"


def test_memory_limit_kills_the_allocating_process_and_counts_it(lab_up) -> None:
    state, _, _ = lab_up
    device = state.devices["slow-link"]
    before = cgroups.usage(device.cgroups)
    assert before is not None and before.memory_limit == device.memory_limit
    size = device.memory_limit + 512 * 2**20
    done = ssh(state, "slow-link", f"python3 -c 'b = b\"x\" * {size}; print(len(b))'; echo rc=$?", timeout=120)
    assert "rc=137" in done.stdout, (done.stdout, done.stderr)  # SIGKILL (128 + 9)
    after = cgroups.usage(device.cgroups)
    assert after is not None and after.oom_kills > before.oom_kills
    assert after.memory_peak_bytes >= 0.95 * device.memory_limit
    status = lab.status(state.state_dir)
    assert status is not None and status.devices["slow-link"].usage.oom_kills == after.oom_kills


def test_disk_full_is_per_device(lab_up) -> None:
    state, _, _ = lab_up
    nano, other = state.devices["jetson-nano"], state.devices["slow-link"]
    count = nano.disk_size // 2**20 + 16
    try:
        done = ssh(state, "jetson-nano", f"dd if=/dev/zero of=fill bs=1M count={count}; echo rc=$?")
        assert "No space left on device" in done.stderr and "rc=1" in done.stdout, (done.stdout, done.stderr)
        done = ssh(state, "slow-link", "dd if=/dev/zero of=some bs=1M count=16 2>&1 && echo ok; rm -f some")
        assert done.stdout.strip().endswith("ok"), done.stdout
        status = lab.status(state.state_dir)
        assert status is not None
        assert status.devices["jetson-nano"].disk_used >= nano.disk_size - 2**20
        assert status.devices["slow-link"].disk_used < 2**20
        assert other.home != nano.home
    finally:
        ssh(state, "jetson-nano", "rm -f fill")


def test_slow_link_is_rate_limited(lab_up, tmp_path) -> None:
    state, _, _ = lab_up
    _netns_only(state)
    slow = state.devices["slow-link"]
    shown = network.qdiscs(slow.link)
    assert shown.count("tbf") == 2 and "rate 20Mbit" in shown, shown
    assert "tbf" not in network.qdiscs(state.devices["jetson-nano"].link)
    blob = tmp_path / "blob"
    blob.write_bytes(os.urandom(8 * 2**20))
    timings = {}
    for name in ("jetson-nano", "slow-link"):
        started = time.monotonic()
        subprocess.run(["scp", "-F", state.ssh_config, "-q", str(blob), f"{state.devices[name].ssh_alias}:blob"],
                       check=True, timeout=120)
        timings[name] = time.monotonic() - started
        ssh(state, name, "rm -f blob")
    assert timings["slow-link"] >= 2.5, timings  # 8 MiB at 20 Mbit/s is 3.4 s
    assert timings["slow-link"] > 1.8 * timings["jetson-nano"], timings


def test_blackhole_and_loss_faults_can_be_set_and_cleared(lab_up) -> None:
    state, _, _ = lab_up
    device = state.devices["slow-link"]
    try:
        network.blackhole(device.link)
        assert not lab.reachable(device.address, device.port, timeout_s=1.0)
        network.set_loss(device.link, 100)
        assert not lab.reachable(device.address, device.port, timeout_s=1.0)
        network.set_loss(device.link, 30)
        assert "numgen random mod 100 < 30 counter packets" in network.faults(device.link)
    finally:
        network.clear_faults(device.link)
    assert network.faults(device.link) == ""
    assert lab.reachable(device.address, device.port)
    assert ssh(state, "slow-link", "true").returncode == 0


def test_jetson_twin_runs_python_36(lab_up) -> None:
    state, _, _ = lab_up
    python = state.devices["jetson-nano"].python
    done = ssh(state, "jetson-nano", f"{python} -c 'import sys; print(sys.version_info[:2])'")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "(3, 6)"
    # root's home stays closed: the device sees only the interpreters' directory
    done = ssh(state, "jetson-nano", "ls -A /root")
    assert done.stdout.split() == [".pyenv"]


def test_jetson_twin_imports_onnxruntime_when_the_image_is_cached(lab_up) -> None:
    state, _, _ = lab_up
    nano = state.devices["jetson-nano"]
    if not nano.images_complete:
        assert nano.runtimes == {}  # skipped packages: no runtime is declared that is not there
        pytest.skip("py36 onnxruntime image not cached (test_py36_onnxruntime_image builds it)")
    python = nano.runtimes["onnxruntime"]
    done = ssh(state, "jetson-nano", f"{python} -c 'import onnxruntime, numpy; print(onnxruntime.__version__)'")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "1.10.0"


def test_second_up_is_idempotent(lab_up) -> None:
    state, _, _ = lab_up
    lines: list[str] = []
    started = time.monotonic()
    again = lab.up(state.state_dir, TEST_SPEC, progress=lines.append, install=False)
    assert time.monotonic() - started < 10
    assert {n: d.sshd_pid for n, d in again.devices.items()} == {n: d.sshd_pid for n, d in state.devices.items()}
    assert sum("already running" in line for line in lines) == 2
    assert any("kept from the calibration of" in line for line in lines), lines  # no second calibration
    assert ssh(state, "jetson-nano", "true").returncode == 0


def test_status_command(lab_up, capsys) -> None:
    state, _, _ = lab_up
    parser = argparse.ArgumentParser(prog="harness")
    add_lab_commands(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["lab", "status", "--state-dir", state.state_dir, "--json"])
    assert args.func(args) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["up"] and set(data["devices"]) == {"jetson-nano", "slow-link"}
    for name, device in data["devices"].items():
        assert device["sshd_alive"] and device["reachable"], name
        assert device["usage"]["memory_limit"] == state.devices[name].memory_limit
    args = parser.parse_args(["lab", "status", "--state-dir", state.state_dir])
    assert args.func(args) == 0
    text = capsys.readouterr().out
    assert "jetson-nano" in text and "slow-link" in text and "DOWN" not in text
    assert "cpu: 0.5 core: CFS bandwidth (cgroup v1)" in text and "measured at lab up" in text, text


def test_the_design_cards_command_finds_a_lab_device_by_name_while_the_lab_is_up(lab_up, tmp_path) -> None:
    """`pytest suites/ --target=slow-link` with no --targets-dir: the name is not in targets/, so
    the lab that is up (its state dir: $HARNESS_LAB_DIR, else .harness/lab) supplies it. An
    explicit --targets-dir still wins, and its unknown-target error names the lab's device."""
    state, _, _ = lab_up
    manifest = noop_manifest(tmp_path / "models.yaml", ["v"], max_duration="10s")
    env = {**os.environ, "HARNESS_LAB_DIR": state.state_dir}
    env.pop("HARNESS_TARGETS_DIR", None)

    def suites(*extra: str) -> subprocess.CompletedProcess:
        return run_suites(["suites/test_latency.py", "--target=slow-link", f"--manifest={manifest}", *extra],
                          tmp_path, report=False, junit=False, quiet=("-q",), env=env, timeout=300)

    found = suites()
    assert found.returncode == 0, found.stdout + found.stderr
    assert f"slow-link: from the lab that is up ({state.targets_dir})" in found.stdout + found.stderr
    refused = suites(f"--targets-dir={REPO / 'targets'}")
    assert refused.returncode != 0
    assert f"the lab that is up has slow-link: use --targets-dir {state.targets_dir}" in \
        refused.stdout + refused.stderr, refused.stdout + refused.stderr


def test_up_with_labgrid_puts_each_device_behind_a_place_the_suites_reserve(lab_up, tmp_path) -> None:
    state, _, _ = lab_up
    lines: list[str] = []
    again = lab.up(state.state_dir, TEST_SPEC, progress=lines.append, install=False, labgrid=True)
    assert again.labgrid and again.labgrid["coordinator"].startswith("127.0.0.1:")
    assert any(line.startswith("lab: labgrid: coordinator on") for line in lines), lines
    client = [str(REPO / ".venv-labgrid" / "bin" / "labgrid-client"), "-x", again.labgrid["coordinator"]]
    places = subprocess.run([*client, "-v", "places"], capture_output=True, text=True, timeout=60).stdout
    for name, device in again.devices.items():
        assert f"Place '{name}':" in places and f"device={name}" in places and f"kind={device.kind}" in places
        show = subprocess.run([*client, "-p", name, "show"], capture_output=True, text=True, timeout=60).stdout
        assert f"'address': '{device.address}'" in show and f"'port': {device.port}" in show, show
        assert f"'username': '{device.user}'" in show, show
    inventory = load_inventory(state.targets_dir)
    nano = inventory.targets["jetson-nano"]
    assert nano.connection.transport == "labgrid" and nano.connection.labgrid.place == "jetson-nano"
    assert nano.connection.labgrid.coordinator == again.labgrid["coordinator"]
    manifest = noop_manifest(tmp_path / "models.yaml", 1)
    done = run_suites(["suites/test_latency.py", f"--targets-dir={state.targets_dir}", "--target=slow-link",
                       f"--manifest={manifest}"], tmp_path / "out", report=False, timeout=300,
                      env={**os.environ, "HARNESS_LABGRID_STATE": str(tmp_path / "lg-state")})
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    assert "acquired labgrid place slow-link (exporter hlabt-lab" in done.stdout + done.stderr
    show = subprocess.run([*client, "-p", "slow-link", "show"], capture_output=True, text=True, timeout=60).stdout
    assert "acquired: None" in show  # released after the run


# ----------------------------------------------------------------------------- down (runs last)


def test_down_from_a_fresh_process_removes_everything(lab_up) -> None:
    state, _, _ = lab_up
    # a session left running on a device must not keep anything alive
    ssh(state, "jetson-nano", "nohup sleep 300 >/dev/null 2>&1 &")
    assert len(cgroups.pids(state.devices["jetson-nano"].cgroups)) >= 2
    assert lab.leftovers(TEST_SPEC, state.state_dir) != []
    labgrid = (lab.LabState.load(Path(state.state_dir)) or state).labgrid or {}
    done = subprocess.run([sys.executable, "-c", "import sys; from harness import lab; lab.down(sys.argv[1])",
                           state.state_dir], capture_output=True, text=True, timeout=120, cwd=REPO)
    assert done.returncode == 0, done.stderr
    assert lab.leftovers(TEST_SPEC, state.state_dir) == []
    for device in state.devices.values():
        assert not os.path.exists(f"/proc/{device.sshd_pid}")
        assert not any(os.path.exists(d) for d in device.cgroups.dirs())
        assert not os.path.exists(device.target_file)
    assert not (Path(state.state_dir) / "state.json").exists()
    for pid in (labgrid.get("coordinator_pid"), labgrid.get("exporter_pid")):  # `up --labgrid`'s daemons
        assert pid is None or not os.path.exists(f"/proc/{pid}")
    assert lab.status(state.state_dir) is None
    lab.down(state.state_dir, progress=lambda line: None)  # again: nothing to do


# ----------------------------------------------------------------------------- fallback, image


def test_loopback_fallback_mode() -> None:
    spec = LabSpec(devices=(DEFAULT_LAB.device("slow-link"),), prefix="hlabf", cgroup_parent="harness-lab-fallback")
    state_dir = _state_dir("hlabf")
    lines: list[str] = []
    try:
        state = lab.up(state_dir, spec, progress=lines.append, network_mode="loopback")
        assert state.mode == "loopback" and any("FALLBACK" in line for line in lines)
        device = state.devices["slow-link"]
        assert device.address == "127.0.0.1" and device.port != 22 and device.link_rate is None
        done = ssh(state, "slow-link", "id -un; cat /proc/self/cgroup")
        assert done.returncode == 0, done.stderr
        assert done.stdout.splitlines()[0] == "hlabf-slow-link"
        assert "cpu:/harness-lab-fallback/slow-link" in done.stdout
        target = load_inventory(state.targets_dir).targets["slow-link"]
        assert (target.connection.host, target.connection.port) == ("127.0.0.1", device.port)
        network.blackhole(device.link)
        assert not lab.reachable(device.address, device.port, timeout_s=1.0)
        status_lines = lab.format_status(lab.status(state_dir), state_dir)
        assert any("FALLBACK" in line for line in status_lines)
    finally:
        lab.down(state_dir, progress=lambda line: None)
        shutil.rmtree(state_dir, ignore_errors=True)
    assert lab.leftovers(spec, state_dir) == []


def test_down_without_a_state_file_sweeps_by_name() -> None:
    """A lost state file (or a crash before it was written) still leaves nothing behind."""
    spec = LabSpec(devices=(DEFAULT_LAB.device("edge-cpu"),), prefix="hlabs", subnet="10.200.0.64/26",
                   cgroup_parent="harness-lab-sweep")
    state_dir = _state_dir("hlabs")
    try:
        state = lab.up(state_dir, spec, progress=lambda line: None)
        assert ssh(state, "edge-cpu", "true").returncode == 0
        (Path(state_dir) / "state.json").unlink()
        lines: list[str] = []
        lab.down(state_dir, progress=lines.append, spec=spec)
        assert any("sweeping" in line for line in lines)
        assert lab.leftovers(spec, state_dir) == []
    finally:
        lab.down(state_dir, progress=lambda line: None, spec=spec)
        shutil.rmtree(state_dir, ignore_errors=True)


@pytest.mark.slow
def test_py36_onnxruntime_image() -> None:
    """The jetson-nano twin's "vendor image": Python 3.6 + onnxruntime 1.10.0 + numpy 1.19.5,
    built on the host into the shared cache (downloads ~20 MB the first time)."""
    lines: list[str] = []
    built = build_env(PY36_ORT, lab.default_cache_dir(), progress=lines.append)
    assert built.complete and built.version.startswith("3.6.")
    assert lines  # it says what it is doing
    done = subprocess.run([built.python, "-c", "import sys, onnxruntime, numpy; "
                           "print(sys.version_info[:2], onnxruntime.__version__, numpy.__version__)"],
                          capture_output=True, text=True, env={"PATH": "/usr/bin:/bin"})
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "(3, 6) 1.10.0 1.19.5"
    started = time.monotonic()
    again = cached_env(PY36_ORT, lab.default_cache_dir())
    assert again is not None and again.python == built.python and time.monotonic() - started < 2
