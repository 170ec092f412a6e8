"""Paper cuts a new user meets in the first hour: `python -m harness`, and the report's
junit.xml readable like its other files."""

from __future__ import annotations

import stat
import subprocess
import sys
from pathlib import Path

from helpers.paths import REPO
from helpers.project import noop_manifest
from helpers.suites import run_suites


def test_python_dash_m_harness_is_the_harness_command() -> None:
    done = subprocess.run([sys.executable, "-m", "harness", "--help"], capture_output=True, text=True, cwd=REPO,
                          timeout=60)
    assert done.returncode == 0, done.stderr
    assert "targets" in done.stdout and "report" in done.stdout and "lab" in done.stdout


def test_the_reports_junit_xml_is_as_readable_as_its_other_files(tmp_path: Path) -> None:
    """pytest's JUnit XML goes to a private scratch file first (mkstemp: mode 0600) and is moved
    next to the report at the end: a CI runner collecting artifacts as another user must read it."""
    manifest = noop_manifest(tmp_path / "models.yaml", ["v"], max_duration="10s")
    done = run_suites(["suites/test_latency.py", "--target=local", f"--manifest={manifest}"], tmp_path / "out",
                      junit=False, quiet=("-q",), timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    (report,) = (tmp_path / "out" / "reports").iterdir()
    modes = {name: stat.S_IMODE((report / name).stat().st_mode) for name in ("junit.xml", "index.html", "report.json")}
    assert modes["junit.xml"] == modes["index.html"] == modes["report.json"], {k: oct(v) for k, v in modes.items()}
    assert modes["junit.xml"] & stat.S_IROTH, oct(modes["junit.xml"])
