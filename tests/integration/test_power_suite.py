"""The power suite end to end on the local target: an estimated sensor, an external meter
command, and a declared sensor this machine does not have."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from harness.store import open_store

REPO = Path(__file__).resolve().parents[2]
VENV_PYTHON = REPO / ".venv" / "bin" / "python"

MANIFEST = """
version: 1
zoo_dir: {zoo}
defaults:
  latency: {{warmup_iterations: 3, warmup_duration: 0s, min_iterations: 20, min_duration: 0.5s, max_duration: 20s}}
models:
  tiny_cnn:
    input: {{name: x, shape: [1, 3, 64, 64], dtype: float32}}
    budgets:
      "*": {{max_power: 4W}}
    variants:
      fp32:
        kind: fp32
        format: paddle
        runtime: paddle-inference
        files: {{model: "{{zoo}}/tiny_cnn/fp32/inference.pdmodel", params: "{{zoo}}/tiny_cnn/fp32/inference.pdiparams"}}
        runtime_options: {{threads: 1}}
"""

TARGET = """
name: box
kind: x86-cpu
arch: x86_64
connection: {{transport: local}}
workdir: {workdir}
python: {python}
runtimes:
  paddle-inference: {python}
power: {power}
"""


def run_power_suite(tmp_path: Path, zoo: Path, power: str) -> tuple[subprocess.CompletedProcess, object]:
    targets = tmp_path / "targets"
    targets.mkdir()
    (targets / "box.yaml").write_text(TARGET.format(workdir=tmp_path / "work", python=VENV_PYTHON, power=power))
    (tmp_path / "models.yaml").write_text(MANIFEST.format(zoo=zoo))
    done = subprocess.run(
        [sys.executable, "-m", "pytest", str(REPO / "suites" / "test_power.py"), "--target=box",
         f"--targets-dir={targets}", f"--manifest={tmp_path / 'models.yaml'}", f"--store={tmp_path / 'r.sqlite'}",
         f"--report-dir={tmp_path / 'reports'}", "-p", "no:cacheprovider", "-q", "-rA"],
        cwd=REPO, capture_output=True, text=True, timeout=300)
    store = open_store(tmp_path / "r.sqlite")
    (run,) = store.runs()
    (record,) = store.measurements(run.id)
    return done, record


def test_estimated_power_is_labelled_everywhere(tmp_path: Path, demo_zoo: Path) -> None:
    done, record = run_power_suite(tmp_path, demo_zoo, "{sensor: estimate, options: {interval_ms: 100}}")
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
    done, record = run_power_suite(tmp_path, demo_zoo, f"{{sensor: command, options: {{argv: [{meter}], interval_ms: 100}}}}")
    assert done.returncode == 1
    summary = record.summary
    assert summary["estimated"] is False and summary["load_mean_w"] == 4.5 and summary["idle_mean_w"] == 4.5
    assert abs(summary["energy_per_inference_mj"]) < 1e-9  # constant power: no extra energy per inference
    assert "box: tiny_cnn-fp32 mean power 4.50 W under load" in done.stdout
    assert "exceeds the budget 4.00 W" in done.stdout and "Traceback" not in done.stdout


def test_declared_sensor_missing_on_the_device_is_unavailable_not_zero(tmp_path: Path, demo_zoo: Path) -> None:
    done, record = run_power_suite(tmp_path, demo_zoo, "{sensor: rapl}")
    assert done.returncode == 0  # skipped, with the reason
    assert record.status == "ok" and record.summary["status"].startswith("unavailable: ")
    assert record.summary["load_mean_w"] is None and record.summary["energy_per_inference_mj"] is None
    assert "SKIPPED" in done.stdout and "power unavailable:" in done.stdout
    (html,) = (tmp_path / "reports").glob("*/index.html")
    assert "power unavailable:" in html.read_text()
