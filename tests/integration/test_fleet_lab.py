"""The SSH fleet over the simulated lab, end to end: real sshd per device, real runtimes.

One lab for the module (prefix ``hlabq`` on 10.200.0.64/26, so it can run beside a user's
`harness lab up`; serialised with tests/integration/test_lab.py by the same file lock): the
default lab's `jetson-nano` twin (Python 3.6 + onnxruntime 1.10, half a core, a simulated
INA3221), `edge-cpu`, `slow-link` (20 Mbit/s), and `small-mem`, a 96 MiB device for the
out-of-memory case. The twin's image is built by `lab.up` the first time (~15 s, then cached
in .harness/lab/cache). Most tests drive the suites the way users do: a `pytest` subprocess
against the lab's generated target files, results read back from the store.
"""

from __future__ import annotations

import base64
import hashlib
import html
import json
import os
import re
import shutil
import statistics
import subprocess
import tempfile
from pathlib import Path
from types import MappingProxyType

import pytest
from helpers.device_lock_checks import check_a_killed_orchestrator_leaves_no_lock, check_two_orchestrators_on_one_device
from helpers.faulty_transports import CorruptingSSHTransport
from helpers.paths import REPO, VENV_PYTHON
from helpers.processes import cmdline
from helpers.project import NOOP_INPUT, QUICK_LATENCY, noop_manifest, write_manifest
from helpers.results import junit_cases, records
from helpers.suites import run_suites as run_pytest
from helpers.suites import shown as _shown

from harness import lab
from harness.config.manifest import load_manifest
from harness.config.target_files import load_inventory
from harness.errors import TransportError
from harness.lab import cgroups, network, shaping
from harness.lab.devices import DEFAULT_LAB, HOST_VENV, DeviceSpec, LabSpec, MiB
from harness.lab.sshd import generate_key
from harness.run.declared_input_shapes import read_declared_input_shape
from harness.run.device import Device
from harness.run.sweep_points import expand
from harness.transport.base import ContentCache, sha256_file
from harness.transport.ssh import SSHTransport

pytestmark = [
    pytest.mark.usefixtures("lab_tests_lock"),  # one lab test module at a time (helpers.lab_lock)
    pytest.mark.skipif(os.geteuid() != 0, reason="the lab needs root (users, cgroups, mounts, namespaces)"),
    pytest.mark.skipif(not os.path.exists("/usr/sbin/sshd") or shutil.which("ssh") is None,
                       reason="needs OpenSSH server and client (apt-get install -y openssh-server)"),
]

SMALL_MEM = DeviceSpec(
    name="small-mem", kind="x86-cpu", arch="x86_64",
    description="Lab device with 96 MiB of memory: importing Paddle Inference does not fit",
    cpu_quota=1.0, memory_limit=96 * MiB, disk_size=128 * MiB, link_rate=None, tags=("lab", "small"),
    python=HOST_VENV, runtimes=MappingProxyType({"paddle-inference": HOST_VENV}),
)
FLEET_SPEC = LabSpec(
    devices=(*DEFAULT_LAB.devices, SMALL_MEM),
    prefix="hlabq",
    subnet="10.200.0.64/26",
    cgroup_parent="harness-lab-fleet-test",
)
FLEET = ("jetson-nano", "edge-cpu", "slow-link")

# ----------------------------------------------------------------------------- the lab


@pytest.fixture(scope="module")
def fleet(lab_tests_lock):
    """The fleet lab, up for the module and always taken down."""
    state_dir = Path(tempfile.mkdtemp(prefix="hlabq-", dir="/tmp"))
    os.chmod(state_dir, 0o755)  # device users traverse it (authorized_keys, power tree)
    lines: list[str] = []
    try:
        state = lab.up(state_dir, FLEET_SPEC, progress=lines.append, install=True)
        assert state.devices["jetson-nano"].images_complete, lines
        state.progress_lines = lines
        yield state
    finally:
        try:
            lab.down(state_dir, progress=lambda line: None, spec=FLEET_SPEC)
        finally:
            shutil.rmtree(state_dir, ignore_errors=True)


def _target(state: lab.LabState, name: str):
    return load_inventory(state.targets_dir).targets[name]


# ----------------------------------------------------------------------------- up


def test_lab_up_gives_the_twin_its_simulated_ina3221(fleet) -> None:
    nano = fleet.devices["jetson-nano"]
    assert nano.power_sensor == "ina3221" and nano.power_pid
    assert any(line.startswith("lab: jetson-nano       power: simulated INA3221") for line in fleet.progress_lines)
    target = _target(fleet, "jetson-nano")
    assert target.power.kind == "ina3221" and target.power.options["root"] == nano.power_root
    rail = Path(nano.power_root, "sys/bus/i2c/drivers/ina3221x/6-0040/iio:device0")
    assert (rail / "rail_name_0").read_text().strip() == "POM_5V_IN"
    # the device user reads the tree, from inside the device (its own mount and network view)
    done = subprocess.run(["ssh", "-F", fleet.ssh_config, "jetson-nano",
                           f"id -un; cat {rail}/rail_name_0 {rail}/in_power0_input; "
                           "cat /sys/fs/cgroup/memory$(grep memory /proc/self/cgroup | cut -d: -f3)/memory.limit_in_bytes"],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    user, name, milliwatts, limit = done.stdout.split()
    assert (user, name) == (nano.user, "POM_5V_IN") and int(milliwatts) >= 1000
    assert int(limit) == nano.memory_limit  # the device sees its own cgroup, as a real board does
    # only the twin declares a sensor the lab simulates
    assert all(not d.power_pid for n, d in fleet.devices.items() if n != "jetson-nano")
    status = lab.status(fleet.state_dir)
    assert status.devices["jetson-nano"].power_alive and status.devices["jetson-nano"].power_mw >= 1000
    shown = "\n".join(lab.format_status(status, fleet.state_dir))
    assert f"power: simulated INA3221 pid {nano.power_pid}, POM_5V_IN" in shown


def test_the_twins_quota_is_half_a_core_over_the_period_its_calibration_chose(fleet) -> None:
    nano = fleet.devices["jetson-nano"]
    period = int(Path(nano.cgroups.cpu, "cpu.cfs_period_us").read_text())
    quota = int(Path(nano.cgroups.cpu, "cpu.cfs_quota_us").read_text())
    calibrated = shaping.CpuShaping.from_dict(nano.shaping)
    assert (period, quota) == (calibrated.period_us, calibrated.quota_us) == (nano.cpu_period_us, period // 2)
    assert period in shaping.candidate_periods(0.5)
    assert cgroups.usage(nano.cgroups).cpu_quota == 0.5


# ----------------------------------------------------------------------------- 1. the twin


def test_users_literal_command_runs_the_onnx_variants_under_python36_on_the_twin(fleet, tmp_path, demo_zoo) -> None:
    done = run_pytest(["suites/test_latency.py", "--target=jetson-nano", "--targets-dir", fleet.targets_dir],
                      tmp_path / "out")
    manifest = load_manifest(REPO / "suites" / "models.yaml")
    # every test the suite collects: the variants and the manifest's sweep points
    points = expand(manifest.variants, (), siblings=manifest.variants, input_shape=read_declared_input_shape)
    collected = [*manifest.variants, *(p.variant for p in points if p.variant is not None)]
    onnx = {v.id for v in collected if v.runtime == "onnxruntime"}
    others: dict[str, int] = {}
    foreign = [v for v in collected if v.arch and v.arch != "x86_64"]  # the twin is x86_64: refused for arch first
    for v in collected:
        if v.runtime != "onnxruntime" and v not in foreign:
            others[v.runtime] = others.get(v.runtime, 0) + 1
    assert onnx and others and foreign
    by_id = {v.id: v for v in collected}
    store, runs, measured = records(tmp_path / "out")
    assert len(runs) == 1, _shown(done)
    assert {m.variant_id for m in measured} == onnx, _shown(done)
    for m in measured:
        assert m.status == "ok", (m.variant_id, m.meta.get("error"))
        assert m.target == "jetson-nano"
        assert m.meta["agent"]["python"].startswith("3.6."), m.meta["agent"]
        assert m.meta["runtime_info"]["name"] == "onnxruntime" and m.meta["runtime_info"]["version"] == "1.10.0"
        assert m.samples and len(m.samples) >= by_id[m.variant_id].latency.min_iterations
        assert m.summary["p50"] > 0
        # two ONNX arms pair on the twin, one Python 3.6 process each; a baseline the twin cannot run does not
        baseline = by_id[m.variant_id].baseline
        paired = m.meta.get("paired")
        if baseline is not None and by_id[f"{m.model}-{baseline}"].runtime == "onnxruntime":
            assert paired and paired["paired"] and paired["mode"] == "process-per-arm", (m.variant_id, paired)
            assert paired["ratios"][0]["against"] == baseline
        elif baseline is not None:
            assert paired and not paired["paired"] and "which jetson-nano lacks" in paired["reason"], paired
    # a missed budget fails its test in one line; nothing else may fail
    assert done.returncode in (0, 1), _shown(done)
    for line in done.stdout.splitlines():
        if line.startswith("jetson-nano: ") and "latency" in line:
            assert "exceeds the budget" in line, line
    assert "Traceback" not in done.stdout
    for runtime, count in others.items():
        assert f"SKIPPED [{count}] suites/test_latency.py: jetson-nano declares no '{runtime}' runtime" in done.stdout, \
            _shown(done)
    for variant in foreign:
        assert f"{variant.id} is built for {variant.arch} only and jetson-nano is x86_64: not pushed" in done.stdout, \
            _shown(done)
    env = store.environments(runs[0].id)["jetson-nano"]
    assert env["declared"]["emulated"] is True and env["device"]["python"].startswith("3.6.")
    (html,) = (tmp_path / "out" / "reports").glob("*/index.html")
    assert "emulated device: latency is not that of real hardware" in html.read_text()
    report = json.loads(next((tmp_path / "out" / "reports").glob("*/report.json")).read_text())
    assert "jetson-nano" in json.dumps(report)


# ----------------------------------------------------------------------------- 2. shaping


LOCAL_TARGET = """
name: local
kind: local
arch: x86_64
description: "This machine, unshaped"
connection: {{transport: local}}
workdir: {workdir}
python: {python}
runtimes:
  onnxruntime: {python}
"""


SPIN_MANIFEST = """
version: 1
defaults:
  latency: {warmup_iterations: 2, warmup_duration: 0.2s, min_iterations: 20, min_duration: 0.6s, max_duration: 60s}
models:
  spin:
    input: {name: x, shape: [1], dtype: float32}
    variants:
      short: {kind: fp32, format: none, runtime: noop, runtime_options: {spin_us: 1500}}
      long: {kind: fp32, format: none, runtime: noop, runtime_options: {spin_us: 20000}}
"""


def test_the_half_core_twin_runs_cpu_bound_work_at_the_speed_its_target_file_states(fleet, tmp_path) -> None:
    """The twin's guarantee is what its target file's ``shaping`` states, calibrated at lab up:
    CPU-bound work from the length it names up takes 2x the host's time per inference, p50 and
    p90, and all work runs at half the host's throughput. That statement is checked here.

    Checked through the suites on a workload whose length the test fixes in CPU time (the noop
    runtime's ``spin_us``), so the host's speed does not enter: 1.5 ms and 20 ms of work on the
    twin (Python 3.6 agent, half a core) and on the unshaped local target, in three rounds of
    back-to-back runs whose order alternates; the median ratio of the rounds is checked. Work
    the statement covers must be 2x per inference; work it names as not shaped per inference
    must still be at half the throughput; 20 ms of work must always be covered.

    The margin is shaping.TOLERANCE (25% either way). Measured on this 2-core machine kind over
    three idle runs and three with a CPU hog on one core, the twin/local ratios were p50
    x1.99-2.32, p90 x1.76-2.34, throughput x0.50-0.52: at most 17% off (1.5 ms of work is
    rounded to 1 ms slices of CPU time; under the hog the host's p90 grows). On one CI machine
    the calibration measured p90 x2.53-2.56 for 1.5 and 2.5 ms of work and so stated "20 ms and
    more": a machine whose scheduler is slower to unthrottle is told apart, not hidden. Under the
    old 10 ms period the p50 ratio of 1-2 ms of work was x1.0 and its p90 x3.5-6, and 20 ms of
    work was not 2x per inference either: that is what this catches."""
    targets = tmp_path / "targets"
    targets.mkdir()
    (targets / "local.yaml").write_text(LOCAL_TARGET.format(workdir=tmp_path / "work", python=VENV_PYTHON))
    shutil.copy(Path(fleet.targets_dir) / "jetson-nano.yaml", targets / "jetson-nano.yaml")
    twin = load_inventory(targets).targets["jetson-nano"]
    statement = twin.shaping.get("statement", "")
    claimed = re.search(r"CPU-bound work of ([\d.]+) ms and more takes 2x the host's time per inference", statement)
    assert claimed and float(claimed.group(1)) <= 20, \
        f"{dict(twin.shaping)} (load average now {os.getloadavg()[0]:.1f})"
    shaped_from_ms = float(claimed.group(1))
    models = tmp_path / "models.yaml"
    models.write_text(SPIN_MANIFEST)
    # three rounds, each target measured right after the other, in alternating order: a change of
    # the host's load between the two runs of one round moves one ratio, not the median of three
    rounds: list[dict[str, dict[str, float]]] = []
    for number, order in enumerate((("local", "jetson-nano"), ("jetson-nano", "local"), ("local", "jetson-nano"))):
        measured = {}
        for target in order:
            out = tmp_path / f"round-{number}-{target}"
            done = run_pytest(["suites/test_latency.py", f"--target={target}", f"--targets-dir={targets}",
                               f"--manifest={models}"], out)
            measured.update({(m.target, m.variant): m.summary for m in records(out)[2] if m.status == "ok"})
            assert {v for t, v in measured if t == target} == {"short", "long"}, _shown(done)
        rounds.append({variant: {"p50": measured[("jetson-nano", variant)]["p50"] / measured[("local", variant)]["p50"],
                                 "p90": measured[("jetson-nano", variant)]["p90"] / measured[("local", variant)]["p90"],
                                 "throughput": measured[("jetson-nano", variant)]["throughput"]
                                 / measured[("local", variant)]["throughput"]}
                       for variant in ("short", "long")})
    figures = {variant: {figure: statistics.median(r[variant][figure] for r in rounds)
                         for figure in ("p50", "p90", "throughput")} for variant in ("short", "long")}
    shown = (f"twin / local ratios, median of 3 rounds {figures}; rounds {rounds} (load average "
             f"{os.getloadavg()[0]:.1f}); the twin's target file: {statement}")
    work_ms = {"short": 1.5, "long": 20.0}
    for variant, ratios in figures.items():
        if work_ms[variant] >= shaped_from_ms:
            assert abs(ratios["p50"] / 2 - 1) <= shaping.TOLERANCE, shown
            assert abs(ratios["p90"] / 2 - 1) <= shaping.TOLERANCE, shown
        else:  # named as not shaped per inference: it must say so, and throughput still is
            assert f"NOT shaped per inference for {work_ms[variant]:g}" in statement, shown
        assert abs(ratios["throughput"] / 0.5 - 1) <= shaping.TOLERANCE, shown
    # the report says it beside the twin's numbers
    (page,) = (tmp_path / "round-2-jetson-nano" / "reports").glob("*/index.html")
    assert html.escape(twin.shaping["cpu"]) in page.read_text(), page
    print("\n" + shown)


# ----------------------------------------------------------------------------- 3. out of memory


def test_a_job_over_the_devices_memory_limit_is_reported_as_out_of_memory(fleet, tmp_path, demo_zoo) -> None:
    device = fleet.devices["small-mem"]
    before = cgroups.usage(device.cgroups).oom_kills
    done = run_pytest(["suites/test_memory.py::test_memory[small-mem-tiny_cnn-fp32]", "--target=small-mem",
                       f"--targets-dir={fleet.targets_dir}"], tmp_path / "out")
    assert done.returncode == 1, _shown(done)
    pattern = r"small-mem: out-of-memory: out of memory at (runtime import|model load|inference) \(memory limit 96 MiB\)"
    assert re.search(pattern, done.stdout), _shown(done)
    assert "Traceback" not in done.stdout
    _, _, measured = records(tmp_path / "out")
    (record,) = measured
    assert record.status == "error" and re.search(pattern, record.meta["error"]), record.meta
    assert cgroups.usage(device.cgroups).oom_kills > before  # the kernel's OOM killer did it
    assert lab.reachable(device.address, device.port)  # the device itself survives


# ----------------------------------------------------------------------------- 4. push + cache


def test_push_sends_the_file_once_then_the_devices_cache_answers(fleet, tmp_path) -> None:
    model = tmp_path / "model.onnx"
    model.write_bytes(os.urandom(3_000_017))
    target = _target(fleet, "jetson-nano")
    first = Device(target)
    try:
        remote = first.push_model_files({"model": str(model)})["model"]
        assert first.cache.stats.bytes_sent == model.stat().st_size
        assert first.cache.stats.files_sent == 1 and first.cache.stats.cache_hits == 0
        assert first.transport.bytes_sent == model.stat().st_size  # over SFTP, nothing else
    finally:
        first.close()
    home = fleet.devices["jetson-nano"].home
    assert remote == f"{home}/harness-work/cache/{sha256_file(model)}/model.onnx"
    assert Path(remote).read_bytes() == model.read_bytes()  # the device's home is visible from the host
    second = Device(target)  # a new session: new transport, new ContentCache
    try:
        assert second.push_model_files({"model": str(model)})["model"] == remote
        assert second.cache.stats.bytes_sent == 0 and second.cache.stats.files_sent == 0
        assert second.cache.stats.cache_hits == 1 and second.transport.bytes_sent == 0
        assert second.transport.remote_sha256(remote) == sha256_file(model)
    finally:
        second.close()


def test_a_push_whose_hash_does_not_match_on_the_device_is_refused(fleet, tmp_path) -> None:
    model = tmp_path / "weights.bin"
    model.write_bytes(os.urandom(200_003))
    target = _target(fleet, "edge-cpu")
    transport = CorruptingSSHTransport(target, known_hosts_path=Path(fleet.known_hosts))
    try:
        with pytest.raises(TransportError) as caught:
            ContentCache(transport).push_file(model)
    finally:
        transport.close()
    message = str(caught.value)
    assert message.startswith("edge-cpu: upload of weights.bin corrupted") and sha256_file(model)[:12] in message
    cached = Path(fleet.devices["edge-cpu"].home, "harness-work", "cache", sha256_file(model))
    assert not cached.exists() or not os.listdir(cached)


# ----------------------------------------------------------------------------- 5. host keys


def _fingerprint(line: str) -> str:
    blob = base64.b64decode(next(word for word in line.split() if word.startswith("AAAA")))
    return "SHA256:" + base64.b64encode(hashlib.sha256(blob).digest()).decode().rstrip("=")


def test_a_devices_changed_host_key_is_refused_with_both_fingerprints(fleet, tmp_path) -> None:
    device = fleet.devices["slow-link"]
    impostor = Path(f"{generate_key(tmp_path / 'impostor')}.pub").read_text()
    known = tmp_path / "known_hosts"
    lines = Path(fleet.known_hosts).read_text().splitlines()
    real_line = next(line for line in lines if line.split()[0] == device.address)
    number = lines.index(real_line) + 1
    lines[number - 1] = f"{device.address} {impostor.split()[0]} {impostor.split()[1]}"
    known.write_text("\n".join(lines) + "\n")
    transport = SSHTransport(_target(fleet, "slow-link"), known_hosts_path=known)
    with pytest.raises(TransportError) as caught:
        transport.run(["true"])
    transport.close()
    message = str(caught.value)
    assert message.startswith(f"slow-link: HOST KEY CHANGED for {device.address}"), message
    assert _fingerprint(real_line) in message and _fingerprint(impostor) in message
    assert f"{known}:{number}" in message and f"remove line {number}" in message
    # the other devices' lines in the same file still verify
    other = SSHTransport(_target(fleet, "edge-cpu"), known_hosts_path=known)
    try:
        assert other.run(["true"]).returncode == 0
    finally:
        other.close()


# ----------------------------------------------------------------------------- 6. device lock


def test_two_orchestrators_on_one_device_wait_or_give_up_naming_the_holder(fleet, tmp_path) -> None:
    check_two_orchestrators_on_one_device(fleet, "edge-cpu", tmp_path)


def test_a_killed_orchestrator_does_not_leave_the_device_locked(fleet, tmp_path) -> None:
    check_a_killed_orchestrator_leaves_no_lock(fleet, "edge-cpu", tmp_path)


# ----------------------------------------------------------------------------- 7. fleet run


def test_three_devices_in_parallel_make_one_run_one_worker_per_device(fleet, tmp_path) -> None:
    manifest = noop_manifest(tmp_path / "noop.yaml", variants=4, duration="0.1s")
    done = run_pytest(["suites/test_latency.py", "-n", "3", f"--target={','.join(FLEET)}",
                       f"--targets-dir={fleet.targets_dir}", f"--manifest={manifest}"], tmp_path / "out")
    assert done.returncode == 0, _shown(done)
    store, runs, measured = records(tmp_path / "out")
    assert len(runs) == 1 and runs[0].status == "complete"
    assert len(measured) == 4 * len(FLEET) and all(m.status == "ok" for m in measured)
    workers = {}
    for m in measured:
        workers.setdefault(m.target, set()).add(m.meta["orchestrator"]["worker"])
    assert set(workers) == set(FLEET)
    assert all(len(w) == 1 and None not in w for w in workers.values()), workers
    assert set(store.environments(runs[0].id)) == set(FLEET)
    assert "12 measurement(s)" in done.stdout


def test_paired_jobs_on_two_devices_one_on_the_slowed_link(fleet, tmp_path) -> None:
    """-n 2 over SSH: every variant with a baseline is timed interleaved with it on its own
    device; the slowed link (20 Mbit/s) changes nothing the device measures."""
    variants = {"base": {"kind": "fp32", "format": "none", "runtime": "noop", "runtime_options": {"spin_us": 500}},
                "more": {"kind": "other", "format": "none", "runtime": "noop", "baseline": "base",
                         "runtime_options": {"spin_us": 550}}}
    manifest = write_manifest(tmp_path / "paired.yaml", {"spin": {"input": NOOP_INPUT, "variants": variants}},
                              latency={**QUICK_LATENCY, "warmup_iterations": 5, "paired_rounds": 30})
    done = run_pytest(["suites/test_latency.py", "-n", "2", "--target=edge-cpu,slow-link",
                       f"--targets-dir={fleet.targets_dir}", f"--manifest={manifest}"], tmp_path / "out")
    assert done.returncode == 0, _shown(done)
    store, runs, measured = records(tmp_path / "out")
    more = {m.target: m for m in measured if m.variant == "more"}
    assert set(more) == {"edge-cpu", "slow-link"}
    for target, record in more.items():
        paired = record.meta["paired"]
        assert paired["paired"] and paired["rounds"] == 30 and paired["stopped_by"] == "rounds", (target, paired)
        assert record.meta["orchestrator"]["worker"] is not None
        (ratio,) = paired["ratios"]
        assert ratio["against"] == "base" and ratio["ci95"][0] <= ratio["ratio"] <= ratio["ci95"][1]
    assert len({m.meta["orchestrator"]["worker"] for m in more.values()}) == 2


# ----------------------------------------------------------------------------- 8. power


def test_power_suite_on_the_twin_reads_the_simulated_ina3221(fleet, tmp_path, demo_zoo) -> None:
    tests = [f"suites/test_power.py::test_power[jetson-nano-{v}]" for v in ("tiny_cnn-onnx", "mobilenet_v3_small-onnx")]
    done = run_pytest([*tests, "--target=jetson-nano", f"--targets-dir={fleet.targets_dir}"], tmp_path / "out")
    assert done.returncode == 0, _shown(done)
    _, _, measured = records(tmp_path / "out")
    power = {m.model: m.summary for m in measured}
    assert set(power) == {"tiny_cnn", "mobilenet_v3_small"}, _shown(done)
    for model, summary in power.items():
        assert summary["status"] == "ok", (model, summary)
        assert summary["sensor"] == "ina3221" and summary["total_rail"] == "POM_5V_IN"
        assert summary["estimated"] is False and summary["label"] == "measured"
        assert summary["load_mean_w"] > summary["idle_mean_w"], summary
    tiny, heavy = power["tiny_cnn"]["energy_per_inference_mj"], power["mobilenet_v3_small"]["energy_per_inference_mj"]
    assert heavy > tiny > 0, (tiny, heavy)
    print(f"\nenergy per inference on the twin: tiny_cnn {tiny:.3f} mJ, mobilenet_v3_small {heavy:.3f} mJ "
          f"(load {power['mobilenet_v3_small']['load_mean_w']:.3f} W, idle {power['mobilenet_v3_small']['idle_mean_w']:.3f} W)")


def test_the_twin_counts_the_held_out_digits_like_the_build_and_the_report_tables_them(fleet, tmp_path,
                                                                                         demo_zoo) -> None:
    """The ONNX variants on the Python 3.6 twin: top-1 on the 360 held-out digits counted there
    equals the build's count for the same file; the report's technique table shows them."""
    variants = [f"jetson-nano-{m}-{v}" for m in ("tiny_cnn", "mobilenet_v3_small") for v in ("onnx", "onnx_int8")]
    tests = [f"suites/{suite}.py::{suite}[{v}]" for suite in ("test_latency", "test_memory", "test_fidelity")
             for v in variants]
    done = run_pytest([*tests, "--target=jetson-nano", f"--targets-dir={fleet.targets_dir}"], tmp_path / "out")
    assert done.returncode in (0, 1), _shown(done)  # a latency budget may be missed on half a core
    _, _, measured = records(tmp_path / "out")
    fidelity = {m.variant_id: m for m in measured if m.metric == "fidelity"}
    assert len(fidelity) == 4, _shown(done)
    for variant_id, record in fidelity.items():
        assert record.status == "ok", (variant_id, record.meta.get("error"))
        assert record.meta["agent"]["python"].startswith("3.6.")
        model, variant = variant_id.split("-")
        info = json.loads((demo_zoo / model / "build-info.json").read_text())
        built = info["variants"][variant.replace("_", "-")]["task_accuracy"]
        accuracy = record.summary["accuracy"]
        assert accuracy["count"] == built["count"] == 360
        print(f"\n{variant_id}: twin {accuracy['correct']}/360 (onnxruntime {record.meta['runtime_info']['version']}),"
              f" build {built['correct']}/360 (onnxruntime {built['runtime_version']})")
        assert accuracy["correct"] == built["correct"], (variant_id, accuracy, built)
    # onnx's baseline (Paddle fp32) cannot run on the twin: measured alone, said so
    assert "needs the 'paddle-inference' runtime" in fidelity["tiny_cnn-onnx"].summary["baseline_not_run"]
    assert fidelity["mobilenet_v3_small-onnx_int8"].summary["accuracy"]["change_points"] is not None
    report = json.loads(next((tmp_path / "out" / "reports").glob("*/report.json")).read_text())
    (target,) = report["targets"]
    rows = {(r["model"], r["variant"]): r for r in target["techniques"]}
    int8 = rows[("mobilenet_v3_small", "onnx_int8")]
    assert int8["root"] == "onnx" and int8["size_ratio"] > 2 and int8["speedup"] and int8["peak_rss_bytes"]
    for row in target["techniques"]:
        print(f"twin table: {row['model']}-{row['variant']}: {row['size_ratio'] or 1:.2f}x smaller, top-1 "
              f"{row['top1'] * 100:.1f}% ({row['correct']}/{row['count']}), change {row['change_points']}, "
              f"speed-up {row['speedup']}, peak {row['peak_rss_bytes']}")


# ----------------------------------------------------------------------------- 9. unreachable


def test_unreachable_devices_fail_their_own_tests_and_the_rest_pass(fleet, tmp_path) -> None:
    refused, silent = fleet.devices["slow-link"], fleet.devices["edge-cpu"]
    manifest = noop_manifest(tmp_path / "noop.yaml", variants=1)
    try:
        lab.stop_sshd(fleet.state_dir, "slow-link")  # on the network, nothing listening: refused
        if fleet.mode == "netns":
            network.blackhole(silent.link)  # unplugged: no answer at all
        done = run_pytest(["suites/test_latency.py", f"--target={','.join(FLEET)}",
                           f"--targets-dir={fleet.targets_dir}", f"--manifest={manifest}"], tmp_path / "out")
    finally:
        network.clear_faults(silent.link)
        lab.up(fleet.state_dir, FLEET_SPEC, devices=["slow-link"], progress=lambda line: None)
    cases = junit_cases(tmp_path / "out")
    seconds, message = cases["test_latency[slow-link-noop-v0]"]
    assert f"slow-link: unreachable: {refused.address}:{refused.port} (connection refused" in message, message
    timeout = _target(fleet, "slow-link").connection.connect_timeout_s
    assert seconds < timeout, f"a refused connection took {seconds:.1f}s: it must not wait for the {timeout:g}s timeout"
    shown = [f"slow-link refused: {seconds:.2f}s"]
    if fleet.mode == "netns":
        silent_seconds, silent_message = cases["test_latency[edge-cpu-noop-v0]"]
        assert (f"edge-cpu: unreachable: {silent.address}:{silent.port} (no answer within {timeout:g}s"
                in silent_message), silent_message
        shown.append(f"edge-cpu blackholed: {silent_seconds:.2f}s")
    assert cases["test_latency[jetson-nano-noop-v0]"][1] == "", cases
    _, _, measured = records(tmp_path / "out")
    assert [(m.target, m.status) for m in measured if m.status == "ok"] == [("jetson-nano", "ok")], _shown(done)
    assert done.returncode == 1
    # the lab put back what it took: the devices answer again
    assert lab.reachable(refused.address, refused.port) and lab.reachable(silent.address, silent.port)
    print("\ntime to fail an unreachable device's test: " + ", ".join(shown))


# ----------------------------------------------------------------------------- up again, down (last)


def test_up_again_keeps_the_sensor_and_down_stops_everything(fleet) -> None:
    lines: list[str] = []
    again = lab.up(fleet.state_dir, FLEET_SPEC, progress=lines.append, install=True)
    nano = again.devices["jetson-nano"]
    assert nano.power_pid == fleet.devices["jetson-nano"].power_pid
    assert any(f"power: simulated INA3221 kept: its daemon (pid {nano.power_pid}) is up" in line for line in lines)
    assert lab.leftovers(FLEET_SPEC, fleet.state_dir) != []
    lab.down(fleet.state_dir, progress=lambda line: None, spec=FLEET_SPEC)
    assert lab.leftovers(FLEET_SPEC, fleet.state_dir) == []
    assert not cmdline(nano.power_pid) or b"sensors.simulated" not in cmdline(nano.power_pid)
