"""How each variant of a demo model is made, one function per tool, in the demo build worker.

    fp32                          the net trained on the digits (train.py), paddle.jit.save (legacy IR)
    pruned                        L1 filter pruning of the trained net, then fine-tuned on the digits
    distilled                     (mobilenet_v3_small) a TinyCNN student distilled from the trained net
    int8                          paddle static PTQ of fp32, calibrated on real calibration images
    onnx, onnx-int8               paddle2onnx of fp32, ORT quantize_static of that (ortquant.py)
    lite-x86, lite-arm,           Paddle Lite opt of fp32, in the Lite interpreter (lite_opt.py)
    lite-x86-quant-broken

Each function records its variant in `DemoBuild.variants` (tool, tool versions, options,
baseline, and for converted ones the `check` against the fp32 net). Imported by
export_worker.py only after paddle and numpy imported, so a missing one is that step's failure.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import json
import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import paddle

from harness.zoo import digits, nets, ortquant, prune, train
from harness.zoo.output_checks import CHECK_SEEDS, relative_errors, require_close
from harness.zoo.steps import StepFailed, Worker, run_tool

QUANTIZABLE_OPS = ("conv2d", "depthwise_conv2d", "mul", "matmul", "matmul_v2")
#: Static PTQ algorithm per model (paddle's PostTrainingQuantization, which paddleslim's quant_post_static
#: wraps). Seed 000's algo='KL' was measured here first and lost on both counts: top-1 on the test split
#: tiny_cnn 331/360 (KL, 18 s per calibration) and mobilenet_v3_small 318/360 (KL, 118 s) against fp32's
#: 351, while "avg" (the mean of the per-batch abs-max) got mobilenet 349/360 in 4 s.
ALGOS = {"tiny_cnn": "avg", "mobilenet_v3_small": "avg"}
#: Training from scratch, fine-tuning after pruning, distillation (epochs, learning rate).
SCHEDULES: dict[str, train.Schedule] = {
    "tiny_cnn": train.Schedule(epochs=8, learning_rate=5e-3),
    "mobilenet_v3_small": train.Schedule(epochs=3, learning_rate=3e-3),
}
FINE_TUNE = {"tiny_cnn": train.Schedule(epochs=2, learning_rate=2e-3),
             "mobilenet_v3_small": train.Schedule(epochs=2, learning_rate=2e-3)}  # 1 epoch: -6.1 points, 2: -1.7
DISTILL = train.Schedule(epochs=5, learning_rate=5e-3, temperature=2.0, alpha=0.5)
ONNX_FORMAT = True
MODEL_FILE = "inference.pdmodel"
PARAMS_FILE = "inference.pdiparams"
ONNX_OPSET = 13
PRUNE_RATIO = 0.3
BROKEN_EXPECTED = "wrong outputs (opt QUANT_INT8 on x86)"
ONNX_TOOL_MODULES = ("onnx", "onnxruntime", "paddle2onnx", "onnx_graphsurgeon", "sympy", "polygraphy")
LEGACY_IR = "legacy (FLAGS_enable_pir_api=0)"
#: Paddle Lite conversions: variant, --valid_targets, QUANT_INT8, checked against fp32, the arches it runs on.
LITE_CONVERSIONS: tuple[tuple[str, str, bool, bool, list[str]], ...] = (
    ("lite-x86", "x86", False, True, ["x86_64"]),
    ("lite-arm", "arm", False, False, ["aarch64", "armv7l"]),
    ("lite-x86-quant-broken", "x86", True, True, ["x86_64"]),
)


@dataclass
class DemoBuild:
    """One demo model's build in progress: where its variants go, and the dygraph fp32 net's
    outputs on the check inputs that converted variants are compared with."""

    model: str
    seed: int
    calibration: int
    out: str
    shape: list[int]
    check_inputs: list[Any]
    reference: list[Any]
    paddle_versions: dict[str, str]
    data: digits.Digits
    x_train: Any  # the train split as model inputs
    variants: dict[str, dict[str, Any]] = field(default_factory=dict)

    def dir(self, variant: str) -> str:
        return os.path.join(self.out, variant)

    @property
    def scratch(self) -> str:
        """Temporary files of the build (calibration data, check outputs); removed before build-info."""
        return os.path.join(self.out, ".scratch")

    @property
    def calibration_count(self) -> int:
        return min(self.calibration, len(self.data.calibration.labels))

    def calibration_inputs(self) -> Iterator[Any]:
        """The first `calibration` images of the calibration split, one model input each."""
        split = self.data.calibration
        for index in range(self.calibration_count):
            yield train.batches_of(split.images[index:index + 1], digits.MAX_VALUE, self.shape)

    def calibration_record(self) -> dict[str, Any]:
        return {"size": self.calibration_count, "requested": self.calibration,
                "inputs": "digits calibration split (real images), its first `size`",
                "split": "calibration", "split_size": int(len(self.data.calibration.labels))}


def import_onnx_tools() -> dict[str, str]:
    """Versions of the ONNX toolchain, checked before paddle2onnx runs.

    paddle2onnx sets POLYGRAPHY_AUTOINSTALL_DEPS=1 and would pip-install what is missing
    (onnx_graphsurgeon, sympy) in the middle of a build: refuse instead."""
    versions = {}
    missing = []
    for module in ONNX_TOOL_MODULES:
        try:
            importlib.import_module(module)
        except ImportError:
            missing.append(module)
            continue
        try:
            versions[module] = importlib.metadata.version(module)
        except importlib.metadata.PackageNotFoundError:
            versions[module] = "unknown"
    if missing:
        raise StepFailed("import", "paddle2onnx",
                         f"missing {', '.join(missing)} in {sys.executable}: install "
                         "paddle2onnx==2.1.0 onnxruntime==1.31.1 onnx_graphsurgeon sympy (pre-installed, "
                         "or paddle2onnx pip-installs them at first run)")
    return versions


def _input_spec(build: DemoBuild) -> list[Any]:
    from paddle.static import InputSpec

    return [InputSpec(build.shape, "float32", "x")]


def train_fp32(w: Worker, build: DemoBuild, net: Any) -> dict[str, Any]:
    """Train `net` in place on the train split; the training record for build-info."""
    schedule = SCHEDULES[build.model]
    w.begin("train", "paddle (dygraph, CPU)",
            f"training on {len(build.data.train.labels)} digits ({schedule.epochs} epochs, input {build.shape})")
    return train.train(net, build.x_train, build.data.train.labels, schedule, build.seed, w.say, "train")


def export_fp32(w: Worker, build: DemoBuild, net: Any, training: dict[str, Any]) -> None:
    w.begin("export-fp32", "paddle.jit.save", "exporting fp32")
    fp32_dir = build.dir("fp32")
    paddle.jit.save(net, os.path.join(fp32_dir, "inference"), input_spec=_input_spec(build))
    if not os.path.isfile(os.path.join(fp32_dir, MODEL_FILE)):
        produced = ", ".join(sorted(os.listdir(fp32_dir))) if os.path.isdir(fp32_dir) else "nothing"
        raise StepFailed("export-fp32", "paddle.jit.save",
                         f"no legacy {MODEL_FILE} written (got: {produced}); "
                         "FLAGS_enable_pir_api=0 did not take effect")
    build.variants["fp32"] = {
        "dir": "fp32", "format": "paddle", "baseline": None, "kind": "fp32",
        "tool": "paddle (dygraph training) + paddle.jit.save",
        "tool_versions": build.paddle_versions, "training": training,
        "options": {"ir": LEGACY_IR, "input_spec": {"name": "x", "shape": build.shape}},
    }


def export_distilled(w: Worker, build: DemoBuild, teacher: Any) -> None:
    """Distil the trained net (`teacher`) into the model's smaller student and export it."""
    if build.model not in nets.STUDENTS:
        return
    w.begin("distill", "paddle (dygraph, CPU)", f"distilling into {nets.STUDENTS[build.model][1]}")
    student = nets.build_student(build.model, build.seed)
    record = train.train(student, build.x_train, build.data.train.labels, DISTILL, build.seed, w.say,
                         "distill", teacher=teacher)
    w.begin("export-distilled", "paddle.jit.save", "exporting distilled")
    paddle.jit.save(student, os.path.join(build.dir("distilled"), "inference"), input_spec=_input_spec(build))
    build.variants["distilled"] = {
        "dir": "distilled", "format": "paddle", "baseline": "fp32", "kind": "distilled", "source": "fp32",
        "tool": "harness.zoo.train (knowledge distillation, dygraph) + paddle.jit.save",
        "tool_versions": build.paddle_versions, "options": {"ir": LEGACY_IR},
        "distillation": {"teacher": "fp32", "student": nets.STUDENTS[build.model][1],
                         "student_params": prune._count_params(student), "teacher_params": prune._count_params(teacher),
                         **record},
    }


def export_pruned(w: Worker, build: DemoBuild, net: Any) -> None:
    """Prune `net` in place (it is not used afterwards) and export it."""
    w.begin("prune", "harness.zoo.prune", f"pruning {int(PRUNE_RATIO * 100)}% of filters by L1 norm")
    bn_batch = build.x_train[:nets.BN_BATCH * 4]
    pruning = prune.prune_net(build.model, net, PRUNE_RATIO, calibration=bn_batch)
    schedule = FINE_TUNE[build.model]
    w.begin("fine-tune", "paddle (dygraph, CPU)", f"fine-tuning the pruned net ({schedule.epochs} epochs)")
    pruning["fine_tune"] = train.train(net, build.x_train, build.data.train.labels, schedule, build.seed + 1,
                                       w.say, "fine-tune")
    pruned_outputs = prune.forward(net, build.check_inputs)

    w.begin("export-pruned", "paddle.jit.save", "exporting pruned")
    pruned_dir = build.dir("pruned")
    paddle.jit.save(net, os.path.join(pruned_dir, "inference"), input_spec=_input_spec(build))
    if not os.path.isfile(os.path.join(pruned_dir, MODEL_FILE)):
        raise StepFailed("export-pruned", "paddle.jit.save", f"pruned/{MODEL_FILE} was not written")
    fp32_params = os.path.getsize(os.path.join(build.dir("fp32"), PARAMS_FILE))
    pruned_params = os.path.getsize(os.path.join(pruned_dir, PARAMS_FILE))
    pruning.update(params_bytes=pruned_params, baseline_params_bytes=fp32_params,
                   kept_ratio_bytes=round(pruned_params / fp32_params, 4),
                   compensation_inputs_from="the first train-split images")
    build.variants["pruned"] = {
        "dir": "pruned", "format": "paddle", "baseline": "fp32", "kind": "pruned",
        "tool": "harness.zoo.prune (L1 filter pruning, dygraph, no paddleslim) + fine-tune + paddle.jit.save",
        "tool_versions": build.paddle_versions, "options": {"ir": LEGACY_IR},
        "pruning": pruning, "check": relative_errors(build.reference, pruned_outputs),
    }


def fine_tune_qat(w: Worker, build: DemoBuild, trained: Any) -> dict[str, Any]:
    """QAT fine-tune of the trained net (qat.py), exported to the scratch dir; the record.

    Dygraph work only: it runs before any static PTQ, since paddle's switch to static mode and
    back restarts parameter names, and a later optimizer then mixes two parameters' moments."""
    from harness.zoo import qat

    w.begin("qat", "paddle.quantization.QAT", f"quantization-aware fine-tuning ({qat.SCHEDULE.epochs} epoch)")
    tuned, record = qat.fine_tune(build.model, trained, build.x_train, build.data.train.labels, build.seed, w.say)
    paddle.jit.save(tuned, os.path.join(build.scratch, "qat-fp32", "inference"), input_spec=_input_spec(build))
    return record


def quantize_qat(w: Worker, build: DemoBuild, record: dict[str, Any]) -> None:
    """The QAT-fine-tuned weights (fine_tune_qat) into int8, the same way as the int8 variant."""
    quantize_int8(w, build, source=os.path.join(build.scratch, "qat-fp32"), name="qat")
    entry = build.variants["qat"]
    entry.update(kind="int8-qat", qat=record, tool="paddle.quantization.QAT (fake-quant fine-tune) + paddle static "
                 "PTQ of the fine-tuned weights (QAT.convert fails in paddle 3.3.1; see harness/zoo/qat.py)")


def quantize_int8(w: Worker, build: DemoBuild, source: str | None = None, name: str = "int8") -> None:
    """Paddle static post-training quantization of the exported fp32 model (or the one in `source`)."""
    w.begin("calibrate" if name == "int8" else f"calibrate-{name}", "paddle static PTQ",
            f"calibrating {name} on {build.calibration_count} calibration images (algo={ALGOS[build.model]})")
    paddle.enable_static()
    from paddle.static.quantization import PostTrainingQuantization

    def data_loader() -> Iterator[dict[str, Any]]:
        for x in build.calibration_inputs():
            yield {"x": x}

    executor = paddle.static.Executor(paddle.CPUPlace())
    ptq = PostTrainingQuantization(
        executor=executor,
        model_dir=source or build.dir("fp32"),
        model_filename=MODEL_FILE,
        params_filename=PARAMS_FILE,
        data_loader=data_loader,
        batch_size=1,
        batch_nums=build.calibration_count,
        algo=ALGOS[build.model],
        onnx_format=ONNX_FORMAT,
        quantizable_op_type=list(QUANTIZABLE_OPS),
    )
    ptq.quantize()

    w.begin(f"save-{name}", "paddle static PTQ", f"saving {name}")
    int8_dir = build.dir(name)
    ptq.save_quantized_model(int8_dir, model_filename=MODEL_FILE, params_filename=PARAMS_FILE)
    for file in (MODEL_FILE, PARAMS_FILE):
        if not os.path.isfile(os.path.join(int8_dir, file)):
            raise StepFailed(f"save-{name}", "paddle static PTQ", f"{name}/{file} was not written")
    build.variants[name] = {
        "dir": name, "format": "paddle", "baseline": "fp32", "kind": "int8-ptq",
        "tool": "paddle static PTQ (paddle.static.quantization.PostTrainingQuantization; paddleslim's "
                "quant_post_static wraps the same class, and breaks under numpy 2)",
        "tool_versions": build.paddle_versions,
        "options": {"algo": ALGOS[build.model], "onnx_format": ONNX_FORMAT,
                    "quantizable_op_type": list(QUANTIZABLE_OPS), "batch_size": 1},
        "calibration": build.calibration_record(),
    }


def export_onnx(w: Worker, build: DemoBuild, onnx_tools: dict[str, str]) -> None:
    """paddle2onnx of the fp32 model, then ORT static int8 quantization of that."""
    w.begin("export-onnx", "paddle2onnx", f"exporting onnx (paddle2onnx, opset {ONNX_OPSET})")
    import paddle2onnx

    fp32_dir = build.dir("fp32")
    onnx_path = os.path.join(build.dir("onnx"), "model.onnx")
    os.makedirs(build.dir("onnx"), exist_ok=True)
    paddle2onnx.export(os.path.join(fp32_dir, MODEL_FILE), os.path.join(fp32_dir, PARAMS_FILE),
                       save_file=onnx_path, opset_version=ONNX_OPSET, auto_upgrade_opset=True,
                       enable_onnx_checker=True, enable_optimize=True)
    if not os.path.isfile(onnx_path) or not os.path.getsize(onnx_path):
        raise StepFailed("export-onnx", "paddle2onnx",
                         "paddle2onnx wrote no model (it logs the conversion error and carries on); "
                         "see the build log")
    onnx_check = relative_errors(build.reference, ortquant.run_onnx(onnx_path, build.check_inputs, "x"))
    require_close("export-onnx", "paddle2onnx", "onnx/model.onnx", onnx_check)
    build.variants["onnx"] = {
        "dir": "onnx", "format": "onnx", "baseline": "fp32", "source": "fp32", "tool": "paddle2onnx",
        "tool_versions": {**onnx_tools, "paddlepaddle": paddle.__version__},
        "options": {"opset_version": ONNX_OPSET, "auto_upgrade_opset": True, "enable_onnx_checker": True,
                    "enable_optimize": True, "optimize_tool": "polygraphy"},
        "check": onnx_check,
    }

    w.begin("quantize-onnx", "onnxruntime quantize_static",
            f"quantizing onnx int8 (QDQ, per-channel) on {build.calibration_count} calibration images")
    int8_onnx = os.path.join(build.dir("onnx-int8"), "model.onnx")
    os.makedirs(build.dir("onnx-int8"), exist_ok=True)
    options = ortquant.quantize_qdq(onnx_path, int8_onnx, ({"x": x} for x in build.calibration_inputs()),
                                    scratch=os.path.join(build.scratch, "ortquant"))
    build.variants["onnx-int8"] = {
        "dir": "onnx-int8", "format": "onnx", "baseline": "onnx", "source": "onnx", "kind": "int8-ptq",
        "tool": options.pop("tool"), "tool_versions": ortquant.tool_versions(), "options": options,
        "calibration": build.calibration_record(),
        "check": relative_errors(build.reference, ortquant.run_onnx(int8_onnx, build.check_inputs, "x")),
    }


def convert_lite(w: Worker, build: DemoBuild, lite_python: str) -> None:
    """Paddle Lite opt of the fp32 model for each of LITE_CONVERSIONS, one process each, in `lite_python`."""
    fp32_dir = build.dir("fp32")
    for name, targets, quant, check, arches in LITE_CONVERSIONS:
        w.begin(name, "paddle_lite_opt",
                f"paddle lite opt --valid_targets={targets}" + (" --quant_model=true --quant_type=QUANT_INT8"
                                                               " (broken on purpose)" if quant else ""))
        if not lite_python or not os.path.isfile(lite_python):
            raise StepFailed(name, "paddle_lite_opt",
                             f"no Paddle Lite interpreter at {lite_python or '(none given)'}: create a "
                             "Python 3.10 venv with paddlelite==2.13rc0 and numpy<2 (.venv-lite) or set "
                             "HARNESS_LITE_PYTHON")
        os.makedirs(build.dir(name), exist_ok=True)
        os.makedirs(build.scratch, exist_ok=True)
        check_file = os.path.join(build.scratch, f"{name}.npy")
        cmd = [lite_python, "-m", "harness.zoo.lite_opt",
               "--model-file", os.path.join(fp32_dir, MODEL_FILE),
               "--param-file", os.path.join(fp32_dir, PARAMS_FILE),
               "--out", os.path.join(build.dir(name), "model"), "--valid-targets", targets]
        if quant:
            cmd.append("--quant-int8")
        if check:
            cmd += ["--check", check_file, "--input-shape", ",".join(map(str, build.shape)),
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
            entry["check"] = relative_errors(build.reference, list(np.load(check_file)))
        if quant:
            entry["expected"] = BROKEN_EXPECTED
            entry["size_ratio_vs_lite_x86"] = round(
                result["size"] / os.path.getsize(os.path.join(build.dir("lite-x86"), "model.nb")), 4)
            rel = entry["check"]["relative_error"]
            entry["expected_confirmed"] = rel is None or rel > 0.5
        elif check:
            require_close(name, "paddle_lite_opt", f"{name}/model.nb", entry["check"])
        build.variants[name] = entry


def measure_accuracy(w: Worker, build: DemoBuild, lite_python: str) -> None:
    """Build-time top-1 of every runnable variant on the test split (variant_accuracy: the agent's job)."""
    from harness.zoo import variant_accuracy

    image_set = os.path.join(build.out, digits.DATA_DIR, digits.TEST_FILE)
    for name, entry in build.variants.items():
        where = build.dir(name)
        if entry["format"] == "paddle":
            runtime, python = "paddle-inference", sys.executable
            files = {"model": os.path.join(where, MODEL_FILE), "params": os.path.join(where, PARAMS_FILE)}
        elif entry["format"] == "onnx":
            runtime, python, files = "onnxruntime", sys.executable, {"model": os.path.join(where, "model.onnx")}
        else:
            runtime, python, files = "paddle-lite", lite_python, {"model": os.path.join(where, "model.nb")}
        if "x86_64" not in entry.get("runnable_on", ["x86_64"]):
            entry["task_accuracy"] = {"measured": False, "reason": f"built for {entry.get('arch')}: not runnable "
                                                                   "on this x86_64 build machine"}
            continue
        options = dict(variant_accuracy.RUNTIME_OPTIONS[runtime])
        if name in ("int8", "qat"):
            options["precision"] = "int8"
        w.begin(f"accuracy-{name}", "harness.agent accuracy job", f"top-1 of {name} on the test split ({runtime})")
        entry["task_accuracy"] = variant_accuracy.measure(python, runtime, files, build.shape, image_set, options,
                                                          step=f"accuracy-{name}")
        w.say(f"{name}: {entry['task_accuracy']['correct']}/{entry['task_accuracy']['count']} correct")
