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

Op-level profile: the Python Interpreter exposes no profiler; `profile()` uses the
CompiledModel profiler of the libLiteRt.so the same wheel ships (litert_profiler.py). What
the interpreter says about the model's tensors and execution plan is read in litert_graph.py.
"""

from ..inputs import structured_input
from ..protocol import AgentFailure
from .base import BaseAdapter, distribution_version, first_line, import_runtime_modules, require_file
from .litert_graph import declared_shape, dtype_name, graph_summary, signature_list, tensor_signature
from .litert_profiler import profile_compiled_model


class Adapter(BaseAdapter):
    name = "litert"
    OPTIONS = {
        "threads": (int, 1),
        "xnnpack": (bool, True),
    }

    def _validated(self, options):
        values = BaseAdapter._validated(self, options)
        self._require_at_least(values, "threads", 1)
        return values

    def import_runtime(self):
        _, self._litert = import_runtime_modules(
            "ai_edge_litert", ("numpy", "ai_edge_litert.interpreter"), install="ai-edge-litert and numpy")

    def version(self):
        import ai_edge_litert

        return distribution_version("ai-edge-litert", ai_edge_litert)

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
            raise AgentFailure("model-load", "litert could not load %s: %s" % (model, first_line(exc))) from exc
        self.input_spec = input_spec
        self.input_details = self.interpreter.get_input_details()
        self.output_details = self.interpreter.get_output_details()

    def set_inputs(self, seed):
        spec = self.input_spec
        self._require_single_input([d["name"] for d in self.input_details])
        detail = self.input_details[0]
        dtype = spec.get("dtype", "float32")
        self._require_input_dtype(detail["name"], dtype_name(detail["dtype"]), dtype)
        shape = [int(d) for d in spec["shape"]]
        current = [int(d) for d in detail["shape"]]
        if shape != current:
            signature = [int(d) for d in detail.get("shape_signature", detail["shape"])]
            fixed = [i for i, dim in enumerate(signature) if dim > 0 and i < len(shape) and shape[i] != dim]
            if len(signature) != len(shape) or fixed:
                raise AgentFailure(
                    "bad-option", "litert: model input %r has shape %s but the job's input shape is %s; fix the "
                    "variant's input shape (only dimensions the model declares dynamic, -1, can change)"
                    % (detail["name"], declared_shape(signature), shape))
            try:
                self.interpreter.resize_tensor_input(detail["index"], shape, strict=True)
                self.interpreter.allocate_tensors()
            except Exception as exc:
                raise AgentFailure("bad-option", "litert: cannot resize input %r to %s: %s"
                                   % (detail["name"], shape, first_line(exc))) from exc
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
        graph = graph_summary(self.interpreter)
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
            first = dtype_name(self.input_details[0]["dtype"]) if self.input_details else "float32"
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
            "signature_keys": sorted(signature_list(self.interpreter)),
            "inputs": [tensor_signature(d) for d in self.input_details],
            "outputs": [tensor_signature(d) for d in self.output_details],
        }

    def profile(self, iterations):
        return profile_compiled_model(self.model_path, self.options["threads"], self.options["xnnpack"],
                                      getattr(self, "_input", None), iterations)

