"""A lab brought up for one bench module: a fresh state dir device users can traverse, under
the lab-tests lock, always taken down (and its state dir removed) afterwards."""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from harness import lab
from harness.lab.devices import LabSpec
from helpers.lab_lock import lab_tests_lock


@contextlib.contextmanager
def temporary_lab(spec: LabSpec) -> Iterator[lab.LabState]:
    with lab_tests_lock():
        state_dir = Path(tempfile.mkdtemp(prefix=f"{spec.prefix}-", dir="/tmp"))
        os.chmod(state_dir, 0o755)  # sshd reads authorized_keys as the device user
        try:
            yield lab.up(state_dir, spec, progress=lambda line: None, install=True)
        finally:
            try:
                lab.down(state_dir, progress=lambda line: None, spec=spec)
            finally:
                shutil.rmtree(state_dir, ignore_errors=True)
