"""An orchestrator SIGKILLed mid-run: the store is intact, the partial run renders as
incomplete, and ``--resume`` measures only the missing cases into the same run. Checked on
a local target by test_orchestrator_killed.py and on a lab device by test_fault_matrix.py."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

from helpers.paths import REPO
from helpers.project import noop_variant, write_manifest
from helpers.results import ok_rows
from helpers.suites import run_suites, suites_argv

VARIANTS = 6
LATENCY = {"warmup_iterations": 1, "warmup_duration": "0s", "min_iterations": 100, "min_duration": "0.6s",
           "max_duration": "5s"}
"""About 0.2 s a case (100 iterations of a 2 ms job): the kill lands between cases."""


def _suites(tmp_path: Path, target: str, targets_dir: Path) -> list[str]:
    return ["suites/test_latency.py", f"--target={target}", f"--targets-dir={targets_dir}",
            f"--manifest={tmp_path / 'models.yaml'}", f"--store={tmp_path / 'r.sqlite'}",
            f"--report-dir={tmp_path / 'reports'}"]


def check_killed_run_is_intact_reportable_and_resumable(tmp_path: Path, target: str, targets_dir: Path) -> int:
    """SIGKILL a `pytest suites/test_latency.py --target=TARGET` run after two of its cases
    are stored; check the store, the incomplete report and `--resume`. Returns how many
    cases were stored before the kill."""
    variants = {f"v{i}": noop_variant(files={}, runtime_options={"sleep_us": 2000}) for i in range(VARIANTS)}
    write_manifest(tmp_path / "models.yaml", {"m": {"input": {"name": "x", "shape": [1], "dtype": "float32"},
                                                    "variants": variants}}, latency=LATENCY)
    store = tmp_path / "r.sqlite"
    orchestrator = subprocess.Popen(suites_argv(_suites(tmp_path, target, targets_dir), quiet=("-q",)), cwd=REPO,
                                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + 120
    while len(ok_rows(store)) < 2 and time.monotonic() < deadline and orchestrator.poll() is None:
        time.sleep(0.1)
    os.killpg(orchestrator.pid, signal.SIGKILL)
    orchestrator.wait()
    before = ok_rows(store)
    assert 2 <= len(before) < VARIANTS, f"kill landed at the wrong time: {before}"

    with sqlite3.connect(store) as db:  # the store is intact and says the run never finished
        assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        ((run_id, status),) = db.execute("SELECT id, status FROM runs").fetchall()
    assert status == "running"
    rendered = subprocess.run([sys.executable, "-m", "harness.cli", "report", run_id, "--store", str(store),
                               "--report-dir", str(tmp_path / "reports")], cwd=REPO, capture_output=True, text=True)
    assert rendered.returncode == 0, rendered.stderr
    html = (tmp_path / "reports" / run_id / "index.html").read_text()
    assert 'id="incomplete"' in html and html.count("data-variant=") == len(before)

    resumed = run_suites([*_suites(tmp_path, target, targets_dir), "--resume=latest"], timeout=300, quiet=("-q",))
    assert resumed.returncode == 0, resumed.stdout[-2000:]
    after = ok_rows(store)
    assert sorted(v for _, v in after) == [f"v{i}" for i in range(VARIANTS)]  # each measured exactly once
    assert after[:len(before)] == before  # what was measured before the kill was reused, not redone
    with sqlite3.connect(store) as db:
        assert db.execute("SELECT id, status FROM runs").fetchall() == [(run_id, "complete")]
    return len(before)
