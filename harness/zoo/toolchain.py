"""The tools a zoo build runs: which versions are installed, and where Paddle Lite's interpreter is.

Versions come from package metadata, never from importing the tool (paddle takes a second
to import, and paddlelite lives in another interpreter: paddlelite 2.13 has no cp311 wheels).
Stdlib only.
"""

from __future__ import annotations

import functools
import importlib.metadata
import os
import subprocess
from pathlib import Path

LITE_PYTHON_ENV = "HARNESS_LITE_PYTHON"

_IMPORT_ROOT = Path(__file__).resolve().parents[2]  # the directory that holds the `harness` package


def dist_version(dist: str) -> str:
    """Installed version of distribution `dist` in this interpreter, or "not-installed"."""
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return "not-installed"


def paddle_version() -> str:
    """Installed paddlepaddle version as the package metadata reports it (no paddle import)."""
    return dist_version("paddlepaddle")


def lite_python() -> str:
    """The interpreter that runs Paddle Lite's opt: $HARNESS_LITE_PYTHON, else .venv-lite."""
    configured = os.environ.get(LITE_PYTHON_ENV)
    if configured:
        return os.path.abspath(configured) if os.sep in configured else configured
    return str(_IMPORT_ROOT / ".venv-lite" / "bin" / "python")


@functools.lru_cache(maxsize=8)
def _lite_versions_cached(python: str, stamp: float) -> dict[str, str]:
    """`stamp` (the interpreter's mtime) is only part of the cache key: a rebuilt venv is asked again."""
    code = ("import importlib.metadata as m, platform\n"
            "for d in ('paddlelite', 'numpy'):\n"
            "    try: print(d, m.version(d))\n"
            "    except m.PackageNotFoundError: print(d, 'not-installed')\n"
            "print('python', platform.python_version())\n")
    try:
        done = subprocess.run([python, "-c", code], capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.SubprocessError):
        return {"paddlelite": "not-installed", "lite_python": python}
    versions = dict(line.split(" ", 1) for line in done.stdout.splitlines() if " " in line)
    return {f"lite_{k}" if k != "paddlelite" else k: v for k, v in versions.items()} | {"lite_python": python}


def lite_versions(python: str | None = None) -> dict[str, str]:
    """paddlelite/numpy/python versions in the Lite interpreter (metadata only, no paddlelite import)."""
    python = python or lite_python()
    try:
        stamp = os.stat(python).st_mtime
    except OSError:
        return {"paddlelite": "not-installed", "lite_python": python}
    return dict(_lite_versions_cached(python, stamp))
