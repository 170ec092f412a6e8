"""An ESTIMATE of power from CPU utilisation, for machines with no power sensor.

Reads the aggregate ``cpu`` line of /proc/stat each interval; the busy share of all cores
(user + nice + system + irq + softirq over those plus idle + iowait + steal; guest time is
already inside user/nice) becomes

    watts = idle_w + per_core_w * busy_cores            (busy_cores = busy share x cores)
    or, with max_w:  idle_w + (max_w - idle_w) * busy share

Defaults (options idle_w, per_core_w, max_w, cores): a generic SoC, 2 W idle + 4 W per fully
busy core, cores counted from /proc/stat's cpuN lines. This is a model, not a measurement:
it knows nothing of the GPU/NPU, memory traffic or DVFS. Every sample and describe() carry
"estimated": True, and summaries are labelled "estimated". /proc/stat counts in USER_HZ
ticks (usually 100/s), so intervals under ~200 ms are coarse.
"""

from ..clock import now_ns
from .errors import SensorError, SensorUnavailable
from .sensor import Sensor, make_sample
from .sysfs import read_text

DEFAULT_IDLE_W = 2.0
DEFAULT_PER_CORE_W = 4.0


def parse_proc_stat(text):
    # type: (str) -> tuple[int, int, int]
    """(busy ticks, total ticks, cores) from /proc/stat text."""
    busy = total = None
    cores = 0
    for line in text.splitlines():
        fields = line.split()
        if not fields:
            continue
        if fields[0] == "cpu":
            values = [int(v) for v in fields[1:]] + [0] * 8
            user, nice, system, idle, iowait, irq, softirq, steal = values[:8]
            busy = user + nice + system + irq + softirq
            total = busy + idle + iowait + steal
        elif fields[0].startswith("cpu") and fields[0][3:].isdigit():
            cores += 1
    if busy is None or total is None:  # both come from the same line
        raise SensorError("/proc/stat has no aggregate 'cpu' line")
    return busy, total, cores


class EstimateSensor(Sensor):
    kind = "estimate"
    estimated = True
    DEFAULT_INTERVAL_MS = 250
    OPTIONS = {
        "idle_w": ("number", DEFAULT_IDLE_W),
        "per_core_w": ("number", DEFAULT_PER_CORE_W),
        "max_w": ("number", None),
        "cores": ("int", None),
    }

    def __init__(self, options=None, root="/"):
        # type: (dict | None, str) -> None
        Sensor.__init__(self, options, root)
        self.stat_path = self.path("/proc/stat")
        self.cores = self.options.get("cores")  # type: int | None  # counted by probe() when not given
        self._last = None  # type: tuple[int, int, int, int] | None

    def _snapshot(self):
        # type: () -> tuple[int, int, int, int]
        """(t_ns, busy ticks, total ticks, cores)."""
        t0 = now_ns()
        text = read_text(self.stat_path)
        t1 = now_ns()
        busy, total, cores = parse_proc_stat(text)
        return (t0 + t1) // 2, busy, total, cores

    def _model_note(self):
        # type: () -> str
        if self.options.get("max_w") is not None:
            return "estimated from CPU utilisation (/proc/stat): %.2f W idle to %.2f W fully busy" % (
                self.options["idle_w"], self.options["max_w"])
        return "estimated from CPU utilisation (/proc/stat): %.2f W idle + %.2f W per busy core, %s cores" % (
            self.options["idle_w"], self.options["per_core_w"], self.cores)

    def _probe(self):
        # type: () -> None
        try:
            self._last = self._snapshot()
        except (OSError, SensorError) as exc:
            raise SensorUnavailable("cannot estimate power: %s unreadable (%s)" % (self.stat_path, exc)) from exc
        if self.cores is None:
            self.cores = self._last[3] or 1
        if self.options.get("max_w") is not None and self.options["max_w"] < self.options["idle_w"]:
            raise SensorUnavailable("power.options.max_w (%s) is below idle_w (%s)"
                                    % (self.options["max_w"], self.options["idle_w"]))
        self.total_rail = None
        self.total_note = self._model_note()

    def _read(self):
        # type: () -> dict
        snapshot = self._snapshot()
        last, self._last = self._last, snapshot
        assert last is not None and self.cores is not None, "probe() takes the first snapshot and counts the cores"
        t_ns, busy, total, _ = snapshot
        d_total = total - last[2]
        d_busy = busy - last[1]
        if d_total <= 0:
            raise SensorError("/proc/stat did not advance in %.3f s (interval too short for USER_HZ ticks)"
                              % ((t_ns - last[0]) / 1e9))
        share = min(1.0, max(0.0, float(d_busy) / d_total))
        idle_w = self.options["idle_w"]
        if self.options.get("max_w") is not None:
            watts = idle_w + (self.options["max_w"] - idle_w) * share
        else:
            watts = idle_w + self.options["per_core_w"] * share * self.cores
        sample = make_sample((t_ns + last[0]) // 2, watts, {"cpu_estimate": watts},
                             {"busy_share": share, "busy_cores": share * self.cores,
                              "interval_ns": t_ns - last[0], "model": self.total_note})
        sample["estimated"] = True
        return sample


SENSOR_CLASS = EstimateSensor
