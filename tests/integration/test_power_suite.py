"""The power suite end to end on the local target: an estimated sensor, an external meter
command, and a declared sensor this machine does not have."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

from helpers.paths import VENV_PYTHON
from helpers.project import TINY_CNN_INPUT, local_target, tiny_cnn_paddle, write_manifest, write_target
from helpers.results import only_record
from helpers.suites import run_suites

LATENCY = {"warmup_iterations": 3, "warmup_duration": "0s", "min_iterations": 20, "min_duration": "0.5s",
           "max_duration": "20s"}


def run_power_suite(tmp_path: Path, zoo: Path, power: dict[str, Any]) -> tuple[subprocess.CompletedProcess, object]:
    """The power suite on tiny_cnn (budget 4 W) on a local box whose ``power`` section is given."""
    targets = tmp_path / "targets"
    write_target(targets, local_target("box", workdir=tmp_path / "work", python=VENV_PYTHON,
                                       runtimes={"paddle-inference": VENV_PYTHON}, power=power))
    manifest = write_manifest(tmp_path / "models.yaml", {"tiny_cnn": {
        "input": TINY_CNN_INPUT, "budgets": {"*": {"max_power": "4W"}}, "variants": {"fp32": tiny_cnn_paddle()}}},
        latency=LATENCY, zoo=zoo)
    done = run_suites(["suites/test_power.py", "--target=box", f"--targets-dir={targets}", f"--manifest={manifest}"],
                      tmp_path, junit=False, timeout=300)
    return done, only_record(tmp_path / "results.sqlite")


def test_estimated_power_is_labelled_everywhere(tmp_path: Path, demo_zoo: Path) -> None:
    done, record = run_power_suite(tmp_path, demo_zoo, {"sensor": "estimate", "options": {"interval_ms": 100}})
    summary = record.summary
    assert record.status == "ok" and summary["status"] == "ok", summary
    assert summary["estimated"] is True and summary["label"] == "estimated"
    assert summary["load_samples"] >= 3 and summary["idle_samples"] >= 3
    assert summary["energy_per_inference_mj"] is not None
    assert record.meta["power_timeline"] and "load_begin" in record.meta["power_markers"]
    # the 4 W budget: whatever the verdict, the line says the figure is an estimate
    line = next(l for l in done.stdout.splitlines() if "box: tiny_cnn-fp32" in l and "power" in l) \
        if done.returncode else ""
    if line:
        assert "ESTIMATED" in line
    (html,) = (tmp_path / "reports").glob("*/index.html")
    text = html.read_text()
    assert "(estimated)" in text and "power timeline" in text


def test_meter_command_reading_is_checked_against_the_budget(tmp_path: Path, demo_zoo: Path) -> None:
    meter = tmp_path / "meter"
    meter.write_text("#!/bin/sh\necho '4.5 W'\n")
    meter.chmod(0o755)
    done, record = run_power_suite(tmp_path, demo_zoo, {"sensor": "command",
                                                          "options": {"argv": [meter], "interval_ms": 100}})
    assert done.returncode == 1
    summary = record.summary
    assert summary["estimated"] is False and summary["load_mean_w"] == 4.5 and summary["idle_mean_w"] == 4.5
    assert abs(summary["energy_per_inference_mj"]) < 1e-9  # constant power: no extra energy per inference
    assert "box: tiny_cnn-fp32 mean power 4.50 W under load" in done.stdout
    assert "exceeds the budget 4.00 W" in done.stdout and "Traceback" not in done.stdout


def test_declared_sensor_missing_on_the_device_is_unavailable_not_zero(tmp_path: Path, demo_zoo: Path) -> None:
    done, record = run_power_suite(tmp_path, demo_zoo, {"sensor": "rapl"})
    assert done.returncode == 0  # skipped, with the reason
    assert record.status == "ok" and record.summary["status"].startswith("unavailable: ")
    assert record.summary["load_mean_w"] is None and record.summary["energy_per_inference_mj"] is None
    assert "SKIPPED" in done.stdout and "power unavailable:" in done.stdout
    (html,) = (tmp_path / "reports").glob("*/index.html")
    assert "power unavailable:" in html.read_text()
