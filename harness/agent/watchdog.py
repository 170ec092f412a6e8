"""The device-side job timeout: a forked watchdog that kills a hung agent.

A runtime stuck in native code never returns to Python, so neither a signal handler nor a
thread can be relied on to stop it. A separate process can: it sleeps until the job's
deadline, then writes a `timeout` error event on the protocol stream and SIGKILLs the
agent. It exits on its own as soon as the agent is gone (its parent pid changes), and it
shares the agent's process group, so the host's kill of that group takes it too.
Python 3.6 compatible.
"""

import json
import mmap
import os
import signal
import time

from . import PROTOCOL_VERSION

POLL_S = 0.2
# an anonymous shared page: survives fork, so the watchdog can read the agent's current phase
_PHASE = mmap.mmap(-1, 64)


def set_phase(name):
    # type: (str) -> None
    data = name.encode("utf-8")[:63]
    _PHASE.seek(0)
    _PHASE.write(data + b"\0" * (64 - len(data)))


def current_phase():
    # type: () -> str
    return bytes(_PHASE[:64]).split(b"\0", 1)[0].decode("utf-8", "replace") or "start-up"


def start_watchdog(timeout_s, protocol_fd):
    # type: (float, int) -> int
    """Fork the watchdog; returns its pid (0 if fork is unavailable or no timeout)."""
    if not hasattr(os, "fork") or timeout_s <= 0:
        return 0
    agent = os.getpid()
    child = os.fork()
    if child != 0:
        return child
    try:  # the watchdog itself: never returns
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if os.getppid() != agent:
                os._exit(0)
            time.sleep(POLL_S)
        phase = current_phase()
        event = {"event": "error", "protocol": PROTOCOL_VERSION, "kind": "timeout",
                 "message": "job exceeded its %.0fs timeout on the device during %s; the agent was killed"
                            % (timeout_s, phase), "traceback": ""}
        try:
            os.write(protocol_fd, (json.dumps(event) + "\n").encode("utf-8"))
        except OSError:
            pass
        try:
            os.kill(agent, signal.SIGKILL)
        except OSError:
            pass
    finally:
        os._exit(0)


def stop_watchdog(pid):
    # type: (int) -> None
    if pid:
        try:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
        except OSError:
            pass
