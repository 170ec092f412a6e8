"""`up`: bring a lab spec's devices up, one after the other, and write their target files.

Each device goes through five numbered steps (``lab: <device> [n/5] <what>: <detail>``):
image, user, cgroups, network, sshd; then its simulated power sensor, if it has one. A device
of less than one core has its CFS period chosen by a calibration run (`harness.lab.shaping`)
before its sshd starts.
"""

from __future__ import annotations

import os
import stat
import time
from pathlib import Path

from harness.config.targets import TARGETS_DIR_ENV
from harness.lab import cgroups, network, shaping
from harness.lab.chroot import prepare_chroot
from harness.lab.device_sshd import device_server, sshd_alive
from harness.lab.devices import DEFAULT_LAB, HOST_VENV_PYTHON, DeviceSpec, LabSpec
from harness.lab.images import BuiltEnv, build_env
from harness.lab.labgrid_places import ensure_labgrid
from harness.lab.plan import choose_network_mode, new_state, plan_device
from harness.lab.power_daemon import ensure_power
from harness.lab.progress import Progress, format_size
from harness.lab.rootfs import build_rootfs, ensure_binfmt
from harness.lab.sshd import LabError, generate_key
from harness.lab.state import DEFAULT_STATE_DIR, DeviceState, LabState, default_cache_dir, lab_state_dir
from harness.lab.target_files import write_targets
from harness.lab.users import ensure_home_mount, ensure_user


def up(state_dir: Path | str = DEFAULT_STATE_DIR, spec: LabSpec = DEFAULT_LAB, progress: Progress = print, *,
       devices: list[str] | tuple[str, ...] | None = None, install: bool = True, cache_dir: Path | None = None,
       network_mode: str = "auto", labgrid: bool = False) -> LabState:
    """Bring the lab's devices up (all of ``spec`` or the named ones); idempotent.

    ``install=False`` skips package installs for images not cached yet (their devices get a
    bare interpreter and no runtime that needs the packages). ``network_mode``: ``auto``
    (namespaces, else loopback), ``netns`` or ``loopback``. ``labgrid``: also a labgrid
    coordinator, exporter and one place per device, and target files that reach the devices
    through them (kept by a later `up` until `down`). Raises LabError; what was made before a
    failure is in the state file, so `down` removes it.
    """
    started = time.monotonic()
    if os.geteuid() != 0:
        raise LabError("the lab needs root (users, cgroups, mounts, network namespaces): run it as root")
    ok, reason = cgroups.available()
    if not ok:
        raise LabError(f"the lab needs cgroup v1: {reason}")
    state_dir = Path(state_dir).resolve()
    cache_dir = Path(cache_dir) if cache_dir else default_cache_dir()
    selected = spec.select(devices)
    for path in (state_dir, cache_dir, Path(HOST_VENV_PYTHON).parent):
        _ensure_traversable(path, progress)
    _make_dirs(state_dir)
    state = LabState.load(state_dir)
    if state is not None and state.prefix != spec.prefix:
        raise LabError(f"{state.state_file} holds a lab with prefix {state.prefix!r}, not {spec.prefix!r}: "
                       "take it down first (harness lab down)")
    if state is None:
        mode, reason = choose_network_mode(network_mode, spec.prefix)
        state = new_state(state_dir, spec, mode, reason)
    if state.mode == "netns":
        progress(f"lab: network: namespaces {spec.prefix}-<device> on bridge {state.bridge} {spec.subnet}")
    else:
        progress(f"lab: FALLBACK network mode: {state.mode_reason}: every device's sshd listens on its own "
                 "127.0.0.1 port; no per-device address, no link rate limits")
    progress(f"lab: {len(selected)} device(s) in {state_dir}: {', '.join(d.name for d in selected)}")
    generate_key(Path(state.client_key), comment="harness-lab-client")

    for device in selected:
        planned = plan_device(state, spec, device, state.devices.get(device.name))
        state.devices[device.name] = planned
        state.save()  # recorded before anything is made, so down() can undo a half-made device
        _bring_up(state, spec, device, planned, cache_dir, install, progress)
        state.save()

    if labgrid or state.labgrid:
        ensure_labgrid(state, progress)
    write_targets(state, spec)
    state.up_seconds = round(time.monotonic() - started, 2)
    state.save()
    progress(f"lab: up in {state.up_seconds:.1f}s; targets in {state.targets_dir} "
             f"(pytest suites/ --targets-dir {state.targets_dir} --target=NAME; "
             f"ssh -F {state.ssh_config} NAME)")
    if Path(state.state_dir) == lab_state_dir():  # the lab the suites look for by name
        progress(f"lab: while it is up, `pytest suites/ --target=NAME` finds its devices without --targets-dir; "
                 f"for `harness targets ...`: export {TARGETS_DIR_ENV}={state.targets_dir}")
    if state.mode != "netns":
        progress("lab: NOTE: running in FALLBACK loopback mode (see above)")
    return state


def _ensure_traversable(path: Path, progress: Progress) -> None:
    """Device users log in as themselves and must reach the interpreters and keys the lab
    points them at: give every ancestor directory search permission (o+x) where it lacks it,
    and say so (a checkout under a 0700 temp dir, as CI and fresh clones make, lacks it)."""
    for directory in reversed(Path(path).resolve().parents):
        try:
            mode = directory.stat().st_mode
        except OSError:
            continue
        if not mode & stat.S_IXOTH:
            os.chmod(directory, mode | stat.S_IXOTH)
            progress(f"lab: made {directory} searchable by other users (o+x) so device users reach "
                     "the lab's interpreters and keys")


def _make_dirs(state_dir: Path) -> None:
    """World-traversable: sshd reads AuthorizedKeysFile as the device user; devices run
    interpreters from the cache."""
    for directory in (state_dir, state_dir / "devices", state_dir / "targets", state_dir / "keys"):
        directory.mkdir(parents=True, exist_ok=True)
        os.chmod(directory, 0o755)
    os.chmod(state_dir / "keys", 0o700)


class _Steps:
    """A device's numbered progress lines (``[n/5]``), and unnumbered notes within a step."""

    def __init__(self, name: str, progress: Progress) -> None:
        self.name, self.progress, self.count = name, progress, 0

    def __call__(self, what: str, detail: str) -> None:
        self.count += 1
        self.progress(f"lab: {self.name} [{self.count}/5] {what}: {detail}")

    def note(self, what: str, detail: str) -> None:
        """A line within the current step (not counted)."""
        self.progress(f"lab: {self.name}       {what}: {detail}")


def _bring_up(state: LabState, spec: LabSpec, device: DeviceSpec, planned: DeviceState, cache_dir: Path,
              install: bool, progress: Progress) -> None:
    """Make (or find already made) everything of one device; ``planned`` is filled in as it goes."""
    name = device.name
    step = _Steps(name, progress)
    if device.rootfs is not None:
        step("image", f"{device.rootfs.arch} root filesystem ({device.rootfs.suite}) run by qemu-user; "
                      f"interpreter {device.python.base} inside it")
        ensure_binfmt(device.rootfs, progress)  # registrations do not survive a reboot
        planned.rootfs = str(build_rootfs(device.rootfs, cache_dir, progress))
        built: dict[str, BuiltEnv] = {}
        planned.python = device.python.base
        planned.runtimes = {}  # installed on the device by `harness targets setup` (its target file's setup)
        planned.images_complete = True
    else:
        step("image", f"interpreters: {', '.join(e.name for e in device.envs())}")
        built = {env.name: build_env(env, cache_dir, progress, install=install) for env in device.envs()}
        planned.python = built[device.python.name].python
        planned.runtimes = {runtime: built[env.name].python for runtime, env in device.runtimes.items()
                            if built[env.name].complete}
        planned.images_complete = all(b.complete for b in built.values())

    step("user", f"{planned.user}, home {planned.home} on a {format_size(device.disk_size)} tmpfs"
         + (f", seen in its root filesystem at {planned.chroot}" if planned.chroot else ""))
    uid, gid = ensure_user(planned.user, name)
    ensure_home_mount(planned, uid, gid, spec.prefix)
    if planned.rootfs is not None:
        prepare_chroot(planned, uid, gid)

    step("cgroups", f"{_cpu_text(device)}, {format_size(device.memory_limit)} memory (+swap), "
                    f"cpuacct {planned.cgroups.cpuacct_usage_path}")
    cgroups.create(planned.cgroups, device.memory_limit)
    _shape_cpu(planned, device, step)

    device_dir = Path(planned.device_dir)
    for directory in (device_dir, device_dir / "power", device_dir / "mnt"):
        directory.mkdir(parents=True, exist_ok=True)
        os.chmod(directory, 0o755)
    keys = device_dir / "authorized_keys"
    keys.write_text(Path(state.client_key + ".pub").read_text())
    os.chmod(keys, 0o644)

    if state.mode == "netns":
        assert state.bridge
        gateway, _, prefixlen = network.addresses(spec.subnet, 0)
        rate = f", link {device.link_rate} (tbf)" if device.link_rate else ""
        step("network", f"netns {planned.netns}, {planned.address}/{prefixlen} via {planned.link.veth} "
                        f"on {state.bridge}{rate}")
        network.ensure_bridge(state.bridge, gateway, prefixlen)
        network.ensure_link(planned.link, state.bridge)
    else:
        step("network", f"loopback 127.0.0.1:{planned.port}" + (" (link rate NOT applied)" if device.link_rate else ""))

    if sshd_alive(planned):
        step("sshd", f"already running (pid {planned.sshd_pid}) on {planned.address}:{planned.port}")
    else:
        step("sshd", f"starting on {planned.address}:{planned.port}")
        server = device_server(state, planned, built)
        server.start()
        assert server.process is not None
        planned.sshd_pid = server.process.pid
        if planned.sshd_pid not in cgroups.pids(planned.cgroups):
            raise LabError(f"{name}: sshd (pid {planned.sshd_pid}) did not join its cgroups; see {server.log_path}")
    if planned.simulated_power:
        ensure_power(state, planned, progress)


def _cpu_text(device: DeviceSpec) -> str:
    if device.cpu_quota is None:
        return "unlimited CPU"
    if device.cpu_quota < 1:
        return f"{device.cpu_quota:g} core (CFS period calibrated below)"
    return f"{device.cpu_quota:g} core(s) (CFS quota over {device.cpu_period_us / 1000:g} ms)"


def _shape_cpu(planned: DeviceState, device: DeviceSpec, step: _Steps) -> None:
    """Set the device's CPU quota; calibrate its period when it has less than one core.

    A device already up with a calibration for the same quota keeps it: its sessions may be
    running jobs, which a calibration would disturb (and be disturbed by)."""
    cores = device.cpu_quota
    if cores is None or cores >= 1:
        shaping.set_cpu_period(planned.cgroups, cores, device.cpu_period_us)
        planned.cpu_period_us = device.cpu_period_us if cores is not None else None
        planned.shaping = None
        return
    previous = shaping.CpuShaping.from_dict(planned.shaping) if planned.shaping else None
    if previous is not None and previous.cores == cores and sshd_alive(planned):
        shaping.set_cpu_period(planned.cgroups, cores, previous.period_us)
        planned.cpu_period_us = previous.period_us
        step.note("cpu", f"{previous.mechanism}, kept from the calibration of {previous.calibrated_at}")
        return
    if sshd_alive(planned):
        step.note("cpu", "NOTE: calibrating while the device's sshd runs: its sessions may disturb the figures")
    measured = shaping.calibrate(planned.cgroups, cores, lambda line: step.note("cpu", line))
    planned.cpu_period_us = measured.period_us
    planned.shaping = measured.to_dict()


__all__ = ["up"]
