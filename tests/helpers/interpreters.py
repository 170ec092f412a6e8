"""Other Pythons the tests run things under: pyenv's 3.6.15 (a Jetson Nano's JetPack 4
Python, what the agent must still run on) and 3.10.13 (a Python without the harness's
runtimes, and Paddle Lite's)."""

from __future__ import annotations

import os
import subprocess

import pytest


class InterpreterMissing(LookupError):
    """The interpreter is not installed here; the message says what to install."""


def pyenv_python(version: str) -> str:
    """The ``python`` of pyenv's ``version``; raises InterpreterMissing naming what is missing."""
    try:
        prefix = subprocess.run(["pyenv", "prefix", version], capture_output=True, text=True, timeout=30)
    except FileNotFoundError:
        raise InterpreterMissing(f"pyenv is not on PATH: needs pyenv's Python {version} "
                                 f"(pyenv install {version})") from None
    python = os.path.join(prefix.stdout.strip(), "bin", "python")
    if prefix.returncode != 0 or not os.access(python, os.X_OK):
        raise InterpreterMissing(f"pyenv has no Python {version} ({prefix.stderr.strip() or python}): "
                                 f"run `pyenv install {version}`")
    return python


def pyenv_python_or_skip(version: str) -> str:
    """`pyenv_python`, or the calling test skipped with the reason (naming pyenv and the version)."""
    try:
        return pyenv_python(version)
    except InterpreterMissing as missing:
        pytest.skip(str(missing))


def pyenv_python_or_fail(version: str) -> str:
    """`pyenv_python`, or the calling test failed with the reason: for checks that must not
    pass by skipping (the agent's and the sensors' Python 3.6 support)."""
    try:
        return pyenv_python(version)
    except InterpreterMissing as missing:
        pytest.fail(str(missing))
