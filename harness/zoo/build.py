"""Build the demo model zoo (host side): fp32 legacy Paddle Inference models + int8 static PTQ.

`build_zoo(zoo_dir)` produces, for each demo model,

    zoo_dir/<model>/fp32/inference.pdmodel, inference.pdiparams (+ .pdiparams.info)
    zoo_dir/<model>/int8/inference.pdmodel, inference.pdiparams
    zoo_dir/<model>/build-info.json
    zoo_dir/<model>.build.log          the worker's full output of the latest build attempt

Each model is built by `harness.zoo.export_worker` in a fresh subprocess: it must start with
`FLAGS_enable_pir_api=0` (legacy .pdmodel export), which only works if set before paddle is
imported, and a crash in paddle's C++ code then cannot take the caller down with it. This
module itself does not import paddle.

Caching: a build key is the sha256 over the sources that decide the result (nets.py,
export_worker.py, harness/agent/inputs.py), the model name, calibration size, seed and the
installed paddlepaddle version. A model whose build-info.json has the same key and whose
listed files all exist with their recorded sha256 is skipped; anything else is rebuilt.

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
DEFAULT_SEED = 0
BUILD_INFO = "build-info.json"
KEY_VERSION = "harness-zoo-build/1"

_PACKAGE_ROOT = Path(__file__).resolve().parents[1]  # .../harness
_IMPORT_ROOT = _PACKAGE_ROOT.parent  # the directory that holds the `harness` package
#: The sources whose bytes go into the build key.
KEY_SOURCES: tuple[Path, ...] = (
    _PACKAGE_ROOT / "zoo" / "nets.py",
    _PACKAGE_ROOT / "zoo" / "export_worker.py",
    _PACKAGE_ROOT / "agent" / "inputs.py",
)
#: Files every complete build has (relative to zoo_dir/<model>).
REQUIRED_FILES = (
    "fp32/inference.pdmodel",
    "fp32/inference.pdiparams",
    "int8/inference.pdmodel",
    "int8/inference.pdiparams",
)


@dataclass(frozen=True)
class BuildRecord:
    model: str
    directory: Path
    skipped: bool
    info: Mapping[str, Any]


def paddle_version() -> str:
    """Installed paddlepaddle version as the package metadata reports it (no paddle import)."""
    try:
        return importlib.metadata.version("paddlepaddle")
    except importlib.metadata.PackageNotFoundError:
        return "not-installed"


def build_key(model: str, calibration: int, seed: int = DEFAULT_SEED,
              paddle: str | None = None) -> str:
    digest = hashlib.sha256()
    digest.update(KEY_VERSION.encode() + b"\0")
    for source in KEY_SOURCES:
        data = source.read_bytes()
        digest.update(f"{source.parent.name}/{source.name}\0{len(data)}\0".encode())
        digest.update(data)
    params = {"model": model, "calibration": int(calibration), "seed": int(seed),
              "paddlepaddle": paddle if paddle is not None else paddle_version()}
    digest.update(json.dumps(params, sort_keys=True).encode())
    return digest.hexdigest()


def build_zoo(zoo_dir: Path, models: Sequence[str] | None = None, *, force: bool = False,
              calibration: int = 32, python: str = sys.executable,
              progress: Callable[[str], None] = print) -> list[BuildRecord]:
    """Build (or find up to date) each of `models` (default: all DEMO_MODELS) under `zoo_dir`.

    Raises HarnessError with a one-line message on an unknown model name or a failed build;
    models before the failing one stay built, the failing one keeps its previous good build.
    """
    names = list(DEMO_MODELS if models is None else models)
    if isinstance(models, str):
        names = [models]
    unknown = [name for name in names if name not in DEMO_MODELS]
    if unknown:
        raise HarnessError(f"zoo: unknown model {unknown[0]!r}; demo models are: "
                           f"{', '.join(DEMO_MODELS)}")
    if not names:
        raise HarnessError(f"zoo: no model to build; demo models are: {', '.join(DEMO_MODELS)}")
    if int(calibration) < 1:
        raise HarnessError(f"zoo: calibration size must be at least 1 (got {calibration})")
    zoo_dir = Path(zoo_dir)
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
    if not isinstance(files, dict) or any(name not in files for name in REQUIRED_FILES):
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
    cmd = [python, "-m", "harness.zoo.export_worker", "--model", model, "--out", str(out),
           "--calibration", str(calibration), "--seed", str(DEFAULT_SEED), "--key", key]
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
