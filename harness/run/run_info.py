"""Metadata of a run: a unique sortable id, the git commit, the host."""

from __future__ import annotations

import socket
import subprocess
import uuid
from datetime import UTC, datetime
from pathlib import Path

from harness import __version__
from harness.records import RunInfo


def new_run_id(now: datetime | None = None) -> str:
    """`20261122-101500-1a2b3c`: sorts by time, unique across concurrent orchestrators."""
    now = now or datetime.now(UTC)
    return f"{now:%Y%m%d-%H%M%S}-{uuid.uuid4().hex[:6]}"


def utc_now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def git_state(directory: Path) -> tuple[str | None, bool | None]:
    """(commit sha, has uncommitted changes to tracked files), or (None, None) outside git."""
    try:
        sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=directory, capture_output=True,
                             text=True, timeout=10)
        if sha.returncode != 0:
            return None, None
        status = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=directory,
                                capture_output=True, text=True, timeout=10)
        return sha.stdout.strip(), bool(status.stdout.strip())
    except (OSError, subprocess.TimeoutExpired):
        return None, None


def new_run(label: str | None, options: dict, repo_dir: Path) -> RunInfo:
    sha, dirty = git_state(repo_dir)
    return RunInfo(id=new_run_id(), label=label, started_at=utc_now(), host=socket.gethostname(),
                   harness_version=__version__, git_sha=sha, git_dirty=dirty, options=options)
