"""The lab's emulated aarch64 device, end to end: a Debian arm64 userland under qemu-user.

`lab.up` with the `arm64-qemu` device builds (once, then cached in .harness/lab/cache/rootfs;
about 3-5 minutes and 300 MB from Debian's mirror) an arm64 root filesystem and serves it from
its own network namespace; `harness targets setup` resolves onnxruntime's aarch64 wheels on
this host and pushes them; the latency and fidelity suites then run there through the same
`pytest suites/` a user types. Marked slow (and `arm`, to deselect it alone with -m "not arm").
Its own lab (prefix ``hlaba`` on 10.200.0.192/26), serialised with the other lab tests by
their file lock.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from helpers.lab_lock import lab_tests_lock

from harness import lab
from harness.config.manifest import load_manifest
from harness.config.target_files import load_target
from harness.errors import HarnessError
from harness.lab.chroot import CHROOT_VIEWS
from harness.lab.devices import ARM64_QEMU, LabSpec
from harness.lab.rootfs import ensure_binfmt, rootfs_facts
from harness.lab.sshd import LabError
from harness.run.device import Device
from harness.run.measure import measure_latency
from harness.run.run_info import RunInfo
from harness.store import open_store

REPO = Path(__file__).resolve().parents[2]
HARNESS = [sys.executable, "-m", "harness.cli"]
NAME = ARM64_QEMU.name
AARCH64_ELF_MACHINE = 183  # e_machine of an aarch64 ELF file

pytestmark = [
    pytest.mark.slow,
    pytest.mark.arm,
    pytest.mark.skipif(os.geteuid() != 0, reason="the lab needs root (users, cgroups, mounts, namespaces)"),
    pytest.mark.skipif(not os.path.exists("/usr/sbin/sshd"), reason="needs OpenSSH's server (apt-get install -y openssh-server)"),
    pytest.mark.skipif(shutil.which("debootstrap") is None or not os.path.exists("/usr/bin/qemu-aarch64-static"),
                       reason="needs apt-get install -y qemu-user-static binfmt-support debootstrap (make system-deps)"),
]

ARM_SPEC = LabSpec(devices=(ARM64_QEMU,), prefix="hlaba", subnet="10.200.0.192/26", cgroup_parent="harness-lab-arm-test")

MANIFEST = """
version: 1
zoo_dir: {zoo}
defaults:
  latency: {{warmup_iterations: 2, warmup_duration: 0s, min_iterations: 10, min_duration: 0s, max_duration: 60s,
            paired_rounds: 10}}  # emulated: a fixed, short paired job (its ratio says nothing of real speed)
models:
  tiny_cnn:
    input: {{name: x, shape: [1, 3, 64, 64], dtype: float32}}
    dataset: "{{zoo}}/tiny_cnn/data/digits-test.npz"   # the trained net is compared on held-out digits
    fidelity: {{min_top1_agreement: 0.9, max_relative_error: 0.5}}   # as suites/models.yaml
    variants:
      onnx:
        kind: fp32
        format: onnx
        runtime: onnxruntime
        files: {{model: "{{zoo}}/tiny_cnn/onnx/model.onnx"}}
        runtime_options: {{threads: 1, graph_optimization: all}}
      onnx_int8:
        kind: int8-ptq
        baseline: onnx
        format: onnx
        runtime: onnxruntime
        files: {{model: "{{zoo}}/tiny_cnn/onnx-int8/model.onnx"}}
        runtime_options: {{threads: 1, graph_optimization: all}}
      lite_x86:
        kind: fp32
        format: paddle-lite
        runtime: paddle-lite
        arch: x86_64
        files: {{model: "{{zoo}}/tiny_cnn/lite-x86/model.nb"}}
"""


@pytest.fixture(scope="module")
def arm_lab(demo_zoo):
    try:
        ensure_binfmt(ARM64_QEMU.rootfs, print)
    except LabError as exc:
        if "cannot mount binfmt_misc" in str(exc):  # a container without binfmt_misc: not this test's to fix
            pytest.skip(str(exc))
        raise
    with lab_tests_lock():  # one lab test module at a time (test_lab.py, test_fleet_lab.py, ...)
        state_dir = Path(tempfile.mkdtemp(prefix="hlaba-", dir="/tmp"))
        os.chmod(state_dir, 0o755)
        lines: list[str] = []
        try:
            state = lab.up(state_dir, ARM_SPEC, progress=lambda line: (lines.append(line), print(line, flush=True)))
            yield state, lines
        finally:
            try:
                lab.down(state_dir, progress=lambda line: None, spec=ARM_SPEC)
                assert lab.leftovers(ARM_SPEC, state_dir) == []
                assert not os.path.exists(CHROOT_VIEWS / f"{ARM_SPEC.prefix}-{NAME}")
            finally:
                shutil.rmtree(state_dir, ignore_errors=True)


def ssh(state: lab.LabState, command: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(["ssh", "-F", state.ssh_config, NAME, command], capture_output=True, text=True,
                          timeout=timeout)


def harness(*args: str, timeout: float = 900) -> subprocess.CompletedProcess:
    return subprocess.run([*HARNESS, *args], cwd=REPO, capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def set_up(arm_lab):
    """`harness targets setup` run once for the module; (state, its output)."""
    state, _ = arm_lab
    done = harness("targets", "setup", NAME, "--targets-dir", state.targets_dir)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    return state, done.stdout


def test_the_device_is_an_arm64_userland_served_from_its_own_namespace(arm_lab) -> None:
    state, lines = arm_lab
    device = state.devices[NAME]
    assert device.netns == f"{ARM_SPEC.prefix}-{NAME}" or state.mode == "loopback"
    assert rootfs_facts(Path(device.rootfs))["machine"] == "aarch64"
    with open(Path(device.rootfs, "usr/bin/python3").resolve(), "rb") as handle:
        header = handle.read(20)
    assert header[:4] == b"\x7fELF" and int.from_bytes(header[18:20], "little") == AARCH64_ELF_MACHINE
    done = ssh(state, "uname -m; python3 -c 'import platform, sys; print(platform.machine(), sys.version_info[0])'; "
                      "python3 -m pip --version || echo no-pip; touch /usr/x 2>&1 || true; echo $HOME; id -un")
    assert done.returncode == 0, done.stderr
    out = done.stdout.splitlines()
    assert out[0] == "aarch64" and out[1] == "aarch64 3", out
    assert "no-pip" in out  # a minimal root filesystem: nothing can be installed on the device itself
    assert "Read-only file system" in done.stdout  # the cached root filesystem is never written by a device
    assert out[-2:] == [device.home, device.user]
    target = load_target(device.target_file)
    assert (target.kind, target.arch, target.emulated) == ("arm-cortex", "aarch64", True)
    assert "qemu-user" in target.emulation
    assert target.setup["onnxruntime"] and target.runtimes["onnxruntime"].setup_env == "envs/onnxruntime"
    assert any("root filesystem" in line for line in lines)


def test_before_setup_the_runtime_is_reported_not_set_up(arm_lab) -> None:
    state, _ = arm_lab
    if ssh(state, "test -e harness-work/envs/onnxruntime").returncode == 0:
        pytest.skip("already set up by an earlier test in this module")
    done = harness("targets", "check", NAME, "--targets-dir", state.targets_dir, timeout=300)
    assert done.returncode == 1, done.stdout + done.stderr
    assert re.search(rf"onnxruntime .*NOT SET UP: run `harness targets setup {NAME}", done.stdout), done.stdout


def test_setup_resolves_aarch64_wheels_on_the_host_and_is_idempotent(set_up) -> None:
    state, output = set_up
    assert re.search(r"CPython 3\.\d+\.\d+ on aarch64 \(glibc 2\.\d+\)", output), output
    assert "manylinux" in output or "cached:" in output  # resolved for the device's platform, not this host's
    assert re.search(rf"{NAME}: onnxruntime 1\.\d+\.\d+ (installed|already set up): \S+/envs/onnxruntime/bin/python3",
                     output), output
    done = ssh(state, "harness-work/envs/onnxruntime/bin/python3 -c "
                      "'import onnxruntime, numpy, platform; print(platform.machine(), onnxruntime.__version__)'")
    assert done.returncode == 0, done.stderr
    assert done.stdout.split()[0] == "aarch64"
    again = harness("targets", "setup", NAME, "--targets-dir", state.targets_dir)
    assert again.returncode == 0, again.stdout + again.stderr
    assert "already set up" in again.stdout and "pushing" not in again.stdout, again.stdout
    check = harness("targets", "check", NAME, "--targets-dir", state.targets_dir, timeout=300)
    assert check.returncode == 0 and f"{NAME}: ok" in check.stdout, check.stdout + check.stderr


def test_latency_and_fidelity_suites_pass_on_the_emulated_device(set_up, demo_zoo, tmp_path) -> None:
    state, _ = set_up
    manifest = tmp_path / "models.yaml"
    manifest.write_text(MANIFEST.format(zoo=demo_zoo))
    out = tmp_path / "run"
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "suites/test_latency.py", "suites/test_fidelity.py", f"--target={NAME}",
         f"--targets-dir={state.targets_dir}", f"--manifest={manifest}", f"--store={out / 'results.sqlite'}",
         f"--report-dir={out / 'reports'}", "-p", "no:cacheprovider", "-q", "-rA"],
        cwd=REPO, capture_output=True, text=True, timeout=1200)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    # the x86 .nb is refused before anything is pushed, naming both arches
    assert re.search(r"SKIPPED .*tiny_cnn-lite_x86 is built for x86_64 only and arm64-qemu is aarch64: not pushed",
                     done.stdout), done.stdout
    store = open_store(out / "results.sqlite")
    (run,) = store.runs()
    measured = {(m.variant_id, m.metric): m for m in store.measurements(run.id)}
    assert {("tiny_cnn-onnx", "latency"), ("tiny_cnn-onnx_int8", "latency"),
            ("tiny_cnn-onnx", "fidelity"), ("tiny_cnn-onnx_int8", "fidelity")} <= set(measured)
    latency = measured[("tiny_cnn-onnx", "latency")]
    assert latency.status == "ok" and len(latency.samples) >= 10
    assert latency.meta["runtime_info"]["name"] == "onnxruntime" and latency.meta["runtime_info"]["version"]
    environment = store.environments(run.id)[NAME]
    assert environment["device"]["machine"] == "aarch64", environment["device"]
    assert environment["declared"]["emulated"] is True and "qemu-user" in environment["declared"]["emulation"]
    # qemu-user passes the x86 host's /proc/cpuinfo through: the record and the report say whose it is
    assert environment["device"]["cpu_info_is_host"] is True, environment["device"]
    report = next((out / "reports").glob("*/index.html")).read_text()
    assert "emulated device" in report and "qemu-user aarch64" in report
    assert "the host's CPU model and flags: qemu-user passes the host's /proc/cpuinfo through" in report


def test_a_model_for_another_arch_is_refused_before_it_is_pushed(set_up, demo_zoo, tmp_path) -> None:
    state, _ = set_up
    manifest = tmp_path / "models.yaml"
    manifest.write_text(MANIFEST.format(zoo=demo_zoo))
    variant = load_manifest(manifest).get("tiny_cnn-lite_x86")
    device = Device(load_target(state.devices[NAME].target_file))
    store = open_store(tmp_path / "s.sqlite")
    store.create_run(RunInfo(id="r", label=None, started_at="", host="", harness_version=""))
    try:
        with pytest.raises(HarnessError, match=r"built for x86_64 only and arm64-qemu is aarch64: not pushed"):
            measure_latency(device, variant, store, "r")
        assert device.cache.stats.bytes_sent == 0
        (record,) = store.measurements("r")  # the refusal is recorded, not lost
        assert record.status == "error" and "not pushed" in record.meta["error"]
    finally:
        device.close()
