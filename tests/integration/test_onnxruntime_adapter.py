"""The onnxruntime adapter through the real agent subprocess, on real zoo models.

fp32 (paddle2onnx) and int8 (ORT QDQ) models of tiny_cnn, a model with symbolic dimensions,
bad options, a bad model file, and an interpreter without onnxruntime (pyenv 3.10.13's bare
python) all go through `python -m harness.agent` exactly as a target runs it.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from helpers.agent_jobs import run_agent_job
from helpers.interpreters import pyenv_python_or_skip

from harness.agent import PROTOCOL_VERSION
from harness.agent.inputs import structured_input
from harness.zoo.build import build_zoo

ort = pytest.importorskip("onnxruntime")

FAST = {"warmup_iterations": 2, "warmup_duration_s": 0, "min_iterations": 20, "min_duration_s": 0.01}
TINY_INPUT = {"name": "x", "shape": [1, 3, 64, 64], "dtype": "float32", "seed": 0}


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Path:
    """tiny_cnn built once for this module: the directory holding onnx/ and onnx-int8/."""
    pytest.importorskip("paddle")
    zoo = tmp_path_factory.mktemp("zoo")
    [record] = build_zoo(zoo, ["tiny_cnn"], calibration=8, progress=lambda line: None)
    return record.directory


def run_agent(model: str | Path, options: dict[str, Any] | None = None, input_spec: dict[str, Any] | None = None,
              python: str = sys.executable) -> tuple[int, list[dict[str, Any]], str]:
    job = {"protocol": PROTOCOL_VERSION, "job_id": "ort", "runtime": {"name": "onnxruntime", "options": options or {}},
           "model": {"files": {"model": str(model)}}, "input": input_spec or dict(TINY_INPUT), "latency": FAST}
    return run_agent_job(job, python)


def _result(model, options=None, input_spec=None) -> dict[str, Any]:
    code, events, stderr = run_agent(model, options, input_spec)
    assert code == 0, (events[-1:], stderr[-2000:])
    assert [e["event"] for e in events][-2:] == ["samples", "result"]
    assert len(events[-2]["latency_ns"]) >= FAST["min_iterations"]
    return events[-1]


def _error(model, options=None, input_spec=None, python=sys.executable) -> dict[str, Any]:
    code, events, stderr = run_agent(model, options, input_spec, python)
    assert code == 1, stderr[-2000:]
    assert events[-1]["event"] == "error", events
    assert "\n" not in events[-1]["message"]
    return events[-1]


def test_fp32_model_describes_itself(tiny):
    runtime = _result(tiny / "onnx" / "model.onnx")["runtime"]
    assert runtime["name"] == "onnxruntime" and runtime["version"] == ort.__version__
    assert runtime["precision"] == "fp32" and runtime["precision_executed"] == "fp32"
    assert runtime["int8_kernels"] is False and runtime["quant_ops"] == {}
    assert runtime["weight_dtype"] == "float32" and runtime["opset"] == 13 and runtime["model_format"] == "onnx"
    assert runtime["providers"] == ["CPUExecutionProvider"]
    assert "CPUExecutionProvider" in runtime["providers_available"]
    assert runtime["threads"] == 1 and runtime["graph_optimization"] == "all"
    assert runtime["inputs"] == [{"name": "x", "shape": [1, 3, 64, 64], "dtype": "float32"}]
    [output] = runtime["outputs"]
    assert output["shape"] == [1, 10] and output["dtype"] == "float32"


def test_int8_qdq_model_is_int8_and_runs_int8_kernels(tiny):
    runtime = _result(tiny / "onnx-int8" / "model.onnx", {"threads": 1})["runtime"]
    assert runtime["precision"] == "int8"
    assert runtime["quant_ops"]["QuantizeLinear"] > 0 and runtime["quant_ops"]["DequantizeLinear"] > 0
    assert runtime["weight_dtype"] == "int8"
    # evidence from the graph ORT optimised: QDQ pairs fused into int8 kernels
    assert runtime["precision_executed"] == "int8" and runtime["int8_kernels"] is True
    assert runtime["int8_ops"].get("QLinearConv", 0) >= 1
    assert "QLinearConv" in runtime["precision_note"]


def test_int8_without_graph_optimisation_is_reported_as_fake_quant(tiny):
    runtime = _result(tiny / "onnx-int8" / "model.onnx", {"graph_optimization": "disable"})["runtime"]
    assert runtime["precision"] == "int8"  # what the graph is
    assert runtime["precision_executed"] == "fp32-fake-quant" and runtime["int8_kernels"] is False
    assert "graph_optimization=disable" in runtime["precision_note"]


def test_options_are_applied_and_reported(tiny):
    runtime = _result(tiny / "onnx" / "model.onnx", {"threads": 2, "inter_threads": 1, "execution_mode": "parallel",
                                                     "graph_optimization": "basic",
                                                     "providers": ["CPUExecutionProvider"]})["runtime"]
    assert runtime["threads"] == 2 and runtime["inter_threads"] == 1
    assert runtime["execution_mode"] == "parallel" and runtime["graph_optimization"] == "basic"


def test_symbolic_dimensions_are_strings(tmp_path):
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        [helper.make_node("Relu", ["x"], ["y"])], "dyn",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 3, "height", None])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 3, "height", None])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 7
    path = tmp_path / "dyn.onnx"
    onnx.save(model, str(path))
    runtime = _result(path, input_spec={"shape": [1, 3, 8, 5], "dtype": "float32"})["runtime"]
    assert runtime["inputs"] == [{"name": "x", "shape": ["batch", 3, "height", "?"], "dtype": "float32"}]
    assert runtime["precision"] == "fp32"  # no weights: from the input type


def test_unknown_provider_is_a_bad_option_naming_the_available_ones(tiny):
    error = _error(tiny / "onnx" / "model.onnx", {"providers": ["TensorrtExecutionProvider"]})
    assert error["kind"] == "bad-option"
    assert "TensorrtExecutionProvider" in error["message"]
    assert "available: " in error["message"] and "CPUExecutionProvider" in error["message"]


@pytest.mark.parametrize("options, words", [
    ({"graph_optimization": "turbo"}, ["graph_optimization", "all", "extended", "basic", "disable"]),
    ({"providers": "CPUExecutionProvider"}, ["providers"]),
    ({"providers": []}, ["providers", "non-empty"]),
    ({"threads": -1}, ["threads", ">= 0"]),
    ({"intra_op_num_threads": 2}, ["unknown option", "intra_op_num_threads", "threads"]),
])
def test_bad_options_are_refused_before_anything_loads(tiny, options, words):
    error = _error(tiny / "onnx" / "model.onnx", options)
    assert error["kind"] == "bad-option"
    for word in words:
        assert word in error["message"], error["message"]


def test_input_that_does_not_fit_the_model_is_a_bad_option(tiny):
    model = tiny / "onnx" / "model.onnx"
    error = _error(model, input_spec={"shape": [1, 3, 64, 64], "dtype": "uint8"})
    assert error["kind"] == "bad-option" and "float32" in error["message"] and "uint8" in error["message"]
    error = _error(model, input_spec={"shape": [1, 3, 32, 32], "dtype": "float32"})
    assert error["kind"] == "bad-option" and "[1, 3, 64, 64]" in error["message"]


def test_broken_or_missing_model_file(tmp_path, tiny):
    broken = tmp_path / "broken.onnx"
    broken.write_bytes(b"this is not a protobuf")
    error = _error(broken)
    assert error["kind"] == "model-load" and str(broken) in error["message"]
    assert "onnxruntime_src" not in error["message"]  # the C++ location is stripped
    assert _error(tmp_path / "absent.onnx")["kind"] == "model-missing"


def test_interpreter_without_onnxruntime_is_runtime_missing(tiny):
    python = pyenv_python_or_skip("3.10.13")
    probe = subprocess.run([python, "-c", "import onnxruntime"], capture_output=True, timeout=60)
    if probe.returncode == 0:
        pytest.skip(f"{python} has onnxruntime")
    error = _error(tiny / "onnx" / "model.onnx", python=python)
    assert error["kind"] == "runtime-missing"
    assert "onnxruntime cannot be imported" in error["message"] and "onnxruntime" in error["message"]


def test_outputs_follow_set_inputs_with_one_runner(tiny):
    """What a fidelity job does: one runner, new inputs per seed; outputs must follow them."""
    from harness.agent.runtimes import load_adapter_class

    adapter = load_adapter_class("onnxruntime")({})
    adapter.import_runtime()
    model = tiny / "onnx" / "model.onnx"
    adapter.load({"model": str(model)}, {"shape": [1, 3, 64, 64], "dtype": "float32"})
    adapter.set_inputs(0)
    run_once = adapter.runner()
    session = ort.InferenceSession(str(model), providers=["CPUExecutionProvider"])
    for seed in (0, 1, 2):
        adapter.set_inputs(seed)
        run_once()
        [got] = adapter.outputs()
        expected = session.run(None, {"x": structured_input([1, 3, 64, 64], "float32", seed)})[0]
        assert isinstance(got, np.ndarray) and got.shape == (1, 10)
        np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)
    adapter.set_inputs(1)  # outputs() without a run runs once for the current input
    np.testing.assert_allclose(adapter.outputs()[0],
                               session.run(None, {"x": structured_input([1, 3, 64, 64], "float32", 1)})[0],
                               rtol=1e-5, atol=1e-6)
