"""Build one demo model of the zoo: fp32 legacy Paddle Inference model + int8 static PTQ variant.

Run as a subprocess by `harness.zoo.build` (never imported by the host process):

    FLAGS_enable_pir_api=0 python -m harness.zoo.export_worker \
        --model NAME --out DIR --calibration N --seed S [--key BUILD_KEY]

`FLAGS_enable_pir_api=0` must be in the environment before paddle is imported: it is what
makes `paddle.jit.save` write the legacy `inference.pdmodel` (needed by static PTQ and by
Paddle Lite's opt); `paddle.set_flags` after import does not work.

Writes DIR/fp32/inference.pdmodel|.pdiparams, DIR/int8/inference.pdmodel|.pdiparams and
DIR/build-info.json. Talks to its parent on stderr (stdout is merged into it by the parent):
  [zoo] <model>: <human progress line>         shown to the user
  [zoo-step] {"step": ..., "tool": ...}        the step now running (parsed, not shown)
  [zoo-error] {"step", "tool", "error"}        one-line failure summary, then the traceback
Exit status 0 on success, 1 on a failure it could describe, anything else on a crash.

Observed on this machine (2 shared x86 cores, AVX2 without VNNI, paddle 3.3.1, 2026-11-22):
- Build time (whole worker process): tiny_cnn ~1.6 s with 8 or 32 calibration inputs (~1 s of
  it `import paddle`); mobilenet_v3_small ~10 s with 32 (calibration ~7 s of that).
  Rebuilds are byte-identical (same seed -> same sha256 for every file).
- Sizes, pdiparams fp32 -> int8: tiny_cnn 232 KB -> 64 KB; mobilenet_v3_small 10.23 MB ->
  2.75 MB (26.9 %). The int8 .pdmodel is larger (quantize/dequantize ops): 14 -> 30 KB and
  136 -> 315 KB. jit.save also writes fp32/inference.pdiparams.info (listed in build-info).
- stderr of `create_predictor` (Config(model, params); disable_gpu(); switch_ir_optim(True);
  set_cpu_math_library_num_threads(1); enable_mkldnn(); [enable_mkldnn_int8()]), fd 2 of a
  fresh process: NOT silent. With GLOG_v unset or GLOG_v=0 (byte-identical output) and
  with or without switch_ir_debug(False) (no effect on stderr), every predictor prints
  "--- Running IR pass [...]" lines and glog I-lines (tiny fp32 76 lines, int8 122; mnv3
  fp32 105, int8 150). Only the int8 model with enable_mkldnn_int8() adds
      I... analysis_predictor.cc:2122] Int8 is enabled
      --- Running IR pass [cpu_quantize_placement_pass] / [cpu_quantize_pass] /
          [cpu_quantize_squash_pass]
      ---    quantized 5 fused_conv2d ops            (mnv3: 46, plus "quantized 6 fused_conv2d
      ---    quantized 1 pool2d ops                   ops with residual connection", 10 pool2d,
      ---    quantized 1 fc ops                       2 fc, 1 reshape2, 8 fused_elementwise_mul)
      ---    quantized 1 reshape2 ops
      ---    squashed 7 dequantize-quantize pairs    (mnv3: 68, and "squashed 18 dequant with ops")
  (plus the same lines with count 0 for every other op kind). config.disable_glog_info()
  silences everything for fp32 but the 32 "---    quantized N ..."/"---    squashed N ..."
  lines of the int8 passes STILL print. So int8 kernel use is detectable from stderr:
  "quantized N <op> ops" with N > 0 means oneDNN int8 kernels were placed. The int8 model
  run WITHOUT enable_mkldnn_int8() prints none of these and runs fake-quant ops (tiny 3.2 ms,
  mnv3 41 ms: 5x slower than fp32). GLOG_v=1 adds ~125 lines, GLOG_v=3 tens of thousands;
  GLOG_minloglevel=1 drops the I-lines but keeps the "---" lines.
- Predictor latency, 1 thread, MKLDNN, IR optim on, mean of 50 runs after 12 warm-up runs,
  three fresh processes each: tiny_cnn fp32 0.66-0.75 ms, int8 0.55-0.77 ms; mobilenet_v3_small
  fp32 6.5-7.4 ms, int8 7.4-8.4 ms (int8 SLOWER, as in notes/paddle-stack.md: no VNNI here).
- Fidelity of the mkldnn-int8 run vs fp32 on two structured inputs (seeds 1, 2): tiny_cnn
  relative error 0.17 / 0.10 (fp32 moves 0.47 between the inputs), same top-1; mnv3 relative
  error 0.22 / 0.39 (fp32 moves 3.0 between inputs), top-1 differs on both inputs.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import sys
import time
import traceback

CALIBRATION_SEED_OFFSET = 10_000
QUANTIZABLE_OPS = ("conv2d", "depthwise_conv2d", "mul", "matmul", "matmul_v2")
ALGO = "avg"
ONNX_FORMAT = True
MODEL_FILE = "inference.pdmodel"
PARAMS_FILE = "inference.pdiparams"


class StepFailed(Exception):
    def __init__(self, step: str, tool: str, error: str) -> None:
        super().__init__(error)
        self.step = step
        self.tool = tool
        self.error = error


class Worker:
    def __init__(self, model: str) -> None:
        self.model = model
        self.step = "start"
        self.tool = "export worker"
        self.started = time.monotonic()
        self.step_started = self.started
        self.durations: dict[str, float] = {}

    def say(self, message: str) -> None:
        print(f"[zoo] {self.model}: {message}", file=sys.stderr, flush=True)

    def begin(self, step: str, tool: str, message: str | None = None) -> None:
        now = time.monotonic()
        if self.step != "start":
            self.durations[self.step] = round(now - self.step_started, 3)
        self.step, self.tool, self.step_started = step, tool, now
        print("[zoo-step] " + json.dumps({"step": step, "tool": tool}), file=sys.stderr, flush=True)
        if message:
            self.say(message)

    def finish(self) -> float:
        now = time.monotonic()
        self.durations[self.step] = round(now - self.step_started, 3)
        return round(now - self.started, 3)


def _one_line(exc: BaseException) -> str:
    """First meaningful line of an exception message (paddle's run to dozens of lines)."""
    text = str(exc).strip()
    first = ""
    for line in text.splitlines():
        line = line.strip()
        if line and not set(line) <= set("-=_ "):
            first = line
            break
    first = " ".join(first.split())
    if len(first) > 300:
        first = first[:297] + "..."
    name = type(exc).__name__
    return f"{name}: {first}" if first else name


def _sha256(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def run(args: argparse.Namespace, w: Worker) -> None:
    flag = os.environ.get("FLAGS_enable_pir_api")
    if flag not in ("0", "false", "False"):
        raise StepFailed(
            "start", "export worker",
            "FLAGS_enable_pir_api=0 must be set in the environment before paddle is imported "
            f"(found {flag!r}); run the worker through harness.zoo.build",
        )
    out = os.path.abspath(args.out)
    fp32_dir = os.path.join(out, "fp32")
    int8_dir = os.path.join(out, "int8")

    w.begin("import", "paddle", "importing paddle")
    try:
        import paddle
        import numpy as np  # noqa: F401  (structured_input needs it)
    except ImportError as exc:
        raise StepFailed(
            "import", "paddle",
            f"{_one_line(exc)} (the worker needs paddlepaddle and numpy in {sys.executable})",
        ) from exc
    from harness.agent.inputs import structured_input
    from harness.zoo import nets

    if args.model not in nets.NETS:
        raise StepFailed("start", "export worker",
                         f"unknown model {args.model!r} (known: {', '.join(nets.NETS)})")
    shape = list(nets.input_shape(args.model))

    w.begin("build-net", "paddle", f"building net (seed {args.seed}, input {shape})")
    net = nets.build_net(args.model, args.seed)

    w.begin("export-fp32", "paddle.jit.save", "exporting fp32")
    from paddle.static import InputSpec

    paddle.jit.save(net, os.path.join(fp32_dir, "inference"),
                    input_spec=[InputSpec(shape, "float32", "x")])
    if not os.path.isfile(os.path.join(fp32_dir, MODEL_FILE)):
        produced = ", ".join(sorted(os.listdir(fp32_dir))) if os.path.isdir(fp32_dir) else "nothing"
        raise StepFailed("export-fp32", "paddle.jit.save",
                         f"no legacy {MODEL_FILE} written (got: {produced}); "
                         "FLAGS_enable_pir_api=0 did not take effect")

    w.begin("calibrate", "paddle static PTQ",
            f"calibrating int8 on {args.calibration} inputs (algo={ALGO})")
    paddle.enable_static()
    from paddle.static.quantization import PostTrainingQuantization

    def data_loader():
        for i in range(args.calibration):
            seed = CALIBRATION_SEED_OFFSET + args.seed + i
            yield {"x": structured_input(shape, "float32", seed)}

    executor = paddle.static.Executor(paddle.CPUPlace())
    ptq = PostTrainingQuantization(
        executor=executor,
        model_dir=fp32_dir,
        model_filename=MODEL_FILE,
        params_filename=PARAMS_FILE,
        data_loader=data_loader,
        batch_size=1,
        batch_nums=args.calibration,
        algo=ALGO,
        onnx_format=ONNX_FORMAT,
        quantizable_op_type=list(QUANTIZABLE_OPS),
    )
    ptq.quantize()

    w.begin("save-int8", "paddle static PTQ", "saving int8")
    ptq.save_quantized_model(int8_dir, model_filename=MODEL_FILE, params_filename=PARAMS_FILE)
    for name in (MODEL_FILE, PARAMS_FILE):
        if not os.path.isfile(os.path.join(int8_dir, name)):
            raise StepFailed("save-int8", "paddle static PTQ", f"int8/{name} was not written")

    w.begin("write-info", "export worker", "writing build-info.json")
    files = {}  # every produced file (jit.save also writes inference.pdiparams.info)
    for sub in ("fp32", "int8"):
        for name in sorted(os.listdir(os.path.join(out, sub))):
            path = os.path.join(out, sub, name)
            if os.path.isfile(path):
                files[f"{sub}/{name}"] = {"size": os.path.getsize(path), "sha256": _sha256(path)}
    key = args.key
    if not key:
        from harness.zoo.build import build_key

        key = build_key(args.model, args.calibration, args.seed)
    duration = w.finish()
    info = {
        "version": 1,
        "model": args.model,
        "input": {"name": "x", "shape": shape, "dtype": "float32"},
        "paddle_version": paddle.__version__,
        "python_version": platform.python_version(),
        "python": sys.executable,
        "seed": args.seed,
        "calibration": {
            "size": args.calibration,
            "seeds": [CALIBRATION_SEED_OFFSET + args.seed,
                      CALIBRATION_SEED_OFFSET + args.seed + args.calibration - 1],
            "algo": ALGO,
            "onnx_format": ONNX_FORMAT,
            "quantizable_op_type": list(QUANTIZABLE_OPS),
        },
        "files": files,
        "build_key": key,
        "built_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "duration_s": duration,
        "step_durations_s": dict(w.durations),
    }
    with open(os.path.join(out, "build-info.json"), "w", encoding="utf-8") as handle:
        json.dump(info, handle, indent=2, sort_keys=True)
        handle.write("\n")
    fp32 = files[f"fp32/{PARAMS_FILE}"]["size"]
    int8 = files[f"int8/{PARAMS_FILE}"]["size"]
    w.say(f"done in {duration:.1f} s: params fp32 {fp32 / 1e6:.2f} MB, int8 {int8 / 1e6:.2f} MB")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m harness.zoo.export_worker",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--calibration", type=int, default=32)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--key", default="", help="build key to record (computed if omitted)")
    args = parser.parse_args(argv)
    w = Worker(args.model)
    try:
        if args.calibration < 1:
            raise StepFailed("start", "export worker", "--calibration must be at least 1")
        run(args, w)
    except StepFailed as exc:
        _report(exc.step, exc.tool, exc.error)
        if exc.__cause__ is not None:
            cause = exc.__cause__
            traceback.print_exception(type(cause), cause, cause.__traceback__)
        return 1
    except Exception as exc:  # noqa: BLE001  any failure: summarise, then the full traceback
        _report(w.step, w.tool, _one_line(exc))
        traceback.print_exc()
        return 1
    return 0


def _report(step: str, tool: str, error: str) -> None:
    print("[zoo-error] " + json.dumps({"step": step, "tool": tool, "error": error}),
          file=sys.stderr, flush=True)


if __name__ == "__main__":
    sys.exit(main())
