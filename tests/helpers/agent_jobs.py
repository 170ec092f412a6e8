"""One agent job run by hand: ``python -m harness.agent`` with the job on stdin, as the host
starts it on a device, but on this machine and under any interpreter."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Mapping
from typing import Any

from helpers.paths import REPO


def run_agent_job(job: Mapping[str, Any], python: str = sys.executable,
                  timeout: float = 300) -> tuple[int, list[dict[str, Any]], str]:
    """(exit status, the protocol events it printed, its stderr). The agent gets a clean
    environment (no PYTHON* variables but PYTHONPATH=the repo), as on a device; every line
    of its stdout must be a protocol event."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    env.update(PYTHONPATH=str(REPO), PYTHONDONTWRITEBYTECODE="1")
    done = subprocess.run([python, "-m", "harness.agent"], input=json.dumps(job).encode(), capture_output=True,
                          cwd=str(REPO), env=env, timeout=timeout)
    events = [json.loads(line) for line in done.stdout.decode().splitlines()]  # protocol only on stdout
    protocol = job.get("protocol")
    assert all(e["protocol"] == protocol for e in events)
    return done.returncode, events, done.stderr.decode("utf-8", "replace")
