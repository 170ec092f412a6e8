"""The step protocol every zoo build worker speaks to `harness.zoo.build` (stdlib only).

A worker writes on stderr (its stdout is merged into it by the parent):
  [zoo] <model>: <human progress line>         shown to the user
  [zoo-step] {"step": ..., "tool": ...}        the step now running (parsed, not shown)
  [zoo-error] {"step", "tool", "error"}        one-line failure summary, then the traceback
and exits 0 on success, 1 on a failure it could describe, anything else on a crash. The
parent turns the last step/tool and error into one HarnessError line.

Every worker is given its output directory and the build key to record (`--out`, `--key`:
the host computed the key and checks it after the build, so a worker never computes one).
"""

from __future__ import annotations

import argparse
import json
import signal
import subprocess
import sys
import time
import traceback
from collections.abc import Callable, Sequence


class StepFailed(Exception):
    """A failure the worker can describe: the step it happened in, the tool, one line of why."""

    def __init__(self, step: str, tool: str, error: str) -> None:
        super().__init__(error)
        self.step = step
        self.tool = tool
        self.error = error


class Worker:
    """One worker's progress: the step now running, and how long each finished step took."""

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


def add_build_arguments(parser: argparse.ArgumentParser, *, calibrated: bool) -> None:
    """The arguments every build worker takes: --out and the required --key, and for a
    build that calibrates on generated inputs --calibration and --seed."""
    parser.add_argument("--out", required=True, help="the directory to build into")
    parser.add_argument("--key", required=True, help="the build key to record (computed by harness.zoo.build)")
    if calibrated:
        parser.add_argument("--calibration", type=int, default=32)
        parser.add_argument("--seed", type=int, default=0)


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
