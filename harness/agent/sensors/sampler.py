"""The Sampler: a sensor sampled in a background thread, with named markers on its clock.

    sampler = Sampler(sensor, interval_s).start()
    sampler.idle_window()   # markers idle_begin / idle_end around a quiet wait
    sampler.mark("load_begin"); <timed loop>; sampler.mark("load_end")
    run = sampler.stop()    # {"samples", "markers", "interval_s", "errors", "sensor"}

A polled sensor is read every interval (a slow read skips the ticks it overran rather
than bursting); a streaming sensor is read as fast as its tool prints. A failed read is
recorded in ``errors`` (at most MAX_ERRORS_KEPT, then counted) and sampling goes on;
SensorGone ends it.
"""

import threading

from ..clock import now_ns
from .errors import SensorError, SensorGone
from .streaming import StreamingSensor

TYPE_CHECKING = False  # mypy takes this name as True: for the type comments only
if TYPE_CHECKING:
    from .sensor import Sensor  # noqa: F401 (named only in type comments, which ruff does not read)

MAX_ERRORS_KEPT = 50


class Sampler(object):
    """Samples a sensor in a background thread; markers name moments on the same clock."""

    def __init__(self, sensor, interval_s=None):
        # type: (Sensor, float | None) -> None
        self.sensor = sensor
        self.interval_s = float(interval_s if interval_s is not None else sensor.interval_s)
        if self.interval_s <= 0:
            raise ValueError("interval_s must be > 0")
        self._samples = []  # type: list[dict]
        self._markers = {}  # type: dict[str, int]
        self._errors = []  # type: list[dict]
        self._errors_dropped = 0
        self._stop = threading.Event()
        self._thread = None  # type: threading.Thread | None
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
        # type: (float | None, str, str) -> None
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
        sensor = self.sensor
        if isinstance(sensor, StreamingSensor):  # sensor.streaming: it reads as its tool prints
            self._run_streaming(sensor)
        else:
            self._run_polling()

    def _run_streaming(self, sensor):
        # type: (StreamingSensor) -> None
        timeout_s = max(2.0, 10 * self.interval_s)
        while not self._stop.is_set():
            try:
                sample = sensor.read_next(timeout_s)
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
        # type: () -> None
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
        # type: () -> Sampler
        return self.start()

    def __exit__(self, *exc_info):
        # type: (*object) -> None
        if not self._stop.is_set():
            self.stop()
