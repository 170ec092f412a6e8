"""What every power sensor provides, the background Sampler, and the power summary.

Runs on the device (stdlib only, Python 3.6+). A sensor's life cycle:

    sensor = open_sensor(kind, options, root)   # validates options; touches nothing
    sensor.probe()          # SensorUnavailable(reason) when it cannot work here
    sampler = Sampler(sensor, interval_s).start()
    sampler.idle_window()   # markers idle_begin / idle_end around a quiet wait
    sampler.mark("load_begin"); <timed loop>; sampler.mark("load_end")
    run = sampler.stop()    # {"samples", "markers", "interval_s", "errors", "sensor"}
    summary = summarize_run(run, inferences, latency_ms_mean)

One sample is ``{"t_ns": int, "total_w": float or None, "rails": {name: watts},
"extra": {...}}`` (estimates add ``"estimated": True``). ``t_ns`` is the agent clock
(clock.now_ns): the arrival time of a streamed line, or the middle of the interval that
an energy- or counter-delta reading averages over. ``total_w`` is None when the sensor
has no trustworthy board total (the reason is in describe()["total_note"]); it is never
a made-up 0. A read that fails raises SensorError; the Sampler records it in ``errors``
and keeps sampling.
"""

import collections
import math
import os
import subprocess
import threading

from ..clock import now_ns

DEFAULT_INTERVAL_MS = 100
MIN_WINDOW_SAMPLES = 3
MAX_ERRORS_KEPT = 50


class SensorUnavailable(Exception):
    """The sensor cannot work on this machine; `reason` says why and what to do."""

    def __init__(self, reason):
        # type: (str) -> None
        Exception.__init__(self, reason)
        self.reason = reason


class SensorOptionError(ValueError):
    """A target file's power.options is wrong (unknown key, wrong type)."""


class SensorError(Exception):
    """One read failed; sampling goes on (the Sampler records it)."""


class SensorGone(SensorError):
    """The sensor stopped for good (its tool exited): sampling ends, recorded as an error."""


# option spec: name -> (kind, default); kind is "number", "int", "bool", "str", "argv"
COMMON_OPTIONS = {"interval_ms": ("number", None)}


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
    OPTIONS = {}  # type: dict
    REQUIRED = ()  # type: tuple
    DEFAULT_INTERVAL_MS = DEFAULT_INTERVAL_MS
    streaming = False        # True: read() blocks until the tool prints the next reading
    estimated = False
    NEVER_RUN_ON_HARDWARE = False

    def __init__(self, options=None, root="/"):
        # type: (dict, str) -> None
        self.root = root or "/"
        self.options = self._validated(dict(options or {}))
        interval_ms = self.options.get("interval_ms")
        if interval_ms is None:
            interval_ms = self.DEFAULT_INTERVAL_MS
        if interval_ms <= 0:
            raise SensorOptionError("power.options.interval_ms must be > 0 (got %r)" % interval_ms)
        self.interval_s = interval_ms / 1000.0
        self._probed = False
        self.total_rail = None   # type: object
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
        # type: (float) -> None
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
    # type: (int, object, dict, dict) -> dict
    return {"t_ns": int(t_ns), "total_w": total_w, "rails": rails, "extra": extra or {}}


def read_text(path):
    # type: (str) -> str
    """A sysfs attribute's text, stripped. OSError (incl. PermissionError) propagates."""
    with open(path, "r") as handle:
        return handle.read().strip()


def read_number(path):
    # type: (str) -> float
    """A sysfs number; SensorError naming the file when it is not one."""
    text = read_text(path)
    try:
        return float(text.split()[0])
    except (ValueError, IndexError):
        raise SensorError("%s does not hold a number: %r" % (path, text[:60]))


# -- tool output streamed line by line ------------------------------------------------------

class LineStream(object):
    """Runs a tool (argv list, never a shell) and timestamps each stdout line on arrival.

    A reader thread puts (t_ns, line) on a queue, so the arrival time is taken when the
    line comes, not when the Sampler gets round to it; stderr is drained (last lines kept
    for error messages) so the tool never blocks on a full pipe.
    """

    _EOF = object()

    def __init__(self, argv, what):
        # type: (list, str) -> None
        self.argv = list(argv)
        self.what = what
        self.proc = None  # type: object
        self._lines = None  # type: object
        self._stderr = collections.deque(maxlen=20)

    def start(self):
        # type: () -> None
        import queue

        self._lines = queue.Queue()
        try:
            self.proc = subprocess.Popen(self.argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                         stderr=subprocess.PIPE, close_fds=True)
        except FileNotFoundError:
            raise SensorUnavailable("%s not found: %s" % (self.what, self.argv[0]))
        except PermissionError:
            raise SensorUnavailable("%s cannot be run: permission denied on %s" % (self.what, self.argv[0]))
        except OSError as exc:
            raise SensorUnavailable("%s cannot be started: %s" % (self.what, exc))
        threading.Thread(target=self._pump_stdout, args=(self.proc.stdout, self._lines),
                         name="sensor-stdout", daemon=True).start()
        threading.Thread(target=self._pump_stderr, args=(self.proc.stderr,),
                         name="sensor-stderr", daemon=True).start()

    def _pump_stdout(self, pipe, lines):
        try:
            for raw in iter(pipe.readline, b""):
                lines.put((now_ns(), raw.decode("utf-8", "replace").rstrip("\r\n")))
        except (OSError, ValueError):
            pass
        finally:
            lines.put((now_ns(), self._EOF))

    def _pump_stderr(self, pipe):
        try:
            for raw in iter(pipe.readline, b""):
                self._stderr.append(raw.decode("utf-8", "replace").rstrip())
        except (OSError, ValueError):
            pass

    def get(self, timeout_s):
        # type: (float) -> tuple
        """The next (t_ns, line); SensorError on timeout, SensorGone once the tool has exited."""
        import queue

        if self._lines is None:
            raise SensorGone("%s is not running" % self.what)
        try:
            t_ns, line = self._lines.get(timeout=timeout_s)
        except queue.Empty:
            raise SensorError("no output from %s for %.1f s" % (self.what, timeout_s))
        if line is self._EOF:
            self._lines.put((t_ns, line))  # every later get() also sees the end
            raise SensorGone(self.exit_message())
        return t_ns, line

    def exit_message(self):
        # type: () -> str
        code = None
        if self.proc is not None:
            try:
                code = self.proc.wait(timeout=2)
            except subprocess.TimeoutExpired:
                code = None
        tail = " | ".join(line for line in list(self._stderr)[-3:] if line)
        return "%s exited (code %s)%s" % (self.what, code, (": " + tail) if tail else "")

    def stop(self):
        # type: () -> None
        proc, self.proc = self.proc, None
        if proc is None:
            return
        if proc.poll() is None:
            try:
                proc.terminate()
                proc.wait(timeout=2)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=2)
            except OSError:
                pass
        for pipe in (proc.stdout, proc.stderr):
            try:
                pipe.close()
            except (OSError, ValueError):
                pass


class StreamingSensor(Sensor):
    """A sensor fed by a tool that prints one reading per interval (tegrastats, nvidia-smi).

    Subclasses give default_argv() and parse_line(t_ns, line) -> sample or None (a line to
    skip); a line that should parse but does not raises SensorError.
    """

    streaming = True
    what = "tool"
    missing_hint = ""

    def __init__(self, options=None, root="/"):
        # type: (dict, str) -> None
        Sensor.__init__(self, options, root)
        self._stream = None  # type: object
        self._ready = []  # type: list  # samples completed by a line but not yet returned

    def argv(self):
        # type: () -> list
        return list(self.options.get("command") or self.default_argv())

    def default_argv(self):
        # type: () -> list
        raise NotImplementedError

    def parse_line(self, t_ns, line):
        # type: (int, str) -> object
        raise NotImplementedError

    def _timeout_s(self):
        # type: () -> float
        return max(2.0, 10 * self.interval_s)

    def _probe(self):
        # type: () -> None
        argv = self.argv()
        program = argv[0]
        if os.sep in program:
            if not os.access(program, os.X_OK):
                raise SensorUnavailable("%s not found or not executable: %s" % (self.what, program))
        else:
            import shutil

            if shutil.which(program) is None:
                raise SensorUnavailable("%s not found on PATH%s" % (program, self.missing_hint))
        stream = LineStream(argv, self.what)
        stream.start()
        last_error = None
        deadline = now_ns() + int(max(5.0, 5 * self.interval_s) * 1e9)
        try:
            while now_ns() < deadline:
                try:
                    t_ns, line = stream.get(max(0.05, (deadline - now_ns()) / 1e9))
                    sample = self.parse_line(t_ns, line)
                except SensorGone as exc:
                    raise SensorUnavailable(
                        "%s%s" % (exc, ("; last line: %s" % last_error) if last_error else ""))
                except SensorError as exc:
                    last_error = str(exc)
                    continue
                if sample is not None:
                    self._reset_stream_state()
                    return
        finally:
            stream.stop()
        raise SensorUnavailable("%s printed no usable reading within %.1f s%s"
                                % (self.what, max(5.0, 5 * self.interval_s),
                                   (": " + last_error) if last_error else ""))

    def _reset_stream_state(self):
        # type: () -> None
        """Forget per-stream state gathered while probing (subclasses with state extend it)."""
        self._ready = []

    def open(self, interval_s=None):
        # type: (float) -> None
        Sensor.open(self, interval_s)
        self.close()
        self._ready = []
        self._stream = LineStream(self.argv(), self.what)
        self._stream.start()

    def read_next(self, timeout_s=None):
        # type: (float) -> dict
        """Block until the tool's next reading; SensorError / SensorGone on failure."""
        if self._ready:
            return self._ready.pop(0)
        stream = self._stream
        if stream is None:
            raise SensorGone("%s is not running (open() the sensor first)" % self.what)
        timeout_s = self._timeout_s() if timeout_s is None else timeout_s
        deadline = now_ns() + int(timeout_s * 1e9)
        while True:
            left = (deadline - now_ns()) / 1e9
            if left <= 0:
                raise SensorError("no reading from %s for %.1f s" % (self.what, timeout_s))
            t_ns, line = stream.get(left)
            sample = self.parse_line(t_ns, line)
            if sample is not None:
                return sample

    def _read(self):
        # type: () -> dict
        if self._stream is None:
            self.open()
        return self.read_next()

    def close(self):
        # type: () -> None
        stream, self._stream = self._stream, None
        if stream is not None:
            stream.stop()


# -- the sampler thread -------------------------------------------------------------------

class Sampler(object):
    """Samples a sensor in a background thread; markers name moments on the same clock."""

    def __init__(self, sensor, interval_s=None):
        # type: (Sensor, float) -> None
        self.sensor = sensor
        self.interval_s = float(interval_s if interval_s is not None else sensor.interval_s)
        if self.interval_s <= 0:
            raise ValueError("interval_s must be > 0")
        self._samples = []  # type: list
        self._markers = {}  # type: dict
        self._errors = []  # type: list
        self._errors_dropped = 0
        self._stop = threading.Event()
        self._thread = None  # type: object
        self._count_changed = threading.Condition()

    def start(self):
        # type: () -> Sampler
        """Open the sensor and start sampling; SensorUnavailable when it cannot open."""
        self.sensor.open(self.interval_s)
        self._thread = threading.Thread(target=self._run, name="power-sampler", daemon=True)
        self._thread.start()
        return self

    def mark(self, name):
        # type: (str) -> int
        t_ns = now_ns()
        self._markers[name] = t_ns
        return t_ns

    def idle_window(self, duration_s=None, begin="idle_begin", end="idle_end"):
        # type: (float, str, str) -> None
        """Mark an idle window of `duration_s` (default: 5 sensor intervals, at least 1 s)."""
        if duration_s is None:
            duration_s = max(1.0, 5 * self.interval_s)
        self.mark(begin)
        self._stop.wait(duration_s)
        self.mark(end)

    def wait_for_samples(self, count, timeout_s):
        # type: (int, float) -> bool
        """Block until at least `count` samples were taken (or `timeout_s` passed)."""
        with self._count_changed:
            return self._count_changed.wait_for(lambda: len(self._samples) >= count, timeout_s)

    def _record_error(self, message):
        # type: (str) -> None
        if len(self._errors) < MAX_ERRORS_KEPT:
            self._errors.append({"t_ns": now_ns(), "message": message})
        else:
            self._errors_dropped += 1

    def _keep(self, sample):
        # type: (dict) -> None
        with self._count_changed:
            self._samples.append(sample)
            self._count_changed.notify_all()

    def _run(self):
        # type: () -> None
        if self.sensor.streaming:
            self._run_streaming()
        else:
            self._run_polling()

    def _run_streaming(self):
        timeout_s = max(2.0, 10 * self.interval_s)
        while not self._stop.is_set():
            try:
                sample = self.sensor.read_next(timeout_s)
            except SensorGone as exc:
                if not self._stop.is_set():
                    self._record_error("%s; sampling stopped" % exc)
                return
            except SensorError as exc:
                if not self._stop.is_set():
                    self._record_error(str(exc))
                continue
            except Exception as exc:  # a parser bug must not kill the thread silently
                if not self._stop.is_set():
                    self._record_error("%s: %s" % (type(exc).__name__, exc))
                continue
            self._keep(sample)

    def _run_polling(self):
        interval_ns = int(self.interval_s * 1e9)
        next_ns = now_ns()
        while not self._stop.is_set():
            try:
                self._keep(self.sensor.read())
            except SensorGone as exc:
                self._record_error("%s; sampling stopped" % exc)
                return
            except (SensorError, OSError) as exc:
                self._record_error(str(exc))
            except Exception as exc:
                self._record_error("%s: %s" % (type(exc).__name__, exc))
            next_ns += interval_ns
            now = now_ns()
            if next_ns <= now:  # a slow read: skip the ticks it overran, do not burst
                next_ns = now + interval_ns - (now - next_ns) % interval_ns
            self._stop.wait((next_ns - now) / 1e9)

    def stop(self):
        # type: () -> dict
        self._stop.set()
        self.sensor.close()
        if self._thread is not None:
            self._thread.join(timeout=max(5.0, 3 * self.interval_s))
            if self._thread.is_alive():
                self._record_error("sampler thread did not stop within its timeout")
        with self._count_changed:
            samples = list(self._samples)
        errors = list(self._errors)
        if self._errors_dropped:
            errors.append({"t_ns": now_ns(), "message": "%d more errors not kept" % self._errors_dropped})
        return {"samples": samples, "markers": dict(self._markers), "interval_s": self.interval_s,
                "errors": errors, "sensor": self.sensor.describe()}

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc_info):
        if not self._stop.is_set():
            self.stop()
        return False


# -- the summary ----------------------------------------------------------------------------

def _mean(values):
    # type: (list) -> object
    return sum(values) / len(values) if values else None


def _window(samples, markers, names):
    # type: (list, dict, tuple) -> object
    begin, end = markers.get(names[0]), markers.get(names[1])
    if begin is None or end is None:
        return None
    return begin, end, [s for s in samples if begin <= s["t_ns"] <= end]


def _power_of(sample):
    # type: (dict) -> object
    """The board power a sample stands for, and whether it is only a lower bound."""
    if sample.get("total_w") is not None:
        return sample["total_w"], False
    lower = (sample.get("extra") or {}).get("rails_sum_w")
    if lower is not None:
        return lower, True
    return None, False


def _effective_rate_hz(samples):
    # type: (list) -> object
    if len(samples) < 2:
        return None
    span = samples[-1]["t_ns"] - samples[0]["t_ns"]
    return (len(samples) - 1) / (span / 1e9) if span > 0 else None


def _blank_summary(sensor):
    # type: (dict) -> dict
    sensor = sensor or {}
    estimated = bool(sensor.get("estimated"))
    return {
        "status": None,
        "reason": None,
        "sensor": sensor.get("sensor"),
        "estimated": estimated,
        "label": "estimated" if estimated else "measured",
        "basis": None,
        "lower_bound": bool(sensor.get("total_is_lower_bound")),
        "total_rail": sensor.get("total_rail"),
        "total_note": sensor.get("total_note"),
        "never_run_on_hardware": sensor.get("never_run_on_hardware"),
        "interval_s": sensor.get("interval_s"),
        "sample_rate_hz": None,
        "samples": 0,
        "idle_samples": 0,
        "idle_mean_w": None,
        "idle_window_s": None,
        "load_samples": 0,
        "load_mean_w": None,
        "load_peak_w": None,
        "load_window_s": None,
        "inferences": None,
        "latency_ms_mean": None,
        "energy_per_inference_mj": None,
        "energy_per_inference_gross_mj": None,
        "energy_per_inference_window_mj": None,
        "rails": {},
        "errors": 0,
        "notes": [],
    }


def unavailable_summary(reason, sensor=None):
    # type: (str, dict) -> dict
    """The summary of a power measurement that could not be made: status says why."""
    summary = _blank_summary(sensor)
    summary["status"] = "unavailable: %s" % reason
    summary["reason"] = reason
    return summary


def summarize_power(samples, markers, idle=("idle_begin", "idle_end"), load=("load_begin", "load_end"),
                    inferences=None, latency_ms_mean=None, sensor=None, errors=None,
                    min_samples=MIN_WINDOW_SAMPLES):
    # type: (list, dict, tuple, tuple, int, float, dict, list, int) -> dict
    """Idle and load power, and energy per inference = (load mean - idle mean) x mean latency.

    Means are plain sample means (sensors sample at a steady rate). Watts x milliseconds =
    millijoules. With `inferences` (the timed loop's iteration count) the same extra energy
    is also shared over the load window (energy_per_inference_window_mj): the two agree
    when the loop's own overhead is small. `sensor` is the sensor's describe(); `errors`
    the Sampler's errors.
    status: "ok", "insufficient samples" (fewer than `min_samples` in the load or idle
    window; `reason` says how many, the sensor's rate and what to lengthen), or
    "unavailable: <reason>" when no sample carries a power value at all.
    """
    summary = _blank_summary(sensor)
    samples = sorted(samples, key=lambda s: s["t_ns"])
    summary["samples"] = len(samples)
    summary["errors"] = len(errors or [])
    summary["inferences"] = inferences
    summary["latency_ms_mean"] = latency_ms_mean
    if any(s.get("estimated") for s in samples):
        summary["estimated"] = True
        summary["label"] = "estimated"
    rate = _effective_rate_hz(samples)
    if rate is None and summary["interval_s"]:
        rate = 1.0 / summary["interval_s"]
    summary["sample_rate_hz"] = rate

    powered = [s for s in samples if _power_of(s)[0] is not None]
    if samples and not powered:
        why = (samples[-1].get("extra") or {}).get("total_missing") or summary["total_note"]
        return _finish(summary, "unavailable: the sensor's samples carry no power value (%s)"
                       % (why or "no total and no rail sum"))
    if not samples:
        detail = "no samples were taken"
        if errors:
            detail += " (%d read errors; first: %s)" % (len(errors), errors[0].get("message"))
        summary["reason"] = detail
        return _finish(summary, "insufficient samples")
    lower_bound = summary["lower_bound"] or any(_power_of(s)[1] for s in powered)
    summary["lower_bound"] = lower_bound
    summary["basis"] = _basis(summary, lower_bound)

    load_window = _window(powered, markers, load)
    idle_window = _window(powered, markers, idle)
    problems = []
    if load_window is None:
        problems.append("no load window (markers %s/%s missing)" % load)
    else:
        begin, end, inside = load_window
        values = [_power_of(s)[0] for s in inside]
        summary["load_samples"] = len(values)
        summary["load_window_s"] = (end - begin) / 1e9
        summary["load_mean_w"] = _mean(values)
        summary["load_peak_w"] = max(values) if values else None
        if len(values) < min_samples:
            problems.append(_too_few("load", len(values), min_samples, end - begin, rate))
    if idle_window is None:
        problems.append("no idle window (markers %s/%s missing): idle power was not measured" % idle)
    else:
        begin, end, inside = idle_window
        values = [_power_of(s)[0] for s in inside]
        summary["idle_samples"] = len(values)
        summary["idle_window_s"] = (end - begin) / 1e9
        summary["idle_mean_w"] = _mean(values)
        if len(values) < min_samples:
            problems.append(_too_few("idle", len(values), min_samples, end - begin, rate))
    summary["rails"] = _rail_means(powered, load_window, idle_window)

    load_ok = summary["load_samples"] >= min_samples
    idle_ok = summary["idle_samples"] >= min_samples
    extra_w = summary["load_mean_w"] - summary["idle_mean_w"] if load_ok and idle_ok else None
    if latency_ms_mean is not None and load_ok:
        summary["energy_per_inference_gross_mj"] = summary["load_mean_w"] * latency_ms_mean
        if extra_w is not None:
            summary["energy_per_inference_mj"] = extra_w * latency_ms_mean
    if inferences and extra_w is not None:  # cross-check: the window's extra energy over its inferences
        summary["energy_per_inference_window_mj"] = extra_w * summary["load_window_s"] * 1000.0 / inferences
    if extra_w is not None and extra_w < 0:
        # a negative energy is not a number anyone should read: leave it out, say why
        summary["energy_per_inference_mj"] = None
        summary["energy_per_inference_window_mj"] = None
        summary["notes"].append("load mean is below idle mean: the model's power is within the sensor's "
                                "noise (or the idle window was disturbed); energy per inference is not reported")
    if lower_bound:
        summary["notes"].append("no board-total rail: powers are the sum of the listed rails, a lower bound")
    if len(powered) < len(samples):
        summary["notes"].append("%d sample(s) without a power value were left out"
                                % (len(samples) - len(powered)))
    if summary["estimated"]:
        summary["notes"].append("estimated, not measured: %s" % (summary["total_note"] or "model-based"))
    if problems:
        summary["reason"] = "; ".join(problems)
        return _finish(summary, "insufficient samples")
    return _finish(summary, "ok")


def _finish(summary, status):
    # type: (dict, str) -> dict
    summary["status"] = status
    if status.startswith("unavailable: ") and summary["reason"] is None:
        summary["reason"] = status[len("unavailable: "):]
    return summary


def _basis(summary, lower_bound):
    # type: (dict, bool) -> str
    if summary["estimated"]:
        return "estimated: %s" % (summary["total_note"] or "model-based estimate")
    if lower_bound:
        return "sum of rails (lower bound: no board-total rail)"
    if summary["total_rail"]:
        return "rail %s" % summary["total_rail"]
    return summary["total_note"] or "sensor total"


def _too_few(which, count, needed, window_ns, rate):
    # type: (str, int, int, int, object) -> str
    text = "%d sample(s) inside the %s window of %.2f s (need %d)" % (count, which, window_ns / 1e9, needed)
    if rate:
        wanted = (needed + 1) / rate
        text += "; the sensor delivers %.2f samples/s" % rate
        if which == "load":
            text += ", so lengthen latency.min_duration_s to at least %.1f s" % (math.ceil(wanted * 10) / 10.0)
        else:
            text += ", so lengthen the idle window to at least %.1f s" % (math.ceil(wanted * 10) / 10.0)
        text += " (or lower power.options.interval_ms)"
    return text


def _rail_means(samples, load_window, idle_window):
    # type: (list, object, object) -> dict
    rails = {}
    for key, window in (("load_mean_w", load_window), ("idle_mean_w", idle_window)):
        if window is None:
            continue
        values = {}
        for sample in window[2]:
            for name, watts in (sample.get("rails") or {}).items():
                if watts is not None:
                    values.setdefault(name, []).append(watts)
        for name, series in values.items():
            rails.setdefault(name, {"idle_mean_w": None, "load_mean_w": None})[key] = _mean(series)
    return rails


def summarize_run(run, inferences=None, latency_ms_mean=None, idle=("idle_begin", "idle_end"),
                  load=("load_begin", "load_end")):
    # type: (dict, int, float, tuple, tuple) -> dict
    """summarize_power over what Sampler.stop() returned."""
    return summarize_power(run["samples"], run["markers"], idle=idle, load=load, inferences=inferences,
                           latency_ms_mean=latency_ms_mean, sensor=run.get("sensor"),
                           errors=run.get("errors"))
