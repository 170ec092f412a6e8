"""`harness zoo build`: real paddle export, real static PTQ, real Paddle Inference predictors."""

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
from harness.zoo.build import DEMO_MODELS, build_key, build_zoo, is_up_to_date

MODEL_FILES = ("fp32/inference.pdmodel", "fp32/inference.pdiparams",
               "int8/inference.pdmodel", "int8/inference.pdiparams")
CALIBRATION = 8


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
    assert info["calibration"]["size"] == CALIBRATION
    assert info["calibration"]["algo"] == "avg" and info["calibration"]["onnx_format"] is True
    assert info["calibration"]["seeds"][0] >= 10_000
    assert info["paddle_version"] and info["python_version"] and info["duration_s"] > 0
    assert set(MODEL_FILES) <= set(info["files"])
    for entry in info["files"].values():
        assert len(entry["sha256"]) == 64 and entry["size"] > 0
    # the user saw progress, with elapsed seconds, and no temp dir is left behind
    joined = "\n".join(lines)
    assert "[zoo] tiny_cnn: exporting fp32" in joined
    assert f"[zoo] tiny_cnn: calibrating int8 on {CALIBRATION} inputs" in joined
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
    for r, g in zip(ref, got):
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


# ----------------------------------------------------------------------------- failures


def test_unknown_model_names_the_demo_models(tmp_path):
    with pytest.raises(HarnessError) as caught:
        build_zoo(tmp_path, ["resnet9000"])
    message = str(caught.value)
    assert "\n" not in message and "resnet9000" in message
    for name in DEMO_MODELS:
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
def test_mobilenet_v3_small_int8_is_at_most_35_percent(tmp_path):
    pytest.importorskip("paddle")
    lines: list[str] = []
    [record] = build_zoo(tmp_path, ["mobilenet_v3_small"], progress=lines.append)
    assert not record.skipped
    fp32 = (record.directory / "fp32" / "inference.pdiparams").stat().st_size
    int8 = (record.directory / "int8" / "inference.pdiparams").stat().st_size
    assert int8 <= 0.35 * fp32, (int8, fp32)
    assert record.info["input"]["shape"] == [1, 3, 224, 224]
    assert any("calibrating int8 on 32 inputs" in line for line in lines)
    xs = [structured_input([1, 3, 224, 224], "float32", seed) for seed in (0, 1)]
    a, b = _predict(record.directory / "fp32", xs)
    assert a.shape == (1, 1000)
    assert int(a.argmax()) != int(b.argmax()) or np.linalg.norm(b - a) / np.linalg.norm(a) > 0.05
