"""Build one demo model of the zoo: every variant, from one seeded net.

Run as a subprocess by `harness.zoo.build` (never imported by the host process):

    FLAGS_enable_pir_api=0 python -m harness.zoo.export_worker \
        --model NAME --out DIR --key BUILD_KEY [--calibration N] [--seed S] [--lite-python PY]

`FLAGS_enable_pir_api=0` must be in the environment before paddle is imported: it is what
makes `paddle.jit.save` write the legacy `inference.pdmodel` (needed by static PTQ, by Paddle
Lite's opt and by paddle2onnx); `paddle.set_flags` after import does not work.

Writes into DIR (each variant's recipe, tool versions and baseline go into build-info.json;
how each is made is in demo_variants.py):

    fp32/inference.pdmodel|.pdiparams     paddle.jit.save, legacy IR
    pruned/inference.pdmodel|.pdiparams   L1-norm filter pruning in dygraph (prune.py), legacy IR
    int8/inference.pdmodel|.pdiparams     paddle static PTQ of fp32 (avg, onnx_format)
    onnx/model.onnx                       paddle2onnx of fp32 (opset 13)
    onnx-int8/model.onnx                  ORT quantize_static of onnx (QDQ, per-channel; ortquant.py)
    lite-x86/model.nb                     Paddle Lite opt of fp32, --valid_targets=x86
    lite-arm/model.nb                     the same for arm (not runnable on x86: arch recorded)
    lite-x86-quant-broken/model.nb        opt --quant_model --quant_type=QUANT_INT8 for x86: made
                                          on purpose, gives WRONG outputs (fidelity must catch it)

Paddle Lite runs in its own interpreter (`--lite-python`, see lite_opt.py), one process per
conversion. Every converted model except the broken one and lite-arm is checked against the
dygraph net on structured inputs (seeds 0-2) before it is accepted; the measured differences
are recorded in build-info (`check`, see output_checks.py).

The step protocol (stderr) is in steps.py: [zoo], [zoo-step], [zoo-error].

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
import os
import platform
import shutil
import sys
import time
from pathlib import Path
from typing import Any

from harness.zoo.build_info import attach_variant_files, file_entries, write_build_info
from harness.zoo.steps import StepFailed, Worker, add_build_arguments, one_line, run_steps

#: Variant directories, in build order (`distilled` only for a model with a student, nets.STUDENTS).
VARIANTS = ("fp32", "distilled", "qat", "pruned", "int8", "onnx", "onnx-int8", "lite-x86", "lite-arm",
            "lite-x86-quant-broken")


def run(args: argparse.Namespace, w: Worker) -> None:
    flag = os.environ.get("FLAGS_enable_pir_api")
    if flag not in ("0", "false", "False"):
        raise StepFailed(
            "start", "export worker",
            "FLAGS_enable_pir_api=0 must be set in the environment before paddle is imported "
            f"(found {flag!r}); run the worker through harness.zoo.build",
        )
    out = os.path.abspath(args.out)

    w.begin("import", "paddle", "importing paddle")
    try:
        import paddle  # before numpy, which paddle imports itself: a missing paddle is named as such
    except ImportError as exc:
        raise StepFailed(
            "import", "paddle",
            f"{one_line(exc)} (the worker needs paddlepaddle and numpy in {sys.executable})",
        ) from exc
    import numpy as np

    from harness.agent.inputs import structured_input
    from harness.zoo import demo_variants, digits, nets, prune, train
    from harness.zoo.output_checks import CHECK_SEEDS

    if args.model not in nets.NETS:
        raise StepFailed("start", "export worker",
                         f"unknown model {args.model!r} (known: {', '.join(nets.NETS)})")
    shape = list(nets.input_shape(args.model))
    w.begin("import", "paddle2onnx")
    onnx_tools = demo_variants.import_onnx_tools()

    w.begin("data", "scikit-learn", "loading the digits (scikit-learn's wheel) and splitting them")
    data = digits.load(args.seed)
    digits.write_image_set(data.test, out)
    w.begin("build-net", "paddle", f"building net (seed {args.seed}, input {shape})")
    net = nets.build_net(args.model, args.seed)
    check_inputs = [structured_input(shape, "float32", seed) for seed in CHECK_SEEDS]
    build = demo_variants.DemoBuild(
        model=args.model, seed=args.seed, calibration=args.calibration, out=out, shape=shape,
        check_inputs=check_inputs, reference=[],
        paddle_versions={"paddlepaddle": paddle.__version__, "numpy": np.__version__,
                         "python": platform.python_version()},
        data=data, x_train=train.batches_of(data.train.images, digits.MAX_VALUE, shape))
    training = demo_variants.train_fp32(w, build, net)
    build.reference.extend(prune.forward(net, check_inputs))
    demo_variants.export_fp32(w, build, net, training)
    demo_variants.export_distilled(w, build, net)
    qat_record = demo_variants.fine_tune_qat(w, build, net)
    demo_variants.export_pruned(w, build, net)  # the last dygraph step: static PTQ follows
    del net
    demo_variants.quantize_qat(w, build, qat_record)
    demo_variants.quantize_int8(w, build)
    demo_variants.export_onnx(w, build, onnx_tools)
    demo_variants.convert_lite(w, build, args.lite_python)
    demo_variants.measure_accuracy(w, build, args.lite_python)

    w.begin("write-info", "export worker", "writing build-info.json")
    shutil.rmtree(build.scratch, ignore_errors=True)
    present = [name for name in (*VARIANTS, digits.DATA_DIR) if os.path.isdir(os.path.join(out, name))]
    files = file_entries(Path(out), present)  # every produced file (jit.save also writes inference.pdiparams.info)
    variants = build.variants
    attach_variant_files(variants, files)
    duration = w.finish()
    write_build_info(Path(out), {
        "version": 3,
        "model": args.model,
        "kind": "demo",
        "input": {"name": "x", "shape": shape, "dtype": "float32"},
        "paddle_version": paddle.__version__,
        "python_version": platform.python_version(),
        "python": sys.executable,
        "seed": args.seed,
        "dataset": data.record(),
        "calibration": {
            **build.calibration_record(),
            "algo": demo_variants.ALGOS[args.model],
            "onnx_format": demo_variants.ONNX_FORMAT,
            "quantizable_op_type": list(demo_variants.QUANTIZABLE_OPS),
        },
        "variants": variants,
        "files": files,
        "build_key": args.key,
        "built_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "duration_s": duration,
        "step_durations_s": dict(w.durations),
    })
    w.say(_summary(duration, variants, files))


def _summary(duration: float, variants: dict[str, dict[str, Any]], files: dict[str, dict[str, Any]]) -> str:
    """The worker's last progress line: sizes of the variants, and how wrong the broken one is."""
    from harness.zoo.demo_variants import PARAMS_FILE

    fp32 = files[f"fp32/{PARAMS_FILE}"]["size"]
    int8 = files[f"int8/{PARAMS_FILE}"]["size"]
    pruned = files[f"pruned/{PARAMS_FILE}"]["size"]
    broken = variants["lite-x86-quant-broken"]
    broken_check = broken["check"]
    broken_text = (f"relative error {broken_check['relative_error']}" if broken_check["finite"] else
                   f"{broken_check['non_finite_values']} non-finite outputs, finite ones up to "
                   f"{broken_check['max_abs_finite_output']:.3g} vs fp32 {broken_check['max_abs_reference']:.3g}")
    accuracy = ", ".join(f"{name} {entry['task_accuracy']['correct']}/{entry['task_accuracy']['count']}"
                         for name, entry in variants.items() if entry.get("task_accuracy", {}).get("count"))
    return (f"done in {duration:.1f} s: top-1 on the test split {accuracy}; "
            f"params fp32 {fp32 / 1e6:.2f} MB, int8 {int8 / 1e6:.2f} MB, "
            f"pruned {pruned / 1e6:.2f} MB; onnx {variants['onnx']['size'] / 1e6:.2f} MB, "
            f"onnx-int8 {variants['onnx-int8']['size'] / 1e6:.2f} MB; lite-x86 "
            f"{variants['lite-x86']['size'] / 1e6:.2f} MB, quant-broken {broken['size'] / 1e6:.2f} MB "
            f"({broken_text})")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m harness.zoo.export_worker",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True)
    add_build_arguments(parser, calibrated=True)
    parser.add_argument("--lite-python", default="", help="interpreter with paddlelite (numpy<2)")
    args = parser.parse_args(argv)
    w = Worker(args.model)

    def body() -> None:
        if args.calibration < 1:
            raise StepFailed("start", "export worker", "--calibration must be at least 1")
        run(args, w)

    return run_steps(w, body)


if __name__ == "__main__":
    sys.exit(main())
