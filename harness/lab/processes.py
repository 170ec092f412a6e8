"""The host processes the lab starts and stops (sshd servers, sensor daemons), as /proc shows them."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path


def cmdline(pid: int) -> list[str]:
    """The process's argv; empty when it is gone or a zombie (a dead pid reads as no process)."""
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
        with open(f"/proc/{pid}/stat") as handle:
            if handle.read().rsplit(")", 1)[1].split()[0] == "Z":
                return []
    except (OSError, IndexError):
        return []
    return [part.decode(errors="replace") for part in raw.split(b"\0") if part]


def reap(pid: int) -> None:
    """Collect the exit status of ``pid`` if it is a child of ours that has ended (else nothing)."""
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass


def terminate(pid: int, grace_s: float = 3.0) -> None:
    """SIGTERM, then SIGKILL after ``grace_s``; reaps it when it is our child."""
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + grace_s
    while time.monotonic() < deadline:
        reap(pid)
        if not cmdline(pid):
            return
        time.sleep(0.02)
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    reap(pid)


__all__ = ["cmdline", "reap", "terminate"]
