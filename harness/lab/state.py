"""What is up: the lab's state file (``<state dir>/state.json``), read and written whole.

The state file holds enough for `down` and `status` to work from a fresh process: every
name, address, cgroup and pid the lab made. Live facts (is sshd answering, CPU used so far)
are filled in by `harness.lab.live_status` and never written.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from harness.lab.cgroups import CgroupUsage, DeviceCgroups
from harness.lab.devices import REPO, SIMULATED_SENSORS
from harness.lab.network import LinkPlan
from harness.lab.sshd import LabError

STATE_VERSION = 1
DEFAULT_STATE_DIR = REPO / ".harness" / "lab"
LIVE_FIELDS = ("sshd_alive", "reachable", "usage", "disk_used", "power_alive", "power_mw")
"""`DeviceState` fields filled in by `status`, not kept in the state file."""


def default_cache_dir() -> Path:
    """Images are cached in the default lab's state dir, shared by every lab on this checkout."""
    return DEFAULT_STATE_DIR / "cache"


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
    chroot: str | None = None  # where its sessions are chrooted (see harness.lab.chroot.CHROOT_VIEWS)
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
    def from_dict(cls, data: dict[str, Any]) -> DeviceState:
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
    labgrid: dict[str, Any] | None = None  # `up --labgrid`: coordinator address and pid, exporter name and pid

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
        """Written to a temporary file and renamed over the old one: never half a state file."""
        tmp = self.state_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.to_dict(), indent=2) + "\n")
        os.replace(tmp, self.state_file)

    @classmethod
    def load(cls, state_dir: Path) -> LabState | None:
        path = Path(state_dir) / "state.json"
        if not path.exists():
            return None
        data = json.loads(path.read_text())
        if data.pop("version", None) != STATE_VERSION:
            raise LabError(f"{path}: written by another version of the lab; remove what it lists by hand")
        devices = {name: DeviceState.from_dict(d) for name, d in data.pop("devices").items()}
        return cls(**data, devices=devices)


STATE_DIR_ENV = "HARNESS_LAB_DIR"
"""The lab's state dir when the commands are not given one (default: DEFAULT_STATE_DIR)."""


def lab_state_dir() -> Path:
    """The state dir of *the* lab of this checkout: ``$HARNESS_LAB_DIR``, else DEFAULT_STATE_DIR."""
    return Path(os.environ.get(STATE_DIR_ENV) or DEFAULT_STATE_DIR).resolve()


def targets_dir_of_the_lab_up(state_dir: Path | None = None) -> Path | None:
    """Where the target files of the lab up in `state_dir` (default `lab_state_dir()`) are, or
    None when none is up there."""
    try:
        state = LabState.load(state_dir or lab_state_dir())
    except (LabError, OSError, ValueError, TypeError, KeyError):
        return None  # a damaged or foreign state file: not a lab to take targets from
    if state is None or not state.devices or not Path(state.targets_dir).is_dir():
        return None
    return Path(state.targets_dir)


__all__ = ["DEFAULT_STATE_DIR", "LIVE_FIELDS", "STATE_DIR_ENV", "STATE_VERSION", "DeviceState", "LabState",
           "default_cache_dir", "lab_state_dir", "targets_dir_of_the_lab_up"]
