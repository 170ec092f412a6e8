"""A device's own OpenSSH server (`harness.lab.sshd.SshdServer`): how it is started, checked, stopped.

Its host key stays in ``devices/<name>/sshd/`` across downs, its AuthorizedKeysFile holds the
lab's client key and ``AllowUsers`` is the device's user. Before it execs, the server joins
the device's cgroups, enters the device's network namespace (or, in loopback mode, a mount
namespace of its own) and sets up the device's mount view (`harness.lab.mount_view`, and the
chroot of a device with its own root filesystem, `harness.lab.chroot`): every session and job
it spawns inherits all of it.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

from harness.lab import cgroups
from harness.lab.chroot import chroot_lines
from harness.lab.images import BuiltEnv
from harness.lab.mount_view import cgroup_view_lines, interpreter_mask_lines
from harness.lab.processes import reap
from harness.lab.sshd import SSHD, LabError, SshdServer
from harness.lab.state import DeviceState, LabState


def _wrapper(state: LabState, device: DeviceState, built: dict[str, BuiltEnv]) -> tuple[str, ...]:
    """argv prefix for the device's sshd: join the cgroups (before `ip netns exec`, which
    remounts /sys), enter the namespace, hide root's home but keep the interpreters
    reachable, exec sshd."""
    outer = "\n".join(["set -e", *cgroups.attach_commands(device.cgroups), 'exec "$@"'])
    lines = ["set -e"]
    if device.netns:
        lines += cgroup_view_lines(state.prefix)
    if device.chroot:
        lines += chroot_lines(state, device)
    lines += interpreter_mask_lines(state.prefix, Path(device.device_dir), [b.python for b in built.values()])
    lines.append('exec "$@"')
    # `ip netns exec` gives the server its own (slave) mount namespace; loopback mode asks for one
    enter = ("ip", "netns", "exec", device.netns) if device.netns else ("unshare", "--mount", "--propagation", "slave")
    return ("sh", "-c", outer, f"{state.prefix}-cgroups", *enter,
            "sh", "-c", "\n".join(lines), f"{state.prefix}-device")


def device_server(state: LabState, device: DeviceState, built: dict[str, BuiltEnv] | None = None) -> SshdServer:
    """The device's server (not started). ``built``: the device's interpreters, which its
    mount view must keep reachable; only needed to start it (the host key needs none)."""
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


def sshd_alive(device: DeviceState) -> bool:
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


def stop_device_sshd(device: DeviceState) -> None:
    """SIGTERM the device's sshd, SIGKILL after 3 s (nothing if it does not run)."""
    pid = device.sshd_pid
    if not pid or not sshd_alive(device):
        return
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + 3
    while time.monotonic() < deadline:
        reap(pid)
        if not os.path.exists(f"/proc/{pid}") or not sshd_alive(device):
            return
        time.sleep(0.05)
    os.kill(pid, signal.SIGKILL)
    reap(pid)


def stop_sshd(state_dir: Path | str, name: str) -> DeviceState:
    """Stop one device's sshd, leaving the rest of it up (fault injection: a device that is
    on the network but not answering SSH, so connections are refused). `up` with the device
    starts it again (same address, port and host key)."""
    state = LabState.load(Path(state_dir).resolve())
    if state is None:
        raise LabError(f"no lab is up in {Path(state_dir).resolve()}")
    device = state.device(name)
    stop_device_sshd(device)
    if sshd_alive(device):
        raise LabError(f"{name}: sshd (pid {device.sshd_pid}) did not stop")
    return device


__all__ = ["device_server", "sshd_alive", "stop_device_sshd", "stop_sshd"]
