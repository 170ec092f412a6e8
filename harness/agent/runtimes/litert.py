"""LiteRT (`ai-edge-litert`, formerly TensorFlow Lite): `.tflite` models through the Interpreter.

Runs in the interpreter the target declares for litert (ai-edge-litert 2.3 has cp39..cp313
wheels; the harness's own venv on this host). Python 3.6 compatible syntax, stdlib-only at
import time: numpy and ai_edge_litert are imported by import_runtime().

Options:
    threads  (int, default 1)      Interpreter(num_threads=...)
    xnnpack  (bool, default true)  true: the XNNPACK delegate LiteRT applies by default on CPU;
                                   false: `OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES`,
                                   LiteRT's own builtin kernels, no delegate at all.

Whether XNNPACK really runs is read back from the interpreter, not taken on trust: a
delegated partition shows up in the execution plan as a `DELEGATE` node, so `describe()`
reports `delegated_partitions` (0 with xnnpack: false) and `delegates` (["XNNPACK"] or []).
On the MediaPipe face models XNNPACK is 2.5-3.5x faster than the builtin kernels.

Precision is read from the model's tensors: int8/uint8 tensors with quantization parameters
feeding the graph's ops make it "int8"; otherwise it is float32 compute, and
`weight_dtype` says how the weights are stored (MediaPipe ships float16 weights that DEQUANTIZE
ops expand to float32 at load time: "fp32" compute, "float16" weights).

Op-level profile: the Python Interpreter exposes no profiler, but the same wheel ships
libLiteRt.so with the CompiledModel C API and its profiler (LiteRtCompiledModelGetProfiler,
LiteRtGetProfileSummary, runtime option `enable_profiling`). `profile()` drives it through
ctypes on a CompiledModel of the same file with the same thread count and kernel mode
(XNNPACK, or `kernel_mode = "builtin"` when xnnpack is off) and parses the summary's
"Run Order" table: one row per executed node (an XNNPACK operator, or a builtin op).
"""

import os
import re

from ..inputs import structured_input
from ..protocol import AgentFailure
from .base import BaseAdapter, finish_profile, require_file, unsupported_profile

QUANTIZED_DTYPES = ("int8", "uint8", "int16")


class Adapter(BaseAdapter):
    name = "litert"
    OPTIONS = {
        "threads": (int, 1),
        "xnnpack": (bool, True),
    }

    def _validated(self, options):
        values = BaseAdapter._validated(self, options)
        if values["threads"] is not None and values["threads"] < 1:
            raise AgentFailure("bad-option", "litert: option threads=%r must be >= 1" % (values["threads"],))
        return values

    def import_runtime(self):
        try:
            import numpy  # noqa: F401
            from ai_edge_litert import interpreter as litert_interpreter
        except ImportError as exc:
            raise AgentFailure(
                "runtime-missing", "ai_edge_litert cannot be imported: %s (install ai-edge-litert and numpy "
                "for this interpreter, or declare the interpreter that has them)" % exc) from exc
        self._litert = litert_interpreter

    def version(self):
        try:
            from importlib import metadata  # 3.8+

            return metadata.version("ai-edge-litert")
        except Exception:
            import ai_edge_litert

            return getattr(ai_edge_litert, "__version__", "unknown")

    def _resolver(self):
        types = self._litert.OpResolverType
        return types.AUTO if self.options["xnnpack"] else types.BUILTIN_WITHOUT_DEFAULT_DELEGATES

    def load(self, files, input_spec):
        model = require_file(files, "model")
        self.model_path = model
        try:
            self.interpreter = self._litert.Interpreter(
                model_path=model, num_threads=self.options["threads"],
                experimental_op_resolver_type=self._resolver())
            self.interpreter.allocate_tensors()
        except Exception as exc:  # ValueError / RuntimeError with the runtime's own message
            raise AgentFailure("model-load", "litert could not load %s: %s" % (model, _first_line(exc))) from exc
        self.input_spec = input_spec
        self.input_details = self.interpreter.get_input_details()
        self.output_details = self.interpreter.get_output_details()

    def set_inputs(self, seed):
        spec = self.input_spec
        if len(self.input_details) != 1:
            raise AgentFailure(
                "bad-option", "litert: model has %d inputs (%s); only single-input models are supported so far"
                % (len(self.input_details), ", ".join(d["name"] for d in self.input_details)))
        detail = self.input_details[0]
        dtype = spec.get("dtype", "float32")
        wanted = _dtype_name(detail["dtype"])
        if wanted != dtype:
            raise AgentFailure(
                "bad-option", "litert: model input %r is %s but the job's input dtype is %s; set the variant's "
                "input dtype to %s" % (detail["name"], wanted, dtype, wanted))
        shape = [int(d) for d in spec["shape"]]
        current = [int(d) for d in detail["shape"]]
        if shape != current:
            signature = [int(d) for d in detail.get("shape_signature", detail["shape"])]
            fixed = [i for i, dim in enumerate(signature) if dim > 0 and i < len(shape) and shape[i] != dim]
            if len(signature) != len(shape) or fixed:
                raise AgentFailure(
                    "bad-option", "litert: model input %r has shape %s but the job's input shape is %s; fix the "
                    "variant's input shape (only dimensions the model declares dynamic, -1, can change)"
                    % (detail["name"], _shape(signature), shape))
            try:
                self.interpreter.resize_tensor_input(detail["index"], shape, strict=True)
                self.interpreter.allocate_tensors()
            except Exception as exc:
                raise AgentFailure("bad-option", "litert: cannot resize input %r to %s: %s"
                                   % (detail["name"], shape, _first_line(exc))) from exc
            self.input_details = self.interpreter.get_input_details()
            self.output_details = self.interpreter.get_output_details()
            detail = self.input_details[0]
        self._input = structured_input(shape, dtype, seed)
        self.interpreter.set_tensor(detail["index"], self._input)

    def runner(self):
        return self.interpreter.invoke

    def outputs(self):
        return [self.interpreter.get_tensor(d["index"]) for d in self.output_details]

    def describe(self):
        graph = _graph_summary(self.interpreter)
        partitions = graph["ops"].get("DELEGATE", 0)
        delegates = ["XNNPACK"] if partitions and self.options["xnnpack"] else []
        if partitions and not self.options["xnnpack"]:
            delegates = ["unknown"]
        notes = []
        if graph["quantized"]:
            precision = "int8"
            notes.append("quantized tensors (%s) feed the graph's ops" % ", ".join(
                "%d %s" % (n, t) for t, n in sorted(graph["quantized"].items())))
        else:
            first = _dtype_name(self.input_details[0]["dtype"]) if self.input_details else "float32"
            precision = {"float32": "fp32", "float16": "fp16"}.get(first, first)
        if graph["weight_dtype"] == "float16" and graph["ops"].get("DEQUANTIZE"):
            notes.append("float16 weights expanded to float32 by %d DEQUANTIZE ops: compute is float32"
                         % graph["ops"]["DEQUANTIZE"])
        if graph["ops"].get("DENSIFY"):
            notes.append("sparse weights densified by %d DENSIFY ops" % graph["ops"]["DENSIFY"])
        if self.options["xnnpack"] and not partitions:
            notes.append("xnnpack requested but no delegated partition: every op runs on builtin kernels")
        return {
            "precision": precision,
            "precision_note": "; ".join(notes),
            "int8_kernels": precision == "int8",
            "weight_dtype": graph["weight_dtype"],
            "tensor_dtypes": graph["dtypes"],
            "model_format": "tflite",
            "threads": self.options["threads"],
            "xnnpack": bool(partitions) and self.options["xnnpack"],
            "xnnpack_requested": self.options["xnnpack"],
            "op_resolver": "AUTO" if self.options["xnnpack"] else "BUILTIN_WITHOUT_DEFAULT_DELEGATES",
            "delegates": delegates,
            "delegated_partitions": partitions,
            "ops": dict((op, n) for op, n in graph["ops"].items() if op != "DELEGATE"),
            "signature_keys": sorted(_signature_list(self.interpreter)),
            "inputs": [_signature(d) for d in self.input_details],
            "outputs": [_signature(d) for d in self.output_details],
        }

    def profile(self, iterations):
        try:
            return _CompiledModelProfile(self.model_path, self.options["threads"], self.options["xnnpack"],
                                         getattr(self, "_input", None)).run(max(1, int(iterations)))
        except _ProfileUnavailable as exc:
            return unsupported_profile(str(exc))


# --------------------------------------------------------------------------- helpers


def _first_line(exc):
    lines = [line.strip() for line in str(exc).strip().splitlines() if line.strip()]
    return (lines[0] if lines else type(exc).__name__)[:600]


def _dtype_name(dtype):
    import numpy

    return numpy.dtype(dtype).name


def _shape(dims):
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


def _signature(detail):
    shape = _shape(detail.get("shape_signature", detail["shape"]))
    entry = {"name": detail["name"], "shape": shape, "dtype": _dtype_name(detail["dtype"])}
    layout = _layout([d if isinstance(d, int) else 0 for d in shape])
    if layout:
        entry["layout"] = layout
    scale, zero_point = detail.get("quantization", (0.0, 0))
    if scale:
        entry["quantization"] = {"scale": float(scale), "zero_point": int(zero_point)}
    return entry


def _signature_list(interpreter):
    try:
        return interpreter.get_signature_list() or {}
    except Exception:
        return {}


def _graph_summary(interpreter):
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
        name = _dtype_name(tensor["dtype"])
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


# --------------------------------------------------------------------------- op profile (C API)


class _ProfileUnavailable(Exception):
    pass


# One row of the summary's "Run Order" table:
# [node type] [start] [first] [avg ms] [%] [cdf%] [mem KB] [times called] [Name]
_ROW = re.compile(r"^\s*(?P<type>\S.*?)\s+(?P<start>[-\d.]+)\s+(?P<first>[-\d.]+)\s+(?P<avg>[-\d.]+)\s+"
                  r"(?P<pct>[-\d.]+)%\s+(?P<cdf>[-\d.]+)%\s+(?P<mem>[-\d.]+)\s+(?P<calls>\d+)\s+(?P<name>\S.*?)\s*$")
_NODE_INDEX = re.compile(r":(\d+)$")


def parse_summary(text):
    # type: (str) -> list[dict]
    """Rows of the first "Run Order" table of a LiteRT/TFLite profile summary, as op dicts
    {"op", "type", "executor", "time_ms" (total), "calls", "avg_ms"}."""
    ops = []  # type: list[dict]
    in_table = False
    for line in text.splitlines():
        if "Run Order" in line:
            if in_table:
                break
            in_table = True
            continue
        if not in_table or "[node type]" in line:
            continue
        if not line.strip():
            if ops:
                break
            continue
        if line.lstrip().startswith("="):
            break
        match = _ROW.match(line)
        if not match:
            continue
        kind = match.group("type").strip()
        executor = "builtin"
        if kind.startswith("Delegate/"):
            kind, executor = kind[len("Delegate/"):], "XNNPACK"
        index = _NODE_INDEX.search(match.group("name"))
        calls = int(match.group("calls"))
        avg = float(match.group("avg"))
        ops.append({"op": "%s#%s" % (kind, index.group(1) if index else len(ops)), "type": kind,
                    "executor": executor, "avg_ms": avg, "time_ms": avg * calls, "calls": calls})
    return ops


class _CompiledModelProfile(object):
    """A CompiledModel of `model_path` with the runtime option enable_profiling, via ctypes."""

    def __init__(self, model_path, threads, xnnpack, input_array):
        import ctypes

        import ai_edge_litert

        self.ctypes = ctypes
        self.model_path = model_path
        self.threads = threads
        self.xnnpack = xnnpack
        self.input_array = input_array
        path = os.path.join(os.path.dirname(os.path.abspath(ai_edge_litert.__file__)), "libLiteRt.so")
        if not os.path.isfile(path):
            raise _ProfileUnavailable("not supported by litert: this ai-edge-litert build ships no libLiteRt.so "
                                      "(the CompiledModel C API whose profiler it would use)")
        try:
            self.lib = ctypes.CDLL(path)
        except OSError as exc:
            raise _ProfileUnavailable("litert op profiling unavailable: cannot load %s: %s" % (path, exc)) from exc
        self._keep = []

    def _call(self, name, *args):
        try:
            function = getattr(self.lib, name)
        except AttributeError as exc:
            raise _ProfileUnavailable("not supported by litert: libLiteRt.so has no %s (op profiling needs the "
                                      "CompiledModel profiler C API, ai-edge-litert >= 2.x)" % name) from exc
        function.restype = self.ctypes.c_int
        status = function(*args)
        if status != 0:
            raise _ProfileUnavailable("litert op profiling failed: %s returned status %d" % (name, status))

    def _opaque(self, identifier, toml):
        ctypes = self.ctypes
        payload = ctypes.create_string_buffer(toml.encode("ascii"))
        destructor = ctypes.CFUNCTYPE(None, ctypes.c_void_p)(_no_op)
        handle = ctypes.c_void_p()
        self._call("LiteRtCreateOpaqueOptions", identifier.encode("ascii"), ctypes.cast(payload, ctypes.c_void_p),
                   destructor, ctypes.byref(handle))
        self._keep.extend([payload, destructor])  # owned by us for the compiled model's life
        return handle

    def _buffers(self, env, model, compiled, signature, count, inputs):
        ctypes = self.ctypes
        size_t = ctypes.c_size_t
        buffers = (ctypes.c_void_p * max(count, 1))()
        for i in range(count):
            tensor = ctypes.c_void_p()
            self._call("LiteRtGetSignatureInputTensorByIndex" if inputs else "LiteRtGetSignatureOutputTensorByIndex",
                       signature, size_t(i), ctypes.byref(tensor))
            tensor_type = ctypes.create_string_buffer(512)  # LiteRtRankedTensorType (opaque to us)
            self._call("LiteRtGetRankedTensorType", tensor, tensor_type)
            requirements = ctypes.c_void_p()
            self._call("LiteRtGetCompiledModel%sBufferRequirements" % ("Input" if inputs else "Output"),
                       compiled, size_t(0), size_t(i), ctypes.byref(requirements))
            buffer = ctypes.c_void_p()
            self._call("LiteRtCreateManagedTensorBufferFromRequirements", env, tensor_type, requirements,
                       ctypes.byref(buffer))
            self._keep.append(tensor_type)
            buffers[i] = buffer
            if inputs and i == 0 and self.input_array is not None:
                self._write(buffer, requirements)
        return buffers

    def _write(self, buffer, requirements):
        ctypes = self.ctypes
        size = ctypes.c_size_t()
        self._call("LiteRtGetTensorBufferRequirementsBufferSize", requirements, ctypes.byref(size))
        address = ctypes.c_void_p()
        self._call("LiteRtLockTensorBuffer", buffer, ctypes.byref(address), ctypes.c_int(1))  # write
        try:
            data = self.input_array.tobytes()
            ctypes.memmove(address, data, min(len(data), size.value))
        finally:
            self._call("LiteRtUnlockTensorBuffer", buffer)

    def run(self, iterations):
        from ..clock import now_ns

        ctypes = self.ctypes
        size_t = ctypes.c_size_t
        env, model, options, compiled = (ctypes.c_void_p() for _ in range(4))
        self._call("LiteRtCreateEnvironment", 0, None, ctypes.byref(env))
        try:
            self._call("LiteRtCreateModelFromFile", env, self.model_path.encode("utf-8"), ctypes.byref(model))
            self._call("LiteRtCreateOptions", ctypes.byref(options))
            self._call("LiteRtSetOptionsHardwareAccelerators", options, 1)  # kLiteRtHwAcceleratorCpu
            self._call("LiteRtAddOpaqueOptions", options, self._opaque("runtime_options_string",
                                                                        "enable_profiling = true\n"))
            cpu = "num_threads = %d\n" % int(self.threads or 1)
            if not self.xnnpack:
                cpu += 'kernel_mode = "builtin"\n'
            self._call("LiteRtAddOpaqueOptions", options, self._opaque("xnnpack", cpu))
            self._call("LiteRtCreateCompiledModel", env, model, options, ctypes.byref(compiled))
            try:
                signature = ctypes.c_void_p()
                self._call("LiteRtGetModelSignature", model, size_t(0), ctypes.byref(signature))
                n_in, n_out = size_t(), size_t()
                self._call("LiteRtGetNumSignatureInputs", signature, ctypes.byref(n_in))
                self._call("LiteRtGetNumSignatureOutputs", signature, ctypes.byref(n_out))
                inputs = self._buffers(env, model, compiled, signature, n_in.value, True)
                outputs = self._buffers(env, model, compiled, signature, n_out.value, False)
                profiler = ctypes.c_void_p()
                self._call("LiteRtCompiledModelGetProfiler", compiled, ctypes.byref(profiler))
                if not profiler.value:
                    raise _ProfileUnavailable("litert op profiling failed: the compiled model has no profiler")

                def run_once():
                    self._call("LiteRtRunCompiledModel", compiled, size_t(0), n_in, inputs, n_out, outputs)

                for _ in range(min(5, iterations)):
                    run_once()
                self._call("LiteRtResetProfiler", profiler)
                self._call("LiteRtStartProfiler", profiler)
                t0 = now_ns()
                for _ in range(iterations):
                    run_once()
                wall_ms = (now_ns() - t0) / 1e6
                self._call("LiteRtStopProfiler", profiler)
                summary = ctypes.c_char_p()
                self._call("LiteRtGetProfileSummary", profiler, compiled, ctypes.byref(summary))
                text = (summary.value or b"").decode("utf-8", "replace")
                for handle in list(inputs)[:n_in.value] + list(outputs)[:n_out.value]:
                    self.lib.LiteRtDestroyTensorBuffer(ctypes.c_void_p(handle))
            finally:
                self.lib.LiteRtDestroyCompiledModel(compiled)
        finally:
            if options.value:
                self.lib.LiteRtDestroyOptions(options)
            if model.value:
                self.lib.LiteRtDestroyModel(model)
            self.lib.LiteRtDestroyEnvironment(env)
        ops = parse_summary(text)
        profile = finish_profile(
            ops, wall_ms, iterations,
            "LiteRT CompiledModel profiler (libLiteRt.so C API; %s kernels, %d thread(s))"
            % ("XNNPACK" if self.xnnpack else "builtin", int(self.threads or 1)),
            reason="" if ops else "the LiteRT profile summary had no Run Order rows")
        if profile["supported"]:
            profile["granularity"] = "node"
            profile["note"] = ("profiled on a LiteRT CompiledModel of the same file and CPU settings (the "
                               "Interpreter API has no profiler); with XNNPACK the rows are XNNPACK operators")
        return profile


def _no_op(pointer):
    return None
