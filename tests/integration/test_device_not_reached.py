"""A test that fails while connecting to its device (or taking its lock) leaves an error row in
the store, so the report and the sign-off page show that the device was not reached."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from harness.lab.sshd import free_port
from harness.store import open_store

REPO = Path(__file__).resolve().parents[2]
TARGET = """name: gone
kind: x86-cpu
arch: x86_64
connection: {{transport: ssh, host: 127.0.0.1, port: {port}, user: nobody, known_hosts: accept-new,
             known_hosts_file: {known_hosts}, connect_timeout: 2s}}
workdir: harness-work
python: /usr/bin/python3
"""
MANIFEST = """
version: 1
defaults:
  latency: {warmup_iterations: 0, warmup_duration: 0s, min_iterations: 5, min_duration: 0s, max_duration: 10s}
models:
  noop:
    input: {name: x, shape: [1], dtype: float32}
    variants:
      v: {kind: fp32, format: none, runtime: noop}
"""


def test_a_device_not_reached_gets_an_error_row_in_the_store_and_the_report(tmp_path: Path) -> None:
    targets = tmp_path / "targets"
    targets.mkdir()
    port = free_port("127.0.0.1")  # nothing listens there: connection refused
    (targets / "gone.yaml").write_text(TARGET.format(port=port, known_hosts=tmp_path / "known_hosts"))
    (tmp_path / "models.yaml").write_text(MANIFEST)
    done = subprocess.run([sys.executable, "-m", "pytest", "suites/test_latency.py", "--target=gone",
                           f"--targets-dir={targets}", f"--manifest={tmp_path / 'models.yaml'}",
                           f"--store={tmp_path / 'results.sqlite'}", f"--report-dir={tmp_path / 'reports'}",
                           "-q", "-p", "no:cacheprovider"], capture_output=True, text=True, cwd=REPO, timeout=300)
    assert done.returncode == 1, done.stdout + done.stderr
    assert f"gone: unreachable: 127.0.0.1:{port}" in done.stdout, done.stdout
    store = open_store(tmp_path / "results.sqlite")
    (run,) = store.runs()
    (record,) = store.measurements(run.id)
    assert (record.target, record.variant_id, record.metric, record.status) == ("gone", "noop-v", "latency", "error")
    assert record.meta["error"].startswith(f"gone: unreachable: 127.0.0.1:{port}"), record.meta
    (report,) = (tmp_path / "reports").iterdir()
    rows = [row for target in json.loads((report / "report.json").read_text())["targets"] for row in target["rows"]]
    assert [(row["variant_id"], row["status"], row["error"]) for row in rows] == \
        [("noop-v", "error", record.meta["error"])]
    assert f"unreachable: 127.0.0.1:{port}" in (report / "index.html").read_text()
