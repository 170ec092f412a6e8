"""Fixtures shared by integration tests and benchmarks: the real demo zoo (built once, cached in .zoo/)."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.zoo.build import build_zoo

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def demo_zoo() -> Path:
    """The repo's demo zoo, built or reused when up to date exactly as `make demo` does."""
    zoo_dir = REPO / ".zoo"
    build_zoo(zoo_dir, None, progress=lambda line: None)
    return zoo_dir
