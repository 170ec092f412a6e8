"""Compressed variants that are fast but wrong must FAIL fidelity and show as wrong.

Two real ways to get a silently wrong Paddle Lite model on this stack (see the paddle
notes): an x86 .nb converted with opt's QUANT_INT8 (built on purpose by the zoo), and
Paddle Lite under numpy 2, whose from_numpy writes garbage inputs without an error.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from harness.store import open_store

REPO = Path(__file__).resolve().parents[2]
LITE_NUMPY2_ENV = REPO / ".harness" / "test-envs" / "lite-numpy2"

MANIFEST = """
version: 1
zoo_dir: {zoo}
defaults:
  latency: {{warmup_iterations: 3, warmup_duration: 0s, min_iterations: 20, min_duration: 0.2s, max_duration: 20s}}
models:
  tiny_cnn:
    input: {{name: x, shape: [1, 3, 64, 64], dtype: float32}}
    variants:
      fp32:
        kind: fp32
        format: paddle
        runtime: paddle-inference
        files: {{model: "{{zoo}}/tiny_cnn/fp32/inference.pdmodel", params: "{{zoo}}/tiny_cnn/fp32/inference.pdiparams"}}
        runtime_options: {{threads: 1}}
      lite:
        kind: fp32
        baseline: fp32
        format: paddle-lite
        runtime: paddle-lite
        files: {{model: "{{zoo}}/tiny_cnn/lite-x86/model.nb"}}
      lite_quant_broken:
        kind: other
        baseline: fp32
        format: paddle-lite
        runtime: paddle-lite
        files: {{model: "{{zoo}}/tiny_cnn/lite-x86-quant-broken/model.nb"}}
{extra}
"""

TARGET = """
name: box
kind: x86-cpu
arch: x86_64
connection: {{transport: local}}
workdir: {workdir}
python: {venv}
runtimes:
  paddle-inference: {venv}
  paddle-lite: {lite}
"""


def run_suites(tmp_path: Path, zoo: Path, lite_python: Path, extra: str = "") -> tuple[subprocess.CompletedProcess, dict]:
    targets = tmp_path / "targets"
    targets.mkdir()
    (targets / "box.yaml").write_text(TARGET.format(workdir=tmp_path / "work", venv=REPO / ".venv/bin/python",
                                                    lite=lite_python))
    (tmp_path / "models.yaml").write_text(MANIFEST.format(zoo=zoo, extra=extra))
    done = subprocess.run(
        [sys.executable, "-m", "pytest", str(REPO / "suites" / "test_latency.py"), str(REPO / "suites" / "test_fidelity.py"),
         "--target=box", f"--targets-dir={targets}", f"--manifest={tmp_path / 'models.yaml'}",
         f"--store={tmp_path / 'r.sqlite'}", f"--report-dir={tmp_path / 'reports'}", "-p", "no:cacheprovider", "-q", "-rA"],
        cwd=REPO, capture_output=True, text=True, timeout=600)
    store = open_store(tmp_path / "r.sqlite")
    (run,) = store.runs()
    report = json.loads(next((tmp_path / "reports").glob("*/report.json")).read_text())
    rows = {row["variant_id"]: row for row in report["targets"][0]["rows"]}
    return done, {"rows": rows, "records": store.measurements(run.id)}


def test_quant_int8_nb_is_fast_but_wrong_and_reported_as_wrong(tmp_path: Path, demo_zoo: Path) -> None:
    done, found = run_suites(tmp_path, demo_zoo, REPO / ".venv-lite/bin/python")
    out = done.stdout
    assert "test_fidelity[box-tiny_cnn-lite]" in out and "PASSED suites/test_fidelity.py::test_fidelity[box-tiny_cnn-lite]" in out
    assert "FAILED suites/test_fidelity.py::test_fidelity[box-tiny_cnn-lite_quant_broken]" in out
    assert "box: tiny_cnn-lite_quant_broken outputs disagree with its baseline" in out
    broken = found["rows"]["tiny_cnn-lite_quant_broken"]
    assert broken["verdicts"]["fidelity"] == "fail" and broken["verdict"] == "fail"
    assert broken["speedup"] is None and "wrong outputs" in broken["comparison_note"]  # never shown as a speed-up
    assert found["rows"]["tiny_cnn-lite"]["verdicts"]["fidelity"] == "pass"
    html = next((tmp_path / "reports").glob("*/index.html")).read_text()
    assert '<span class="fail">wrong outputs</span>' in html
    # the baseline's outputs move across the seeded inputs, so agreement means something
    baseline = next(r for r in found["records"] if r.metric == "fidelity" and r.variant == "fp32")
    assert baseline.summary["baseline"]["meaningful"] and baseline.summary["baseline"]["distinct_top1"] >= 2


@pytest.fixture(scope="session")
def lite_under_numpy2() -> Path:
    """A Python 3.10 venv with paddlelite and numpy 2: the broken combination, on purpose."""
    python = LITE_NUMPY2_ENV / "bin" / "python"
    if not python.exists():
        base = subprocess.run(["pyenv", "prefix", "3.10.13"], capture_output=True, text=True, check=True).stdout.strip()
        subprocess.run([f"{base}/bin/python", "-m", "venv", str(LITE_NUMPY2_ENV)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "-q", "paddlelite==2.13rc0", "numpy>=2"], check=True,
                       capture_output=True)
    version = subprocess.run([str(python), "-c", "import numpy; print(numpy.__version__)"], capture_output=True,
                             text=True, check=True).stdout.strip()
    assert version.startswith("2."), version
    return python


def test_paddle_lite_under_numpy2_is_refused_and_would_fail_fidelity(tmp_path: Path, demo_zoo: Path,
                                                                      lite_under_numpy2: Path) -> None:
    forced = """      lite_numpy2:
        kind: fp32
        baseline: fp32
        format: paddle-lite
        runtime: paddle-lite
        files: {model: "{zoo}/tiny_cnn/lite-x86/model.nb"}
        runtime_options: {allow_numpy2: true}
"""
    done, found = run_suites(tmp_path, demo_zoo, lite_under_numpy2, extra=forced)
    out = done.stdout
    # by default the adapter refuses: a clear error instead of a silently wrong number
    assert "box: runtime-missing: paddle-lite with numpy 2" in out
    # forced past that guard, the same .nb "runs" and the fidelity suite catches the garbage
    assert "FAILED suites/test_fidelity.py::test_fidelity[box-tiny_cnn-lite_numpy2]" in out
    assert found["rows"]["tiny_cnn-lite_numpy2"]["verdicts"]["fidelity"] == "fail"
