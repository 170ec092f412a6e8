"""An external meter: a program run once per sample that prints the power.

    power:
      sensor: command
      options:
        argv: [/usr/local/bin/read-board-power, --rail, vdd_in]   # no shell
        interval_ms: 200
        timeout_s: 5

Its stdout must be one number with an optional unit: ``4.87`` or ``4.87 W`` (watts),
``4870 mW``, ``4870000 uW``. Anything else, a non-zero exit or a timeout is a read error
(recorded by the Sampler), never a 0. A sample's t_ns is the middle of the program's run.
"""

import re
import subprocess

from ..clock import now_ns
from .errors import SensorError, SensorUnavailable
from .sensor import Sensor, make_sample

DEFAULT_TIMEOUT_S = 5.0
_VALUE = re.compile(r"^([-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?)\s*([A-Za-z\u00b5]*)$")
_UNITS = {"": 1.0, "w": 1.0, "mw": 1e-3, "uw": 1e-6, "\u00b5w": 1e-6}


def parse_watts(text):
    # type: (str) -> float
    """Watts from a meter's output; SensorError saying what was expected otherwise."""
    stripped = text.strip()
    match = _VALUE.match(stripped)
    unit = match.group(2).lower() if match else None
    if match is None or unit not in _UNITS:
        raise SensorError("cannot read a power value from %r: expected one number with an optional "
                          "unit, e.g. '4.87', '4.87 W' or '4870 mW'" % stripped[:100])
    watts = float(match.group(1)) * _UNITS[unit]
    if watts < 0:
        raise SensorError("the meter printed a negative power: %r" % stripped)
    return watts


class CommandSensor(Sensor):
    kind = "command"
    DEFAULT_INTERVAL_MS = 500
    REQUIRED = ("argv",)
    OPTIONS = {
        "argv": ("argv", None),
        "timeout_s": ("number", DEFAULT_TIMEOUT_S),
        "never_run_on_hardware": ("bool", None),
    }

    def __init__(self, options=None, root="/"):
        # type: (dict | None, str) -> None
        Sensor.__init__(self, options, root)
        self.total_rail = "command"
        self.total_note = "the power printed by %s" % " ".join(self.options["argv"])

    def _run(self):
        # type: () -> tuple[int, str]
        """(the middle of the run in agent-clock ns, what the command printed)."""
        argv = self.options["argv"]
        t0 = now_ns()
        try:
            done = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, timeout=self.options["timeout_s"])
        except subprocess.TimeoutExpired as exc:
            raise SensorError("%s did not finish within %.1f s" % (argv[0], self.options["timeout_s"])) from exc
        t1 = now_ns()
        out = done.stdout.decode("utf-8", "replace")
        if done.returncode != 0:
            err = done.stderr.decode("utf-8", "replace").strip().splitlines()
            raise SensorError("%s exited with code %d%s" % (argv[0], done.returncode,
                                                             (": " + err[-1]) if err else ""))
        return (t0 + t1) // 2, out

    def _probe(self):
        # type: () -> None
        argv = self.options["argv"]
        try:
            t_ns, out = self._run()
            parse_watts(out)
        except FileNotFoundError as exc:
            raise SensorUnavailable("power command not found: %s" % argv[0]) from exc
        except PermissionError as exc:
            raise SensorUnavailable("power command cannot be run: permission denied on %s" % argv[0]) from exc
        except SensorError as exc:
            raise SensorUnavailable("power command %s does not work: %s" % (argv[0], exc)) from exc

    def _read(self):
        # type: () -> dict
        try:
            t_ns, out = self._run()
        except OSError as exc:
            raise SensorError("power command %s cannot be run: %s" % (self.options["argv"][0], exc)) from exc
        watts = parse_watts(out)
        return make_sample(t_ns, watts, {"command": watts})


SENSOR_CLASS = CommandSensor
