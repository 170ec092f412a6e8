"""The emulated device's view of its own root filesystem (an arm64 userland run by qemu-user).

Its sshd chroots every session into ``CHROOT_VIEWS/<prefix>-<device>``, where the cached root
filesystem (`harness.lab.rootfs`) is assembled, read-only, inside the device's own mount
namespace: the device's home, a private /tmp, /proc, /dev, the cgroup hierarchies, and
passwd/group files that know the device user. The cached root filesystem is never changed.
"""

from __future__ import annotations

import os
import shlex
from pathlib import Path

from harness.lab.mount_view import CGROUP_ROOT
from harness.lab.state import DeviceState, LabState

CHROOT_VIEWS = Path("/run/harness-lab")
"""Where a device with its own root filesystem sees it: ``<this>/<prefix>-<device>``, the
path its sshd's ChrootDirectory names. sshd requires every component of that path to be
root-owned and not writable by others, which a checkout under /tmp (mode 1777) is not; the
root filesystem is bind-mounted here inside the device's own mount namespace only."""


def chroot_path(prefix: str, device: str) -> str:
    """The ChrootDirectory of device ``device`` of the lab named ``prefix``."""
    return str(CHROOT_VIEWS / f"{prefix}-{device}")


def prepare_chroot(device: DeviceState, uid: int, gid: int) -> None:
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


def chroot_lines(state: LabState, device: DeviceState) -> list[str]:
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


def remove_mount_point(path: str) -> None:
    """rmdir a chroot mount point; it is only ever mounted on inside the device's own namespace."""
    try:
        os.rmdir(path)
    except FileNotFoundError:
        pass


__all__ = ["CHROOT_VIEWS", "chroot_lines", "chroot_path", "prepare_chroot", "remove_mount_point"]
