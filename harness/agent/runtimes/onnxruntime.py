"""ONNX Runtime (`onnxruntime`): fp32 and int8 (QDQ or QOperator) `.onnx` models.

Runs in the interpreter the target declares for onnxruntime. Python 3.6 compatible
(onnxruntime 1.10 is the last release with cp36 wheels, x86_64 and aarch64: a JetPack 4
board runs that one), stdlib-only at import time.

Precision is read from the model itself, not taken on trust: a graph with
QuantizeLinear/DequantizeLinear or QLinear*/ConvInteger/MatMulInteger ops is "int8", else the
dominant floating-point type of its weights ("fp32", "fp16", "bf16"), else its input type.
Whether int8 *kernels* actually run is a different question (a QDQ graph run without ORT's
QDQ fusions is fp32 with fake-quant ops): `describe()` answers it from the graph ORT
optimised (`SessionOptions.optimized_model_filepath`, written to a temp file after the
measurement), counting QLinearConv/QLinearMatMul/ConvInteger/... there.

The model file is read (onnx_graph.py: a tiny protobuf reader over an mmap) only in
`describe()`, which the job runner calls after the last memory snapshot: parsing never shows
up in measured memory. `profile()` reads ORT's own profiling trace (onnxruntime_trace.py).
"""

import os
import re
import shutil
import tempfile

from ..inputs import structured_input
from ..protocol import AgentFailure
from .base import (
    BaseAdapter,
    finish_profile,
    first_line,
    import_runtime_modules,
    require_file,
    unsupported_profile,
)
from .onnx_graph import FLOAT_PRECISIONS, int8_kernel_ops, quantization_ops, read_graph
from .onnxruntime_trace import ort_profile_ops

GRAPH_OPTIMIZATION = {
    "disable": "ORT_DISABLE_ALL",
    "basic": "ORT_ENABLE_BASIC",
    "extended": "ORT_ENABLE_EXTENDED",
    "all": "ORT_ENABLE_ALL",
}
EXECUTION_MODES = {"sequential": "ORT_SEQUENTIAL", "parallel": "ORT_PARALLEL"}
DEFAULT_PROVIDERS = ("CPUExecutionProvider",)
# ORT NodeArg.type ("tensor(float)") -> numpy-style name
ORT_TYPES = {
    "float": "float32", "float16": "float16", "double": "float64", "bfloat16": "bfloat16",
    "int8": "int8", "uint8": "uint8", "int16": "int16", "uint16": "uint16", "int32": "int32",
    "uint32": "uint32", "int64": "int64", "uint64": "uint64", "bool": "bool", "string": "string",
}


class Adapter(BaseAdapter):
    name = "onnxruntime"
    OPTIONS = {
        "threads": (int, 1),                    # SessionOptions.intra_op_num_threads (0 = ORT's default)
        "inter_threads": (int, None),           # SessionOptions.inter_op_num_threads
        "providers": (list, None),              # default ["CPUExecutionProvider"]
        "graph_optimization": (str, "all", tuple(GRAPH_OPTIMIZATION)),
        "execution_mode": (str, "sequential", tuple(EXECUTION_MODES)),
    }

    def _validated(self, options):
        values = BaseAdapter._validated(self, options)
        providers = values["providers"]
        if providers is None:
            providers = list(DEFAULT_PROVIDERS)
        if not providers or not all(isinstance(p, str) and p for p in providers):
            raise AgentFailure(
                "bad-option", "onnxruntime: option providers=%r must be a non-empty list of provider "
                "names, e.g. [CPUExecutionProvider]" % (values["providers"],))
        values["providers"] = list(providers)
        for key in ("threads", "inter_threads"):
            self._require_at_least(values, key, 0)
        return values

    def import_runtime(self):
        _, onnxruntime = import_runtime_modules(
            "onnxruntime", ("numpy", "onnxruntime"), install="onnxruntime and numpy")
        self._ort = onnxruntime
        available = list(onnxruntime.get_available_providers())
        self.available_providers = available
        missing = [p for p in self.options["providers"] if p not in available]
        if missing:
            raise AgentFailure(
                "bad-option", "onnxruntime %s: provider(s) %s not available here; available: %s"
                % (onnxruntime.__version__, ", ".join(missing), ", ".join(available)))

    def version(self):
        return self._ort.__version__

    def _session_options(self):
        ort = self._ort
        opts = self.options
        so = ort.SessionOptions()
        if opts["threads"] is not None:
            so.intra_op_num_threads = opts["threads"]
        if opts["inter_threads"] is not None:
            so.inter_op_num_threads = opts["inter_threads"]
        so.graph_optimization_level = getattr(ort.GraphOptimizationLevel,
                                              GRAPH_OPTIMIZATION[opts["graph_optimization"]])
        so.execution_mode = getattr(ort.ExecutionMode, EXECUTION_MODES[opts["execution_mode"]])
        so.log_severity_level = 3  # errors only: shape-mismatch warnings would flood stderr
        return so

    def load(self, files, input_spec):
        model = require_file(files, "model")
        self.model_path = model
        try:
            self.session = self._ort.InferenceSession(
                model, sess_options=self._session_options(), providers=self.options["providers"])
        except Exception as exc:  # ORT raises its own Fail/InvalidGraph/... types
            raise AgentFailure("model-load", "onnxruntime could not load %s: %s" % (model, _first_line(exc))) from exc
        self.input_spec = input_spec
        self.inputs = self.session.get_inputs()
        self.output_names = [o.name for o in self.session.get_outputs()]
        self._feed = {}  # one dict for the session's life: set_inputs refills it, runner() keeps it
        self._box = [None]  # type: list[list | None]  # the latest run's outputs

    def set_inputs(self, seed):
        spec = self.input_spec
        self._require_single_input([i.name for i in self.inputs])
        model_input = self.inputs[0]
        dtype = spec.get("dtype", "float32")
        self._require_input_dtype(model_input.name, _ort_dtype(model_input.type), dtype)
        shape = list(spec["shape"])
        declared = list(model_input.shape or [])
        fixed_mismatch = [i for i, dim in enumerate(declared)
                          if isinstance(dim, int) and dim > 0 and i < len(shape) and shape[i] != dim]
        if len(declared) != len(shape) or fixed_mismatch:
            raise AgentFailure(
                "bad-option", "onnxruntime: model input %r has shape %s but the job's input shape is %s; "
                "fix the variant's input shape" % (model_input.name, _shape(declared), shape))
        self._feed.clear()
        self.place(structured_input(shape, dtype, seed))

    def place(self, array):
        self._feed[self.inputs[0].name] = array
        self._box[0] = None

    def runner(self):
        run = self.session.run
        names = self.output_names
        feed = self._feed  # the same dict set_inputs refills: a runner made once sees new inputs
        box = self._box

        def run_once():
            box[0] = run(names, feed)

        return run_once

    def outputs(self):
        """The latest run's outputs (one inference first if none ran since set_inputs)."""
        if self._box[0] is None:
            self.runner()()
        latest = self._box[0]
        assert latest is not None, "run_once stores the run's outputs"
        return [_as_array(value) for value in latest]

    def describe(self):
        graph = read_graph(self.model_path)
        quant_ops = quantization_ops(graph["ops"])
        if quant_ops:
            precision = "int8"  # type: str | None
        else:
            precision = FLOAT_PRECISIONS.get(graph["float_weight_dtype"] or "", None)
            if precision is None:
                first = _ort_dtype(self.inputs[0].type) if self.inputs else "unknown"
                precision = FLOAT_PRECISIONS.get(first, first)
        executed, int8_ops, note = precision, {}, ""
        if quant_ops:
            int8_ops = self._optimized_int8_ops()
            if int8_ops is None:
                executed = "unknown"
                note = "could not read the graph ORT optimised; int8 kernel use unknown"
                int8_ops = {}
            elif int8_ops:
                executed = "int8"
                note = "ORT placed int8 kernels: %s" % ", ".join(
                    "%d %s" % (n, op) for op, n in sorted(int8_ops.items()))
            else:
                executed = "fp32-fake-quant"
                note = ("quantized graph (%s) but ORT placed no int8 kernels with graph_optimization=%s: "
                        "it runs fp32 with quantize/dequantize ops" % (
                            ", ".join("%d %s" % (n, op) for op, n in sorted(quant_ops.items())),
                            self.options["graph_optimization"]))
        return {
            "precision": precision,
            "precision_executed": executed,
            "precision_note": note,
            "int8_kernels": executed == "int8",
            "int8_ops": int8_ops,
            "quant_ops": quant_ops,
            "weight_dtype": graph["weight_dtype"],
            "model_format": "onnx",
            "opset": graph["opset"],
            "producer": graph["producer"],
            "providers": list(self.session.get_providers()),
            "providers_requested": list(self.options["providers"]),
            "providers_available": list(self.available_providers),
            "threads": self.options["threads"],
            "inter_threads": self.options["inter_threads"],
            "graph_optimization": self.options["graph_optimization"],
            "execution_mode": self.options["execution_mode"],
            "inputs": [_signature(arg) for arg in self.session.get_inputs()],
            "outputs": [_signature(arg) for arg in self.session.get_outputs()],
        }

    def profile(self, iterations):
        """Per-node kernel times from ORT's own profiler (SessionOptions.enable_profiling).

        A second session with the same options and profiling on runs a few warm-up inferences
        and then `iterations` profiled ones on the same input; the JSON trace's "Node" events
        (`<node>_kernel_time`, args.op_name) after the warm-up's last `model_run` are summed per node."""
        import json

        from ..clock import now_ns

        scratch = tempfile.mkdtemp(prefix="harness-ort-profile-")
        warm = min(5, iterations)
        try:
            so = self._session_options()
            so.enable_profiling = True
            so.profile_file_prefix = os.path.join(scratch, "ort")
            session = self._ort.InferenceSession(self.model_path, sess_options=so, providers=self.options["providers"])
            feed = dict(self._feed)
            for _ in range(warm):
                session.run(self.output_names, feed)
            t0 = now_ns()
            for _ in range(iterations):
                session.run(self.output_names, feed)
            wall_ms = (now_ns() - t0) / 1e6
            path = session.end_profiling()
            with open(path) as handle:
                events = json.load(handle)
        except Exception as exc:
            return unsupported_profile("onnxruntime profiling failed: %s" % _first_line(exc))
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
        profile = finish_profile(ort_profile_ops(events, warm), wall_ms, iterations,
                                 "onnxruntime %s SessionOptions.enable_profiling (JSON trace, Node events)"
                                 % self._ort.__version__)
        if profile["supported"]:
            profile["granularity"] = "node"
        return profile

    def _optimized_int8_ops(self):
        """{op: count} of int8 kernels in the graph ORT optimised, or None if unreadable."""
        scratch = tempfile.mkdtemp(prefix="harness-ort-")
        try:
            path = os.path.join(scratch, "optimized.onnx")
            so = self._session_options()
            so.optimized_model_filepath = path
            self._ort.InferenceSession(self.model_path, sess_options=so, providers=self.options["providers"])
            ops = read_graph(path)["ops"]
        except Exception:
            return None
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
        return int8_kernel_ops(ops)


# --------------------------------------------------------------------------- helpers


def _as_array(value):
    import numpy

    return numpy.asarray(value)


def _ort_dtype(type_name):
    # type: (str) -> str
    inner = type_name[len("tensor("):-1] if type_name.startswith("tensor(") else type_name
    return ORT_TYPES.get(inner, inner)


def _shape(dims):
    """ORT dims: int, a symbolic name (str) or None -> int or a string ("?" when unnamed)."""
    out = []  # type: list[int | str]
    for dim in dims or []:
        if isinstance(dim, int) and dim >= 0:
            out.append(dim)
        elif dim is None or (isinstance(dim, int) and dim < 0):
            out.append("?")
        else:
            out.append(str(dim))
    return out


def _signature(arg):
    return {"name": arg.name, "shape": _shape(arg.shape), "dtype": _ort_dtype(arg.type)}


# ORT's messages embed the C++ source location and signature: "failed:/onnxruntime_src/...h:47
# void onnxruntime::...(const std::...&, int) <the actual reason>"; keep only the reason.
_CPP_LOCATION = re.compile(r"\s*/onnxruntime_src/\S+:\d+\s+[^()]*\((?:[^()]|\([^()]*\))*\)\s*")


def _first_line(exc):
    return first_line(exc, _CPP_LOCATION.sub(" ", str(exc)))
