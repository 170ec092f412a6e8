"""Run one model's build worker in a fresh interpreter, and turn its failure into one line.

The worker (`harness.zoo.export_worker`, `harness.zoo.ppocr build` or `harness.zoo.mediapipe
build`) runs with `FLAGS_enable_pir_api=0` (legacy .pdmodel export; only works if set before
paddle is imported), with the harness importable, in its output directory. A crash in
paddle's C++ code then cannot take the caller down with it. Its whole output goes to the
build log; its `[zoo]` lines are shown as progress, its `[zoo-step]` and `[zoo-error]` lines
(steps.py) name the step, tool and error of a failure, which becomes one HarnessError line.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from harness.errors import HarnessError
from harness.zoo.catalogue import DEFAULT_SEED, MEDIAPIPE_MODEL, PPOCR_MODEL
from harness.zoo.toolchain import lite_python

_IMPORT_ROOT = Path(__file__).resolve().parents[2]  # the directory that holds the `harness` package
#: Output lines kept to find the error in when the worker did not describe its failure.
_TAIL_LINES = 200

_NOISE = re.compile(r"^(\s|Traceback|-{3,}|={3,}|\[Hint|C\+\+ Traceback|Error Message Summary"
                    r"|.*warnings\.warn\(|.*\|[=> ]*\|)")
_ERRORISH = re.compile(r"(Error|Exception|error:|Aborted|Segmentation fault|Killed|FATAL|Fatal"
                       r"|No module named)")


def worker_command(model: str, out: Path, key: str, calibration: int, python: str) -> list[str]:
    """The command line that builds `model` into `out`, recording build key `key`."""
    if model == MEDIAPIPE_MODEL:
        return [python, "-m", "harness.zoo.mediapipe", "build", "--out", str(out), "--key", key]
    if model == PPOCR_MODEL:
        return [python, "-m", "harness.zoo.ppocr", "build", "--out", str(out),
                "--calibration", str(calibration), "--seed", str(DEFAULT_SEED), "--key", key]
    return [python, "-m", "harness.zoo.export_worker", "--model", model, "--out", str(out),
            "--calibration", str(calibration), "--seed", str(DEFAULT_SEED), "--key", key,
            "--lite-python", lite_python()]


def run_worker(model: str, out: Path, log_path: Path, key: str, calibration: int, python: str,
               progress: Callable[[str], None]) -> None:
    """Build `model` into `out` with `python`; the worker's output goes to `log_path`.

    Raises HarnessError "zoo: <model>: <tool> failed at step '<step>': <error>; see <log>"."""
    if os.sep in python and not os.path.isabs(python):
        python = os.path.abspath(python)  # the worker runs with cwd=out
    cmd = worker_command(model, out, key, calibration, python)
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
                    del lines[:-_TAIL_LINES]
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
