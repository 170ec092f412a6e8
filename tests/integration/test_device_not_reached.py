"""A test that fails while connecting to its device (or taking its lock) leaves an error row in
the store, so the report and the sign-off page show that the device was not reached."""

from __future__ import annotations

import json
from pathlib import Path

from helpers.project import noop_manifest, write_target
from helpers.results import only_record
from helpers.suites import run_suites

from harness.lab.sshd import free_port


def test_a_device_not_reached_gets_an_error_row_in_the_store_and_the_report(tmp_path: Path) -> None:
    targets = tmp_path / "targets"
    port = free_port("127.0.0.1")  # nothing listens there: connection refused
    write_target(targets, {"name": "gone", "kind": "x86-cpu", "arch": "x86_64",
                           "connection": {"transport": "ssh", "host": "127.0.0.1", "port": port, "user": "nobody",
                                          "known_hosts": "accept-new", "known_hosts_file": tmp_path / "known_hosts",
                                          "connect_timeout": "2s"},
                           "workdir": "harness-work", "python": "/usr/bin/python3"})
    manifest = noop_manifest(tmp_path / "models.yaml", ["v"], max_duration="10s")
    out = tmp_path / "out"
    done = run_suites(["suites/test_latency.py", "--target=gone", f"--targets-dir={targets}", f"--manifest={manifest}"],
                      out, junit=False, quiet=("-q",), timeout=300)
    assert done.returncode == 1, done.stdout + done.stderr
    assert f"gone: unreachable: 127.0.0.1:{port}" in done.stdout, done.stdout
    record = only_record(out / "results.sqlite")
    assert (record.target, record.variant_id, record.metric, record.status) == ("gone", "noop-v", "latency", "error")
    assert record.meta["error"].startswith(f"gone: unreachable: 127.0.0.1:{port}"), record.meta
    (report,) = (out / "reports").iterdir()
    rows = [row for target in json.loads((report / "report.json").read_text())["targets"] for row in target["rows"]]
    assert [(row["variant_id"], row["status"], row["error"]) for row in rows] == \
        [("noop-v", "error", record.meta["error"])]
    assert f"unreachable: 127.0.0.1:{port}" in (report / "index.html").read_text()
