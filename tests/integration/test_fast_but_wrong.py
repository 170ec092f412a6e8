"""Compressed variants that are fast but wrong must FAIL fidelity and show as wrong.

Two real ways to get a silently wrong Paddle Lite model on this stack (see the paddle
notes): an x86 .nb converted with opt's QUANT_INT8 (built on purpose by the zoo), and
Paddle Lite under numpy 2, whose from_numpy writes garbage inputs without an error.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
from helpers.interpreters import pyenv_python
from helpers.paths import LITE_PYTHON, REPO, VENV_PYTHON
from helpers.project import TINY_CNN_INPUT, local_target, tiny_cnn_paddle, write_manifest, write_target
from helpers.suites import run_suites

from harness.store import open_store

LITE_NUMPY2_ENV = REPO / ".harness" / "test-envs" / "lite-numpy2"
LATENCY = {"warmup_iterations": 3, "warmup_duration": "0s", "min_iterations": 20, "min_duration": "0.2s",
           "max_duration": "20s"}


def lite_variant(build: str, **extra: Any) -> dict[str, Any]:
    """A Paddle Lite variant of tiny_cnn, checked against the fp32 Paddle Inference baseline."""
    return {"kind": "fp32", "baseline": "fp32", "format": "paddle-lite", "runtime": "paddle-lite",
            "files": {"model": f"{{zoo}}/tiny_cnn/{build}/model.nb"}, **extra}


def run_latency_and_fidelity(tmp_path: Path, zoo: Path, lite_python: Path,
                             extra: dict[str, Any] | None = None) -> tuple[subprocess.CompletedProcess, dict]:
    """Both suites on a local box whose paddle-lite runtime is ``lite_python``: the fp32
    baseline, the x86 .nb, the .nb converted with QUANT_INT8, and ``extra`` variants."""
    targets = tmp_path / "targets"
    write_target(targets, local_target("box", workdir=tmp_path / "work", python=VENV_PYTHON,
                                       runtimes={"paddle-inference": VENV_PYTHON, "paddle-lite": lite_python}))
    variants = {"fp32": tiny_cnn_paddle(), "lite": lite_variant("lite-x86"),
                "lite_quant_broken": lite_variant("lite-x86-quant-broken", kind="other"), **(extra or {})}
    manifest = write_manifest(tmp_path / "models.yaml", {"tiny_cnn": {"input": TINY_CNN_INPUT, "variants": variants}},
                              latency=LATENCY, zoo=zoo)
    done = run_suites(["suites/test_latency.py", "suites/test_fidelity.py", "--target=box", f"--targets-dir={targets}",
                       f"--manifest={manifest}"], tmp_path, junit=False)
    store = open_store(tmp_path / "results.sqlite")
    (run,) = store.runs()
    report = json.loads(next((tmp_path / "reports").glob("*/report.json")).read_text())
    rows = {row["variant_id"]: row for row in report["targets"][0]["rows"]}
    return done, {"rows": rows, "records": store.measurements(run.id)}


def test_quant_int8_nb_is_fast_but_wrong_and_reported_as_wrong(tmp_path: Path, demo_zoo: Path) -> None:
    done, found = run_latency_and_fidelity(tmp_path, demo_zoo, LITE_PYTHON)
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
        subprocess.run([pyenv_python("3.10.13"), "-m", "venv", str(LITE_NUMPY2_ENV)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "-q", "paddlelite==2.13rc0", "numpy>=2"], check=True,
                       capture_output=True)
    version = subprocess.run([str(python), "-c", "import numpy; print(numpy.__version__)"], capture_output=True,
                             text=True, check=True).stdout.strip()
    assert version.startswith("2."), version
    return python


def test_paddle_lite_under_numpy2_is_refused_and_would_fail_fidelity(tmp_path: Path, demo_zoo: Path,
                                                                      lite_under_numpy2: Path) -> None:
    forced = {"lite_numpy2": lite_variant("lite-x86", runtime_options={"allow_numpy2": True})}
    done, found = run_latency_and_fidelity(tmp_path, demo_zoo, lite_under_numpy2, extra=forced)
    out = done.stdout
    # by default the adapter refuses: a clear error instead of a silently wrong number
    assert "box: runtime-missing: paddle-lite with numpy 2" in out
    # forced past that guard, the same .nb "runs" and the fidelity suite catches the garbage
    assert "FAILED suites/test_fidelity.py::test_fidelity[box-tiny_cnn-lite_numpy2]" in out
    assert found["rows"]["tiny_cnn-lite_numpy2"]["verdicts"]["fidelity"] == "fail"
