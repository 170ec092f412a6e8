"""NVIDIA GPU board power through nvidia-smi's query loop (no Python NVML binding needed).

    nvidia-smi --query-gpu=index,power.draw,power.limit,clocks.sm,clocks.mem,temperature.gpu,
               utilization.gpu --format=csv,noheader,nounits -lms <interval>

prints one line per GPU per tick, GPUs in index order, e.g. ``0, 35.12, 250.00, 1410, 5001,
45, 12``. A value nvidia-smi cannot give is ``[N/A]`` or ``[Not Supported]``: it becomes None
with a note, never 0. The total is the sum of the GPUs' power.draw (or one GPU's, with
``power.options.gpu``); it is None when any of them has no reading. This is GPU board power
only, not the host's. A tick ends when a line's index is not above the previous line's (the
next tick began) or, once the GPU count is known, with its last GPU's line.

On recent drivers power.draw is a 1-second average (power.draw.instant is the raw value):
short load windows smear into the idle window; keep latency.min_duration_s >= a few seconds.
"""

from .errors import SensorError
from .sensor import make_sample
from .streaming import StreamingSensor

FIELDS = ("index", "power.draw", "power.limit", "clocks.sm", "clocks.mem", "temperature.gpu",
          "utilization.gpu")
EXTRA_KEYS = {"power.limit": "power_limit_w", "clocks.sm": "sm_clock_mhz", "clocks.mem": "mem_clock_mhz",
              "temperature.gpu": "temperature_c", "utilization.gpu": "utilization_pct"}


def parse_value(text):
    # type: (str) -> tuple[float | None, str | None]
    """(float or None, note or None) for one csv field of nvidia-smi (nounits)."""
    text = text.strip()
    if text.startswith("[") and text.endswith("]"):
        return None, text[1:-1]
    if text in ("N/A", ""):
        return None, text or "empty"
    try:
        return float(text), None
    except ValueError as exc:
        raise SensorError("nvidia-smi value %r is not a number" % text) from exc


def parse_gpu_line(line):
    # type: (str) -> dict
    """One csv line -> {"index": int, "power_w": float|None, ..., "notes": {field: note}}."""
    fields = [part.strip() for part in line.split(",")]
    if len(fields) != len(FIELDS):
        raise SensorError("nvidia-smi line has %d fields, expected %d (%s): %s"
                          % (len(fields), len(FIELDS), ",".join(FIELDS), line[:200]))
    try:
        index = int(fields[0])
    except ValueError as exc:
        raise SensorError("nvidia-smi line does not start with a GPU index: %s" % line[:200]) from exc
    notes = {}  # type: dict[str, str]
    gpu = {"index": index, "notes": notes}  # type: dict
    for name, text in zip(FIELDS[1:], fields[1:]):
        value, note = parse_value(text)
        gpu["power_w" if name == "power.draw" else EXTRA_KEYS[name]] = value
        if note is not None:
            notes[name] = note
    return gpu


class NVMLSensor(StreamingSensor):
    kind = "nvml"
    what = "nvidia-smi"
    missing_hint = " (it comes with the NVIDIA driver; without a GPU declare another power sensor)"
    NEVER_RUN_ON_HARDWARE = True   # checked against nvidia-smi's documented format only
    OPTIONS = {
        "command": ("argv", None),
        "gpu": ("int", None),
        "never_run_on_hardware": ("bool", None),
    }

    def __init__(self, options=None, root="/"):
        # type: (dict | None, str) -> None
        StreamingSensor.__init__(self, options, root)
        self._reset_stream_state()

    def _reset_stream_state(self):
        # type: () -> None
        StreamingSensor._reset_stream_state(self)
        self._pending = []  # type: list[tuple[int, dict]]  # (t_ns, gpu) of the tick being gathered
        self._gpu_count = None  # type: int | None  # GPUs per tick, known once the first tick is complete

    def default_argv(self):
        # type: () -> list[str]
        return ["nvidia-smi", "--query-gpu=" + ",".join(FIELDS), "--format=csv,noheader,nounits",
                "-lms", str(max(1, int(round(self.interval_s * 1000))))]

    def open(self, interval_s=None):
        # type: (float | None) -> None
        StreamingSensor.open(self, interval_s)
        self._reset_stream_state()

    def parse_line(self, t_ns, line):
        # type: (int, str) -> dict | None
        if not line.strip():
            return None
        gpu = parse_gpu_line(line)
        done = None
        if self._pending and gpu["index"] <= self._pending[-1][1]["index"]:
            done = self._pending  # this line starts the next tick
            if self._gpu_count is None:
                self._gpu_count = len(done)
            self._pending = []
        self._pending.append((t_ns, gpu))
        if self._gpu_count is not None and len(self._pending) >= self._gpu_count:
            if done is None:
                done, self._pending = self._pending, []
            else:  # the line that closed the last tick also completes its own
                self._ready.append(self._tick_sample(self._pending))
                self._pending = []
        return self._tick_sample(done) if done else None

    def _tick_sample(self, tick):
        # type: (list[tuple[int, dict]]) -> dict
        t_ns = tick[0][0]
        gpus = [gpu for _, gpu in tick]
        rails, per_gpu, notes = {}, {}, []  # type: dict[str, float | None], dict[str, dict], list[str]
        extra = {"gpus": per_gpu}  # type: dict[str, object]
        for gpu in gpus:
            name = "gpu%d" % gpu["index"]
            rails[name] = gpu["power_w"]
            per_gpu[name] = dict((key, gpu[key]) for key in EXTRA_KEYS.values())
            for field, note in sorted(gpu["notes"].items()):
                notes.append("%s %s: %s" % (name, field, note))
        if notes:
            extra["notes"] = notes
        wanted = self.options.get("gpu")
        if wanted is not None:
            chosen = [g for g in gpus if g["index"] == wanted]
            if not chosen:
                raise SensorError("power.options.gpu=%d is not among the GPUs nvidia-smi lists (%s)"
                                  % (wanted, ", ".join(str(g["index"]) for g in gpus)))
            self.total_rail = "gpu%d" % wanted
            self.total_note = "GPU %d board power (power.draw), not the host's" % wanted
        else:
            chosen = gpus
            self.total_rail = "+".join("gpu%d" % g["index"] for g in gpus)
            self.total_note = ("sum of power.draw over GPU(s) %s: GPU board power, not the host's"
                               % ", ".join(str(g["index"]) for g in gpus))
        values = [g["power_w"] for g in chosen]
        total = None if any(v is None for v in values) else sum(values)
        if total is None:
            extra["total_missing"] = "power.draw not available on %s" % ", ".join(
                "gpu%d" % g["index"] for g in chosen if g["power_w"] is None)
        return make_sample(t_ns, total, rails, extra)


SENSOR_CLASS = NVMLSensor
