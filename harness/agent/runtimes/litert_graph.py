"""What a LiteRT Interpreter says about its model: tensor signatures, dtypes, the execution plan.

Read after loading, by the adapter's `describe()` (and its input checks): the dtypes of the
tensors feeding the graph's ops and the dominant weight dtype are what the adapter's precision
is read from; `DELEGATE` nodes in the execution plan are the partitions a delegate (XNNPACK)
took. numpy is imported only when a dtype is named (the adapter has imported it by then).
"""

QUANTIZED_DTYPES = ("int8", "uint8", "int16")


def dtype_name(dtype):
    import numpy

    return numpy.dtype(dtype).name


def declared_shape(dims):
    return [int(d) if int(d) >= 0 else "?" for d in dims]


def _layout(shape):
    """NHWC / NCHW for rank-4 image tensors (channels of 1, 3 or 4), else ""."""
    if len(shape) != 4:
        return ""
    if shape[3] in (1, 3, 4) and shape[1] > 4 and shape[2] > 4:
        return "NHWC"
    if shape[1] in (1, 3, 4) and shape[2] > 4 and shape[3] > 4:
        return "NCHW"
    return ""


def tensor_signature(detail):
    shape = declared_shape(detail.get("shape_signature", detail["shape"]))
    entry = {"name": detail["name"], "shape": shape, "dtype": dtype_name(detail["dtype"])}
    layout = _layout([d if isinstance(d, int) else 0 for d in shape])
    if layout:
        entry["layout"] = layout
    scale, zero_point = detail.get("quantization", (0.0, 0))
    if scale:
        entry["quantization"] = {"scale": float(scale), "zero_point": int(zero_point)}
    return entry


def signature_list(interpreter):
    try:
        return interpreter.get_signature_list() or {}
    except Exception:
        return {}


def graph_summary(interpreter):
    """Op counts (execution plan incl. DELEGATE nodes), tensor dtypes, weight dtype, quantized operands."""
    try:
        ops = interpreter._get_ops_details()  # the only view of the execution plan in the Python API
    except Exception:
        ops = []
    counts = {}  # type: dict[str, int]  # op name -> nodes in the execution plan
    produced = set()  # type: set[int]  # tensor indices some op writes
    consumed = set()  # type: set[int]  # tensor indices some op reads
    for op in ops:
        counts[op["op_name"]] = counts.get(op["op_name"], 0) + 1
        if op["op_name"] == "DELEGATE":
            continue
        produced.update(int(i) for i in op["outputs"])
        consumed.update(int(i) for i in op["inputs"] if int(i) >= 0)
    details = interpreter.get_tensor_details()
    dtypes = {}  # type: dict[str, int]  # dtype -> tensors
    weights = {}  # type: dict[str, int]  # dtype -> constant elements
    quantized = {}  # type: dict[str, int]  # dtype -> quantized operands
    graph_inputs = set(int(d["index"]) for d in interpreter.get_input_details())
    for tensor in details:
        name = dtype_name(tensor["dtype"])
        dtypes[name] = dtypes.get(name, 0) + 1
        index = int(tensor["index"])
        constant = index not in produced and index not in graph_inputs
        if constant and (not ops or index in consumed):
            elements = 1
            for dim in tensor["shape"]:
                elements *= int(dim)
            weights[name] = weights.get(name, 0) + elements
        scale = (tensor.get("quantization") or (0.0, 0))[0]
        if name in QUANTIZED_DTYPES and scale and (not ops or index in consumed or index in produced):
            quantized[name] = quantized.get(name, 0) + 1
    floats = dict((k, v) for k, v in weights.items() if k.startswith("float") or k in QUANTIZED_DTYPES)
    weight_dtype = max(sorted(floats), key=lambda k: floats[k]) if floats else None
    return {"ops": counts, "dtypes": dtypes, "weight_dtype": weight_dtype, "quantized": quantized}
