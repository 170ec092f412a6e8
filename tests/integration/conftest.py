"""Fixtures of the integration tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from helpers.lab_lock import lab_tests_lock as hold_lab_tests_lock


@pytest.fixture(scope="module")
def lab_tests_lock() -> Iterator[None]:
    """One lab test module at a time on this machine (see helpers.lab_lock). A lab module
    takes it for all of its tests with ``pytest.mark.usefixtures("lab_tests_lock")``."""
    with hold_lab_tests_lock():
        yield
