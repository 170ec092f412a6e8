"""The names, addresses and paths a lab spec's devices get on this machine, before anything is made.

`up` records a device's plan in the state file before making any of it, so `down` can undo a
half-made device; `down` without a state file plans the devices again to sweep what their
names would be.
"""

from __future__ import annotations

import os
from pathlib import Path

from harness.lab import cgroups, network
from harness.lab.chroot import chroot_path
from harness.lab.devices import DeviceSpec, LabSpec
from harness.lab.sshd import LabError, free_port
from harness.lab.state import DeviceState, LabState

NETWORK_MODES = ("auto", "netns", "loopback")
NETWORK_ENV = "HARNESS_LAB_NETWORK"
"""Set to ``loopback`` to force the fallback mode (or ``netns`` to refuse it)."""


def new_state(state_dir: Path, spec: LabSpec, mode: str, reason: str) -> LabState:
    """An empty lab in ``state_dir`` (no device yet) in network ``mode``."""
    targets = state_dir / "targets"
    return LabState(
        state_dir=str(state_dir), prefix=spec.prefix, subnet=spec.subnet, cgroup_parent=spec.cgroup_parent,
        mode=mode, mode_reason=reason, bridge=f"{spec.prefix}0" if mode == "netns" else None,
        client_key=str(state_dir / "keys" / "lab_ed25519"), targets_dir=str(targets),
        known_hosts=str(targets / "known_hosts"), ssh_config=str(targets / "ssh_config"),
    )


def plan_device(state: LabState, spec: LabSpec, device: DeviceSpec, previous: DeviceState | None) -> DeviceState:
    """``device`` as it will be up; what a ``previous`` state of it holds (its loopback port,
    cgroups, pids, calibration) is kept, so a second `up` finds what the first one made."""
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
        chroot=chroot_path(spec.prefix, device.name) if device.rootfs else None,
    )


def choose_network_mode(network_mode: str, prefix: str) -> tuple[str, str]:
    """``(mode, reason)``: ``netns`` when namespaces can be made (and are not refused), else
    ``loopback``; ``$HARNESS_LAB_NETWORK`` overrides ``network_mode``."""
    requested = os.environ.get(NETWORK_ENV) or network_mode
    if requested not in NETWORK_MODES:
        raise LabError(f"network mode {requested!r} unknown (from {NETWORK_ENV}?): "
                       f"use one of {', '.join(NETWORK_MODES)}")
    if requested == "loopback":
        return "loopback", "loopback mode requested"
    ok, reason = network.namespaces_available(prefix)
    if ok:
        return "netns", reason
    if requested == "netns":
        raise LabError(f"network namespaces are not available here: {reason}")
    return "loopback", f"network namespaces unavailable ({reason})"


__all__ = ["NETWORK_ENV", "NETWORK_MODES", "choose_network_mode", "new_state", "plan_device"]
