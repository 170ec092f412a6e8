"""The agent's image sets and accuracy jobs: the file format, the preprocessing, the Job checks."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import numpy as np
import pytest

from harness.agent.images import load_image_set, model_input, model_inputs
from harness.agent.job import parse_job
from harness.agent.protocol import AgentFailure


def _write(path: Path, images: np.ndarray, labels: np.ndarray, max_value: int = 16) -> Path:
    np.savez(path, images=images, labels=labels, max_value=np.array([max_value]))
    return path


def test_images_become_inputs_in_the_models_layout(tmp_path: Path) -> None:
    images = np.array([[[0, 16], [8, 4]]], dtype="uint8")  # one 2x2 grey image
    loaded = load_image_set(str(_write(tmp_path / "s.npz", images, np.array([3]))))
    assert loaded["count"] == 1 and loaded["labels"].tolist() == [3] and loaded["max_value"] == 16
    x = model_input(loaded["images"], 0, 16, [1, 3, 4, 4])
    assert x.shape == (1, 3, 4, 4) and x.dtype == np.float32
    # x/16 -> [-1, 1]: 0 -> -1, 16 -> 1, 8 -> 0; nearest resize repeats each pixel 2x2; grey copied to 3 channels
    assert x[0, 0].tolist() == [[-1, -1, 1, 1], [-1, -1, 1, 1], [0, 0, -0.5, -0.5], [0, 0, -0.5, -0.5]]
    assert np.array_equal(x[0, 0], x[0, 2])
    nhwc = model_inputs(images, 16, [1, 8, 8, 3])  # channels last: the last axis is the small one
    assert nhwc.shape == (1, 8, 8, 3) and np.array_equal(nhwc[0, ::2, ::2, 1], x[0, 1])


def test_a_broken_image_set_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "bad.npz"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("images.npy", b"")
    with pytest.raises(ValueError, match="lacks labels, max_value"):
        load_image_set(str(path))
    with pytest.raises(ValueError, match="do not match labels"):
        load_image_set(str(_write(tmp_path / "m.npz", np.zeros((2, 8, 8), "uint8"), np.array([1]))))


def _job(**accuracy: object) -> bytes:
    return json.dumps({"protocol": 1, "kind": "accuracy", "runtime": {"name": "noop"}, "model": {"files": {}},
                       "input": {"shape": [1, 3, 8, 8]}, **({"accuracy": accuracy} if accuracy else {})}).encode()


def test_an_accuracy_job_names_its_image_set() -> None:
    assert parse_job(_job(file="/w/cache/ab/digits-test.npz"))["accuracy"]["file"].endswith(".npz")
    for bad, why in ((_job(), "job.accuracy must be an object"), (_job(file="x.npz", limit=0), "limit")):
        with pytest.raises(AgentFailure, match=why):
            parse_job(bad)
