"""The orchestrator SIGKILLed mid-run: the store is intact, the partial run renders as
incomplete, and `--resume` measures only the missing cases into the same run."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
VARIANTS = 6

TARGET = """
name: box
kind: x86-cpu
arch: x86_64
connection: {{transport: local}}
workdir: {workdir}
python: {python}
"""


def _manifest() -> str:
    variants = "\n".join(f"""      v{i}:
        kind: fp32
        format: none
        runtime: noop
        files: {{}}
        runtime_options: {{sleep_us: 2000}}""" for i in range(VARIANTS))
    return f"""version: 1
defaults:
  latency: {{warmup_iterations: 1, warmup_duration: 0s, min_iterations: 100, min_duration: 0.6s, max_duration: 5s}}
models:
  m:
    input: {{name: x, shape: [1], dtype: float32}}
    variants:
{variants}
"""


def _pytest(tmp_path: Path, target: str, targets_dir: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "pytest", str(REPO / "suites" / "test_latency.py"), f"--target={target}",
            f"--targets-dir={targets_dir}", f"--manifest={tmp_path / 'models.yaml'}",
            f"--store={tmp_path / 'r.sqlite'}", f"--report-dir={tmp_path / 'reports'}", "-p", "no:cacheprovider",
            "-q", *extra]


def _ok_rows(store: Path) -> list[tuple[int, str]]:
    if not store.exists():
        return []
    with sqlite3.connect(store) as db:
        try:
            return db.execute("SELECT id, variant FROM measurements WHERE status = 'ok' ORDER BY id").fetchall()
        except sqlite3.OperationalError:
            return []


def test_killed_run_is_intact_reportable_and_resumable(tmp_path: Path) -> None:
    (tmp_path / "targets").mkdir()
    (tmp_path / "targets" / "box.yaml").write_text(TARGET.format(workdir=tmp_path / "work", python=sys.executable))
    check_killed_run_is_intact_reportable_and_resumable(tmp_path, "box", tmp_path / "targets")


def check_killed_run_is_intact_reportable_and_resumable(tmp_path: Path, target: str, targets_dir: Path) -> int:
    """SIGKILL a `pytest suites/test_latency.py --target=TARGET` run after two of its cases
    are stored; check the store, the incomplete report and `--resume`. Returns how many
    cases were stored before the kill."""
    (tmp_path / "models.yaml").write_text(_manifest())
    store = tmp_path / "r.sqlite"
    orchestrator = subprocess.Popen(_pytest(tmp_path, target, targets_dir), cwd=REPO, stdout=subprocess.DEVNULL,
                                    stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + 120
    while len(_ok_rows(store)) < 2 and time.monotonic() < deadline and orchestrator.poll() is None:
        time.sleep(0.1)
    os.killpg(orchestrator.pid, signal.SIGKILL)
    orchestrator.wait()
    before = _ok_rows(store)
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

    resumed = subprocess.run(_pytest(tmp_path, target, targets_dir, "--resume=latest"), cwd=REPO,
                             capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stdout[-2000:]
    after = _ok_rows(store)
    assert sorted(v for _, v in after) == [f"v{i}" for i in range(VARIANTS)]  # each measured exactly once
    assert after[:len(before)] == before  # what was measured before the kill was reused, not redone
    with sqlite3.connect(store) as db:
        assert db.execute("SELECT id, status FROM runs").fetchall() == [(run_id, "complete")]
    return len(before)
