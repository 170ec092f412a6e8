"""Reading /proc: what a process runs and whether it still does."""

from __future__ import annotations

from pathlib import Path


def cmdline(pid: int) -> bytes:
    """The NUL-separated command line of a process; b"" when it is gone (or a zombie)."""
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""


def alive(pid: int) -> bool:
    """Running: not gone, and not a zombie waiting for this machine's init to reap it."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False
