"""A SIGKILLed test run leaves its private PostgreSQL cluster running; the next run finds it
(by the owner record in harness.lab.postgres.OWNERS_DIR) and stops it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from helpers.processes import alive

from harness.lab.postgres import PostgresCluster, find_bindir, private_cluster
from harness.lab.sshd import LabError

REPO = Path(__file__).resolve().parents[2]
OWNER = """
import time
from harness.lab.postgres import private_cluster
with private_cluster() as cluster:
    print(cluster.directory, flush=True)
    time.sleep(600)
"""


@pytest.fixture(autouse=True)
def _needs_postgres() -> None:
    try:
        find_bindir()
    except LabError as exc:
        pytest.skip(str(exc))


def test_a_cluster_left_by_a_sigkilled_run_is_stopped_by_the_next_run() -> None:
    owner = subprocess.Popen([sys.executable, "-c", OWNER], stdout=subprocess.PIPE, text=True, cwd=REPO,
                             env={**os.environ, "PYTHONPATH": str(REPO)})
    try:
        directory = Path(owner.stdout.readline().strip())
        left = PostgresCluster(directory)
        assert left.running, directory
        postmaster = int((directory / "data" / "postmaster.pid").read_text().split()[0])
    finally:
        owner.kill()
        owner.wait()
    assert left.running and alive(postmaster)  # what a SIGKILLed run leaves behind
    with private_cluster() as fresh:  # the next run
        assert fresh.running
        assert not alive(postmaster), "the orphaned server still runs"
        assert not directory.exists()


def test_a_cluster_whose_owner_still_runs_is_left_alone() -> None:
    owner = subprocess.Popen([sys.executable, "-c", OWNER], stdout=subprocess.PIPE, text=True, cwd=REPO,
                             env={**os.environ, "PYTHONPATH": str(REPO)})
    try:
        directory = Path(owner.stdout.readline().strip())
        with private_cluster():
            assert PostgresCluster(directory).running  # another live run's cluster
    finally:
        owner.terminate()  # SIGTERM: its with-block does not run; the next sweep takes it
        owner.wait()
    with private_cluster():
        assert not directory.exists()
