"""The agent side of the wire protocol: JSON lines on a dedicated stdout stream.

stdout carries only protocol. Native runtimes (paddle's glog, CUDA banners) write to fd 1
from C code, so at start-up the agent keeps a private duplicate of the real stdout for
protocol events and points fd 1 at stderr: anything else that prints lands in stderr.

Each event is one JSON object with "event" (one of EVENTS) and "protocol" keys; the host
(harness.run.agent_client) accepts exactly the kinds EVENTS lists, and docs/protocol.md
describes their fields. (The device lock helper, lock.py, prints its own small set of
events on its own stdout; they are not part of this protocol.)
"""

import json
import os
import sys

from . import PROTOCOL_VERSION
from .watchdog import set_phase

# Every event kind the agent writes on the protocol stream, in the order a job sends them.
EVENTS = (
    "hello",     # first, always: agent and protocol version, clock, the device's environment
    "progress",  # a phase begins (import, load, first-inference, idle, warmup, measure, profile, outputs)
    "outputs",   # fidelity job: the model's outputs for each seeded input
    "power",     # power job: the sensor's summary, a timeline and the markers
    "profile",   # job.profile_ops: per-operator times from the runtime's own profiler
    "paired",    # paired job: every arm's samples, turn by turn, the round order and what stopped it
    "samples",   # latency job: latency_ns of every timed iteration (paired job: the first arm's)
    "result",    # last on success: what was run and measured
    "error",     # last on failure: kind (one of ERROR_KINDS), message, traceback; also the watchdog's timeout
)

# Error kinds the host understands; anything else is reported as "internal".
ERROR_KINDS = (
    "protocol",         # malformed or incompatible Job
    "bad-option",       # unknown or invalid runtime option
    "model-missing",    # a model file is not on the device
    "runtime-missing",  # the runtime is not installed in this interpreter
    "model-load",       # the runtime refused to load the model
    "runtime-error",    # the runtime failed while running
    "timeout",          # the job ran past its device-side deadline (sent by the watchdog)
    "internal",         # a bug in the agent
)


class AgentFailure(Exception):
    """An error to report as an `error` event with `kind` (one of ERROR_KINDS)."""

    def __init__(self, kind, message, detail=""):
        # type: (str, str, str) -> None
        Exception.__init__(self, message)
        self.kind = kind if kind in ERROR_KINDS else "internal"
        self.message = message
        self.detail = detail


class EventStream(object):
    """Writes protocol events; owns the process's real stdout."""

    def __init__(self, stream):
        self._stream = stream

    def fileno(self):
        # type: () -> int
        return self._stream.fileno()

    @classmethod
    def take_stdout(cls):
        # type: () -> EventStream
        """Reserve the real stdout for protocol and send fd 1 to stderr from now on."""
        sys.stdout.flush()
        protocol_fd = os.dup(1)
        os.dup2(2, 1)
        sys.stdout = sys.stderr
        return cls(os.fdopen(protocol_fd, "w", encoding="utf-8", newline="\n"))

    def emit(self, event, **fields):
        # type: (str, object) -> None
        record = {"event": event, "protocol": PROTOCOL_VERSION}
        record.update(fields)
        if event == "progress" and "phase" in fields:
            set_phase(str(fields["phase"]))
        self._stream.write(json.dumps(record, separators=(",", ":"), allow_nan=False))
        self._stream.write("\n")
        self._stream.flush()

    def write_line(self, message):
        # type: (dict) -> None
        """One JSON line that is not a protocol event (a paired job's arm replying to its conductor)."""
        self._stream.write(json.dumps(message, separators=(",", ":"), allow_nan=False))
        self._stream.write("\n")
        self._stream.flush()

    def error(self, failure):
        # type: (AgentFailure) -> None
        self.emit("error", kind=failure.kind, message=failure.message, traceback=failure.detail)
