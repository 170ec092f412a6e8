"""A paired job's arms on different interpreters: one child agent process per arm, in lockstep.

The conductor (the job's agent process) starts ``python -m <agent> --arm`` under each arm's
interpreter and drives it over pipes, one JSON line each way per turn:

    conductor -> arm   {"arm": spec, "latency": settings}     once; the arm loads and warms up
    arm -> conductor   {"ready": info} | {"error": {...}}
    conductor -> arm   {"turn": k}                            the arm times k inferences
    arm -> conductor   {"samples": [ns, ...]} | {"error": {...}}
    conductor -> arm   {"profile": mean_ns}                   after the rounds: the runtime's op profile
    arm -> conductor   {"profile": {...}}
    conductor -> arm   {"stop": true}                         (or end of input) the arm exits

Only one arm runs at a time: the others wait in a blocking read, so the host and the
conductor are never in a timed window. Stdlib only, Python 3.6+.
"""

import json
import os
import subprocess
import sys

from .arms import LoadedArm
from .protocol import AgentFailure, EventStream

AGENT_PACKAGE = __name__.rsplit(".", 1)[0]  # the pushed copy's own package name
STOP_WAIT_S = 5.0


def serve_arm():
    # type: () -> int
    """The child side (``--arm``): load the arm named on stdin, then run turns until told to stop."""
    stream = EventStream.take_stdout()  # a runtime printing to fd 1 cannot corrupt the replies
    reader = sys.stdin
    try:
        spec = json.loads(reader.readline())
        arm = LoadedArm(spec["arm"])
        stream.write_line({"ready": arm.prepare(spec["latency"], lambda phase: None), "pid": os.getpid()})
        for line in reader:
            command = json.loads(line)
            if "turn" in command:
                stream.write_line({"samples": arm.turn(int(command["turn"]))})
            elif "profile" in command:
                stream.write_line({"profile": arm.profile(float(command["profile"]))})
            else:
                break
        return 0
    except AgentFailure as failure:
        stream.write_line({"error": {"kind": failure.kind, "message": failure.message, "traceback": failure.detail}})
        return 1
    except Exception as exc:  # a bug here, or a conductor speaking nonsense: still answer
        stream.write_line({"error": {"kind": "internal", "message": "%s: %s" % (type(exc).__name__, exc),
                                     "traceback": ""}})
        return 1


class ProcessArm(object):
    """The conductor's handle on one arm running in its own process."""

    def __init__(self, spec, job_id):
        # type: (dict, str) -> None
        self.name = str(spec["name"])
        self.runtime = str(spec["runtime"]["name"])
        self.spec = spec
        self.python = str(spec.get("python") or sys.executable)
        try:
            self.process = subprocess.Popen(
                [self.python, "-m", AGENT_PACKAGE, "--arm", "--job-id", job_id],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, universal_newlines=True)
        except OSError as exc:
            raise AgentFailure("runtime-missing", "arm %s (%s): cannot start %s: %s"
                               % (self.name, self.runtime, self.python, exc)) from exc
        self.pid = self.process.pid  # type: int | None
        assert self.process.stdin is not None and self.process.stdout is not None
        self._to_arm = self.process.stdin
        self._from_arm = self.process.stdout

    def _send(self, message):
        # type: (dict) -> None
        try:
            self._to_arm.write(json.dumps(message) + "\n")
            self._to_arm.flush()
        except (OSError, ValueError):
            self._died()

    def _receive(self):
        # type: () -> dict
        line = self._from_arm.readline()
        if not line:
            self._died()
        reply = json.loads(line)
        if "error" in reply:
            error = reply["error"]
            raise AgentFailure(error.get("kind", "internal"), str(error.get("message", "")),
                               str(error.get("traceback") or ""))
        return reply

    def _died(self):
        # type: () -> None
        code = self.process.wait()
        how = "was killed by signal %d" % -code if code < 0 else "exited with code %d" % code
        raise AgentFailure("runtime-error", "arm %s (%s) died mid-run: its process (%s) %s"
                           % (self.name, self.runtime, self.python, how))

    def prepare(self, settings, on_phase):
        # type: (dict, object) -> dict
        self._send({"arm": self.spec, "latency": settings})
        return self._receive()["ready"]

    def turn(self, count):
        # type: (int) -> list[int]
        self._send({"turn": count})
        return self._receive()["samples"]

    def profile(self, mean_ns):
        # type: (float) -> dict
        self._send({"profile": mean_ns})
        return self._receive()["profile"]

    def close(self):
        # type: () -> None
        try:
            self._to_arm.close()
        except (OSError, ValueError):
            pass
        try:
            self.process.wait(timeout=STOP_WAIT_S)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
