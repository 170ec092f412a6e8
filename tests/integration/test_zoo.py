"""`harness zoo build`: real paddle export, static PTQ, pruning, paddle2onnx, ORT quantization and
Paddle Lite opt, checked with real Paddle Inference / ONNX Runtime / Paddle Lite predictors."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from harness.agent.inputs import structured_input
from harness.errors import HarnessError
from harness.zoo.build import build_zoo, is_up_to_date
from harness.zoo.catalogue import DEMO_MODELS, DEMO_REQUIRED_FILES
from harness.zoo.keys import build_key
from harness.zoo.toolchain import LITE_PYTHON_ENV, lite_python

MODEL_FILES = ("fp32/inference.pdmodel", "fp32/inference.pdiparams",
               "int8/inference.pdmodel", "int8/inference.pdiparams")
NEW_FILES = ("pruned/inference.pdmodel", "pruned/inference.pdiparams", "qat/inference.pdmodel",
             "qat/inference.pdiparams", "onnx/model.onnx", "onnx-int8/model.onnx", "lite-x86/model.nb",
             "lite-arm/model.nb", "lite-x86-quant-broken/model.nb", "data/digits-test.npz")
VARIANTS = ("fp32", "qat", "pruned", "int8", "onnx", "onnx-int8", "lite-x86", "lite-arm", "lite-x86-quant-broken")
CALIBRATION = 8
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def tiny_zoo(tmp_path_factory):
    """tiny_cnn built once per module: (zoo_dir, record, progress lines)."""
    pytest.importorskip("paddle")
    zoo = tmp_path_factory.mktemp("zoo")
    lines: list[str] = []
    records = build_zoo(zoo, ["tiny_cnn"], calibration=CALIBRATION, progress=lines.append)
    assert len(records) == 1
    return zoo, records[0], lines


def _predict(model_dir: Path, inputs: list[np.ndarray], int8: bool = False) -> list[np.ndarray]:
    import paddle.inference as pi

    config = pi.Config(str(model_dir / "inference.pdmodel"), str(model_dir / "inference.pdiparams"))
    config.disable_gpu()
    config.switch_ir_optim(True)
    config.set_cpu_math_library_num_threads(1)
    config.enable_mkldnn()
    if int8:
        config.enable_mkldnn_int8()
    config.disable_glog_info()
    predictor = pi.create_predictor(config)
    assert predictor.get_input_names() == ["x"]
    handle = predictor.get_input_handle("x")
    outputs = []
    for x in inputs:
        handle.reshape(list(x.shape))
        handle.copy_from_cpu(x)
        predictor.run()
        outputs.append(predictor.get_output_handle(predictor.get_output_names()[0]).copy_to_cpu())
    return outputs


def _mtimes(directory: Path) -> dict[str, int]:
    return {str(p.relative_to(directory)): p.stat().st_mtime_ns
            for p in sorted(directory.rglob("*")) if p.is_file()}


def _python_without_paddle() -> str | None:
    """An interpreter that cannot import paddle (pyenv 3.10.13, or the venv's base python)."""
    candidates = []
    try:
        prefix = subprocess.run(["pyenv", "prefix", "3.10.13"], capture_output=True, text=True,
                                timeout=30).stdout.strip()
        if prefix:
            candidates.append(os.path.join(prefix, "bin", "python"))
    except (OSError, subprocess.SubprocessError):
        pass
    candidates.append(os.path.join(sys.base_prefix, "bin", "python3"))
    for python in candidates:
        if not os.access(python, os.X_OK):
            continue
        probe = subprocess.run(
            [python, "-c", "import importlib.util, sys; "
                           "sys.exit(importlib.util.find_spec('paddle') is not None)"],
            capture_output=True, timeout=60)
        if probe.returncode == 0:
            return python
    return None


# ----------------------------------------------------------------------------- tiny_cnn


def test_build_produces_models_and_build_info(tiny_zoo):
    zoo, record, lines = tiny_zoo
    assert record.model == "tiny_cnn" and not record.skipped
    assert record.directory == zoo / "tiny_cnn"
    for name in MODEL_FILES:
        assert (record.directory / name).is_file(), name
    info = record.info
    assert info["build_key"] == build_key("tiny_cnn", CALIBRATION)
    assert info["model"] == "tiny_cnn"
    assert info["input"] == {"name": "x", "shape": [1, 3, 64, 64], "dtype": "float32"}
    assert info["calibration"]["size"] == CALIBRATION and info["calibration"]["split"] == "calibration"
    assert info["calibration"]["algo"] == "avg" and info["calibration"]["onnx_format"] is True
    # the data: scikit-learn's digits, three disjoint fixed-seed splits, recorded
    data = info["dataset"]
    assert data["source"].startswith("sklearn.datasets.load_digits") and data["scikit_learn"]
    assert (data["train"]["size"], data["calibration"]["size"], data["test"]["size"]) == (1309, 128, 360)
    assert len({data[s]["indices_sha256"] for s in ("train", "calibration", "test")}) == 3
    assert info["paddle_version"] and info["python_version"] and info["duration_s"] > 0
    assert set(MODEL_FILES) <= set(info["files"])
    for entry in info["files"].values():
        assert len(entry["sha256"]) == 64 and entry["size"] > 0
    # the user saw progress, with elapsed seconds, and no temp dir is left behind
    joined = "\n".join(lines)
    assert "[zoo] tiny_cnn: exporting fp32" in joined
    assert "[zoo] tiny_cnn: train: epoch 1/8, loss" in joined  # training shows its progress
    assert f"[zoo] tiny_cnn: calibrating int8 on {CALIBRATION} calibration images" in joined
    assert "[zoo] tiny_cnn: exporting onnx" in joined and "paddle lite opt --valid_targets=arm" in joined
    assert all(line.startswith("[zoo] tiny_cnn:") for line in lines)
    assert any(line.rstrip().endswith(" s]") for line in lines)
    assert sorted(p.name for p in zoo.iterdir() if not p.name.endswith(".lock")) == [
        "tiny_cnn", "tiny_cnn.build.log"]


def test_second_build_is_skipped_and_touches_nothing(tiny_zoo):
    zoo, record, _ = tiny_zoo
    before = _mtimes(record.directory)
    lines: list[str] = []
    again = build_zoo(zoo, ["tiny_cnn"], calibration=CALIBRATION, progress=lines.append)
    assert [r.skipped for r in again] == [True]
    assert again[0].info["build_key"] == record.info["build_key"]
    assert len(lines) == 1 and lines[0].startswith("[zoo] tiny_cnn: up to date (built ")
    assert _mtimes(record.directory) == before


def test_changed_calibration_or_tampered_file_is_not_up_to_date(tiny_zoo, tmp_path):
    _, record, _ = tiny_zoo
    key = record.info["build_key"]
    assert is_up_to_date(record.directory, key) is not None
    assert build_key("tiny_cnn", CALIBRATION + 1) != key
    assert build_key("tiny_cnn", CALIBRATION, paddle="0.0.0") != key
    assert build_key("mobilenet_v3_small", CALIBRATION) != key
    copy = tmp_path / "tiny_cnn"
    shutil.copytree(record.directory, copy)
    params = copy / "int8" / "inference.pdiparams"
    data = bytearray(params.read_bytes())
    data[-1] ^= 0xFF
    params.write_bytes(bytes(data))
    assert is_up_to_date(copy, key) is None


def test_trained_fp32_classifies_the_held_out_digits_and_each_variant_is_measured(tiny_zoo):
    _, record, _ = tiny_zoo
    variants = record.info["variants"]
    fp32 = variants["fp32"]["task_accuracy"]
    assert fp32["count"] == 360 and fp32["top1"] >= 0.9, fp32  # trained: far above chance (10 %)
    assert variants["fp32"]["training"]["epochs"] >= 1 and variants["fp32"]["training"]["train_images"] == 1309
    for name in ("qat", "pruned", "int8", "onnx", "onnx-int8", "lite-x86"):
        assert variants[name]["task_accuracy"]["top1"] >= 0.8, (name, variants[name]["task_accuracy"])
    # converted fp32 files compute the same net: the same images come out right
    assert variants["onnx"]["task_accuracy"]["correct"] == variants["lite-x86"]["task_accuracy"]["correct"] \
        == fp32["correct"]
    # the deliberately broken .nb is near chance, unlike every honest int8
    assert variants["lite-x86-quant-broken"]["task_accuracy"]["top1"] < 0.3
    assert variants["lite-arm"]["task_accuracy"]["measured"] is False
    assert variants["pruned"]["pruning"]["fine_tune"]["epochs"] >= 1
    assert variants["qat"]["kind"] == "int8-qat" and variants["qat"]["qat"]["tool"] == "paddle.quantization.QAT"


def test_fp32_outputs_move_with_the_input(tiny_zoo):
    _, record, _ = tiny_zoo
    shape = record.info["input"]["shape"]
    xs = [structured_input(shape, "float32", seed) for seed in (0, 1, 2)]
    outs = _predict(record.directory / "fp32", xs)
    assert all(o.shape == (1, 10) and np.all(np.isfinite(o)) for o in outs)
    for other in outs[1:]:
        relative = np.linalg.norm(other - outs[0]) / np.linalg.norm(outs[0])
        top1_differs = int(other.argmax()) != int(outs[0].argmax())
        assert top1_differs or relative > 0.05, relative


def test_int8_is_smaller_and_runs_close_to_fp32(tiny_zoo):
    _, record, _ = tiny_zoo
    fp32 = (record.directory / "fp32" / "inference.pdiparams").stat().st_size
    int8 = (record.directory / "int8" / "inference.pdiparams").stat().st_size
    assert int8 < fp32 * 0.5, (int8, fp32)
    shape = record.info["input"]["shape"]
    xs = [structured_input(shape, "float32", seed) for seed in (0, 1)]
    ref = _predict(record.directory / "fp32", xs)
    got = _predict(record.directory / "int8", xs, int8=True)
    spread = np.linalg.norm(ref[1] - ref[0])  # how far fp32 moves between two inputs
    for r, g in zip(ref, got, strict=True):
        assert np.all(np.isfinite(g))
        assert np.linalg.norm(g - r) < spread, "int8 output is not even near its fp32 output"


def test_force_rebuilds_reproducibly(tiny_zoo):
    zoo, record, _ = tiny_zoo
    before = _mtimes(record.directory)
    lines: list[str] = []
    again = build_zoo(zoo, ["tiny_cnn"], force=True, calibration=CALIBRATION,
                      progress=lines.append)
    assert [r.skipped for r in again] == [False]
    assert any("exporting fp32" in line for line in lines)
    assert _mtimes(record.directory) != before
    # same inputs, same bytes: the build is deterministic
    assert again[0].info["files"] == record.info["files"]
    assert is_up_to_date(record.directory, record.info["build_key"]) is not None


# ----------------------------------------------------------------------------- new variants


def _lite_outputs(nb: Path, shape: list[int], seeds: tuple[int, ...]) -> np.ndarray:
    """Run a .nb with Paddle Lite in its own interpreter (numpy<2); outputs stacked per seed."""
    out = nb.parent / f"{nb.stem}-outputs.npy"
    code = (
        "import sys, numpy as np\n"
        "from paddlelite import lite\n"
        "from harness.agent.inputs import structured_input\n"
        "c = lite.MobileConfig(); c.set_model_from_file(sys.argv[1]); p = lite.create_paddle_predictor(c)\n"
        "outs = []\n"
        f"for seed in {list(seeds)}:\n"
        f"    p.get_input(0).from_numpy(structured_input({shape}, 'float32', seed)); p.run()\n"
        "    outs.append(np.array(p.get_output(0).numpy(), copy=True))\n"
        "np.save(sys.argv[2], np.stack(outs))\n")
    done = subprocess.run([lite_python(), "-c", code, str(nb), str(out)], capture_output=True, text=True,
                          timeout=300, env=dict(os.environ, PYTHONPATH=str(REPO)))
    assert done.returncode == 0, done.stderr[-2000:]
    result = np.load(out)
    out.unlink()
    return result


def _onnx_outputs(model: Path, xs: list[np.ndarray]) -> list[np.ndarray]:
    import onnxruntime as ort

    session = ort.InferenceSession(str(model), providers=["CPUExecutionProvider"])
    return [session.run(None, {"x": x})[0] for x in xs]


def test_every_new_artifact_is_built_and_recorded(tiny_zoo):
    _, record, _ = tiny_zoo
    for name in NEW_FILES:
        assert (record.directory / name).is_file(), name
    assert set(DEMO_REQUIRED_FILES) == set(MODEL_FILES) | set(NEW_FILES)
    info = record.info
    assert set(info["variants"]) == set(VARIANTS)
    for name, entry in info["variants"].items():
        # how it was made: tool, tool versions, options, baseline, files (all listed in `files`)
        assert entry["tool"] and entry["tool_versions"], name
        assert isinstance(entry["options"], dict), name
        expected = {"fp32": None, "onnx-int8": "onnx"}.get(name, "fp32")  # as in suites/models.yaml
        assert entry["baseline"] == expected, name
        assert entry["files"] and set(entry["files"]) <= set(info["files"]), name
        assert entry["size"] == sum(info["files"][f]["size"] for f in entry["files"])
    variants = info["variants"]
    assert variants["fp32"]["tool_versions"]["paddlepaddle"] == info["paddle_version"]
    assert variants["onnx"]["tool_versions"]["paddle2onnx"] == "2.1.0"
    assert variants["onnx"]["options"]["opset_version"] == 13
    for name in ("lite-x86", "lite-arm", "lite-x86-quant-broken"):
        assert variants[name]["tool_versions"]["paddlelite"] == "2.13rc0"
        assert variants[name]["tool_versions"]["numpy"].split(".")[0] == "1"  # numpy<2 for Lite
        assert variants[name]["options"]["optimize_out_type"] == "naive_buffer"
    # calibration size and seeds (>= 10000, never the measurement seeds) for both int8 recipes
    for name in ("int8", "qat", "onnx-int8"):
        calibration = variants[name]["calibration"]
        assert calibration["size"] == CALIBRATION and calibration["split"] == "calibration"
    onnx_int8 = variants["onnx-int8"]["options"]
    assert onnx_int8["format"] == "QDQ" and onnx_int8["per_channel"] is True
    assert onnx_int8["calibration_size"] == CALIBRATION
    # the arch of each .nb, so the harness can refuse to push one to the wrong device
    assert variants["lite-x86"]["arch"] == "x86" and variants["lite-x86"]["arches"] == ["x86_64"]
    assert variants["lite-arm"]["arch"] == "arm" and "aarch64" in variants["lite-arm"]["arches"]
    assert "x86_64" not in variants["lite-arm"]["arches"]
    assert variants["lite-arm"]["options"]["valid_targets"] == "arm"
    # the broken one says so, and the build saw it being wrong
    broken = variants["lite-x86-quant-broken"]
    assert broken["expected"] == "wrong outputs (opt QUANT_INT8 on x86)"
    assert broken["options"]["quant_model"] is True and broken["options"]["quant_type"] == "QUANT_INT8"
    assert broken["expected_confirmed"] is True
    # converted fp32 models were checked against the net before being accepted
    for name in ("onnx", "lite-x86"):
        assert variants[name]["check"]["relative_error"] < 1e-3, variants[name]["check"]
    assert not list(record.directory.glob(".scratch"))


def test_pruned_records_kept_ratio_runs_and_is_smaller(tiny_zoo):
    _, record, _ = tiny_zoo
    pruning = record.info["variants"]["pruned"]["pruning"]
    assert pruning["criterion"] == "l1-norm" and pruning["ratio"] == 0.3
    assert pruning["channels_kept"] < pruning["channels_before"]
    for group in pruning["groups"]:
        assert group["kept"] == round(group["channels"] * 0.7)
    assert 0.3 < pruning["kept_ratio_params"] < 0.8
    fp32 = (record.directory / "fp32" / "inference.pdiparams").stat().st_size
    pruned = (record.directory / "pruned" / "inference.pdiparams").stat().st_size
    assert pruning["params_bytes"] == pruned and pruning["baseline_params_bytes"] == fp32
    assert pruned < 0.8 * fp32
    xs = [structured_input([1, 3, 64, 64], "float32", seed) for seed in (0, 1)]
    outs = _predict(record.directory / "pruned", xs)
    assert all(o.shape == (1, 10) and np.all(np.isfinite(o)) for o in outs)
    assert np.linalg.norm(outs[1] - outs[0]) > 0  # still a function of its input


def _held_out(record, count: int) -> list[np.ndarray]:
    """The first `count` images of the build's test split as model inputs (the agent's preprocessing)."""
    from harness.agent.images import load_image_set, model_input

    data = load_image_set(str(record.directory / "data" / "digits-test.npz"))
    return [model_input(data["images"], i, data["max_value"], record.info["input"]["shape"]) for i in range(count)]


def test_onnx_reproduces_fp32_and_onnx_int8_stays_close(tiny_zoo):
    _, record, _ = tiny_zoo
    xs = _held_out(record, 2)  # real digits: int8 is calibrated for them, not for synthetic blocks
    ref = _predict(record.directory / "fp32", xs)
    onnx = _onnx_outputs(record.directory / "onnx" / "model.onnx", xs)
    int8 = _onnx_outputs(record.directory / "onnx-int8" / "model.onnx", xs)
    spread = np.linalg.norm(ref[1] - ref[0])
    for r, o, q in zip(ref, onnx, int8, strict=True):
        assert np.allclose(o, r, atol=1e-4, rtol=1e-4)
        assert np.linalg.norm(q - r) < 0.5 * spread
    sizes = {n: (record.directory / n / "model.onnx").stat().st_size for n in ("onnx", "onnx-int8")}
    assert sizes["onnx-int8"] < 0.5 * sizes["onnx"], sizes
    import onnx as onnx_lib

    model = onnx_lib.load(str(record.directory / "onnx-int8" / "model.onnx"))
    ops = {node.op_type for node in model.graph.node}
    assert {"QuantizeLinear", "DequantizeLinear"} <= ops
    # only used opset domains are stamped: onnxruntime 1.10 (Python 3.6) refuses ai.onnx.ml > 2
    assert {o.domain for o in model.opset_import} <= {"", "ai.onnx"}


def test_lite_x86_matches_fp32_and_broken_quant_is_wrong_and_quarter_size(tiny_zoo):
    _, record, _ = tiny_zoo
    seeds = (0, 1)
    xs = [structured_input([1, 3, 64, 64], "float32", seed) for seed in seeds]
    ref = np.stack(_predict(record.directory / "fp32", xs))
    lite = _lite_outputs(record.directory / "lite-x86" / "model.nb", [1, 3, 64, 64], seeds)
    assert np.allclose(lite, ref, atol=1e-4, rtol=1e-4)
    broken = _lite_outputs(record.directory / "lite-x86-quant-broken" / "model.nb", [1, 3, 64, 64], seeds)
    spread = np.linalg.norm(ref[1] - ref[0])
    with np.errstate(all="ignore"):
        wrong = (not np.all(np.isfinite(broken))) or np.linalg.norm(broken - ref) > spread
    assert wrong, "QUANT_INT8 opt on x86 was expected to give wrong outputs"
    nb = (record.directory / "lite-x86" / "model.nb").stat().st_size
    quant = (record.directory / "lite-x86-quant-broken" / "model.nb").stat().st_size
    assert 0.2 < quant / nb < 0.4, (quant, nb)  # ~1/4 (int8 weights) plus the graph
    # opt leaves stack garbage after its version string: normalised, so rebuilds are identical
    for name in ("lite-x86", "lite-arm", "lite-x86-quant-broken"):
        head = (record.directory / name / "model.nb").read_bytes()[:18]
        assert head[2:11] == b"v2.13-rc\0" and head[11:18] == bytes(7), head


def test_lite_opt_refuses_flatten_for_x86_in_one_line(tmp_path):
    """The notes' pitfall: opt segfaults on paddle.flatten for x86. Refused before opt runs."""
    pytest.importorskip("paddle")
    script = tmp_path / "make_flatten.py"
    script.write_text(
        "import paddle, paddle.nn as nn\n"
        "from paddle.static import InputSpec\n"
        "class Net(nn.Layer):\n"
        "    def __init__(self):\n"
        "        super().__init__()\n"
        "        self.conv = nn.Conv2D(3, 4, 3)\n"
        "        self.fc = nn.Linear(4 * 6 * 6, 2)\n"
        "    def forward(self, x):\n"
        "        return self.fc(paddle.flatten(self.conv(x), 1))\n"
        "paddle.jit.save(Net(), 'm/inference', input_spec=[InputSpec([1, 3, 8, 8], 'float32', 'x')])\n")
    done = subprocess.run([sys.executable, str(script)], cwd=tmp_path, capture_output=True, text=True,
                          timeout=300, env=dict(os.environ, FLAGS_enable_pir_api="0"))
    assert done.returncode == 0, done.stderr[-2000:]
    from harness.zoo.steps import StepFailed, run_tool

    with pytest.raises(StepFailed) as caught:
        run_tool([lite_python(), "-m", "harness.zoo.lite_opt", "--model-file", str(tmp_path / "m/inference.pdmodel"),
                  "--param-file", str(tmp_path / "m/inference.pdiparams"), "--out", str(tmp_path / "out"),
                  "--valid-targets", "x86"], "lite-x86", "paddle_lite_opt",
                 env=dict(os.environ, PYTHONPATH=str(REPO)))
    assert caught.value.step == "lite-x86" and caught.value.tool == "paddle_lite_opt"
    assert "flatten" in caught.value.error and "reshape" in caught.value.error
    assert "\n" not in caught.value.error
    assert not (tmp_path / "out.nb").exists()


def test_lite_interpreter_without_paddlelite_fails_in_one_line(tiny_zoo, tmp_path, monkeypatch):
    """The Lite step runs in its own interpreter; a wrong one is named, and the old build stays."""
    zoo, record, _ = tiny_zoo
    copy_zoo = tmp_path / "zoo"
    shutil.copytree(zoo, copy_zoo)
    before = _mtimes(copy_zoo / "tiny_cnn")
    monkeypatch.setenv(LITE_PYTHON_ENV, sys.executable)  # the paddle venv: no paddlelite there
    with pytest.raises(HarnessError) as caught:
        build_zoo(copy_zoo, ["tiny_cnn"], force=True, calibration=CALIBRATION, progress=lambda line: None)
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith("zoo: tiny_cnn: paddle_lite_opt failed at step 'lite-x86': "
                              "paddlelite cannot be imported in ")
    assert "HARNESS_LITE_PYTHON" in message
    assert _mtimes(copy_zoo / "tiny_cnn") == before
    assert not list(copy_zoo.glob(".tiny_cnn.tmp-*"))


def test_build_key_covers_every_tool(tiny_zoo):
    _, record, _ = tiny_zoo
    key = record.info["build_key"]
    from harness.zoo.keys import tool_versions

    tools = tool_versions("tiny_cnn")
    assert tools["paddlelite"] == "2.13rc0" and tools["paddle2onnx"] == "2.1.0"
    assert build_key("tiny_cnn", CALIBRATION, tools=tools) == key
    for name in ("paddlelite", "paddle2onnx", "onnxruntime"):
        assert build_key("tiny_cnn", CALIBRATION, tools={**tools, name: "0.0.0"}) != key


# ----------------------------------------------------------------------------- failures


def test_unknown_model_names_the_demo_models(tmp_path):
    with pytest.raises(HarnessError) as caught:
        build_zoo(tmp_path, ["resnet9000"])
    message = str(caught.value)
    assert "\n" not in message and "resnet9000" in message
    for name in (*DEMO_MODELS, "ppocr_rec"):
        assert name in message
    assert not (tmp_path / "resnet9000").exists()


def test_worker_without_paddle_fails_in_one_line_and_keeps_previous_build(tiny_zoo, tmp_path):
    python = _python_without_paddle()
    if python is None:
        pytest.skip("no interpreter without paddle found (pyenv 3.10.13 or the base python)")
    zoo, record, _ = tiny_zoo
    copy_zoo = tmp_path / "zoo"
    shutil.copytree(zoo, copy_zoo)
    before = _mtimes(copy_zoo / "tiny_cnn")
    with pytest.raises(HarnessError) as caught:
        build_zoo(copy_zoo, ["tiny_cnn"], force=True, calibration=CALIBRATION, python=python,
                  progress=lambda line: None)
    message = str(caught.value)
    log = copy_zoo / "tiny_cnn.build.log"
    assert "\n" not in message
    assert message.startswith("zoo: tiny_cnn: paddle failed at step 'import': ")
    assert "No module named 'paddle'" in message and python in message
    assert message.endswith(f"; see {log}")
    assert "Traceback" in log.read_text()
    # the previous good build is untouched and still valid; no temp dir is left
    assert _mtimes(copy_zoo / "tiny_cnn") == before
    assert is_up_to_date(copy_zoo / "tiny_cnn", record.info["build_key"]) is not None
    assert not list(copy_zoo.glob(".tiny_cnn.tmp-*"))


def test_worker_crash_names_the_step_it_died_in(tmp_path):
    # A stand-in interpreter that speaks the worker's step protocol, then segfaults, the
    # way paddle's C++ code dies: the message must still name model, tool and step.
    fake = tmp_path / "crashing-python"
    fake.write_text(
        "#!/bin/sh\n"
        "echo '[zoo] tiny_cnn: calibrating int8 on 8 inputs' >&2\n"
        "echo '[zoo-step] {\"step\": \"calibrate\", \"tool\": \"paddle static PTQ\"}' >&2\n"
        "echo 'FatalError: `Segmentation fault` is detected by the operating system.' >&2\n"
        "echo '  [TimeInfo: *** Aborted at 1 (unix time)]' >&2\n"
        "kill -SEGV $$\n")
    fake.chmod(fake.stat().st_mode | stat.S_IXUSR)
    lines: list[str] = []
    with pytest.raises(HarnessError) as caught:
        build_zoo(tmp_path / "zoo", ["tiny_cnn"], python=str(fake), progress=lines.append)
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith("zoo: tiny_cnn: paddle static PTQ failed at step 'calibrate': "
                              "killed by SIGSEGV; FatalError: `Segmentation fault`")
    assert message.endswith(f"; see {tmp_path / 'zoo' / 'tiny_cnn.build.log'}")
    assert any(line.startswith("[zoo] tiny_cnn: calibrating int8") for line in lines)
    assert not (tmp_path / "zoo" / "tiny_cnn").exists()
    assert not list((tmp_path / "zoo").glob(".tiny_cnn.tmp-*"))


def test_missing_interpreter_is_reported(tmp_path):
    missing = str(tmp_path / "no-such-python")
    with pytest.raises(HarnessError) as caught:
        build_zoo(tmp_path / "zoo", ["tiny_cnn"], python=missing, progress=lambda line: None)
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith(f"zoo: tiny_cnn: python failed at step 'start': cannot run {missing}")


# ----------------------------------------------------------------------------- mobilenet


@pytest.mark.slow
def test_mobilenet_v3_small_int8_is_at_most_35_percent(demo_zoo):
    pytest.importorskip("paddle")
    [record] = build_zoo(demo_zoo, ["mobilenet_v3_small"], progress=lambda line: None)  # the repo's zoo, reused
    fp32 = (record.directory / "fp32" / "inference.pdiparams").stat().st_size
    int8 = (record.directory / "int8" / "inference.pdiparams").stat().st_size
    assert int8 <= 0.35 * fp32, (int8, fp32)
    assert record.info["input"]["shape"] == [1, 3, 96, 96]
    assert record.info["calibration"]["size"] == 32 and record.info["calibration"]["algo"] == "avg"
    xs = [structured_input([1, 3, 96, 96], "float32", seed) for seed in (0, 1)]
    a, _ = _predict(record.directory / "fp32", xs)
    assert a.shape == (1, 10)
    assert record.info["variants"]["fp32"]["task_accuracy"]["top1"] >= 0.9
    # the distilled student: a fraction of the teacher's parameters, trained on its soft targets
    distilled = record.info["variants"]["distilled"]
    assert distilled["kind"] == "distilled" and distilled["distillation"]["teacher"] == "fp32"
    assert distilled["distillation"]["student_params"] < 0.2 * distilled["distillation"]["teacher_params"]
    assert distilled["task_accuracy"]["top1"] >= 0.8
    # pruned: fewer params; onnx-int8 and the broken Lite quant: about a quarter of their fp32
    variants = record.info["variants"]
    pruned = (record.directory / "pruned" / "inference.pdiparams").stat().st_size
    assert pruned < 0.9 * fp32 and variants["pruned"]["pruning"]["kept_ratio_params"] < 0.9
    onnx = (record.directory / "onnx" / "model.onnx").stat().st_size
    assert (record.directory / "onnx-int8" / "model.onnx").stat().st_size < 0.35 * onnx
    nb = (record.directory / "lite-x86" / "model.nb").stat().st_size
    assert 0.2 < (record.directory / "lite-x86-quant-broken" / "model.nb").stat().st_size / nb < 0.35
    assert variants["lite-x86-quant-broken"]["expected_confirmed"] is True
    assert variants["lite-x86"]["check"]["relative_error"] < 1e-3
