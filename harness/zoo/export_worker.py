"""Build one demo model of the zoo: every variant, from one seeded net.

Run as a subprocess by `harness.zoo.build` (never imported by the host process):

    FLAGS_enable_pir_api=0 python -m harness.zoo.export_worker \
        --model NAME --out DIR --key BUILD_KEY [--calibration N] [--seed S] [--lite-python PY]

`FLAGS_enable_pir_api=0` must be in the environment before paddle is imported: it is what
makes `paddle.jit.save` write the legacy `inference.pdmodel` (needed by static PTQ, by Paddle
Lite's opt and by paddle2onnx); `paddle.set_flags` after import does not work.

Writes into DIR (each variant's recipe, tool versions and baseline go into build-info.json):

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
are recorded in build-info (`check`).

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
import json
import os
import platform
import shutil
import sys
import time
from pathlib import Path
from typing import Any

from harness.zoo.build_info import attach_variant_files, file_entries, write_build_info
from harness.zoo.steps import StepFailed, Worker, add_build_arguments, one_line, run_steps, run_tool

CALIBRATION_SEED_OFFSET = 10_000
QUANTIZABLE_OPS = ("conv2d", "depthwise_conv2d", "mul", "matmul", "matmul_v2")
ALGO = "avg"
ONNX_FORMAT = True
MODEL_FILE = "inference.pdmodel"
PARAMS_FILE = "inference.pdiparams"
ONNX_OPSET = 13
PRUNE_RATIO = 0.3
CHECK_SEEDS = (0, 1, 2)
#: A converted fp32 model is accepted when ||out - ref|| / ||ref|| stays below this on every
#: check input (measured: paddle2onnx 3e-7, Lite x86 4e-7).
FP32_TOLERANCE = 1e-3
BROKEN_EXPECTED = "wrong outputs (opt QUANT_INT8 on x86)"
#: Variant directory -> what it is. Order = build order in build-info.
VARIANTS = ("fp32", "pruned", "int8", "onnx", "onnx-int8", "lite-x86", "lite-arm", "lite-x86-quant-broken")
ONNX_TOOL_MODULES = ("onnx", "onnxruntime", "paddle2onnx", "onnx_graphsurgeon", "sympy", "polygraphy")


def _import_onnx_tools() -> dict[str, str]:
    """Versions of the ONNX toolchain, checked before paddle2onnx runs.

    paddle2onnx sets POLYGRAPHY_AUTOINSTALL_DEPS=1 and would pip-install what is missing
    (onnx_graphsurgeon, sympy) in the middle of a build: refuse instead."""
    import importlib
    import importlib.metadata

    versions = {}
    missing = []
    for module in ONNX_TOOL_MODULES:
        try:
            importlib.import_module(module)
        except ImportError:
            missing.append(module)
            continue
        dist = {"onnx_graphsurgeon": "onnx_graphsurgeon"}.get(module, module)
        try:
            versions[module] = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            versions[module] = "unknown"
    if missing:
        raise StepFailed("import", "paddle2onnx",
                         f"missing {', '.join(missing)} in {sys.executable}: install "
                         "paddle2onnx==2.1.0 onnxruntime==1.31.1 onnx_graphsurgeon sympy (pre-installed, "
                         "or paddle2onnx pip-installs them at first run)")
    return versions


def _relative_errors(reference: list[Any], outputs: list[Any]) -> dict[str, Any]:
    """How far `outputs` are from `reference` (same inputs), JSON-safe (non-finite -> None)."""
    import numpy as np

    ref = [np.asarray(r, dtype=np.float64).ravel() for r in reference]
    out = [np.asarray(o, dtype=np.float64).ravel() for o in outputs]
    finite = all(np.all(np.isfinite(o)) for o in out)
    shapes_match = all(r.shape == o.shape for r, o in zip(ref, out))
    result: dict[str, Any] = {"inputs": f"structured, seeds {CHECK_SEEDS[0]}-{CHECK_SEEDS[-1]}",
                              "finite": bool(finite), "shapes_match": bool(shapes_match)}
    spread = float(np.linalg.norm(ref[1] - ref[0]) / max(np.linalg.norm(ref[0]), 1e-30))
    result["fp32_spread"] = round(spread, 6)  # how much fp32 itself moves between two inputs
    if not (finite and shapes_match):
        result.update(relative_error=None, max_abs_error=None, top1_agreement=None)
        with np.errstate(all="ignore"):
            result["non_finite_values"] = int(sum(int(np.sum(~np.isfinite(o))) for o in out))
            finite_abs = [np.abs(o[np.isfinite(o)]) for o in out]
            result["max_abs_finite_output"] = _safe(max((float(a.max()) for a in finite_abs if a.size), default=0.0))
            result["max_abs_reference"] = _safe(max(float(np.max(np.abs(r))) for r in ref))
        return result
    with np.errstate(all="ignore"):
        rel = [float(np.linalg.norm(o - r) / max(np.linalg.norm(r), 1e-30)) for r, o in zip(ref, out)]
        abs_err = max(float(np.max(np.abs(o - r))) for r, o in zip(ref, out))
    result["relative_error"] = _safe(max(rel))
    result["max_abs_error"] = _safe(abs_err)
    result["top1_agreement"] = round(sum(int(np.argmax(r) == np.argmax(o)) for r, o in zip(ref, out)) / len(ref), 4)
    return result


def _safe(value: float) -> float | None:
    import math

    return float(f"{value:.6g}") if math.isfinite(value) else None


def _dir_size(path: str, names: tuple[str, ...] | None = None) -> int:
    return sum(os.path.getsize(os.path.join(path, n)) for n in sorted(os.listdir(path))
               if (names is None or n in names) and os.path.isfile(os.path.join(path, n)))


def run(args: argparse.Namespace, w: Worker) -> None:
    flag = os.environ.get("FLAGS_enable_pir_api")
    if flag not in ("0", "false", "False"):
        raise StepFailed(
            "start", "export worker",
            "FLAGS_enable_pir_api=0 must be set in the environment before paddle is imported "
            f"(found {flag!r}); run the worker through harness.zoo.build",
        )
    out = os.path.abspath(args.out)
    scratch = os.path.join(out, ".scratch")
    dirs = {name: os.path.join(out, name) for name in VARIANTS}
    fp32_dir, int8_dir = dirs["fp32"], dirs["int8"]

    w.begin("import", "paddle", "importing paddle")
    try:
        import paddle
        import numpy as np
    except ImportError as exc:
        raise StepFailed(
            "import", "paddle",
            f"{one_line(exc)} (the worker needs paddlepaddle and numpy in {sys.executable})",
        ) from exc
    from harness.agent.inputs import structured_input
    from harness.zoo import nets, prune

    if args.model not in nets.NETS:
        raise StepFailed("start", "export worker",
                         f"unknown model {args.model!r} (known: {', '.join(nets.NETS)})")
    shape = list(nets.input_shape(args.model))
    w.begin("import", "paddle2onnx")
    onnx_tools = _import_onnx_tools()

    w.begin("build-net", "paddle", f"building net (seed {args.seed}, input {shape})")
    net = nets.build_net(args.model, args.seed)
    check_inputs = [structured_input(shape, "float32", seed) for seed in CHECK_SEEDS]
    reference = prune.forward(net, check_inputs)
    variants: dict[str, dict[str, Any]] = {}
    paddle_versions = {"paddlepaddle": paddle.__version__, "numpy": np.__version__,
                       "python": platform.python_version()}

    w.begin("export-fp32", "paddle.jit.save", "exporting fp32")
    from paddle.static import InputSpec

    input_spec = [InputSpec(shape, "float32", "x")]
    paddle.jit.save(net, os.path.join(fp32_dir, "inference"), input_spec=input_spec)
    if not os.path.isfile(os.path.join(fp32_dir, MODEL_FILE)):
        produced = ", ".join(sorted(os.listdir(fp32_dir))) if os.path.isdir(fp32_dir) else "nothing"
        raise StepFailed("export-fp32", "paddle.jit.save",
                         f"no legacy {MODEL_FILE} written (got: {produced}); "
                         "FLAGS_enable_pir_api=0 did not take effect")
    variants["fp32"] = {
        "dir": "fp32", "format": "paddle", "baseline": None, "tool": "paddle.jit.save",
        "tool_versions": paddle_versions,
        "options": {"ir": "legacy (FLAGS_enable_pir_api=0)", "input_spec": {"name": "x", "shape": shape}},
    }

    w.begin("prune", "harness.zoo.prune", f"pruning {int(PRUNE_RATIO * 100)}% of filters by L1 norm")
    bn_batch = np.concatenate([structured_input([1] + shape[1:], "float32", nets.BN_SEED_OFFSET + args.seed + i)
                               for i in range(nets.BN_BATCH)])
    pruning = prune.prune_net(args.model, net, PRUNE_RATIO, calibration=bn_batch)
    pruned_outputs = prune.forward(net, check_inputs)

    w.begin("export-pruned", "paddle.jit.save", "exporting pruned")
    paddle.jit.save(net, os.path.join(dirs["pruned"], "inference"), input_spec=input_spec)
    if not os.path.isfile(os.path.join(dirs["pruned"], MODEL_FILE)):
        raise StepFailed("export-pruned", "paddle.jit.save", f"pruned/{MODEL_FILE} was not written")
    fp32_params = os.path.getsize(os.path.join(fp32_dir, PARAMS_FILE))
    pruned_params = os.path.getsize(os.path.join(dirs["pruned"], PARAMS_FILE))
    pruning.update(params_bytes=pruned_params, baseline_params_bytes=fp32_params,
                   kept_ratio_bytes=round(pruned_params / fp32_params, 4),
                   compensation_seeds=[nets.BN_SEED_OFFSET + args.seed,
                                       nets.BN_SEED_OFFSET + args.seed + nets.BN_BATCH - 1])
    variants["pruned"] = {
        "dir": "pruned", "format": "paddle", "baseline": "fp32",
        "tool": "harness.zoo.prune (dygraph, no paddleslim) + paddle.jit.save",
        "tool_versions": paddle_versions, "options": {"ir": "legacy (FLAGS_enable_pir_api=0)"},
        "pruning": pruning, "check": _relative_errors(reference, pruned_outputs),
    }
    del net

    w.begin("calibrate", "paddle static PTQ",
            f"calibrating int8 on {args.calibration} inputs (algo={ALGO})")
    paddle.enable_static()
    from paddle.static.quantization import PostTrainingQuantization

    calibration_seeds = [CALIBRATION_SEED_OFFSET + args.seed + i for i in range(args.calibration)]

    def data_loader():
        for seed in calibration_seeds:
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
    calibration_record = {
        "size": args.calibration,
        "seeds": [calibration_seeds[0], calibration_seeds[-1]],
        "inputs": "harness.agent.inputs.structured_input",
    }
    variants["int8"] = {
        "dir": "int8", "format": "paddle", "baseline": "fp32", "tool": "paddle static PTQ",
        "tool_versions": paddle_versions,
        "options": {"algo": ALGO, "onnx_format": ONNX_FORMAT, "quantizable_op_type": list(QUANTIZABLE_OPS),
                    "batch_size": 1},
        "calibration": calibration_record,
    }

    w.begin("export-onnx", "paddle2onnx", f"exporting onnx (paddle2onnx, opset {ONNX_OPSET})")
    import paddle2onnx

    from harness.zoo import ortquant

    onnx_path = os.path.join(dirs["onnx"], "model.onnx")
    os.makedirs(dirs["onnx"], exist_ok=True)
    paddle2onnx.export(os.path.join(fp32_dir, MODEL_FILE), os.path.join(fp32_dir, PARAMS_FILE),
                       save_file=onnx_path, opset_version=ONNX_OPSET, auto_upgrade_opset=True,
                       enable_onnx_checker=True, enable_optimize=True)
    if not os.path.isfile(onnx_path) or not os.path.getsize(onnx_path):
        raise StepFailed("export-onnx", "paddle2onnx",
                         "paddle2onnx wrote no model (it logs the conversion error and carries on); "
                         "see the build log")
    onnx_check = _relative_errors(reference, ortquant.run_onnx(onnx_path, check_inputs, "x"))
    _require_close("export-onnx", "paddle2onnx", "onnx/model.onnx", onnx_check)
    variants["onnx"] = {
        "dir": "onnx", "format": "onnx", "baseline": "fp32", "source": "fp32", "tool": "paddle2onnx",
        "tool_versions": {**onnx_tools, "paddlepaddle": paddle.__version__},
        "options": {"opset_version": ONNX_OPSET, "auto_upgrade_opset": True, "enable_onnx_checker": True,
                    "enable_optimize": True, "optimize_tool": "polygraphy"},
        "check": onnx_check,
    }

    w.begin("quantize-onnx", "onnxruntime quantize_static",
            f"quantizing onnx int8 (QDQ, per-channel) on {args.calibration} inputs")
    int8_onnx = os.path.join(dirs["onnx-int8"], "model.onnx")
    os.makedirs(dirs["onnx-int8"], exist_ok=True)
    options = ortquant.quantize_qdq(
        onnx_path, int8_onnx, ({"x": structured_input(shape, "float32", seed)} for seed in calibration_seeds),
        scratch=os.path.join(scratch, "ortquant"))
    variants["onnx-int8"] = {
        "dir": "onnx-int8", "format": "onnx", "baseline": "onnx", "source": "onnx",
        "tool": options.pop("tool"), "tool_versions": ortquant.tool_versions(), "options": options,
        "calibration": calibration_record,
        "check": _relative_errors(reference, ortquant.run_onnx(int8_onnx, check_inputs, "x")),
    }

    lite_python = args.lite_python
    for name, targets, quant, check, arches in (
            ("lite-x86", "x86", False, True, ["x86_64"]),
            ("lite-arm", "arm", False, False, ["aarch64", "armv7l"]),
            ("lite-x86-quant-broken", "x86", True, True, ["x86_64"])):
        w.begin(name, "paddle_lite_opt",
                f"paddle lite opt --valid_targets={targets}" + (" --quant_model=true --quant_type=QUANT_INT8"
                                                               " (broken on purpose)" if quant else ""))
        if not lite_python or not os.path.isfile(lite_python):
            raise StepFailed(name, "paddle_lite_opt",
                             f"no Paddle Lite interpreter at {lite_python or '(none given)'}: create a "
                             "Python 3.10 venv with paddlelite==2.13rc0 and numpy<2 (.venv-lite) or set "
                             "HARNESS_LITE_PYTHON")
        os.makedirs(dirs[name], exist_ok=True)
        os.makedirs(scratch, exist_ok=True)
        check_file = os.path.join(scratch, f"{name}.npy")
        cmd = [lite_python, "-m", "harness.zoo.lite_opt",
               "--model-file", os.path.join(fp32_dir, MODEL_FILE),
               "--param-file", os.path.join(fp32_dir, PARAMS_FILE),
               "--out", os.path.join(dirs[name], "model"), "--valid-targets", targets]
        if quant:
            cmd.append("--quant-int8")
        if check:
            cmd += ["--check", check_file, "--input-shape", ",".join(map(str, shape)),
                    "--seeds", ",".join(map(str, CHECK_SEEDS))]
        lines = run_tool(cmd, name, "paddle_lite_opt", timeout=600,
                         env=dict(os.environ, PYTHONPATH=os.environ.get("PYTHONPATH", "")),
                         hint_on_signal="opt crashes on x86 graphs with paddle.flatten: write it as "
                                        "reshape(x, [0, -1])")
        result = next((json.loads(line[len("[lite-result] "):]) for line in reversed(lines)
                       if line.startswith("[lite-result] ")), None)
        if result is None:
            raise StepFailed(name, "paddle_lite_opt", "the Lite helper printed no result; see the build log")
        entry: dict[str, Any] = {
            "dir": name, "format": "paddle-lite", "baseline": "fp32", "source": "fp32",
            "tool": "paddle_lite_opt (paddlelite.lite.Opt)", "tool_versions": result["versions"],
            "options": result["options"], "arch": targets, "arches": arches,
            "runnable_on": arches, "lite_python": lite_python,
            "header_bytes_normalised": result["header_bytes_normalised"],
        }
        if check:
            entry["check"] = _relative_errors(reference, list(np.load(check_file)))
        if quant:
            entry["expected"] = BROKEN_EXPECTED
            entry["size_ratio_vs_lite_x86"] = round(
                result["size"] / os.path.getsize(os.path.join(dirs["lite-x86"], "model.nb")), 4)
            rel = entry["check"]["relative_error"]
            entry["expected_confirmed"] = rel is None or rel > 0.5
        elif check:
            _require_close(name, "paddle_lite_opt", f"{name}/model.nb", entry["check"])
        variants[name] = entry

    w.begin("write-info", "export worker", "writing build-info.json")
    shutil.rmtree(scratch, ignore_errors=True)
    files = file_entries(Path(out), VARIANTS)  # every produced file (jit.save also writes inference.pdiparams.info)
    attach_variant_files(variants, files)
    duration = w.finish()
    write_build_info(Path(out), {
        "version": 2,
        "model": args.model,
        "kind": "demo",
        "input": {"name": "x", "shape": shape, "dtype": "float32"},
        "paddle_version": paddle.__version__,
        "python_version": platform.python_version(),
        "python": sys.executable,
        "seed": args.seed,
        "calibration": {
            "size": args.calibration,
            "seeds": [calibration_seeds[0], calibration_seeds[-1]],
            "algo": ALGO,
            "onnx_format": ONNX_FORMAT,
            "quantizable_op_type": list(QUANTIZABLE_OPS),
        },
        "variants": variants,
        "files": files,
        "build_key": args.key,
        "built_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "duration_s": duration,
        "step_durations_s": dict(w.durations),
    })
    fp32 = files[f"fp32/{PARAMS_FILE}"]["size"]
    int8 = files[f"int8/{PARAMS_FILE}"]["size"]
    broken = variants["lite-x86-quant-broken"]
    broken_check = broken["check"]
    broken_text = (f"relative error {broken_check['relative_error']}" if broken_check["finite"] else
                   f"{broken_check['non_finite_values']} non-finite outputs, finite ones up to "
                   f"{broken_check['max_abs_finite_output']:.3g} vs fp32 {broken_check['max_abs_reference']:.3g}")
    w.say(f"done in {duration:.1f} s: params fp32 {fp32 / 1e6:.2f} MB, int8 {int8 / 1e6:.2f} MB, "
          f"pruned {pruned_params / 1e6:.2f} MB; onnx {variants['onnx']['size'] / 1e6:.2f} MB, "
          f"onnx-int8 {variants['onnx-int8']['size'] / 1e6:.2f} MB; lite-x86 "
          f"{variants['lite-x86']['size'] / 1e6:.2f} MB, quant-broken {broken['size'] / 1e6:.2f} MB "
          f"({broken_text})")


def _require_close(step: str, tool: str, what: str, check: dict[str, Any]) -> None:
    rel = check.get("relative_error")
    if rel is None or rel > FP32_TOLERANCE:
        shown = "non-finite or mis-shaped outputs" if rel is None else f"relative error {rel:.3g}"
        raise StepFailed(step, tool, f"{what} does not reproduce the fp32 net: {shown} on structured "
                                     f"inputs (tolerance {FP32_TOLERANCE:g}); the conversion is wrong")


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
