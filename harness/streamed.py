"""Run a long command and pass its output on line by line (debootstrap, pip, venv builds).

The callers differ only in which lines they show the user; starting the process, reading
its merged output without blocking on a full pipe, and keeping the last lines for the error
message are the same, and live here.
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable, Sequence
from dataclasses import dataclass


@dataclass
class Finished:
    returncode: int
    lines: list[str]  # the last non-empty output lines (at most ``keep``), for an error message


def run_streamed(argv: Sequence[str], on_line: Callable[[str], None], keep: int = 20) -> Finished:
    """Run ``argv`` (stderr merged into stdout); call ``on_line`` with every non-empty output
    line, right-stripped, as it comes; return the exit status and the last ``keep`` lines."""
    process = subprocess.Popen(list(argv), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                               errors="replace")
    assert process.stdout is not None
    lines: list[str] = []
    for raw in process.stdout:
        line = raw.rstrip()
        if not line:
            continue
        lines.append(line)
        del lines[:-keep]
        on_line(line)
    return Finished(process.wait(), lines)


__all__ = ["Finished", "run_streamed"]
