"""A device's login user ``<prefix>-<device>`` and its home, a tmpfs of the device's disk size.

The tmpfs makes "disk full" happen per device. The password is ``*``: key logins only (a
locked ``!`` password is refused by sshd with ``UsePAM no``).
"""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import subprocess
import time

from harness.lab.processes import reap
from harness.lab.sshd import LabError
from harness.lab.state import DeviceState


def _run_checked(argv: list[str], what: str) -> str:
    """Run ``argv``; its stdout, or a LabError naming ``what`` with the end of its stderr."""
    done = subprocess.run(argv, capture_output=True, text=True)
    if done.returncode != 0:
        raise LabError(f"{what} failed: {done.stderr.strip()[-300:]}")
    return done.stdout


def ensure_user(user: str, device: str) -> tuple[int, int]:
    """The user's uid and gid, creating the user (``useradd -m``) if it does not exist."""
    try:
        entry = pwd.getpwnam(user)
    except KeyError:
        _run_checked(["useradd", "-m", "-s", "/bin/bash", "-c", f"harness lab device {device}", user],
                     f"useradd {user}")
        entry = pwd.getpwnam(user)
    # a locked '!' password is refused by sshd with UsePAM no; '*' allows key logins only
    _run_checked(["usermod", "-p", "*", user], f"usermod {user}")
    return entry.pw_uid, entry.pw_gid


def is_mounted(path: str) -> bool:
    """Something is mounted on ``path`` in this process's mount namespace."""
    with open("/proc/self/mountinfo") as handle:
        return any(line.split()[4] == path for line in handle)


def ensure_home_mount(device: DeviceState, uid: int, gid: int, prefix: str) -> None:
    """Mount the device's home tmpfs, or resize it to the device's disk size if it is mounted."""
    options = f"size={device.disk_size},mode=0700,uid={uid},gid={gid}"
    if is_mounted(device.home):
        _run_checked(["mount", "-o", f"remount,size={device.disk_size}", device.home], f"remount {device.home}")
    else:
        _run_checked(["mount", "-t", "tmpfs", "-o", options, f"{prefix}-{device.name}", device.home],
                     f"mount {device.home}")


def unmount_home(home: str) -> None:
    """Unmount the home tmpfs, retrying while it is busy, lazily as a last resort."""
    for _ in range(20):
        if not is_mounted(home):
            return
        done = subprocess.run(["umount", home], capture_output=True, text=True)
        if done.returncode != 0:
            time.sleep(0.1)
    if is_mounted(home):
        _run_checked(["umount", "-l", home], f"umount {home}")


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


def kill_user_processes(user: str) -> None:
    """SIGKILL everything running as ``user`` until nothing is left (a LabError if it survives)."""
    for _ in range(50):
        pids = _user_pids(user)
        if not pids:
            return
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            reap(pid)
        time.sleep(0.05)
    raise LabError(f"processes of {user} survive: {_user_pids(user)}")


def remove_user(user: str, home: str) -> None:
    """``userdel -r``, and the home directory if userdel left it (it is not mounted any more)."""
    try:
        pwd.getpwnam(user)
    except KeyError:
        return
    done = subprocess.run(["userdel", "-r", user], capture_output=True, text=True)
    # 12: home could not be removed (already gone); mail spool warnings are harmless
    if done.returncode not in (0, 12):
        raise LabError(f"userdel {user} failed: {done.stderr.strip()}")
    if os.path.isdir(home) and not is_mounted(home) and os.path.basename(home) == user:
        shutil.rmtree(home, ignore_errors=True)


__all__ = ["ensure_home_mount", "ensure_user", "is_mounted", "kill_user_processes", "remove_user", "unmount_home"]
