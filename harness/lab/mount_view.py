"""What a device's sshd sees of this machine's filesystem: shell lines run in its own mount
namespace before sshd execs (see `harness.lab.device_sshd.wrapper`).

Two adjustments, both made only inside the device's namespace: its cgroup hierarchies are
mounted back (read-only) where `ip netns exec` hid them, and directories others cannot enter
(``/root`` is 0700) are masked by a tmpfs holding only the interpreters' directories, bound in
read-only, so the device user reaches its interpreters without root's home being opened up.
"""

from __future__ import annotations

import os
import shlex
from pathlib import Path

CGROUP_ROOT = "/sys/fs/cgroup"


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


def cgroup_view_lines(prefix: str) -> list[str]:
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
            mount = (f"mount -t {shlex.quote(fstype)} -o {shlex.quote(mount_options)} {shlex.quote(fstype)} "
                     f"{shlex.quote(point)}")
        lines.append(f"  {make}{mount} || echo 'lab: cannot mount {point} for the device' >&2")
    if mounts[0][1] == "tmpfs":
        lines.append(f"  mount -o remount,ro {shlex.quote(CGROUP_ROOT)} || true")
    lines.append("fi")
    return lines


def interpreter_mask_lines(prefix: str, device_dir: Path, interpreters: list[str]) -> list[str]:
    """Shell lines that mask each directory hiding an interpreter (`_hidden_roots`) with an
    empty tmpfs and move the interpreters' directories back in, read-only.

    Each such directory is first bind-mounted on a staging dir under ``<device_dir>/mnt``
    (made here, on the host), since the tmpfs then hides the original."""
    lines = []
    stage_root = device_dir / "mnt"
    for index, (ancestor, children) in enumerate(sorted(_hidden_roots(interpreters).items())):
        stages = []
        for number, child in enumerate(sorted(children)):
            stage = stage_root / f"{index}-{number}"
            stage.mkdir(parents=True, exist_ok=True)
            stages.append((stage, child))
            lines.append(f"mount --bind {shlex.quote(child)} {shlex.quote(str(stage))}")
        lines.append(f"mount -t tmpfs -o size=1m,mode=0755 {shlex.quote(prefix + '-mask')} {shlex.quote(ancestor)}")
        for stage, child in stages:
            lines.append(f"mkdir -p {shlex.quote(child)}")
            lines.append(f"mount --move {shlex.quote(str(stage))} {shlex.quote(child)}")
            lines.append(f"mount -o remount,bind,ro {shlex.quote(child)} || true")
    return lines


__all__ = ["CGROUP_ROOT", "cgroup_view_lines", "interpreter_mask_lines"]
