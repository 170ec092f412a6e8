"""The suites in a subprocess, as a user runs them: ``python -m pytest suites/... OPTIONS``.

Every test that drives the suites goes through `suites_argv`, so they all get the same
interpreter (this venv's), the same cwd (the repo: its pyproject.toml, its conftest) and no
cache provider (a test run must not write .pytest_cache into the repo). ``out`` is the
folder of that one run: its store, its report dir and its JUnit XML go there, and
`helpers.results` reads them back.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Sequence
from os import PathLike
from pathlib import Path
from typing import Any

from helpers.paths import REPO

Arg = str | PathLike[str]


def suites_argv(args: Sequence[Arg], out: Path | None = None, *, report: bool = True, junit: bool = True,
                quiet: Sequence[str] = ("-q", "-rA")) -> list[str]:
    """The command line: ``args`` (test paths and options), then the run's own files under
    ``out`` (created): ``--store=out/results.sqlite``, ``--report-dir=out/reports`` (or
    ``--no-report``) and ``--junitxml=out/junit.xml`` (unless ``junit`` is false)."""
    argv = [sys.executable, "-m", "pytest", *map(str, args)]
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        argv.append(f"--store={out / 'results.sqlite'}")
        argv.append(f"--report-dir={out / 'reports'}" if report else "--no-report")
        if junit:
            argv.append(f"--junitxml={out / 'junit.xml'}")
    return [*argv, "-p", "no:cacheprovider", *quiet]


def run_suites(args: Sequence[Arg], out: Path | None = None, *, cwd: Path = REPO, timeout: float = 600,
               report: bool = True, junit: bool = True, quiet: Sequence[str] = ("-q", "-rA"),
               **popen: Any) -> subprocess.CompletedProcess[str]:
    """Run the suites to the end (output captured as text); see `suites_argv`."""
    return subprocess.run(suites_argv(args, out, report=report, junit=junit, quiet=quiet), cwd=cwd,
                          capture_output=True, text=True, timeout=timeout, **popen)


def start_suites(args: Sequence[Arg], out: Path, *, cwd: Path = REPO, report: bool = False,
                 junit: bool = False, **popen: Any) -> subprocess.Popen[str]:
    """Start the suites in the background (stdout and stderr piped, as text): for tests that
    do something to the run while it runs. No report by default (nothing reads it)."""
    return subprocess.Popen(suites_argv(args, out, report=report, junit=junit), cwd=cwd, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, **popen)


def shown(done: subprocess.CompletedProcess[str]) -> str:
    """A finished run for an assertion message: exit status and the ends of its output."""
    return f"exit {done.returncode}\n{done.stdout[-4000:]}\n{done.stderr[-2000:]}"
