"""The interface every power sensor implements: options, probe, open/read/close, describe.

Runs on the device (stdlib only, Python 3.6+). One sample is ``{"t_ns": int, "total_w":
float or None, "rails": {name: watts}, "extra": {...}}`` (estimates add ``"estimated":
True``), built by make_sample. ``t_ns`` is the agent clock (clock.now_ns): the arrival time
of a streamed line, or the middle of the interval that an energy- or counter-delta reading
averages over. ``total_w`` is None when the sensor has no trustworthy board total (the
reason is in describe()["total_note"]); it is never a made-up 0. A read that fails raises
SensorError; the Sampler records it in ``errors`` and keeps sampling.
"""

import math
import os

from .errors import SensorOptionError

DEFAULT_INTERVAL_MS = 100

# option spec: name -> (kind, default); kind is "number", "int", "bool", "str", "argv"
COMMON_OPTIONS = {"interval_ms": ("number", None)}  # type: dict[str, tuple[str, object]]


def _check_kind(kind, value):
    # type: (str, object) -> bool
    if kind == "bool":
        return isinstance(value, bool)
    if kind == "int":
        return isinstance(value, int) and not isinstance(value, bool)
    if kind == "number":
        return (isinstance(value, (int, float)) and not isinstance(value, bool)
                and not math.isnan(value) and not math.isinf(value))
    if kind == "str":
        return isinstance(value, str)
    if kind == "argv":
        return (isinstance(value, (list, tuple)) and len(value) > 0
                and all(isinstance(item, str) for item in value))
    return False


KIND_NAMES = {"bool": "true or false", "int": "an integer", "number": "a number",
              "str": "a string", "argv": "a non-empty list of strings (program and arguments, no shell)"}


class Sensor(object):
    """Base class. Subclasses set `kind`, OPTIONS, and implement _probe / _read."""

    kind = "base"
    OPTIONS = {}  # type: dict[str, tuple[str, object]]  # option name -> (kind, default), see COMMON_OPTIONS
    REQUIRED = ()  # type: tuple[str, ...]
    DEFAULT_INTERVAL_MS = DEFAULT_INTERVAL_MS
    streaming = False        # True: read() blocks until the tool prints the next reading
    estimated = False
    NEVER_RUN_ON_HARDWARE = False

    def __init__(self, options=None, root="/"):
        # type: (dict | None, str) -> None
        self.root = root or "/"
        self.options = self._validated(dict(options or {}))
        interval_ms = self.options.get("interval_ms")
        if interval_ms is None:
            interval_ms = self.DEFAULT_INTERVAL_MS
        if interval_ms <= 0:
            raise SensorOptionError("power.options.interval_ms must be > 0 (got %r)" % interval_ms)
        self.interval_s = interval_ms / 1000.0
        self._probed = False
        self.total_rail = None   # type: str | None
        self.total_note = ""

    # -- options ------------------------------------------------------------------------
    def _validated(self, options):
        # type: (dict) -> dict
        spec = dict(COMMON_OPTIONS)
        spec.update(self.OPTIONS)
        unknown = sorted(set(options) - set(spec))
        if unknown:
            raise SensorOptionError(
                "power sensor %s: unknown option(s) %s in power.options (known: %s)"
                % (self.kind, ", ".join(unknown), ", ".join(sorted(spec)) or "none"))
        for key in self.REQUIRED:
            if options.get(key) is None:
                raise SensorOptionError("power sensor %s needs power.options.%s (%s)"
                                        % (self.kind, key, KIND_NAMES[spec[key][0]]))
        values = {}
        for key, (kind, default) in spec.items():
            value = options.get(key, default)
            if value is not None and not _check_kind(kind, value):
                raise SensorOptionError("power sensor %s: power.options.%s=%r must be %s"
                                        % (self.kind, key, value, KIND_NAMES[kind]))
            if kind == "argv" and value is not None:
                value = [str(item) for item in value]
            values[key] = value
        return values

    # -- paths --------------------------------------------------------------------------
    def path(self, absolute):
        # type: (str) -> str
        """`absolute` (e.g. /sys/class/powercap) under this sensor's root (tests: a fixture tree)."""
        return os.path.join(self.root, absolute.lstrip("/"))

    # -- life cycle ---------------------------------------------------------------------
    def probe(self):
        # type: () -> None
        """Check the sensor works here; raise SensorUnavailable(reason) if it cannot."""
        self._probe()
        self._probed = True

    def open(self, interval_s=None):
        # type: (float | None) -> None
        """Get ready to sample every `interval_s` (starts the tool for streaming sensors)."""
        if interval_s is not None:
            self.interval_s = float(interval_s)
        if not self._probed:
            self.probe()

    def read(self):
        # type: () -> dict
        """One sample; SensorError when this read failed."""
        if not self._probed:
            self.probe()
        return self._read()

    def close(self):
        # type: () -> None
        pass

    def describe(self):
        # type: () -> dict
        return {
            "sensor": self.kind,
            "total_rail": self.total_rail,
            "total_note": self.total_note,
            "estimated": self.estimated,
            "never_run_on_hardware": self._never_run_on_hardware(),
            "interval_s": self.interval_s,
        }

    def _never_run_on_hardware(self):
        # type: () -> bool
        value = self.options.get("never_run_on_hardware")
        return self.NEVER_RUN_ON_HARDWARE if value is None else bool(value)

    def _probe(self):
        # type: () -> None
        raise NotImplementedError

    def _read(self):
        # type: () -> dict
        raise NotImplementedError


def make_sample(t_ns, total_w, rails, extra=None):
    # type: (int, float | None, dict, dict | None) -> dict
    return {"t_ns": int(t_ns), "total_w": total_w, "rails": rails, "extra": extra or {}}

