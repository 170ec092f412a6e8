"""Power sensors sampled on the device, chosen by the target file's ``power.sensor``.

    sensor = open_sensor(kind, options, root="/")   # SensorOptionError on a bad option
    sensor.probe()                                  # SensorUnavailable(reason) if it cannot work
    sampler = Sampler(sensor).start()
    sampler.idle_window(); sampler.mark("load_begin"); ...; sampler.mark("load_end")
    summary = summarize_run(sampler.stop(), inferences, latency_ms_mean)

``root`` prefixes every sysfs / procfs path a reader opens, so tests point the readers at
fixture trees written in the exact layout real devices have. All modules are stdlib only
and import nothing at import time.

    errors.py     what goes wrong (SensorOptionError, SensorUnavailable, SensorError, SensorGone)
    sensor.py     the Sensor interface, its options and the sample format (make_sample)
    sysfs.py      reading one sysfs / procfs attribute
    streaming.py  sensors fed by a tool's output lines (LineStream, StreamingSensor)
    sampler.py    the background Sampler and its markers
    summary.py    idle / load power and energy per inference (summarize_run)
"""

from . import command, estimate, ina3221, none, nvml, rapl, tegrastats
from .errors import SensorError, SensorGone, SensorOptionError, SensorUnavailable
from .sampler import Sampler
from .sensor import Sensor
from .summary import summarize_power, summarize_run, unavailable_summary

__all__ = ["SENSORS", "Sampler", "Sensor", "SensorError", "SensorGone", "SensorOptionError", "SensorUnavailable",
           "open_sensor", "summarize_power", "summarize_run", "unavailable_summary"]

# power.sensor -> module (inventory.POWER_SENSORS lists the same names); each has SENSOR_CLASS
SENSORS = {
    "tegrastats": tegrastats,
    "ina3221": ina3221,
    "rapl": rapl,
    "nvml": nvml,
    "command": command,
    "estimate": estimate,
    "none": none,
}


def open_sensor(kind, options=None, root="/"):
    # type: (str, dict | None, str) -> Sensor
    """The sensor for `kind` with its options checked; nothing is read until probe()."""
    if kind not in SENSORS:
        raise SensorOptionError("unknown power sensor %r (this agent knows: %s)"
                                % (kind, ", ".join(sorted(SENSORS))))
    return SENSORS[kind].SENSOR_CLASS(options or {}, root=root)
