"""Reading the input shape a model file declares, on the host (impure: opens the file).

Sweep expansion (harness.run.sweep_points) skips a batch or resolution point whose shape the
model cannot take; which dims can change is in the model file, so it is read here, before
anything runs on a device. Checked on this zoo:
- Paddle Inference runs the legacy `.pdmodel` exports (fixed InputSpec [1,3,224,224]) at
  other batches and resolutions: the predictor reshapes its input and these nets are fully
  convolutional with adaptive pooling (mobilenet_v3_small at 448x448 and batch 4, tiny_cnn at
  128x128 and batch 4, int8 too). Paddle Lite's `.nb` likewise. Nothing is read for them
  (None: the runtime decides, and a net that cannot reshape fails with the runtime's error).
- The paddle2onnx exports have fixed dims [1,3,224,224]: ONNX Runtime refuses other shapes, so
  those points are skipped with the reason. ppocr_rec's ONNX model is dynamic in batch, height
  and width ([-1, 3, ?, ?]).
- The MediaPipe .tflite models are fixed (shape_signature 1x128x128x3 / 1x192x192x3; their
  anchor RESHAPEs would not survive a resize anyway).
"""

from __future__ import annotations

import os

from harness.config.variants import ModelVariant
from harness.errors import HarnessError
from harness.run.sweep_points import DeclaredShape


class UnreadableModelFile(HarnessError):
    """A model file that is there but whose declared input shape cannot be read on this host."""

    def __init__(self, path: str, reason: str) -> None:
        self.path = path
        self.reason = reason
        super().__init__(f"{path}: cannot read the model's declared input shape here ({reason})")


def read_declared_input_shape(variant: ModelVariant) -> DeclaredShape | None:
    """The first input's shape as the variant's model file declares it (None per dynamic dim),
    for formats whose runtime refuses other shapes (onnx, tflite).

    None for formats whose runtime reshapes freely (paddle, paddle-lite), for a model without
    inputs, and for a file that is not there (yet): its measurement reports the missing file.
    Raises `UnreadableModelFile` for a file that is there but cannot be read here (corrupt, or
    the format's reader is not installed on this host)."""
    path = variant.files.get("model")
    if variant.format not in ("onnx", "tflite") or not path or not os.path.isfile(path):
        return None
    if variant.format == "onnx":
        return _onnx_input_shape(path)
    return _tflite_input_shape(path)


def _onnx_input_shape(path: str) -> DeclaredShape | None:
    try:
        import onnx
        from google.protobuf.message import DecodeError
    except ImportError as exc:
        raise UnreadableModelFile(path, f"{exc.name or 'onnx'} is not installed") from None
    try:
        graph = onnx.load(path, load_external_data=False).graph
    except (OSError, DecodeError) as exc:
        raise UnreadableModelFile(path, _first_line(exc)) from None
    initializers = {i.name for i in graph.initializer}
    first = next((i for i in graph.input if i.name not in initializers), None)
    if first is None:
        return None
    return tuple(d.dim_value if d.HasField("dim_value") and d.dim_value > 0 else None
                 for d in first.type.tensor_type.shape.dim)


def _tflite_input_shape(path: str) -> DeclaredShape | None:
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError as exc:
        raise UnreadableModelFile(path, f"{exc.name or 'ai_edge_litert'} is not installed") from None
    try:
        details = Interpreter(model_path=path).get_input_details()
    except ValueError as exc:  # what the interpreter raises for a file it cannot load
        raise UnreadableModelFile(path, _first_line(exc)) from None
    if not details:
        return None
    return tuple(int(d) if int(d) > 0 else None for d in details[0]["shape_signature"])


def _first_line(exc: Exception) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
