"""cgroup v1 shaping of a simulated device: CPU quota, memory limit, CPU accounting.

Per device, three directories (one per controller; a co-mounted ``cpu,cpuacct`` hierarchy
gives one directory for both):

    <cpu mount>/<parent>/<device>            cpu.cfs_quota_us of cpu.cfs_period_us (see shaping.py)
    <cpuacct mount>/<parent>/<device>        cpuacct.usage (ns), for a simulated power sensor
    <memory mount><own cgroup>/<parent>/<device>   memory.limit_in_bytes (+ memsw)

The memory group nests under this process's own memory cgroup (from /proc/self/cgroup), as
this machine's notes ask; its absolute path is recorded in the lab state so a later process
can remove it. A device's sshd joins all of them before it execs (see `attach_commands`),
so every session and job it spawns inherits them. Over the memory limit the kernel OOM
killer SIGKILLs a process of the group (returncode -9): `usage` reports the group's
``oom_kill`` counter and ``memory.failcnt``.
"""

from __future__ import annotations

import functools
import os
import shlex
import signal
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

from harness.lab.sshd import LabError

CFS_PERIOD_US = 100_000


def _mounts() -> dict[str, str]:
    """controller -> mount point of its v1 hierarchy."""
    found: dict[str, str] = {}
    with open("/proc/self/mountinfo") as handle:
        for line in handle:
            left, _, right = line.partition(" - ")
            fields = right.split()
            if len(fields) < 3 or fields[0] != "cgroup":
                continue
            mount_point = left.split()[4]
            for option in fields[2].split(","):
                if option in ("cpu", "cpuacct", "memory"):
                    found[option] = mount_point
    return found


def own_cgroup(controller: str) -> str:
    """This process's cgroup path in ``controller``'s hierarchy (``/`` at the root)."""
    with open("/proc/self/cgroup") as handle:
        for line in handle:
            _, controllers, path = line.rstrip("\n").split(":", 2)
            if controller in controllers.split(","):
                return path
    return "/"


@dataclass(frozen=True)
class DeviceCgroups:
    """Absolute directories of one device's groups (JSON-ready via `to_dict`)."""

    cpu: str
    cpuacct: str
    memory: str

    def dirs(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys((self.cpu, self.cpuacct, self.memory)))

    @property
    def cpuacct_usage_path(self) -> str:
        """Cumulative CPU time (ns) of everything running on the device."""
        return os.path.join(self.cpuacct, "cpuacct.usage")

    def to_dict(self) -> dict[str, str]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, str]) -> DeviceCgroups:
        return cls(cpu=data["cpu"], cpuacct=data["cpuacct"], memory=data["memory"])


def available() -> tuple[bool, str]:
    """Whether cgroup v1 cpu, cpuacct and memory hierarchies exist and are writable here."""
    mounts = _mounts()
    missing = [c for c in ("cpu", "cpuacct", "memory") if c not in mounts]
    if missing:
        return False, f"cgroup v1 controller(s) {', '.join(missing)} not mounted"
    if not os.access(mounts["memory"], os.W_OK) or not os.access(mounts["cpu"], os.W_OK):
        return False, "cgroup hierarchies are not writable (run as root)"
    return True, "cgroup v1 cpu, cpuacct, memory"


def plan(parent: str, name: str) -> DeviceCgroups:
    """Where a device's groups go (nothing is created)."""
    mounts = _mounts()
    for controller in ("cpu", "cpuacct", "memory"):
        if controller not in mounts:
            raise LabError(f"cgroup v1 controller {controller!r} is not mounted: the lab needs cgroup v1 "
                           "cpu, cpuacct and memory hierarchies")
    memory_base = mounts["memory"] + own_cgroup("memory").rstrip("/")
    return DeviceCgroups(
        cpu=os.path.join(mounts["cpu"], parent, name),
        cpuacct=os.path.join(mounts["cpuacct"], parent, name),
        memory=os.path.join(memory_base, parent, name),
    )


def _write(path: str, value: str | int) -> None:
    try:
        with open(path, "w") as handle:
            handle.write(str(value))
    except OSError as exc:
        raise LabError(f"cannot write {value} to {path}: {exc.strerror}") from exc


def _read(path: str, default: str = "") -> str:
    try:
        with open(path) as handle:
            return handle.read().strip()
    except OSError:
        return default


def create(groups: DeviceCgroups, memory_limit: int) -> None:
    """Create (or update) the groups and set the memory limit; idempotent. The CPU quota and
    its period are set by `harness.lab.shaping` (they are calibrated)."""
    for directory in groups.dirs():
        os.makedirs(directory, exist_ok=True)
    limit = os.path.join(groups.memory, "memory.limit_in_bytes")
    memsw = os.path.join(groups.memory, "memory.memsw.limit_in_bytes")
    if os.path.exists(memsw):
        # memsw must stay >= limit: raise memsw first when growing, limit first when shrinking.
        current = int(_read(limit, "0") or 0)
        order = (memsw, limit) if memory_limit > current else (limit, memsw)
        for path in order:
            _write(path, memory_limit)
    else:
        _write(limit, memory_limit)


def attach(groups: DeviceCgroups, pid: int) -> None:
    for directory in groups.dirs():
        _write(os.path.join(directory, "cgroup.procs"), pid)


def attach_commands(groups: DeviceCgroups) -> list[str]:
    """Shell lines that move the running shell (``$$``) into the groups before it execs."""
    return [f"echo $$ > {shlex.quote(os.path.join(d, 'cgroup.procs'))}" for d in groups.dirs()]


def pids(groups: DeviceCgroups) -> set[int]:
    found: set[int] = set()
    for directory in groups.dirs():
        text = _read(os.path.join(directory, "cgroup.procs"))
        found.update(int(p) for p in text.split())
    return found


def kill_all(groups: DeviceCgroups, timeout_s: float = 5.0) -> int:
    """SIGKILL every process in the groups (repeating while sessions fork); returns how many."""
    killed = 0
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        remaining = pids(groups)
        if not remaining:
            return killed
        for pid in remaining:
            try:
                os.kill(pid, signal.SIGKILL)
                killed += 1
            except ProcessLookupError:
                pass
        time.sleep(0.05)
    left = pids(groups)
    if left:
        raise LabError(f"processes {sorted(left)} survive in {groups.memory}")
    return killed


def remove(groups: DeviceCgroups) -> None:
    """Kill what runs in the groups, remove them, and their parent directories once empty."""
    kill_all(groups)
    for directory in groups.dirs():
        # the kernel may still be reaping the killed processes
        _rmdir_patiently(directory, give_up=lambda: False)
        # the lab's parent, once no other device's group is left in it: right after its last
        # child went the kernel can still refuse it (CI's machine once left the memory
        # hierarchy's parent behind when that refusal was swallowed)
        parent = os.path.dirname(directory)
        _rmdir_patiently(parent, give_up=functools.partial(_has_child_groups, parent))


def _rmdir_patiently(directory: str, give_up: Callable[[], bool], timeout_s: float = 5.0) -> None:
    """Remove the (empty) group `directory`, retrying while the kernel refuses, for up to
    `timeout_s`; done at once if it is gone or ``give_up()`` says it is to stay."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            os.rmdir(directory)
            return
        except FileNotFoundError:
            return
        except OSError as exc:
            if give_up():
                return
            if time.monotonic() >= deadline:
                raise LabError(f"cannot remove cgroup {directory}: {exc.strerror}") from exc
            time.sleep(0.05)


def _has_child_groups(directory: str) -> bool:
    try:
        return any(entry.is_dir() for entry in os.scandir(directory))
    except OSError:
        return True  # unreadable: leave it alone


@dataclass(frozen=True)
class CgroupUsage:
    """A device's consumption, read from its groups. ``memory_failcnt`` is how often the
    limit was hit (the larger of memory.failcnt and memory.memsw.failcnt); ``oom_kills`` is
    the oom_kill counter of memory.oom_control."""

    cpu_ns: int
    cpu_quota: float | None
    memory_bytes: int
    memory_peak_bytes: int
    memory_limit: int
    oom_kills: int
    memory_failcnt: int
    under_oom: bool

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


def oom_control(groups: DeviceCgroups) -> dict[str, int]:
    fields: dict[str, int] = {}
    for line in _read(os.path.join(groups.memory, "memory.oom_control")).splitlines():
        key, _, value = line.partition(" ")
        if value.strip().isdigit():
            fields[key] = int(value)
    return fields


def usage(groups: DeviceCgroups) -> CgroupUsage | None:
    """Current usage, or None when the groups are gone."""
    if not os.path.isdir(groups.memory):
        return None
    quota = int(_read(os.path.join(groups.cpu, "cpu.cfs_quota_us"), "-1") or -1)
    period = int(_read(os.path.join(groups.cpu, "cpu.cfs_period_us"), str(CFS_PERIOD_US)) or CFS_PERIOD_US)
    oom = oom_control(groups)
    return CgroupUsage(
        cpu_ns=int(_read(groups.cpuacct_usage_path, "0") or 0),
        cpu_quota=None if quota < 0 else quota / period,
        memory_bytes=int(_read(os.path.join(groups.memory, "memory.usage_in_bytes"), "0") or 0),
        memory_peak_bytes=int(_read(os.path.join(groups.memory, "memory.max_usage_in_bytes"), "0") or 0),
        memory_limit=int(_read(os.path.join(groups.memory, "memory.limit_in_bytes"), "0") or 0),
        oom_kills=oom.get("oom_kill", 0),
        # with memsw limited too, the memory+swap counter is usually the one that trips
        memory_failcnt=max(int(_read(os.path.join(groups.memory, name), "0") or 0)
                           for name in ("memory.failcnt", "memory.memsw.failcnt")),
        under_oom=bool(oom.get("under_oom", 0)),
    )


def leftovers(parent: str) -> list[str]:
    """Group directories named ``parent`` that still exist (for tests and sweeping)."""
    found = []
    mounts = _mounts()
    for controller in ("cpu", "cpuacct"):
        if controller in mounts and os.path.isdir(os.path.join(mounts[controller], parent)):
            found.append(os.path.join(mounts[controller], parent))
    if "memory" in mounts:
        for path in Path(mounts["memory"]).rglob(parent):
            if path.is_dir():
                found.append(str(path))
    return sorted(set(found))


__all__ = [
    "CFS_PERIOD_US",
    "CgroupUsage",
    "DeviceCgroups",
    "attach",
    "attach_commands",
    "available",
    "create",
    "kill_all",
    "leftovers",
    "oom_control",
    "own_cgroup",
    "pids",
    "plan",
    "remove",
    "usage",
]
