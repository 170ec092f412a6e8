"""Shared fixtures for integration tests: the real demo zoo (built once, cached in .zoo/)."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.zoo.build import build_zoo

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def demo_zoo() -> Path:
    """The repo's demo zoo with tiny_cnn built (reused when up to date, as `make demo` does)."""
    zoo_dir = REPO / ".zoo"
    build_zoo(zoo_dir, ["tiny_cnn"], progress=lambda line: None)
    return zoo_dir
