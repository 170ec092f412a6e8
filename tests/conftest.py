"""Fixtures shared by unit tests, integration tests and benchmarks: the real demo zoo (built
once, cached in .zoo/) and a private PostgreSQL cluster."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from helpers.paths import REPO

from harness.lab.postgres import PostgresCluster, find_bindir, private_cluster
from harness.lab.sshd import LabError
from harness.zoo.build import build_zoo


@pytest.fixture(scope="session")
def demo_zoo() -> Path:
    """The repo's demo zoo, built or reused when up to date exactly as `make demo` does."""
    zoo_dir = REPO / ".zoo"
    build_zoo(zoo_dir, None, progress=lambda line: None)
    return zoo_dir


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[PostgresCluster]:
    """A throw-away PostgreSQL cluster (harness.lab.postgres: initdb + pg_ctl on a loopback
    port), one for the whole test session, stopped and deleted at its end; skips, saying what
    to install, without PostgreSQL server binaries.

    Session-wide is safe: every test that uses it works in a database of its own
    (``create_database`` with a fresh name), and the orphan sweep of test_postgres_orphans.py
    leaves a cluster alone while its owner (this pytest process) runs."""
    try:
        find_bindir()
    except LabError as exc:
        pytest.skip(str(exc))
    with private_cluster() as cluster:
        yield cluster
