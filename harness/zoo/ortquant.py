"""ONNX Runtime static int8 quantization (QDQ, per-channel), shared by the demo models and ppocr.

Host side, Python 3.11 (needs onnx and onnxruntime). The recipe, and why:

1. Opset below 13 is converted to 13 (`onnx.version_converter`): per-channel QDQ needs the
   `axis` attribute of DequantizeLinear, which opset < 13 lacks. (PP-OCRv2 rec ships opset
   12; without this the quantized model fails to load: "Unrecognized attribute: axis for
   operator DequantizeLinear".)
2. `quant_pre_process` (ONNX shape inference + ORT's basic graph optimisation: BatchNorm
   folded into Conv, etc.), with symbolic shape inference skipped: it asserts on PP-OCR's
   Concat nodes, and the models here need no symbolic shapes. Without this step BatchNorm
   stays a separate fp32 op after each quantized conv (in a first trial PP-OCR int8 then read
   3 of 10 test strings exactly instead of 7).
3. `quantize_static`, QDQ format, per-channel, int8 activations and weights (ORT's default
   S8S8 on x86), MinMax calibration over the inputs given.
4. Opset imports no node uses are dropped: `quant_pre_process` stamps every domain ORT knows
   (ai.onnx.ml 5, com.microsoft, ...) and onnxruntime 1.10 (the last with Python 3.6 wheels,
   what a JetPack 4 board runs) refuses ai.onnx.ml > 2: "Current official support for domain
   ai.onnx.ml is till opset 2".
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np

TARGET_OPSET = 13


def tool_versions() -> dict[str, str]:
    import onnx
    import onnxruntime

    return {"onnx": onnx.__version__, "onnxruntime": onnxruntime.__version__, "numpy": np.__version__}


def quantize_qdq(src: str, dst: str, calibration: Iterable[Mapping[str, np.ndarray]], scratch: str,
                 per_channel: bool = True) -> dict[str, Any]:
    """Quantize `src` into `dst`; return the options used (for build-info)."""
    import onnx
    from onnx import version_converter
    from onnxruntime.quantization import (
        CalibrationDataReader,
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quantize_static,
    )
    from onnxruntime.quantization.shape_inference import quant_pre_process

    os.makedirs(scratch, exist_ok=True)
    model = onnx.load(src)
    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), None)
    source = src
    if opset is not None and opset < TARGET_OPSET:
        converted = version_converter.convert_version(model, TARGET_OPSET)
        source = os.path.join(scratch, "opset13.onnx")
        onnx.save(converted, source)
    del model
    prepared = os.path.join(scratch, "preprocessed.onnx")
    quant_pre_process(source, prepared, skip_symbolic_shape=True)

    batches = list(calibration)

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self._items = iter(batches)

        def get_next(self):
            return next(self._items, None)

    quantize_static(prepared, dst, Reader(), quant_format=QuantFormat.QDQ, per_channel=per_channel,
                    activation_type=QuantType.QInt8, weight_type=QuantType.QInt8,
                    calibrate_method=CalibrationMethod.MinMax)
    dropped = strip_unused_opsets(dst)
    return {
        "tool": "onnxruntime.quantization.quantize_static",
        "format": "QDQ",
        "per_channel": per_channel,
        "activation_type": "QInt8",
        "weight_type": "QInt8",
        "calibrate_method": "MinMax",
        "calibration_size": len(batches),
        "source_opset": opset,
        "opset": max(opset or 0, TARGET_OPSET),
        "preprocess": "onnxruntime.quantization.shape_inference.quant_pre_process(skip_symbolic_shape=True)",
        "dropped_unused_opset_imports": dropped,
    }


def strip_unused_opsets(path: str) -> list[str]:
    """Remove opset imports of domains no node uses (the default domain always stays)."""
    import onnx

    model = onnx.load(path)
    used = {node.domain or "" for node in model.graph.node}
    keep = [o for o in model.opset_import if (o.domain or "") in used or o.domain in ("", "ai.onnx")]
    dropped = sorted(f"{o.domain}:{o.version}" for o in model.opset_import if o not in keep)
    if dropped:
        del model.opset_import[:]
        model.opset_import.extend(keep)
        onnx.save(model, path)
    return dropped


def run_onnx(path: str, inputs: list[np.ndarray], input_name: str | None = None) -> list[np.ndarray]:
    """Outputs (first output of each run) of `path` under ONNX Runtime, one thread."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.log_severity_level = 3
    session = ort.InferenceSession(path, sess_options=options, providers=["CPUExecutionProvider"])
    name = input_name or session.get_inputs()[0].name
    return [session.run(None, {name: x})[0] for x in inputs]
