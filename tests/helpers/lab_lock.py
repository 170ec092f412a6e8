"""One lab test module at a time on this machine.

The lab modules (test_lab.py, test_fleet_lab.py, test_fault_matrix.py, test_arm_device.py)
use fixed interface names, users and addresses; two at once (two pytest runs, or xdist)
would tear each other's labs down. They take this exclusive file lock for their module's
lifetime (the ``lab_tests_lock`` fixture of tests/integration/conftest.py)."""

from __future__ import annotations

import contextlib
import fcntl
from collections.abc import Iterator

LAB_TESTS_LOCK = "/tmp/harness-lab-tests.lock"


@contextlib.contextmanager
def lab_tests_lock() -> Iterator[None]:
    """Blocks until no other lab test module runs, holds the lock for the with-block."""
    with open(LAB_TESTS_LOCK, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield
