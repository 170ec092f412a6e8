"""Paper cuts a new user meets in the first hour: `python -m harness`, and the report's
junit.xml readable like its other files."""

from __future__ import annotations

import stat
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
NOOP_MANIFEST = """
version: 1
defaults:
  latency: {warmup_iterations: 0, warmup_duration: 0s, min_iterations: 5, min_duration: 0s, max_duration: 10s}
models:
  noop:
    input: {name: x, shape: [1], dtype: float32}
    variants:
      v: {kind: fp32, format: none, runtime: noop}
"""


def test_python_dash_m_harness_is_the_harness_command() -> None:
    done = subprocess.run([sys.executable, "-m", "harness", "--help"], capture_output=True, text=True, cwd=REPO,
                          timeout=60)
    assert done.returncode == 0, done.stderr
    assert "targets" in done.stdout and "report" in done.stdout and "lab" in done.stdout


def test_the_reports_junit_xml_is_as_readable_as_its_other_files(tmp_path: Path) -> None:
    """pytest's JUnit XML goes to a private scratch file first (mkstemp: mode 0600) and is moved
    next to the report at the end: a CI runner collecting artifacts as another user must read it."""
    (tmp_path / "models.yaml").write_text(NOOP_MANIFEST)
    done = subprocess.run([sys.executable, "-m", "pytest", "suites/test_latency.py", "--target=local",
                           f"--manifest={tmp_path / 'models.yaml'}", f"--store={tmp_path / 'results.sqlite'}",
                           f"--report-dir={tmp_path / 'reports'}", "-q", "-p", "no:cacheprovider"],
                          capture_output=True, text=True, cwd=REPO, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    (report,) = (tmp_path / "reports").iterdir()
    modes = {name: stat.S_IMODE((report / name).stat().st_mode) for name in ("junit.xml", "index.html", "report.json")}
    assert modes["junit.xml"] == modes["index.html"] == modes["report.json"], {k: oct(v) for k, v in modes.items()}
    assert modes["junit.xml"] & stat.S_IROTH, oct(modes["junit.xml"])
