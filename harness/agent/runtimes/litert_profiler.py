"""LiteRT op-level profile through the CompiledModel C API of libLiteRt.so (ctypes).

The Python Interpreter exposes no profiler, but the same wheel ships libLiteRt.so with the
CompiledModel C API and its profiler (LiteRtCompiledModelGetProfiler, LiteRtGetProfileSummary,
runtime option `enable_profiling`). `profile_compiled_model()` drives it through ctypes on a
CompiledModel of the same file with the same thread count and kernel mode (XNNPACK, or
`kernel_mode = "builtin"` when xnnpack is off) and parses the summary's "Run Order" table:
one row per executed node (an XNNPACK operator, or a builtin op).
"""

import os
import re

from .base import finish_profile, unsupported_profile


def profile_compiled_model(model_path, threads, xnnpack, input_array, iterations):
    # type: (str, int | None, bool, object, int) -> dict
    """The op profile of `iterations` runs of a CompiledModel of `model_path` (the format is described in base.py),
    or an unsupported one saying why this libLiteRt.so cannot give it."""
    try:
        return _CompiledModelProfile(model_path, threads, xnnpack, input_array).run(max(1, int(iterations)))
    except _ProfileUnavailable as exc:
        return unsupported_profile(str(exc))


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
