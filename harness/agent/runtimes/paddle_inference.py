"""Paddle Inference (`paddle.inference`): PIR `.json` and legacy `.pdmodel` models.

Pitfalls handled here (see docs/paddle-stack notes): `enable_memory_optim()` breaks
predictor creation on PIR `.json` models, so it is refused for them with a clear message;
MKLDNN is silently not applied to a legacy model with IR optimisation off, so that
combination is reported in `describe()` rather than hidden.
"""

import os
import re
import sys
import tempfile

from ..inputs import structured_input
from ..protocol import AgentFailure
from .base import (
    BaseAdapter,
    finish_profile,
    import_runtime_modules,
    predictor_runner,
    require_file,
    unsupported_profile,
)

# Op types that mark a quantized (QDQ / fake-quant) program.
QUANT_OP_TYPES = (
    "quantize_linear", "dequantize_linear", "fake_quantize_abs_max", "fake_quantize_range_abs_max",
    "fake_quantize_moving_average_abs_max", "fake_quantize_dequantize_moving_average_abs_max",
    "fake_quantize_dequantize_abs_max", "fake_channel_wise_quantize_abs_max",
    "fake_channel_wise_quantize_dequantize_abs_max", "fake_dequantize_max_abs",
    "fake_channel_wise_dequantize_max_abs",
)
# Printed by oneDNN's cpu_quantize_pass when it places int8 kernels (even with glog info off):
# "---    quantized 46 fused_conv2d ops". The only direct evidence that int8 kernels run.
QUANTIZED_OPS_LINE = re.compile(r"quantized (\d+) (\w+) ops")


class Adapter(BaseAdapter):
    name = "paddle-inference"
    OPTIONS = {
        "threads": (int, 1),
        "mkldnn": (bool, True),
        "ir_optim": (bool, True),
        "memory_optim": (bool, False),
        "precision": (str, "fp32", ("fp32", "int8", "bf16")),
        "device": (str, "cpu", ("cpu", "gpu")),
        "gpu_id": (int, 0),
        "gpu_memory_mb": (int, 256),
        "tensorrt_precision": (str, None, ("fp32", "fp16", "int8")),
    }

    def import_runtime(self):
        self._inference = import_runtime_modules("paddle.inference", ("paddle.inference",))[0]

    def version(self):
        import paddle

        return paddle.__version__

    def load(self, files, input_spec):
        model = require_file(files, "model")
        params = require_file(files, "params")
        opts = self.options
        self.model_path = model
        self.is_pir = model.endswith(".json")
        self.quant_ops = _count_quant_ops(model)
        if opts["memory_optim"] and self.is_pir:
            raise AgentFailure(
                "bad-option",
                "paddle-inference: memory_optim=true breaks predictor creation on PIR .json models "
                "(%s); export a legacy .pdmodel or set memory_optim: false" % os.path.basename(model))
        config = self._inference.Config(model, params)
        if opts["device"] == "gpu":
            import paddle

            if not paddle.is_compiled_with_cuda():
                raise AgentFailure(
                    "bad-option",
                    "paddle-inference: device=gpu but this paddle %s is a CPU build; install a CUDA "
                    "build on the device or use device: cpu" % paddle.__version__)
            config.enable_use_gpu(opts["gpu_memory_mb"], opts["gpu_id"])
            if opts["tensorrt_precision"]:
                precisions = {"fp32": self._inference.PrecisionType.Float32,
                              "fp16": self._inference.PrecisionType.Half,
                              "int8": self._inference.PrecisionType.Int8}
                config.enable_tensorrt_engine(
                    workspace_size=1 << 30, max_batch_size=1, min_subgraph_size=3,
                    precision_mode=precisions[opts["tensorrt_precision"]],
                    use_static=False, use_calib_mode=opts["tensorrt_precision"] == "int8")
        else:
            config.disable_gpu()
            if opts["tensorrt_precision"]:
                raise AgentFailure("bad-option", "paddle-inference: tensorrt_precision needs device: gpu")
        config.switch_ir_optim(opts["ir_optim"])
        config.set_cpu_math_library_num_threads(opts["threads"])
        if opts["mkldnn"] and opts["device"] == "cpu":
            config.enable_mkldnn()
            if opts["precision"] == "int8":
                config.enable_mkldnn_int8()
            elif opts["precision"] == "bf16":
                config.enable_mkldnn_bfloat16()
        else:
            config.disable_mkldnn()
            if opts["precision"] != "fp32" and opts["device"] == "cpu":
                raise AgentFailure(
                    "bad-option", "paddle-inference: precision=%s on CPU needs mkldnn: true" % opts["precision"])
        if opts["memory_optim"]:
            config.enable_memory_optim()
        self.config = config
        try:
            self.predictor, log = _with_captured_stderr(lambda: self._inference.create_predictor(config))
        except Exception as exc:  # paddle raises several unrelated types here
            raise AgentFailure("model-load", "paddle-inference could not load %s: %s"
                               % (model, _first_line(exc))) from exc
        self.int8_ops = {}  # type: dict[str, int]  # op -> int8 kernels paddle's log reports
        for count, op in QUANTIZED_OPS_LINE.findall(log):
            if int(count):
                self.int8_ops[op] = self.int8_ops.get(op, 0) + int(count)
        self.input_spec = input_spec
        self.input_names = self.predictor.get_input_names()
        self.output_names = self.predictor.get_output_names()

    def set_inputs(self, seed):
        spec = self.input_spec
        self._require_single_input(self.input_names)
        self.place(structured_input(spec["shape"], spec.get("dtype", "float32"), seed))

    def place(self, array):
        handle = self.predictor.get_input_handle(self.input_names[0])
        handle.reshape(list(array.shape))
        handle.copy_from_cpu(array)

    def runner(self):
        return predictor_runner(self.predictor)

    def outputs(self):
        return [self.predictor.get_output_handle(n).copy_to_cpu() for n in self.output_names]

    def describe(self):
        config = self.config
        mkldnn = bool(config.mkldnn_enabled())
        int8_enabled = bool(config.mkldnn_int8_enabled())
        quantized = self.quant_ops > 0
        int8_kernels = sum(self.int8_ops.values())
        if int8_kernels:
            executed = "int8"
            note = "oneDNN int8 kernels placed for %d ops (%s)" % (
                int8_kernels, ", ".join("%d %s" % (n, op) for op, n in sorted(self.int8_ops.items())))
        elif quantized and mkldnn and int8_enabled:
            executed = "fp32-fake-quant"
            note = ("mkldnn int8 enabled but cpu_quantize_pass quantized no ops: the model's %d quantize "
                    "ops run as fake-quant in fp32" % self.quant_ops)
        elif quantized:
            executed = "fp32-fake-quant"
            note = ("quantized model run as fp32 with fake-quant ops (%d quantize ops; int8 kernels "
                    "need mkldnn: true and precision: int8)" % self.quant_ops)
        else:
            executed = self.options["precision"] if self.options["precision"] != "int8" else "fp32"
            note = "no quantize ops in the model" if self.options["precision"] == "int8" else ""
        if not self.is_pir and not self.options["ir_optim"] and mkldnn:
            note = (note + "; " if note else "") + "ir_optim=false on a legacy model: MKLDNN is not applied"
        return {
            "precision_requested": self.options["precision"],
            "precision": executed,
            "int8_kernels": executed == "int8",
            "int8_ops": dict(self.int8_ops),
            "precision_note": note,
            "model_format": "pir-json" if self.is_pir else "legacy-pdmodel",
            "mkldnn": mkldnn,
            "ir_optim": bool(self.options["ir_optim"]),
            "threads": self.options["threads"],
            "device": self.options["device"],
            "inputs": [_signature(self.predictor.get_input_handle(n), n) for n in self.input_names],
            "outputs": [_signature(self.predictor.get_output_handle(n), n) for n in self.output_names],
        }


    def profile(self, iterations):
        """Per-op-type times from Paddle Inference's own profiler (`Config.enable_profile()`).

        A second predictor from a copy of this config with profiling on runs a few warm-up
        inferences, the profiler's events are reset (paddle.base.core.reset_profiler), then
        `iterations` profiled ones run on the same input. Paddle prints its "Event Summary" table
        when the predictor is destroyed: fds 1 and 2 are captured around that and the table is
        parsed. Paddle aggregates by op type (fused_conv2d, fc, ...), not per node."""
        import gc

        from ..clock import now_ns

        core = _paddle_core()
        warm = min(5, iterations)
        box = {}
        try:
            config = self._inference.Config(self.config)
            config.enable_profile()
            predictor, _ = _with_captured_stderr(lambda: self._inference.create_predictor(config))
            name = self.input_names[0]
            array = self.predictor.get_input_handle(name).copy_to_cpu()
            handle = predictor.get_input_handle(name)
            handle.reshape(list(array.shape))
            handle.copy_from_cpu(array)
            for _ in range(warm):
                predictor.run()
            reset = core is not None and hasattr(core, "reset_profiler")
            if reset:
                core.reset_profiler()
            t0 = now_ns()
            for _ in range(iterations):
                predictor.run()
            box["wall_ms"] = (now_ns() - t0) / 1e6
            del handle

            def destroy():
                box.pop("predictor", None)
                gc.collect()

            box["predictor"] = predictor
            del predictor
            _, report = _with_captured_output(destroy)
        except Exception as exc:
            return unsupported_profile("paddle-inference profiling failed: %s" % _first_line(exc))
        ops = parse_profile_report(report)
        profile = finish_profile(ops, box["wall_ms"], iterations,
                                 "paddle-inference Config.enable_profile() (Event Summary at predictor "
                                 "destruction)", reason="" if ops else "paddle printed no Event Summary rows")
        if profile["supported"]:
            profile["granularity"] = "op-type"
            if not reset:
                profile["note"] = "profiler could not be reset: %d warm-up inferences are included" % warm
        return profile


# One row of paddle's profiler "Event Summary": thread0::fused_conv2d  680  92.43  0.072  0.449  0.136  0.565
_EVENT_ROW = re.compile(r"^thread\d+::(?P<name>\S+)\s+(?P<calls>\d+)\s+(?P<total>[\d.eE+-]+)\s+")


def _paddle_core():
    """paddle's C++ core module (its reset_profiler() clears the profiler's events): paddle.base
    in paddle 3, paddle.fluid in paddle 2; None when neither imports."""
    try:
        from paddle.base import core
        return core
    except ImportError:
        pass
    try:
        from paddle.fluid import core as fluid_core  # paddle 2.x
        return fluid_core
    except ImportError:
        return None


def parse_profile_report(text):
    # type: (str) -> list
    """Op-type rows of the "Event Summary" of paddle's profiling report: [{"op", "type", "time_ms", "calls"}].

    Nested rows (indented) and framework events (Executor::Run, ...) are left out."""
    ops = []
    in_events = False
    for line in text.splitlines():
        if "Event Summary" in line:
            in_events = True
            continue
        if not in_events:
            continue
        if "Memory Profiling Report" in line or line.startswith("------->"):
            break
        match = _EVENT_ROW.match(line)
        if not match or "::" in match.group("name"):
            continue
        name = match.group("name")
        ops.append({"op": name, "type": name, "time_ms": float(match.group("total")),
                    "calls": int(match.group("calls"))})
    return ops


def _with_captured_output(action):
    """Run `action` with fds 1 and 2 going to one temp file; return (its result, what was printed).

    The agent's protocol stream has its own fd, so nothing of the protocol is captured; what
    was captured is written back to stderr so the log is not lost."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = (os.dup(1), os.dup(2))
    with tempfile.TemporaryFile() as capture:
        os.dup2(capture.fileno(), 1)
        os.dup2(capture.fileno(), 2)
        try:
            result = action()
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            os.close(saved[0])
            os.close(saved[1])
            capture.seek(0)
            text = capture.read().decode("utf-8", "replace")
            sys.stderr.write(text)
    return result, text


def _with_captured_stderr(action):
    """Run `action` with fd 2 going to a temp file; return (its result, what it printed).

    What was captured is written back to stderr so the log is not lost."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as capture:
        os.dup2(capture.fileno(), 2)
        try:
            result = action()
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            capture.seek(0)
            text = capture.read().decode("utf-8", "replace")
            sys.stderr.write(text)
    return result, text


def _count_quant_ops(model_path):
    # type: (str) -> int
    """Quantize/dequantize ops in a program, without parsing protobuf or JSON.

    A legacy program also lists every op name known to paddle in its op-version map, so a
    plain substring count is wrong; count only OpDesc `type` fields instead (protobuf field 3,
    tag 0x1a, then a one-byte length), or `"pd_op.<name>"` in a PIR .json program."""
    with open(model_path, "rb") as handle:
        data = handle.read()
    if model_path.endswith(".json"):
        markers = [('"pd_op.%s"' % name).encode() for name in QUANT_OP_TYPES]
    else:
        markers = [b"\x1a" + bytearray([len(name)]) + name.encode() for name in QUANT_OP_TYPES]
    return sum(data.count(bytes(marker)) for marker in markers)


def _signature(handle, name):
    try:
        dtype = str(handle.type()).split(".")[-1].lower()
    except Exception:
        dtype = "unknown"
    return {"name": name, "shape": list(handle.shape()), "dtype": dtype}


def _first_line(exc):
    text = str(exc).strip()
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    for line in lines:
        if "Error" in line or "error" in line:
            return line[:400]
    return (lines[0] if lines else type(exc).__name__)[:400]
