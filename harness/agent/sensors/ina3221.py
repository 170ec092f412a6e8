"""Jetson INA3221 power monitors read straight from sysfs (no tool, any rate).

JetPack 5+ (hwmon driver "ina3221"):
    /sys/bus/i2c/devices/*/hwmon/hwmon*/in{N}_label   rail name
                                        in{N}_input   bus voltage, mV
                                        curr{N}_input current, mA       -> W = mV * mA / 1e6
  Channel 7 ("sum of shunt voltages") is a sum, not a rail, and rails labelled NC are
  not connected: both are skipped.
JetPack 4 (iio driver "ina3221x"):
    /sys/bus/i2c/drivers/ina3221x/*/iio:device*/rail_name_{N}, in_voltage{N}_input (mV),
    in_current{N}_input (mA), in_power{N}_input (mW; used when present)

Board total: VDD_IN or POM_5V_IN when present (the other rails are branches of it, so they
are never added to it); otherwise the sum of the rails, which misses regulator losses and
unmonitored rails (describe() says so). ``power.options.total_rail`` names another rail.
"""

import glob
import os

from ..clock import now_ns
from .errors import SensorError, SensorUnavailable
from .sensor import Sensor, make_sample
from .sysfs import read_number, read_text

TOTAL_RAILS = ("VDD_IN", "POM_5V_IN")
HWMON_GLOBS = ("/sys/bus/i2c/devices/*/hwmon/hwmon*", "/sys/bus/i2c/drivers/ina3221/*/hwmon/hwmon*")
IIO_GLOBS = ("/sys/bus/i2c/drivers/ina3221x/*/iio:device*", "/sys/bus/i2c/devices/*/iio:device*")
WHERE = ("/sys/bus/i2c/devices/*/hwmon/hwmon* (JetPack 5+) or "
         "/sys/bus/i2c/drivers/ina3221x/*/iio:device* (JetPack 4)")


def _is_unused(label):
    # type: (str) -> bool
    return label.strip().upper() == "NC" or not label.strip()


def _is_sum_channel(number, label):
    # type: (int, str) -> bool
    return number == 7 or "sum of shunt" in label.lower()


def _chip(directory):
    # type: (str) -> str
    """The i2c device (bus-address, e.g. 1-0040) a hwmon or iio directory belongs to."""
    parent = os.path.dirname(directory)
    if os.path.basename(parent) == "hwmon":
        parent = os.path.dirname(parent)
    return os.path.basename(parent)


class Channel(object):
    """One connected rail: where to read it and how."""

    def __init__(self, name, device, number, volt_path, curr_path, power_path=None):
        # type: (str, str, int, str, str, str | None) -> None
        self.name = name
        self.device = device
        self.number = number
        self.volt_path = volt_path
        self.curr_path = curr_path
        self.power_path = power_path

    def watts(self):
        # type: () -> float
        if self.power_path is not None:
            return read_number(self.power_path) / 1000.0
        return read_number(self.volt_path) * read_number(self.curr_path) / 1e6


def _hwmon_channels(directory):
    # type: (str) -> list[Channel]
    name_file = os.path.join(directory, "name")
    if os.path.exists(name_file) and read_text(name_file) != "ina3221":
        return []  # another hwmon chip on the i2c bus (a temperature sensor, ...)
    channels = []
    for label_path in sorted(glob.glob(os.path.join(directory, "in*_label"))):
        number_text = os.path.basename(label_path)[2:-len("_label")]
        if not number_text.isdigit():
            continue
        number = int(number_text)
        label = read_text(label_path)
        if _is_sum_channel(number, label) or _is_unused(label):
            continue
        enable = os.path.join(directory, "in%d_enable" % number)
        if os.path.exists(enable) and read_text(enable) == "0":
            continue
        volt = os.path.join(directory, "in%d_input" % number)
        curr = os.path.join(directory, "curr%d_input" % number)
        if not (os.path.exists(volt) and os.path.exists(curr)):
            continue
        channels.append(Channel(label, directory, number, volt, curr))
    return channels


def _iio_channels(directory):
    # type: (str) -> list[Channel]
    name_file = os.path.join(directory, "name")
    if os.path.exists(name_file) and read_text(name_file) != "ina3221x":
        return []
    channels = []
    for label_path in sorted(glob.glob(os.path.join(directory, "rail_name*"))):
        number_text = os.path.basename(label_path)[len("rail_name"):].lstrip("_")
        if not number_text.isdigit():
            continue
        number = int(number_text)
        label = read_text(label_path)
        if _is_unused(label):
            continue
        volt = os.path.join(directory, "in_voltage%d_input" % number)
        curr = os.path.join(directory, "in_current%d_input" % number)
        power_file = os.path.join(directory, "in_power%d_input" % number)
        power = power_file if os.path.exists(power_file) else None
        if power is None and not (os.path.exists(volt) and os.path.exists(curr)):
            continue
        channels.append(Channel(label, directory, number, volt, curr, power))
    return channels


class INA3221Sensor(Sensor):
    kind = "ina3221"
    NEVER_RUN_ON_HARDWARE = True
    OPTIONS = {
        "total_rail": ("str", None),
        "never_run_on_hardware": ("bool", None),
    }

    def __init__(self, options=None, root="/"):
        # type: (dict | None, str) -> None
        Sensor.__init__(self, options, root)
        self.channels = []  # type: list[Channel]
        self.layout = None  # type: str | None  # "hwmon" or "iio", once discovered

    def _devices(self, patterns):
        # type: (tuple[str, ...]) -> list[str]
        seen, found = set(), []  # type: set[str], list[str]
        for pattern in patterns:
            for directory in sorted(glob.glob(self.path(pattern))):
                real = os.path.realpath(directory)
                if real not in seen and os.path.isdir(directory):
                    seen.add(real)
                    found.append(directory)
        return found

    def discover(self):
        # type: () -> list[Channel]
        try:
            channels = []  # type: list[Channel]
            for directory in self._devices(HWMON_GLOBS):
                channels.extend(_hwmon_channels(directory))
            layout = "hwmon"
            if not channels:
                for directory in self._devices(IIO_GLOBS):
                    channels.extend(_iio_channels(directory))
                layout = "iio"
        except PermissionError as exc:
            raise SensorUnavailable("INA3221 sysfs not readable: permission denied on %s" % exc.filename) from exc
        if not channels:
            where = WHERE if self.root == "/" else "%s (under root %s)" % (WHERE, self.root)
            raise SensorUnavailable("no INA3221 under %s" % where)
        names = set()
        for channel in channels:  # the same label on two chips: keep both, named apart
            if channel.name in names:
                channel.name = "%s@%s" % (channel.name, _chip(channel.device))
            names.add(channel.name)
        self.layout = layout
        return channels

    def _probe(self):
        # type: () -> None
        self.channels = self.discover()
        names = [c.name for c in self.channels]
        override = self.options.get("total_rail")
        if override:
            if override not in names:
                raise SensorUnavailable("power.options.total_rail=%s is not among the INA3221 rails (%s)"
                                        % (override, ", ".join(names)))
            self.total_rail = override
            self.total_note = "rail %s, named by power.options.total_rail" % override
        else:
            self.total_rail = next((name for name in TOTAL_RAILS if name in names), None)
            if self.total_rail:
                self.total_note = ("%s is the board's input rail (whole-module power); the other rails "
                                   "are branches of it and are not added" % self.total_rail)
            else:
                self.total_note = ("no board-input rail (VDD_IN/POM_5V_IN): total is the sum of rails %s, "
                                   "which misses regulator losses and unmonitored rails (a lower bound)"
                                   % ", ".join(names))
        try:
            self._read()
        except PermissionError as exc:
            raise SensorUnavailable("INA3221 values not readable: permission denied on %s" % exc.filename) from exc
        except (SensorError, OSError) as exc:
            raise SensorUnavailable("INA3221 values not readable: %s" % exc) from exc

    def _read(self):
        # type: () -> dict
        t0 = now_ns()
        rails = {}  # type: dict[str, float]
        for channel in self.channels:
            rails[channel.name] = channel.watts()
        t1 = now_ns()
        if self.total_rail is not None:
            total = rails[self.total_rail]
        else:
            total = sum(rails.values())
        return make_sample((t0 + t1) // 2, total, rails, {"layout": self.layout})

    def describe(self):
        # type: () -> dict
        described = Sensor.describe(self)
        described["rails"] = [c.name for c in self.channels]
        described["layout"] = self.layout
        described["total_is_lower_bound"] = self.total_rail is None and bool(self.channels)
        return described


SENSOR_CLASS = INA3221Sensor
