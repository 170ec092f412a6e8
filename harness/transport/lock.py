"""The host side of the device lock: one orchestrator at a time per device.

`DeviceLock` starts the agent's lock helper (``python -m <agent package>.lock``, see
harness/agent/lock.py) through `transport.start`, so the same code locks a device over SSH
and the local machine. The helper holds an `flock` on ``<workdir>/device.lock`` for as long
as its stdin stays open; leaving the context closes stdin (and kills the helper if it does
not exit). If this orchestrator dies, its connection (or pipe) closes, the helper reads EOF
and exits, and the kernel releases the lock: a killed run never leaves a device locked.

    with DeviceLock(transport, target.python, client.agent_dir(), run_id=run, wait_s=600,
                    on_wait=print):
        ... run jobs ...
"""

from __future__ import annotations

import json
import os
import posixpath
import socket
import time
from collections.abc import Callable
from typing import Any

from harness.errors import TransportError
from harness.transport.base import RemoteProcess, Transport, lines_until

LOCK_FILE = "device.lock"
DEFAULT_PACKAGE = "harness_agent"
START_SLACK_S = 60.0  # time allowed for the helper to start and report, beyond wait_s
RELEASE_WAIT_S = 5.0


def describe_holder(holder: Any) -> str:
    """"<host> pid <pid> run <run> since <time>" from a lock info file's contents."""
    if not isinstance(holder, dict) or not holder:
        return "another holder (its lock info is not written yet or unreadable)"
    parts = [str(holder.get("host", "an unknown host"))]
    if holder.get("pid") is not None:
        parts.append(f"pid {holder['pid']}")
    if holder.get("run") is not None:
        parts.append(f"run {holder['run']}")
    if holder.get("since") is not None:
        parts.append(f"since {holder['since']}")
    return " ".join(parts)


class DeviceLock:
    """Exclusive use of one device for the duration of a `with` block."""

    def __init__(self, transport: Transport, python: str, agent_dir: str, *, run_id: str, wait_s: float,
                 on_wait: Callable[[str], None] | None = None, package: str = DEFAULT_PACKAGE) -> None:
        self.transport = transport
        self.python = python
        self.agent_dir = agent_dir
        self.run_id = run_id
        self.wait_s = float(wait_s)
        self.on_wait = on_wait
        self.package = package
        self.path = posixpath.join(transport.workdir, LOCK_FILE)
        self.info = {"host": socket.gethostname(), "pid": os.getpid(), "run": run_id}
        self.waited_s = 0.0
        self._process: RemoteProcess | None = None

    @property
    def held(self) -> bool:
        return self._process is not None

    def acquire(self) -> DeviceLock:
        if self._process is not None:
            raise TransportError(f"{self.transport.target_name}: the device lock is already held by this DeviceLock")
        target = self.transport.target_name
        argv = [self.python, "-m", f"{self.package}.lock", self.path,
                json.dumps(self.info, sort_keys=True), f"{self.wait_s:g}"]
        env = {"PYTHONPATH": self.agent_dir, "PYTHONDONTWRITEBYTECODE": "1", "PYTHONUNBUFFERED": "1"}
        process = self.transport.start(argv, cwd=self.agent_dir, env=env)
        started = time.monotonic()
        deadline = started + self.wait_s + START_SLACK_S
        last_holder: Any = object()
        holder: Any = None
        try:
            for line in lines_until(process, deadline):
                try:
                    event = json.loads(line.decode("utf-8"))
                except ValueError:
                    raise self._failed(process, f"unexpected output from the lock helper: {line[:80]!r}") from None
                kind = event.get("event") if isinstance(event, dict) else None
                if kind == "locked":
                    self._process = process
                    self.waited_s = time.monotonic() - started
                    return self
                if kind == "waiting":
                    holder = event.get("holder")
                    if holder != last_holder and self.on_wait is not None:
                        self.on_wait(f"{target}: waiting for the device lock held by {describe_holder(holder)}")
                    last_holder = holder
                elif kind == "timeout":
                    holder = event.get("holder", holder)
                    process.wait(timeout=RELEASE_WAIT_S)
                    raise TransportError(
                        f"{target}: device busy: lock held by {describe_holder(holder)}; gave up after "
                        f"{self.wait_s:g}s (raise the lock wait, or check that run is still alive)")
                elif kind == "error":
                    raise self._failed(process, str(event.get("message", "")))
                else:
                    raise self._failed(process, f"unexpected lock helper event: {line[:80]!r}")
            raise self._failed(process, "the lock helper exited without taking the lock")
        except TimeoutError:
            process.kill()
            raise TransportError(f"{target}: device busy: no answer from the lock helper on {self.path} within "
                                 f"{self.wait_s + START_SLACK_S:g}s (last holder: {describe_holder(holder)})") from None
        except BaseException:
            process.kill()
            raise

    def still_held(self) -> bool:
        """False once the lock helper has ended: released, or lost with the connection (the
        device may then be in use by another run; check between jobs)."""
        if self._process is None:
            return False
        try:
            self._process.wait(timeout=0)
        except TimeoutError:
            return True
        except TransportError:
            return False
        return False

    def _failed(self, process, message: str) -> TransportError:
        try:
            code = process.wait(timeout=RELEASE_WAIT_S)
        except TimeoutError:
            code = None
        stderr = " | ".join(line.strip() for line in process.stderr_tail().strip().splitlines()[-3:])
        detail = f" (exit {code})" if code is not None else ""
        if stderr:
            detail += f"; stderr: {stderr[:300]}"
        return TransportError(f"{self.transport.target_name}: device lock on {self.path}: {message}{detail}; "
                              f"check that {self.python} runs on the device")

    def release(self) -> None:
        process, self._process = self._process, None
        if process is None:
            return
        process.send_stdin(b"")  # EOF: the helper removes its info file and exits
        try:
            process.wait(timeout=RELEASE_WAIT_S)
        except (TimeoutError, TransportError):
            process.kill()

    def __enter__(self) -> DeviceLock:
        return self.acquire()

    def __exit__(self, *exc_info: object) -> None:
        self.release()


__all__ = ["DeviceLock", "LOCK_FILE", "describe_holder"]
