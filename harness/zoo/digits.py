"""The demo models' labelled images: scikit-learn's digits, shipped inside its wheel.

`sklearn.datasets.load_digits()` (1,797 grey 8x8 images of handwritten digits, 10 classes,
pixel values 0-16; UCI's Optical Recognition of Handwritten Digits test set) is read from the
installed wheel: nothing is downloaded at build or run time.

Splits (fixed seed, disjoint, recorded in build-info): a permutation of all images by
numpy.random.RandomState(SPLIT_SEED + seed); the first TEST_SIZE are the test split (what
accuracy is measured on, at build time and on the target), the next CALIBRATION_SIZE the
calibration split (PTQ and ORT int8 calibrate on its first `--calibration` images), the rest
train (training, fine-tuning after pruning, distillation, QAT).

The test split is written into the model's build as `data/digits-test.npz` (the image set
format of harness.agent.images), which the fidelity suite pushes to the target.

Python 3.11, build worker side (numpy; sklearn imported when loading).
"""

from __future__ import annotations

import os
import zipfile
from dataclasses import dataclass
from typing import Any

import numpy as np

SPLIT_SEED = 30_000
TEST_SIZE = 360
CALIBRATION_SIZE = 128
MAX_VALUE = 16
DATA_DIR = "data"
TEST_FILE = "digits-test.npz"
SOURCE = "sklearn.datasets.load_digits (in the scikit-learn wheel)"


@dataclass(frozen=True)
class Split:
    """One split: uint8 images [N, 8, 8], int64 labels [N], their indices into load_digits()."""

    name: str
    images: np.ndarray
    labels: np.ndarray
    indices: np.ndarray


@dataclass(frozen=True)
class Digits:
    train: Split
    calibration: Split
    test: Split
    sklearn_version: str

    def record(self) -> dict[str, Any]:
        """What build-info says about the data: source, version, split sizes, seeds, indices' digest."""
        import hashlib

        def describe(split: Split) -> dict[str, Any]:
            digest = hashlib.sha256(split.indices.astype("<i8").tobytes()).hexdigest()
            counts = np.bincount(split.labels, minlength=10).tolist()
            return {"size": int(len(split.labels)), "indices_sha256": digest, "class_counts": counts}

        return {"source": SOURCE, "scikit_learn": self.sklearn_version, "classes": 10,
                "image_shape": [8, 8], "max_value": MAX_VALUE,
                "preprocessing": "harness.agent.images.model_inputs (x/16 -> [-1, 1], nearest resize, grey x3)",
                "split_seed": SPLIT_SEED, "permutation": "numpy.random.RandomState(split_seed + seed)",
                "train": describe(self.train), "calibration": describe(self.calibration),
                "test": describe(self.test), "test_file": f"{DATA_DIR}/{TEST_FILE}"}


def load(seed: int = 0) -> Digits:
    """The three fixed splits of load_digits() for `seed`."""
    import sklearn
    from sklearn.datasets import load_digits

    data = load_digits()
    images = np.asarray(data.images).astype("uint8")
    labels = np.asarray(data.target).astype("int64")
    order = np.random.RandomState(SPLIT_SEED + seed).permutation(len(labels))
    cut = (TEST_SIZE, TEST_SIZE + CALIBRATION_SIZE)
    parts = {"test": order[:cut[0]], "calibration": order[cut[0]:cut[1]], "train": order[cut[1]:]}
    splits = {name: Split(name, images[idx], labels[idx], idx) for name, idx in parts.items()}
    return Digits(train=splits["train"], calibration=splits["calibration"], test=splits["test"],
                  sklearn_version=sklearn.__version__)


def write_image_set(split: Split, out_dir: str) -> str:
    """`out_dir/data/digits-test.npz`-style file of `split` (harness.agent.images format)."""
    directory = os.path.join(out_dir, DATA_DIR)
    os.makedirs(directory, exist_ok=True)
    path = os.path.join(directory, TEST_FILE if split.name == "test" else f"digits-{split.name}.npz")
    arrays = {"images": split.images, "labels": split.labels, "max_value": np.array([MAX_VALUE], dtype="int64")}
    # what np.savez writes, with a fixed member time: a rebuild gives the same bytes (np.savez stamps "now")
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as archive:
        for name, array in arrays.items():
            with archive.open(zipfile.ZipInfo(f"{name}.npy", date_time=(1980, 1, 1, 0, 0, 0)), "w") as member:
                np.lib.format.write_array(member, np.ascontiguousarray(array), allow_pickle=False)
    return path
