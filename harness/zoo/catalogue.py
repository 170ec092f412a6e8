"""What the zoo holds: its models, and the files every complete build of each one has.

Stdlib only, no imports from the rest of the zoo: the host's build, its cache check and the
build key all start from here.
"""

from __future__ import annotations

DEMO_MODELS: tuple[str, ...] = ("tiny_cnn", "mobilenet_v3_small")
PPOCR_MODEL = "ppocr_rec"
MEDIAPIPE_MODEL = "mediapipe"
PRETRAINED_MODELS: tuple[str, ...] = (PPOCR_MODEL, MEDIAPIPE_MODEL)
ZOO_MODELS: tuple[str, ...] = DEMO_MODELS + PRETRAINED_MODELS
DEFAULT_SEED = 0

#: Files every complete demo build has (relative to zoo_dir/<model>).
DEMO_REQUIRED_FILES: tuple[str, ...] = (
    "fp32/inference.pdmodel",
    "fp32/inference.pdiparams",
    "int8/inference.pdmodel",
    "int8/inference.pdiparams",
    "pruned/inference.pdmodel",
    "pruned/inference.pdiparams",
    "qat/inference.pdmodel",
    "qat/inference.pdiparams",
    "onnx/model.onnx",
    "onnx-int8/model.onnx",
    "lite-x86/model.nb",
    "lite-arm/model.nb",
    "lite-x86-quant-broken/model.nb",
    "data/digits-test.npz",
)
#: ... and the extra files of a demo model with a distillation student.
DISTILLED_FILES: tuple[str, ...] = ("distilled/inference.pdmodel", "distilled/inference.pdiparams")
DISTILLED_MODELS: tuple[str, ...] = ("mobilenet_v3_small",)
PPOCR_REQUIRED_FILES: tuple[str, ...] = (
    "fp32/model.onnx",
    "fp32/ppocr_keys_v1.txt",
    "int8/model.onnx",
    "int8/ppocr_keys_v1.txt",
)
MEDIAPIPE_REQUIRED_FILES: tuple[str, ...] = (
    "face_detection_short_range.tflite",
    "face_landmark.tflite",
    "face_detection_full_range_sparse.tflite",
)


def required_files(model: str) -> tuple[str, ...]:
    """The files a complete build of `model` has, relative to zoo_dir/<model>."""
    if model == MEDIAPIPE_MODEL:
        return MEDIAPIPE_REQUIRED_FILES
    if model == PPOCR_MODEL:
        return PPOCR_REQUIRED_FILES
    if model in DISTILLED_MODELS:
        return DEMO_REQUIRED_FILES + DISTILLED_FILES
    return DEMO_REQUIRED_FILES
