"""`up`, `down` and `status` of the simulated device lab.

Each device of a `LabSpec` becomes, on this machine (root needed):

- a login user ``<prefix>-<device>`` (``useradd -m``, password ``*``) whose home is a tmpfs of
  the device's disk size: "disk full" happens per device;
- cgroups (cpu quota, memory limit, cpuacct) — see `harness.lab.cgroups`;
- a network namespace with its own address on the lab bridge (or a loopback port when
  namespaces cannot be made) and an optional link rate — see `harness.lab.network`;
- its own OpenSSH server (own host key, AuthorizedKeysFile in the state dir holding the lab's
  client key, ``AllowUsers`` = the device's user). Before it execs, the server joins the
  device's cgroups and gets a private mount view where ``/root`` is an empty tmpfs with only
  the directories the device's interpreters live in (e.g. ``/root/.pyenv``) bound in read-only:
  the interpreters are reachable for the device user without opening up root's home;
- its interpreters (`harness.lab.images.build_env`: cached virtual environments built on the
  host, the device's "vendor image"), a ``power`` directory for a simulated sensor, and a
  target file;
- for a device whose power sensor the lab simulates (``ina3221``, see
  `harness.lab.devices.SIMULATED_SENSORS`): a daemon on the host, ``<host venv python> -m
  harness.agent.sensors.simulated <power root> <device cpuacct.usage>`` (PYTHONPATH = the repo),
  that keeps a Jetson Nano INA3221 sysfs tree (JetPack 4 iio layout) under ``power/`` following
  the device's cgroup CPU usage; it runs outside the device's cgroups (a real sensor costs the
  board no CPU), its pid is in the state file, its log in ``devices/<name>/power.log``, and the
  tree is world-readable so the device user's agent reads it (the target file says
  ``power: {sensor: ina3221, options: {root: <power root>}}``).

A device of less than one core has its CFS period chosen by a calibration run before its sshd
starts (`harness.lab.shaping`): what the quota does to per-inference latency is measured, kept
in the state file, and stated in the target file's ``shaping:`` and in `status`.

State dir layout (default ``.harness/lab`` in the repo)::

    state.json                   what is up: enough for `down` / `status` from a fresh process
    keys/lab_ed25519[.pub]       the client key every device authorises (kept across downs)
    devices/<name>/sshd/         sshd_config, host key (kept: host keys stay stable), log
    devices/<name>/authorized_keys
    devices/<name>/power/        root of the device's simulated power sensor (sys/bus/i2c/...)
    devices/<name>/power.log     the simulated sensor daemon's log
    targets/<name>.yaml          one target file per device (for --targets-dir)
    targets/known_hosts          the devices' host keys (strict host key checking)
    targets/ssh_config           Host entries for plain ssh: ssh -F targets/ssh_config <name>

Built interpreter images and their wheels are cached in the *default* state dir's ``cache/``
(`default_cache_dir`), shared by every lab of this checkout and kept across downs.

`down` removes every process, namespace, veth, bridge, cgroup, mount, user and nft table the
lab made, plus the target files and the state file; keys, host keys and the image cache stay.
"""

from __future__ import annotations

import datetime
import json
import os
import pwd
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import stat
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

import yaml

from harness.lab import cgroups, network, shaping
from harness.lab.cgroups import CgroupUsage, DeviceCgroups
from harness.lab.devices import DEFAULT_LAB, HOST_VENV_PYTHON, REPO, SIMULATED_SENSORS, WITH_ARM_LAB, DeviceSpec, LabSpec
from harness.lab.images import BuiltEnv, build_env
from harness.lab.network import LinkPlan
from harness.lab.rootfs import build_rootfs, ensure_binfmt
from harness.lab.sshd import SSHD, LabError, SshdServer, free_port, generate_key

STATE_VERSION = 1
CHROOT_VIEWS = Path("/run/harness-lab")
"""Where a device with its own root filesystem sees it: ``<this>/<prefix>-<device>``, the
path its sshd's ChrootDirectory names. sshd requires every component of that path to be
root-owned and not writable by others, which a checkout under /tmp (mode 1777) is not; the
root filesystem is bind-mounted here inside the device's own mount namespace only."""
DEFAULT_STATE_DIR = REPO / ".harness" / "lab"
Progress = Callable[[str], None]
NETWORK_MODES = ("auto", "netns", "loopback")
NETWORK_ENV = "HARNESS_LAB_NETWORK"
"""Set to ``loopback`` to force the fallback mode (or ``netns`` to refuse it)."""


def default_cache_dir() -> Path:
    """Images are cached in the default lab's state dir, shared by every lab on this checkout."""
    return DEFAULT_STATE_DIR / "cache"


LIVE_FIELDS = ("sshd_alive", "reachable", "usage", "disk_used", "power_alive", "power_mw")


@dataclass
class DeviceState:
    """One device as it was brought up, plus live facts filled in by `status`."""

    name: str
    kind: str
    user: str
    home: str
    link: LinkPlan
    cgroups: DeviceCgroups
    cpu_quota: float | None
    memory_limit: int
    disk_size: int
    link_rate: str | None
    device_dir: str
    power_root: str
    target_file: str
    python: str = ""
    runtimes: dict[str, str] = field(default_factory=dict)
    images_complete: bool = True
    sshd_pid: int | None = None
    power_sensor: str = "none"
    power_pid: int | None = None  # the simulated sensor's daemon (devices in SIMULATED_SENSORS)
    cpu_period_us: int | None = None
    shaping: dict[str, Any] | None = None  # a `shaping.CpuShaping`, as measured at up (devices under one core)
    arch: str = "x86_64"
    rootfs: str | None = None  # host path of the device's own root filesystem (emulated arch)
    chroot: str | None = None  # where its sessions are chrooted (see CHROOT_VIEWS)
    # live, from status()
    sshd_alive: bool | None = None
    reachable: bool | None = None
    usage: CgroupUsage | None = None
    disk_used: int | None = None
    power_alive: bool | None = None
    power_mw: int | None = None  # the simulated sensor's total rail now

    @property
    def simulated_power(self) -> bool:
        return self.power_sensor in SIMULATED_SENSORS

    @property
    def address(self) -> str:
        return self.link.address

    @property
    def port(self) -> int:
        return self.link.port

    @property
    def netns(self) -> str | None:
        return self.link.netns

    @property
    def ssh_alias(self) -> str:
        return self.user

    def to_dict(self) -> dict[str, Any]:
        data = {k: v for k, v in asdict(self).items() if k not in LIVE_FIELDS}
        data["link"] = self.link.to_dict()
        data["cgroups"] = self.cgroups.to_dict()
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "DeviceState":
        data = dict(data)
        data["link"] = LinkPlan.from_dict(data["link"])
        data["cgroups"] = DeviceCgroups.from_dict(data["cgroups"])
        return cls(**data)


@dataclass
class LabState:
    """The lab in one state dir. ``mode`` is ``netns`` or ``loopback`` (the fallback)."""

    state_dir: str
    prefix: str
    subnet: str
    cgroup_parent: str
    mode: str
    mode_reason: str
    bridge: str | None
    client_key: str
    targets_dir: str
    known_hosts: str
    ssh_config: str
    devices: dict[str, DeviceState] = field(default_factory=dict)
    up_seconds: float | None = None

    @property
    def state_file(self) -> Path:
        return Path(self.state_dir) / "state.json"

    def device(self, name: str) -> DeviceState:
        if name not in self.devices:
            raise LabError(f"device {name!r} is not up in {self.state_dir}; up: {', '.join(self.devices) or 'none'}")
        return self.devices[name]

    def to_dict(self) -> dict[str, Any]:
        data = {k: v for k, v in asdict(self).items() if k != "devices"}
        data["version"] = STATE_VERSION
        data["devices"] = {name: device.to_dict() for name, device in self.devices.items()}
        return data

    def save(self) -> None:
        tmp = self.state_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.to_dict(), indent=2) + "\n")
        os.replace(tmp, self.state_file)

    @classmethod
    def load(cls, state_dir: Path) -> "LabState | None":
        path = Path(state_dir) / "state.json"
        if not path.exists():
            return None
        data = json.loads(path.read_text())
        if data.pop("version", None) != STATE_VERSION:
            raise LabError(f"{path}: written by another version of the lab; remove what it lists by hand")
        devices = {name: DeviceState.from_dict(d) for name, d in data.pop("devices").items()}
        return cls(**data, devices=devices)


# ---------------------------------------------------------------------------------------------
# up
# ---------------------------------------------------------------------------------------------


def _new_state(state_dir: Path, spec: LabSpec, mode: str, reason: str) -> LabState:
    targets = state_dir / "targets"
    return LabState(
        state_dir=str(state_dir), prefix=spec.prefix, subnet=spec.subnet, cgroup_parent=spec.cgroup_parent,
        mode=mode, mode_reason=reason, bridge=f"{spec.prefix}0" if mode == "netns" else None,
        client_key=str(state_dir / "keys" / "lab_ed25519"), targets_dir=str(targets),
        known_hosts=str(targets / "known_hosts"), ssh_config=str(targets / "ssh_config"),
    )


def _plan_device(state: LabState, spec: LabSpec, device: DeviceSpec, previous: DeviceState | None) -> DeviceState:
    user = f"{spec.prefix}-{device.name}"
    if state.mode == "netns":
        link = network.namespace_plan(spec.prefix, spec.subnet, spec.index(device.name), device.name, device.link_rate)
    else:
        port = previous.link.port if previous else free_port()
        link = network.loopback_plan(spec.prefix, port)
    device_dir = Path(state.state_dir) / "devices" / device.name
    return DeviceState(
        name=device.name, kind=device.kind, user=user, home=f"/home/{user}", link=link,
        cgroups=previous.cgroups if previous else cgroups.plan(spec.cgroup_parent, device.name),
        cpu_quota=device.cpu_quota, memory_limit=device.memory_limit, disk_size=device.disk_size,
        link_rate=device.link_rate if state.mode == "netns" else None,
        device_dir=str(device_dir), power_root=str(device_dir / "power"),
        target_file=str(Path(state.targets_dir) / f"{device.name}.yaml"),
        sshd_pid=previous.sshd_pid if previous else None,
        power_sensor=device.power_sensor,
        power_pid=previous.power_pid if previous else None,
        cpu_period_us=device.cpu_period_us,
        shaping=previous.shaping if previous else None,
        arch=device.arch,
        chroot=str(CHROOT_VIEWS / f"{spec.prefix}-{device.name}") if device.rootfs else None,
    )


def _choose_mode(network_mode: str, prefix: str) -> tuple[str, str]:
    requested = os.environ.get(NETWORK_ENV) or network_mode
    if requested not in NETWORK_MODES:
        raise LabError(f"network mode {requested!r} unknown (from {NETWORK_ENV}?): use one of {', '.join(NETWORK_MODES)}")
    if requested == "loopback":
        return "loopback", "loopback mode requested"
    ok, reason = network.namespaces_available(prefix)
    if ok:
        return "netns", reason
    if requested == "netns":
        raise LabError(f"network namespaces are not available here: {reason}")
    return "loopback", f"network namespaces unavailable ({reason})"


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


def up(state_dir: Path | str = DEFAULT_STATE_DIR, spec: LabSpec = DEFAULT_LAB, progress: Progress = print, *,
       devices: list[str] | tuple[str, ...] | None = None, install: bool = True, cache_dir: Path | None = None,
       network_mode: str = "auto") -> LabState:
    """Bring the lab's devices up (all of ``spec`` or the named ones); idempotent.

    ``install=False`` skips package installs for images not cached yet (their devices get a
    bare interpreter and no runtime that needs the packages). ``network_mode``: ``auto``
    (namespaces, else loopback), ``netns`` or ``loopback``. Raises LabError; what was made
    before a failure is in the state file, so `down` removes it.
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
        mode, reason = _choose_mode(network_mode, spec.prefix)
        state = _new_state(state_dir, spec, mode, reason)
    if state.mode == "netns":
        progress(f"lab: network: namespaces {spec.prefix}-<device> on bridge {state.bridge} {spec.subnet}")
    else:
        progress(f"lab: FALLBACK network mode: {state.mode_reason}: every device's sshd listens on its own "
                 "127.0.0.1 port; no per-device address, no link rate limits")
    progress(f"lab: {len(selected)} device(s) in {state_dir}: {', '.join(d.name for d in selected)}")
    generate_key(Path(state.client_key), comment="harness-lab-client")

    for device in selected:
        planned = _plan_device(state, spec, device, state.devices.get(device.name))
        state.devices[device.name] = planned
        state.save()  # recorded before anything is made, so down() can undo a half-made device
        _bring_up(state, spec, device, planned, cache_dir, install, progress)
        state.save()

    write_targets(state, spec)
    state.up_seconds = round(time.monotonic() - started, 2)
    state.save()
    progress(f"lab: up in {state.up_seconds:.1f}s; targets in {state.targets_dir} "
             f"(pytest suites/ --targets-dir {state.targets_dir} --target=NAME; "
             f"ssh -F {state.ssh_config} NAME)")
    if state.mode != "netns":
        progress("lab: NOTE: running in FALLBACK loopback mode (see above)")
    return state


def _make_dirs(state_dir: Path) -> None:
    """World-traversable: sshd reads AuthorizedKeysFile as the device user; devices run
    interpreters from the cache."""
    for directory in (state_dir, state_dir / "devices", state_dir / "targets", state_dir / "keys"):
        directory.mkdir(parents=True, exist_ok=True)
        os.chmod(directory, 0o755)
    os.chmod(state_dir / "keys", 0o700)


def _bring_up(state: LabState, spec: LabSpec, device: DeviceSpec, planned: DeviceState, cache_dir: Path,
              install: bool, progress: Progress) -> None:
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

    step("user", f"{planned.user}, home {planned.home} on a {_size(device.disk_size)} tmpfs"
         + (f", seen in its root filesystem at {planned.chroot}" if planned.chroot else ""))
    uid, gid = _ensure_user(planned.user, name)
    _ensure_home_mount(planned, uid, gid, spec.prefix)
    if planned.rootfs is not None:
        _prepare_chroot(planned, uid, gid)

    step("cgroups", f"{_cpu_text(device)}, {_size(device.memory_limit)} memory (+swap), "
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

    if _sshd_alive(planned):
        step("sshd", f"already running (pid {planned.sshd_pid}) on {planned.address}:{planned.port}")
    else:
        step("sshd", f"starting on {planned.address}:{planned.port}")
        server = _server(state, planned, built)
        server.start()
        assert server.process is not None
        planned.sshd_pid = server.process.pid
        if planned.sshd_pid not in cgroups.pids(planned.cgroups):
            raise LabError(f"{name}: sshd (pid {planned.sshd_pid}) did not join its cgroups; see {server.log_path}")
    if planned.simulated_power:
        _ensure_power(state, planned, progress)


def _prepare_chroot(device: DeviceState, uid: int, gid: int) -> None:
    """The mount point sshd chroots into, and the passwd/group files the device sees (the root
    filesystem's own plus the device user, so `id` and `pwd.getpwuid` work in there; bind-mounted
    over its /etc, the cached root filesystem itself is never changed)."""
    assert device.chroot and device.rootfs
    CHROOT_VIEWS.mkdir(mode=0o755, parents=True, exist_ok=True)
    os.chmod(CHROOT_VIEWS, 0o755)
    Path(device.chroot).mkdir(mode=0o755, exist_ok=True)
    etc = Path(device.device_dir) / "chroot-etc"
    etc.mkdir(parents=True, exist_ok=True)
    os.chmod(etc, 0o755)
    entries = {"passwd": f"{device.user}:x:{uid}:{gid}:harness lab device {device.name}:{device.home}:/bin/bash",
               "group": f"{device.user}:x:{gid}:"}
    for name, entry in entries.items():
        lines = [line for line in Path(device.rootfs, "etc", name).read_text().splitlines()
                 if not line.startswith(device.user + ":")]
        (etc / name).write_text("\n".join([*lines, entry]) + "\n")
        os.chmod(etc / name, 0o644)


def _chroot_lines(state: LabState, device: DeviceState) -> list[str]:
    """Shell lines (in the device's own mount namespace, before sshd starts) that assemble its
    root filesystem at ``device.chroot``: read-only, with the device's home (its tmpfs "disk"),
    a private /tmp, /proc, /dev and the cgroup hierarchies (under an otherwise empty /sys)."""
    assert device.chroot and device.rootfs
    view, q = device.chroot, shlex.quote
    etc = Path(device.device_dir) / "chroot-etc"
    return [
        f"mount --bind {q(device.rootfs)} {q(view)}",
        f"mount -t proc proc {q(view + '/proc')}",
        f"mount --rbind /dev {q(view + '/dev')}",
        # /sys holds only the cgroup hierarchies: with the host's CPU topology in view (x86 cores,
        # and qemu shows the host's /proc/cpuinfo), onnxruntime's cpuinfo dies with SIGSEGV under qemu
        f"mount -t tmpfs -o mode=0755,size=64k {q(state.prefix + '-sys')} {q(view + '/sys')}",
        f"mkdir -p {q(view + CGROUP_ROOT)}",
        f"mount --rbind {CGROUP_ROOT} {q(view + CGROUP_ROOT)}",
        f"mount -t tmpfs -o mode=0755,size=1m {q(state.prefix + '-home')} {q(view + '/home')}",
        f"mkdir -p {q(view + device.home)}",
        f"mount --bind {q(device.home)} {q(view + device.home)}",
        f"mount -t tmpfs -o mode=1777,size=64m {q(state.prefix + '-tmp')} {q(view + '/tmp')}",
        f"mount --bind {q(str(etc / 'passwd'))} {q(view + '/etc/passwd')}",
        f"mount --bind {q(str(etc / 'group'))} {q(view + '/etc/group')}",
        f"mount -o remount,bind,ro {q(view)}",
    ]


def _cpu_text(device: DeviceSpec) -> str:
    if device.cpu_quota is None:
        return "unlimited CPU"
    if device.cpu_quota < 1:
        return f"{device.cpu_quota:g} core (CFS period calibrated below)"
    return f"{device.cpu_quota:g} core(s) (CFS quota over {device.cpu_period_us / 1000:g} ms)"


def _shape_cpu(planned: DeviceState, device: DeviceSpec, step: "_Steps") -> None:
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
    if previous is not None and previous.cores == cores and _sshd_alive(planned):
        shaping.set_cpu_period(planned.cgroups, cores, previous.period_us)
        planned.cpu_period_us = previous.period_us
        step.note("cpu", f"{previous.mechanism}, kept from the calibration of {previous.calibrated_at}")
        return
    if _sshd_alive(planned):
        step.note("cpu", "NOTE: calibrating while the device's sshd runs: its sessions may disturb the figures")
    measured = shaping.calibrate(planned.cgroups, cores, lambda line: step.note("cpu", line))
    planned.cpu_period_us = measured.period_us
    planned.shaping = measured.to_dict()


# ---------------------------------------------------------------------------------------------
# the simulated power sensor (a daemon on the host per device)
# ---------------------------------------------------------------------------------------------

POWER_START_TIMEOUT_S = 10.0


def _power_argv(device: DeviceState) -> list[str]:
    python = HOST_VENV_PYTHON if os.path.exists(HOST_VENV_PYTHON) else sys.executable
    return [python, "-m", SIMULATED_SENSORS[device.power_sensor], device.power_root,
            device.cgroups.cpuacct_usage_path]


def _power_file(device: DeviceState) -> Path:
    """The total rail's power file of the simulated tree (channel 0 is POM_5V_IN)."""
    from harness.agent.sensors.simulated import IIO_DEVICE

    return Path(device.power_root, IIO_DEVICE.lstrip("/"), "in_power0_input")


def _cmdline(pid: int) -> list[str]:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
        with open(f"/proc/{pid}/stat") as handle:
            if handle.read().rsplit(")", 1)[1].split()[0] == "Z":
                return []
    except (OSError, IndexError):
        return []
    return [part.decode(errors="replace") for part in raw.split(b"\0") if part]


def _is_power_daemon(pid: int, device: DeviceState) -> bool:
    args = _cmdline(pid)
    return len(args) >= 4 and args[1:3] == ["-m", SIMULATED_SENSORS.get(device.power_sensor, "")] \
        and args[3] == device.power_root


def _power_pids(device: DeviceState) -> list[int]:
    """Every simulated-sensor daemon writing this device's tree (the recorded one, or any a
    lost state file forgot)."""
    module = SIMULATED_SENSORS.get(device.power_sensor)
    if module is None:
        return []
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit() and _is_power_daemon(int(entry), device):
            found.append(int(entry))
    return found


def _power_alive(device: DeviceState) -> bool:
    return bool(device.power_pid) and _is_power_daemon(device.power_pid, device)


def _ensure_power(state: LabState, device: DeviceState, progress: Progress) -> None:
    """Start the device's simulated sensor unless it already runs; wait for its first values."""
    label = f"simulated {device.power_sensor.upper()}"
    if _power_alive(device):
        progress(f"lab: {device.name}       power: {label} kept: its daemon (pid {device.power_pid}) is up")
        return
    for pid in _power_pids(device):  # a daemon the state file lost track of
        _kill(pid)
    argv = _power_argv(device)
    log_path = Path(device.device_dir) / "power.log"
    env = {"PATH": os.environ.get("PATH", "/usr/local/bin:/usr/bin:/bin"), "PYTHONPATH": str(REPO),
           "PYTHONDONTWRITEBYTECODE": "1", "LANG": "C.UTF-8"}
    with open(log_path, "ab") as log:
        process = subprocess.Popen(argv, stdout=log, stderr=log, stdin=subprocess.DEVNULL, cwd=str(REPO), env=env,
                                   start_new_session=True, umask=0o022)
    device.power_pid = process.pid
    state.save()  # recorded at once: down() stops it even if the rest of up() fails
    power_file = _power_file(device)
    deadline = time.monotonic() + POWER_START_TIMEOUT_S
    while not power_file.exists():
        if process.poll() is not None or time.monotonic() > deadline:
            if process.poll() is None:
                _kill(process.pid)
            tail = " | ".join(log_path.read_text(errors="replace").strip().splitlines()[-3:])
            raise LabError(f"{device.name}: the {label} daemon did not start ({' '.join(argv)}): {tail}")
        time.sleep(0.05)
    blocked = _unreadable_by_others(power_file)
    if blocked:
        _kill(process.pid)
        raise LabError(f"{device.name}: the device user cannot read its power sensor: {blocked}; put the lab's "
                       "state dir under world-traversable directories")
    progress(f"lab: {device.name}       power: {label} (JetPack 4 iio) under {device.power_root}, following "
             f"{device.cgroups.cpuacct_usage_path} (daemon pid {process.pid}, log {log_path})")


def _unreadable_by_others(path: Path) -> str | None:
    """Why a user other than root could not read ``path`` (None when it can)."""
    if not os.stat(path).st_mode & 0o004:
        return f"{path} is not world-readable"
    for parent in Path(path).parents:
        if not os.stat(parent).st_mode & 0o001:
            return f"{parent} is not world-traversable (mode {oct(os.stat(parent).st_mode & 0o777)})"
    return None


def _kill(pid: int, grace_s: float = 3.0) -> None:
    """SIGTERM, then SIGKILL after ``grace_s``; reaps it when it is our child."""
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + grace_s
    while time.monotonic() < deadline:
        _reap(pid)
        if not _cmdline(pid):
            return
        time.sleep(0.02)
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    _reap(pid)


def _stop_power(device: DeviceState) -> None:
    pids = set(_power_pids(device))
    if device.power_pid and _is_power_daemon(device.power_pid, device):
        pids.add(device.power_pid)
    for pid in pids:
        _kill(pid)
    device.power_pid = None


class _Steps:
    def __init__(self, name: str, progress: Progress) -> None:
        self.name, self.progress, self.count = name, progress, 0

    def __call__(self, what: str, detail: str) -> None:
        self.count += 1
        self.progress(f"lab: {self.name} [{self.count}/5] {what}: {detail}")

    def note(self, what: str, detail: str) -> None:
        """A line within the current step (not counted)."""
        self.progress(f"lab: {self.name}       {what}: {detail}")


def _size(n: int) -> str:
    for unit, factor in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= factor:
            return f"{n / factor:.3g} {unit}"
    return f"{n} B"


def _ensure_user(user: str, device: str) -> tuple[int, int]:
    try:
        entry = pwd.getpwnam(user)
    except KeyError:
        _check(["useradd", "-m", "-s", "/bin/bash", "-c", f"harness lab device {device}", user], f"useradd {user}")
        entry = pwd.getpwnam(user)
    # a locked '!' password is refused by sshd with UsePAM no; '*' allows key logins only
    _check(["usermod", "-p", "*", user], f"usermod {user}")
    return entry.pw_uid, entry.pw_gid


def _mounted(path: str) -> bool:
    with open("/proc/self/mountinfo") as handle:
        return any(line.split()[4] == path for line in handle)


def _ensure_home_mount(device: DeviceState, uid: int, gid: int, prefix: str) -> None:
    options = f"size={device.disk_size},mode=0700,uid={uid},gid={gid}"
    if _mounted(device.home):
        _check(["mount", "-o", f"remount,size={device.disk_size}", device.home], f"remount {device.home}")
    else:
        _check(["mount", "-t", "tmpfs", "-o", options, f"{prefix}-{device.name}", device.home], f"mount {device.home}")


def _check(argv: list[str], what: str) -> str:
    done = subprocess.run(argv, capture_output=True, text=True)
    if done.returncode != 0:
        raise LabError(f"{what} failed: {done.stderr.strip()[-300:]}")
    return done.stdout


def _hidden_roots(paths: list[str]) -> dict[str, set[str]]:
    """For interpreters below a directory others cannot enter (``/root`` is 0700): that
    directory -> its children on the interpreters' paths, to be bound into the device's view."""
    hidden: dict[str, set[str]] = {}
    for path in paths:
        real = os.path.realpath(path)
        parts = Path(real).parts
        for depth in range(1, len(parts) - 1):
            ancestor = os.path.join(*parts[: depth + 1])
            if not os.stat(ancestor).st_mode & 0o001:
                hidden.setdefault(ancestor, set()).add(os.path.join(ancestor, parts[depth + 1]))
                break
    return hidden


CGROUP_ROOT = "/sys/fs/cgroup"


def _cgroup_view_lines(prefix: str) -> list[str]:
    """Shell lines that give a device its /sys/fs/cgroup back, read-only.

    `ip netns exec` mounts a fresh sysfs on /sys, which hides the cgroup hierarchies: the
    device's agent could then not read its own memory limit or OOM counter (a real board
    sees them), and an OOM kill would be reported as a bare SIGKILL with no limit. Mounting a
    v1 hierarchy again with the same controllers gives the same hierarchy, so the paths in
    /proc/self/cgroup resolve as on the host."""
    mounts = []
    with open("/proc/self/mountinfo") as handle:
        for line in handle:
            left, _, right = line.partition(" - ")
            point = left.split()[4]
            fields = right.split()
            if len(fields) < 3 or not (point == CGROUP_ROOT or point.startswith(CGROUP_ROOT + "/")):
                continue
            options = [o for o in fields[2].split(",") if o not in ("rw", "ro")]
            mounts.append((point, fields[0], options))
    if not mounts:
        return []
    mounts.sort(key=lambda mount: len(mount[0]))  # parents first
    lines = [f'if [ -z "$(ls -A {CGROUP_ROOT} 2>/dev/null)" ]; then']
    for point, fstype, options in mounts:
        make = f"mkdir -p {shlex.quote(point)} && " if point != CGROUP_ROOT else ""
        if fstype == "tmpfs":  # the directory holding the hierarchies: read-only once they are mounted
            mount = f"mount -t tmpfs -o mode=0755,size=64k {shlex.quote(prefix + '-cgroup')} {shlex.quote(point)}"
        else:
            mount_options = ",".join(["ro", *(o for o in options if fstype == "cgroup")])
            mount = f"mount -t {shlex.quote(fstype)} -o {shlex.quote(mount_options)} {shlex.quote(fstype)} {shlex.quote(point)}"
        lines.append(f"  {make}{mount} || echo 'lab: cannot mount {point} for the device' >&2")
    if mounts[0][1] == "tmpfs":
        lines.append(f"  mount -o remount,ro {shlex.quote(CGROUP_ROOT)} || true")
    lines.append("fi")
    return lines


def _wrapper(state: LabState, device: DeviceState, built: dict[str, BuiltEnv]) -> tuple[str, ...]:
    """argv prefix for the device's sshd: join the cgroups (before `ip netns exec`, which
    remounts /sys), enter the namespace, hide root's home but keep the interpreters
    reachable, exec sshd."""
    outer = "\n".join(["set -e", *cgroups.attach_commands(device.cgroups), 'exec "$@"'])
    lines = ["set -e"]
    if device.netns:
        lines += _cgroup_view_lines(state.prefix)
    if device.chroot:
        lines += _chroot_lines(state, device)
    hidden = _hidden_roots([b.python for b in built.values()])
    stage_root = Path(device.device_dir) / "mnt"
    for index, (ancestor, children) in enumerate(sorted(hidden.items())):
        stages = []
        for number, child in enumerate(sorted(children)):
            stage = stage_root / f"{index}-{number}"
            stage.mkdir(parents=True, exist_ok=True)
            stages.append((stage, child))
            lines.append(f"mount --bind {shlex.quote(child)} {shlex.quote(str(stage))}")
        lines.append(f"mount -t tmpfs -o size=1m,mode=0755 {shlex.quote(state.prefix + '-mask')} {shlex.quote(ancestor)}")
        for stage, child in stages:
            lines.append(f"mkdir -p {shlex.quote(child)}")
            lines.append(f"mount --move {shlex.quote(str(stage))} {shlex.quote(child)}")
            lines.append(f"mount -o remount,bind,ro {shlex.quote(child)} || true")
    lines.append('exec "$@"')
    # `ip netns exec` gives the server its own (slave) mount namespace; loopback mode asks for one
    enter = ("ip", "netns", "exec", device.netns) if device.netns else ("unshare", "--mount", "--propagation", "slave")
    return ("sh", "-c", outer, f"{state.prefix}-cgroups", *enter,
            "sh", "-c", "\n".join(lines), f"{state.prefix}-device")


def _server(state: LabState, device: DeviceState, built: dict[str, BuiltEnv] | None = None) -> SshdServer:
    chroot = {"ChrootDirectory": device.chroot} if device.chroot else {}
    return SshdServer(
        directory=Path(device.device_dir) / "sshd",
        port=device.port,
        listen_address=device.address,
        authorized_keys=str(Path(device.device_dir) / "authorized_keys"),
        netns=None,  # entered by the wrapper, after the cgroups are joined
        extra_config={"AllowUsers": device.user, "PermitRootLogin": "no", "PrintMotd": "no",
                      "PrintLastLog": "no", "X11Forwarding": "no",
                      # a client that vanished (orchestrator killed, link cut) is dropped within
                      # ~15 s, so what it left running (its device-lock holder) ends with it
                      "ClientAliveInterval": "5", "ClientAliveCountMax": "3", **chroot},
        wrapper=_wrapper(state, device, built or {}),
    )


def _sshd_alive(device: DeviceState) -> bool:
    """The recorded pid is an sshd inside the device's cgroups (not a recycled pid)."""
    pid = device.sshd_pid
    if not pid:
        return False
    try:
        exe = os.readlink(f"/proc/{pid}/exe")
        with open(f"/proc/{pid}/stat") as handle:
            if handle.read().rsplit(")", 1)[1].split()[0] == "Z":
                return False
    except OSError:
        return False
    return exe == SSHD and pid in cgroups.pids(device.cgroups)


# ---------------------------------------------------------------------------------------------
# target files
# ---------------------------------------------------------------------------------------------


def _target_document(state: LabState, device: DeviceState, spec: DeviceSpec | None) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "name": device.name,
        "kind": device.kind,
        "arch": spec.arch if spec else device.arch,
        "emulated": (spec.emulation if spec and spec.emulation else True),
        "description": spec.description if spec else f"lab device {device.name}",
    }
    if device.shaping:
        doc["shaping"] = shaping.CpuShaping.from_dict(device.shaping).target_document()
    elif device.cpu_quota is not None and device.cpu_period_us:
        doc["shaping"] = shaping.whole_core_document(device.cpu_quota, device.cpu_period_us)
    doc.update({
        "connection": {
            "transport": "ssh",
            "host": device.address,
            "port": device.port,
            "user": device.user,
            "key_file": state.client_key,
            "known_hosts": "strict",
            "known_hosts_file": state.known_hosts,
            "connect_timeout": "10s",
        },
        "workdir": spec.workdir if spec else "harness-work",
        "python": device.python,
    })
    if device.runtimes:
        doc["runtimes"] = dict(device.runtimes)
    if spec and spec.setup:
        doc["setup"] = {runtime: list(packages) for runtime, packages in spec.setup.items()}
    power = spec.power_sensor if spec else "none"
    doc["power"] = {"sensor": power, "options": {"root": device.power_root}} if power != "none" else "none"
    doc["tags"] = list(spec.tags) if spec else ["lab"]
    doc["limits"] = {"max_parallel_jobs": 1, "job_timeout": spec.job_timeout if spec else "15min"}
    doc["env_capture"] = {"files": ["/proc/self/cgroup"]}
    return doc


def write_targets(state: LabState, spec: LabSpec) -> None:
    """One target file per device, the devices' host keys and an ssh_config, in targets/."""
    targets = Path(state.targets_dir)
    targets.mkdir(parents=True, exist_ok=True)
    stamp = datetime.datetime.now().isoformat(timespec="seconds")
    known_hosts, config = [], [
        f"# Generated by `harness lab up` at {stamp}; removed by `harness lab down`.",
        f"# Usage: ssh -F {state.ssh_config} <device>   (or {spec.prefix}-<device>)",
        "",
    ]
    names = {d.name: d for d in (*WITH_ARM_LAB.devices, *spec.devices)}  # a later `up` without --with-arm
    for name, device in sorted(state.devices.items()):
        server = _server(state, device)
        known_hosts.append(server.known_hosts_line(device.address))
        header = (
            f"# Generated by `harness lab up` at {stamp}: simulated device {name} of the lab in {state.state_dir}\n"
            f"# ({state.mode} mode). Rewritten by every `lab up`, removed by `lab down`; do not edit.\n"
            f"# Host keys: {state.known_hosts} (SSH transport: known_hosts_path); "
            f"plain ssh: ssh -F {state.ssh_config} {name}\n"
        )
        body = yaml.safe_dump(_target_document(state, device, names.get(name)), sort_keys=False, width=120)
        Path(device.target_file).write_text(header + body)
        config += [
            f"Host {device.ssh_alias} {name}",
            f"    HostName {device.address}",
            f"    Port {device.port}",
            f"    User {device.user}",
            f'    IdentityFile "{state.client_key}"',
            "    IdentitiesOnly yes",
            f'    UserKnownHostsFile "{state.known_hosts}"',
            "    GlobalKnownHostsFile /dev/null",
            "    StrictHostKeyChecking yes",
            "    BatchMode yes",
            "    ConnectTimeout 10",
            "    LogLevel ERROR",
            "",
        ]
    Path(state.known_hosts).write_text("".join(known_hosts))
    Path(state.ssh_config).write_text("\n".join(config))


# ---------------------------------------------------------------------------------------------
# down
# ---------------------------------------------------------------------------------------------


def down(state_dir: Path | str = DEFAULT_STATE_DIR, progress: Progress = print, *, spec: LabSpec | None = None) -> None:
    """Take the lab in ``state_dir`` down; idempotent.

    Without a state file (lost, or never written) the names ``spec`` (default: the default
    lab) would have used are swept instead. Raises LabError listing what could not be removed.
    """
    started = time.monotonic()
    state_dir = Path(state_dir).resolve()
    state = LabState.load(state_dir)
    errors: list[str] = []
    if state is None:
        spec = spec or WITH_ARM_LAB
        mode = "netns"
        state = _new_state(state_dir, spec, mode, "sweep")
        for device in spec.devices:
            planned = _plan_device(state, spec, device, None)
            if _exists_any(planned):
                state.devices[device.name] = planned
        if not state.devices and not network.leftovers(spec.prefix) and not cgroups.leftovers(spec.cgroup_parent):
            progress(f"lab: nothing is up in {state_dir}")
            return
        progress(f"lab: no state file in {state_dir}: sweeping what the lab's names would be")
    for name in list(state.devices):
        device = state.devices[name]
        sensor = " and the simulated power sensor" if device.simulated_power else ""
        progress(f"lab: {name}: stopping sshd{sensor} and sessions, removing network, mount, user, cgroups")
        failed = _tear_down(device)
        errors += failed
        if not failed:  # a device that could not be removed stays listed, so `down` can retry
            del state.devices[name]
        if state.state_file.exists():
            state.save()
    if state.bridge and not state.devices:
        try:
            network.remove_bridge(state.bridge)
        except LabError as exc:
            errors.append(str(exc))
    if errors:
        state.save()
        raise LabError("lab down left things behind (run it again, or remove them by hand): " + "; ".join(errors))
    for path in (Path(state.known_hosts), Path(state.ssh_config), state.state_file):
        path.unlink(missing_ok=True)
    progress(f"lab: down in {time.monotonic() - started:.1f}s (keys, host keys and the image cache are kept)")


def _remove_empty_dir(path: str) -> None:
    """rmdir a mount point; it is only ever mounted on inside the device's own namespace."""
    try:
        os.rmdir(path)
    except FileNotFoundError:
        pass


def _exists_any(device: DeviceState) -> bool:
    try:
        pwd.getpwnam(device.user)
        return True
    except KeyError:
        pass
    return (bool(device.netns and device.netns in network.netns_list()) or _mounted(device.home)
            or any(os.path.isdir(d) for d in device.cgroups.dirs()) or bool(_power_pids(device)))


def _tear_down(device: DeviceState) -> list[str]:
    errors: list[str] = []

    def attempt(what: str, action: Callable[[], object]) -> None:
        try:
            action()
        except (LabError, OSError, subprocess.SubprocessError) as exc:
            errors.append(f"{device.name}: {what}: {exc}")

    attempt("stopping the simulated power sensor", lambda: _stop_power(device))
    attempt("stopping sshd", lambda: _stop_sshd(device))
    attempt("killing sessions", lambda: cgroups.kill_all(device.cgroups) if os.path.isdir(device.cgroups.memory) else 0)
    attempt("killing the user's processes", lambda: _kill_user_processes(device.user))
    attempt("removing the network", lambda: network.remove_link(device.link))
    attempt("unmounting the home", lambda: _unmount(device.home))
    attempt("removing the user", lambda: _remove_user(device.user, device.home))
    attempt("removing the cgroups", lambda: cgroups.remove(device.cgroups))
    if device.chroot:
        attempt("removing the chroot mount point", lambda: _remove_empty_dir(device.chroot))
    Path(device.target_file).unlink(missing_ok=True)
    return errors


def stop_sshd(state_dir: Path | str, name: str) -> DeviceState:
    """Stop one device's sshd, leaving the rest of it up (fault injection: a device that is
    on the network but not answering SSH, so connections are refused). `up` with the device
    starts it again (same address, port and host key)."""
    state = LabState.load(Path(state_dir).resolve())
    if state is None:
        raise LabError(f"no lab is up in {Path(state_dir).resolve()}")
    device = state.device(name)
    _stop_sshd(device)
    if _sshd_alive(device):
        raise LabError(f"{name}: sshd (pid {device.sshd_pid}) did not stop")
    return device


def _reap(pid: int) -> None:
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass


def _stop_sshd(device: DeviceState) -> None:
    pid = device.sshd_pid
    if not pid or not _sshd_alive(device):
        return
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + 3
    while time.monotonic() < deadline:
        _reap(pid)
        if not os.path.exists(f"/proc/{pid}") or not _sshd_alive(device):
            return
        time.sleep(0.05)
    os.kill(pid, signal.SIGKILL)
    _reap(pid)


def _user_pids(user: str) -> list[int]:
    try:
        uid = pwd.getpwnam(user).pw_uid
    except KeyError:
        return []
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                if os.stat(f"/proc/{entry}").st_uid == uid:
                    found.append(int(entry))
            except OSError:
                pass
    return found


def _kill_user_processes(user: str) -> None:
    for _ in range(50):
        pids = _user_pids(user)
        if not pids:
            return
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            _reap(pid)
        time.sleep(0.05)
    raise LabError(f"processes of {user} survive: {_user_pids(user)}")


def _unmount(home: str) -> None:
    for _ in range(20):
        if not _mounted(home):
            return
        done = subprocess.run(["umount", home], capture_output=True, text=True)
        if done.returncode != 0:
            time.sleep(0.1)
    if _mounted(home):
        _check(["umount", "-l", home], f"umount {home}")


def _remove_user(user: str, home: str) -> None:
    try:
        pwd.getpwnam(user)
    except KeyError:
        return
    done = subprocess.run(["userdel", "-r", user], capture_output=True, text=True)
    # 12: home could not be removed (already gone); mail spool warnings are harmless
    if done.returncode not in (0, 12):
        raise LabError(f"userdel {user} failed: {done.stderr.strip()}")
    if os.path.isdir(home) and not _mounted(home) and os.path.basename(home) == user:
        shutil.rmtree(home, ignore_errors=True)


# ---------------------------------------------------------------------------------------------
# status and leftovers
# ---------------------------------------------------------------------------------------------


def reachable(host: str, port: int, timeout_s: float = 2.0) -> bool:
    """An SSH banner comes back from host:port."""
    try:
        with socket.create_connection((host, port), timeout=timeout_s) as conn:
            conn.settimeout(timeout_s)
            return conn.recv(64).startswith(b"SSH-")
    except OSError:
        return False


def status(state_dir: Path | str = DEFAULT_STATE_DIR) -> LabState | None:
    """The lab's state with live facts per device, or None when nothing is up there."""
    state = LabState.load(Path(state_dir).resolve())
    if state is None:
        return None
    for device in state.devices.values():
        device.sshd_alive = _sshd_alive(device)
        device.reachable = reachable(device.address, device.port)
        device.usage = cgroups.usage(device.cgroups)
        if device.simulated_power:
            device.power_alive = _power_alive(device)
            try:
                device.power_mw = int(_power_file(device).read_text().split()[0])
            except (OSError, ValueError, IndexError):
                device.power_mw = None
        if _mounted(device.home):
            fs = os.statvfs(device.home)
            device.disk_used = (fs.f_blocks - fs.f_bfree) * fs.f_frsize
    return state


def format_status(state: LabState | None, state_dir: Path | str = DEFAULT_STATE_DIR) -> list[str]:
    if state is None:
        return [f"lab: nothing is up in {Path(state_dir).resolve()}"]
    lines = [f"lab in {state.state_dir}: {state.mode} mode ({state.mode_reason}); "
             f"{len(state.devices)} device(s); targets in {state.targets_dir}"]
    if state.mode != "netns":
        lines.append("  FALLBACK: sshd on 127.0.0.1 ports, no per-device addresses or link rates")
    lines.append(f"  {'device':<13} {'address':<17} {'sshd':<12} {'reach':<5} {'cpu':<9} {'memory (peak/limit)':<24} "
                 f"{'oom':<4} {'disk':<15} link")
    for name, d in sorted(state.devices.items()):
        u = d.usage
        sshd = f"pid {d.sshd_pid}" if d.sshd_alive else "DOWN"
        cpu = f"{u.cpu_ns / 1e9:.1f}s" if u else "-"
        mem = f"{_size(u.memory_peak_bytes)}/{_size(u.memory_limit)}" if u else "-"
        oom = str(u.oom_kills) if u else "-"
        disk = f"{_size(d.disk_used or 0)}/{_size(d.disk_size)}" if d.disk_used is not None else "not mounted"
        lines.append(f"  {name:<13} {d.address + ':' + str(d.port):<17} {sshd:<12} {'yes' if d.reachable else 'NO':<5} "
                     f"{cpu:<9} {mem:<24} {oom:<4} {disk:<15} {d.link_rate or '-'}")
        if d.shaping:
            measured = shaping.CpuShaping.from_dict(d.shaping)
            lines.append(f"  {'':<13} cpu: {measured.mechanism}: {measured.statement()}")
            lines.append(f"  {'':<13}      ({measured.calibration_note()})")
        elif d.cpu_quota is not None and d.cpu_period_us:
            whole = shaping.whole_core_document(d.cpu_quota, d.cpu_period_us)
            lines.append(f"  {'':<13} cpu: {whole['cpu']}: {whole['statement']}")
        if not d.images_complete:
            lines.append(f"  {'':<13} note: image packages were skipped; runtimes: {', '.join(d.runtimes) or 'none'}")
        if d.simulated_power:
            if d.power_alive:
                now = f"{d.power_mw} mW now" if d.power_mw is not None else "no reading yet"
                lines.append(f"  {'':<13} power: simulated {d.power_sensor.upper()} pid {d.power_pid}, POM_5V_IN "
                             f"{now} (root {d.power_root})")
            else:
                lines.append(f"  {'':<13} power: simulated {d.power_sensor.upper()} NOT RUNNING: its power "
                             "suite reports the sensor unavailable (run `harness lab up` again)")
    return lines


def leftovers(spec: LabSpec = DEFAULT_LAB, state_dir: Path | str | None = None) -> list[str]:
    """Everything of a lab with ``spec``'s names that exists now (empty after a clean down)."""
    found = network.leftovers(spec.prefix) + [f"cgroup {p}" for p in cgroups.leftovers(spec.cgroup_parent)]
    for device in spec.devices:
        user = f"{spec.prefix}-{device.name}"
        try:
            pwd.getpwnam(user)
            found.append(f"user {user}")
        except KeyError:
            pass
        if _mounted(f"/home/{user}"):
            found.append(f"mount /home/{user}")
        if os.path.exists(f"/home/{user}"):
            found.append(f"dir /home/{user}")
    if state_dir is not None:
        marker = str(Path(state_dir).resolve()) + "/"
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            try:
                cmdline = Path(f"/proc/{entry}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            except OSError:
                continue
            if ("sshd" in cmdline or any(m in cmdline for m in SIMULATED_SENSORS.values())) and marker in cmdline:
                found.append(f"process {entry} {cmdline.strip()[:100]}")
    return found


__all__ = [
    "DEFAULT_STATE_DIR",
    "DeviceState",
    "LabState",
    "default_cache_dir",
    "down",
    "format_status",
    "leftovers",
    "reachable",
    "status",
    "stop_sshd",
    "up",
    "write_targets",
]
