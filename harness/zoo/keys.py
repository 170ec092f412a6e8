"""The build key: what decides a model's build, hashed, so that an unchanged build is reused.

A key is the sha256 over the sources that decide the result (per model, see `key_sources`:
every harness module its worker runs), the model name, calibration size, seed and the
versions of every tool used (`tool_versions`: paddlepaddle, paddle2onnx, onnx, onnxruntime,
and paddlelite/numpy in the Lite interpreter; Pillow and the font for the OCR model).

The host computes it once per build and hands it to the worker (`--key`), which records it
in build-info.json; the host then accepts the build only with that key. Stdlib only.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from pathlib import Path

from harness.zoo.build_info import sha256
from harness.zoo.catalogue import DEFAULT_SEED, MEDIAPIPE_MODEL, PPOCR_MODEL, PRETRAINED_MODELS
from harness.zoo.ocr_text import find_font
from harness.zoo.toolchain import dist_version, lite_versions, paddle_version

KEY_VERSION = "harness-zoo-build/3"

_PACKAGE_ROOT = Path(__file__).resolve().parents[1]  # .../harness
_ZOO = _PACKAGE_ROOT / "zoo"
#: Sources every worker runs: the step protocol, the build-info it writes, the model names.
_WORKER_SOURCES: tuple[Path, ...] = (_ZOO / "steps.py", _ZOO / "build_info.py", _ZOO / "catalogue.py")
#: The sources whose bytes go into a demo model's build key.
DEMO_KEY_SOURCES: tuple[Path, ...] = (
    _ZOO / "nets.py",
    _ZOO / "export_worker.py",
    _ZOO / "demo_variants.py",
    _ZOO / "output_checks.py",
    _ZOO / "prune.py",
    _ZOO / "ortquant.py",
    _ZOO / "lite_opt.py",
    _ZOO / "train.py",
    _ZOO / "qat.py",
    _ZOO / "digits.py",
    _ZOO / "variant_accuracy.py",
    *_WORKER_SOURCES,
    _PACKAGE_ROOT / "agent" / "inputs.py",
    _PACKAGE_ROOT / "agent" / "images.py",
    _PACKAGE_ROOT / "agent" / "accuracy.py",
)
#: ... and of the pretrained OCR model's.
PPOCR_KEY_SOURCES: tuple[Path, ...] = (
    _ZOO / "ppocr.py",
    _ZOO / "ocr_text.py",
    _ZOO / "ocr_accuracy.py",
    _ZOO / "ortquant.py",
    _ZOO / "wheels.py",
    *_WORKER_SOURCES,
)
#: ... and of the MediaPipe models' (no calibration: the key ignores the calibration size).
MEDIAPIPE_KEY_SOURCES: tuple[Path, ...] = (
    _ZOO / "mediapipe.py",
    _ZOO / "wheels.py",
    _ZOO / "toolchain.py",
    *_WORKER_SOURCES,
    _PACKAGE_ROOT / "agent" / "inputs.py",
)


def key_sources(model: str) -> tuple[Path, ...]:
    """The harness sources whose bytes go into `model`'s build key."""
    if model == MEDIAPIPE_MODEL:
        return MEDIAPIPE_KEY_SOURCES
    if model == PPOCR_MODEL:
        return PPOCR_KEY_SOURCES
    return DEMO_KEY_SOURCES


def tool_versions(model: str) -> dict[str, str]:
    """Versions of every tool that shapes `model`'s build (they go into its build key)."""
    if model == MEDIAPIPE_MODEL:  # extracted as shipped; LiteRT only checks them
        return {dist: dist_version(dist) for dist in ("ai-edge-litert", "numpy")}
    tools = {dist: dist_version(dist) for dist in ("onnx", "onnxruntime", "numpy")}
    if model == PPOCR_MODEL:
        tools["pillow"] = dist_version("pillow")
        try:
            tools["font_sha256"] = sha256(find_font())
        except FileNotFoundError:
            tools["font_sha256"] = "no-font"
        return tools
    tools["paddle2onnx"] = dist_version("paddle2onnx")
    tools["scikit-learn"] = dist_version("scikit-learn")
    tools.update(lite_versions())
    return tools


def build_key(model: str, calibration: int, seed: int = DEFAULT_SEED,
              paddle: str | None = None, tools: Mapping[str, str] | None = None) -> str:
    """`model`'s build key (hex sha256); `paddle` and `tools` stand in for the installed versions."""
    digest = hashlib.sha256()
    digest.update(KEY_VERSION.encode() + b"\0")
    for source in key_sources(model):
        data = source.read_bytes()
        digest.update(f"{source.parent.name}/{source.name}\0{len(data)}\0".encode())
        digest.update(data)
    if model == MEDIAPIPE_MODEL:
        calibration = 0  # nothing is calibrated: a different --calibration must not rebuild it
    params = {"model": model, "calibration": int(calibration), "seed": int(seed),
              "tools": dict(tools if tools is not None else tool_versions(model))}
    if model not in PRETRAINED_MODELS:
        params["paddlepaddle"] = paddle if paddle is not None else paddle_version()
    digest.update(json.dumps(params, sort_keys=True).encode())
    return digest.hexdigest()
