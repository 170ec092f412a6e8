"""What an ONNX model file says about itself: op-type counts, opset, producer, weight dtypes.

Read with a tiny protobuf reader over an mmap (no `onnx` package on the device, and the
weights' pages are never touched). The onnxruntime adapter reads its model file only in
`describe()`, which the job runner calls after the last memory snapshot, so parsing never
shows up in measured memory; it reads the graph ORT optimised the same way, to tell whether
int8 kernels really run.
"""

import mmap
import os

# Ops that make a graph a quantized one (QDQ format, QOperator format, integer ops).
QDQ_OPS = ("QuantizeLinear", "DequantizeLinear", "DynamicQuantizeLinear")
INT8_KERNEL_OPS = (
    "QLinearConv", "QLinearMatMul", "QLinearAdd", "QLinearMul", "QLinearSigmoid",
    "QLinearLeakyRelu", "QLinearGlobalAveragePool", "QLinearAveragePool", "QLinearConcat",
    "QLinearSoftmax", "QLinearReduceMean", "QLinearWhere", "QLinearConvTranspose", "QGemm",
    "ConvInteger", "MatMulInteger", "MatMulIntegerToFloat", "DynamicQuantizeMatMul",
    "DynamicQuantizeLSTM", "QAttention", "QEmbedLayerNormalization", "NhwcQLinearConv",
)

# TensorProto.DataType -> numpy-style name
ELEMENT_TYPES = {
    1: "float32", 2: "uint8", 3: "int8", 4: "uint16", 5: "int16", 6: "int32", 7: "int64",
    8: "string", 9: "bool", 10: "float16", 11: "float64", 12: "uint32", 13: "uint64",
    14: "complex64", 15: "complex128", 16: "bfloat16", 17: "float8e4m3fn", 18: "float8e4m3fnuz",
    19: "float8e5m2", 20: "float8e5m2fnuz", 21: "uint4", 22: "int4",
}
FLOAT_PRECISIONS = {"float32": "fp32", "float16": "fp16", "bfloat16": "bf16", "float64": "fp64"}


def quantization_ops(ops):
    # type: (dict[str, int]) -> dict[str, int]
    """The {op: count} of `ops` that make a graph a quantized one (QDQ, QOperator or integer ops)."""
    return dict((op, n) for op, n in ops.items() if op in QDQ_OPS or op in INT8_KERNEL_OPS
                or op.startswith("QLinear"))


def int8_kernel_ops(ops):
    # type: (dict[str, int]) -> dict[str, int]
    """The {op: count} of `ops` that are int8 kernels (not quantize/dequantize ops)."""
    return dict((op, n) for op, n in ops.items() if op in INT8_KERNEL_OPS or op.startswith("QLinear"))


# --- a minimal protobuf reader (ModelProto -> GraphProto -> nodes / initializers) ---------


def _varint(buf, pos):
    result = 0
    shift = 0
    while True:
        byte = buf[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7
        if shift > 63:
            raise ValueError("malformed varint")


def _fields(buf, start, end):
    """Yield (field number, wire type, value or (offset, length)) of one message."""
    pos = start
    while pos < end:
        key, pos = _varint(buf, pos)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = _varint(buf, pos)
            yield number, wire, value
        elif wire == 2:
            length, pos = _varint(buf, pos)
            yield number, wire, (pos, length)
            pos += length
        elif wire == 1:
            pos += 8
        elif wire == 5:
            pos += 4
        else:
            raise ValueError("unsupported wire type %d" % wire)


def _text(buf, span):
    return bytes(buf[span[0]:span[0] + span[1]]).decode("utf-8", "replace")


def read_graph(path):
    """Op-type counts, opset, producer and the dominant weight dtype of an ONNX model file."""
    info = {"ops": {}, "opset": None, "producer": "", "weight_dtype": None,
            "float_weight_dtype": None}  # type: dict
    if not os.path.getsize(path):
        return info
    with open(path, "rb") as handle:
        buf = mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ)
        try:
            producer = []  # type: list[str]
            graph = None
            for number, wire, value in _fields(buf, 0, len(buf)):
                if number == 2 and wire == 2:
                    producer.insert(0, _text(buf, value))
                elif number == 3 and wire == 2:
                    producer.append(_text(buf, value))
                elif number == 7 and wire == 2:
                    graph = value
                elif number == 8 and wire == 2:  # OperatorSetIdProto
                    domain, version = "", None
                    for n, w, v in _fields(buf, value[0], value[0] + value[1]):
                        if n == 1 and w == 2:
                            domain = _text(buf, v)
                        elif n == 2 and w == 0:
                            version = v
                    if domain in ("", "ai.onnx"):
                        info["opset"] = version
            info["producer"] = " ".join(p for p in producer if p)
            if graph is None:
                return info
            weights = {}  # type: dict[str, int]  # dtype -> element count
            for number, wire, value in _fields(buf, graph[0], graph[0] + graph[1]):
                if number == 1 and wire == 2:  # NodeProto
                    for n, w, v in _fields(buf, value[0], value[0] + value[1]):
                        if n == 4 and w == 2:
                            op = _text(buf, v)
                            info["ops"][op] = info["ops"].get(op, 0) + 1
                elif number == 5 and wire == 2:  # TensorProto initializer
                    dtype, count = None, 1
                    for n, w, v in _fields(buf, value[0], value[0] + value[1]):
                        if n == 1:
                            if w == 0:
                                count *= max(v, 0)
                            elif w == 2:  # packed dims
                                p, stop = v[0], v[0] + v[1]
                                while p < stop:
                                    dim, p = _varint(buf, p)
                                    count *= dim
                        elif n == 2 and w == 0:
                            dtype = ELEMENT_TYPES.get(v, "type-%d" % v)
                    if dtype is not None:
                        weights[dtype] = weights.get(dtype, 0) + count
        finally:
            buf.close()
    floats = dict((k, v) for k, v in weights.items() if k in FLOAT_PRECISIONS)
    info["weight_dtype"] = _dominant(weights)
    info["float_weight_dtype"] = _dominant(floats)
    return info


def _dominant(counts):
    return max(sorted(counts), key=lambda k: counts[k]) if counts else None
