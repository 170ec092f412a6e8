"""x86 package power from RAPL energy counters (Linux powercap).

    /sys/class/powercap/intel-rapl:N/energy_uj            package N, microjoules, wraps at
    /sys/class/powercap/intel-rapl:N/max_energy_range_uj  this value
    /sys/class/powercap/intel-rapl:N/name                 "package-N" (or "psys": platform)
    /sys/class/powercap/intel-rapl:N:M/...                sub-domains: core, uncore, dram

Power is the energy delta between two reads over the time between them; a sample's t_ns
is the middle of that interval. A counter that went backwards wrapped once at
max_energy_range_uj. Rails are every domain ("package-0", "package-0/core", ...); the total
is the sum of the package domains (their sub-domains are inside them and not added again;
DRAM is not inside a package's energy on most parts, and psys covers more than the
packages, so neither is added to the total).

Since Linux 5.10 (CVE-2020-8694) energy_uj is readable by root only: an unreadable counter
makes the sensor unavailable with that reason.
"""

import glob
import os

from ..clock import now_ns
from .errors import SensorError, SensorUnavailable
from .sensor import Sensor, make_sample
from .sysfs import read_number, read_text

POWERCAP_GLOB = "/sys/class/powercap/intel-rapl:*"


class Domain(object):
    def __init__(self, zone, name, directory, max_range_uj):
        # type: (str, str, str, int | None) -> None
        self.zone = zone            # "intel-rapl:0" or "intel-rapl:0:1"
        self.name = name            # "package-0" or "package-0/core"
        self.energy_path = os.path.join(directory, "energy_uj")
        self.max_range_uj = max_range_uj
        self.is_package = zone.count(":") == 1 and name.startswith("package")


class RAPLSensor(Sensor):
    kind = "rapl"
    NEVER_RUN_ON_HARDWARE = True
    OPTIONS = {"never_run_on_hardware": ("bool", None)}

    def __init__(self, options=None, root="/"):
        # type: (dict | None, str) -> None
        Sensor.__init__(self, options, root)
        self.domains = []  # type: list[Domain]
        self._last = None  # type: tuple[int, dict[str, int]] | None  # (t_ns, {zone: energy_uj})

    def _discover(self):
        # type: () -> list[Domain]
        zones = {}  # type: dict[str, tuple[str, str, int | None]]  # zone -> (name, directory, max range)
        for directory in sorted(glob.glob(self.path(POWERCAP_GLOB))):
            zone = os.path.basename(directory)
            if not os.path.exists(os.path.join(directory, "energy_uj")):
                continue
            try:
                name = read_text(os.path.join(directory, "name"))
            except OSError:
                name = zone
            try:
                max_range = int(read_number(os.path.join(directory, "max_energy_range_uj")))  # type: int | None
            except (OSError, SensorError):
                max_range = None
            zones[zone] = (name, directory, max_range)
        domains = []
        for zone in sorted(zones, key=lambda z: [int(p) for p in z.split(":")[1:] if p.isdigit()]):
            name, directory, max_range = zones[zone]
            parts = zone.split(":")
            if len(parts) > 2:
                parent = zones.get(":".join(parts[:2]))
                name = "%s/%s" % (parent[0] if parent else ":".join(parts[:2]), name)
            domains.append(Domain(zone, name, directory, max_range))
        return domains

    def _energies(self):
        # type: () -> tuple[int, dict[str, int]]
        """(the middle of the reads, {zone: energy_uj})."""
        t0 = now_ns()
        values = {}
        for domain in self.domains:
            values[domain.zone] = int(read_number(domain.energy_path))
        return (t0 + now_ns()) // 2, values

    def _probe(self):
        # type: () -> None
        self.domains = self._discover()
        if not self.domains:
            raise SensorUnavailable(
                "no RAPL domains under %s (not an Intel/AMD x86 machine, or the powercap driver is not "
                "loaded: modprobe intel_rapl_msr)" % self.path(POWERCAP_GLOB))
        try:
            self._last = self._energies()
        except PermissionError as exc:
            raise SensorUnavailable(
                "RAPL energy_uj not readable: permission denied on %s (recent kernels restrict it to root; "
                "run the agent as root or chmod o+r the energy_uj files, which resets at boot)"
                % exc.filename) from exc
        except (OSError, SensorError) as exc:
            raise SensorUnavailable("RAPL energy_uj not readable: %s" % exc) from exc
        packages = [d.name for d in self.domains if d.is_package]
        if packages:
            self.total_rail = "+".join(packages) if len(packages) > 1 else packages[0]
            self.total_note = ("sum of the package domains (%s): CPU packages only, not DRAM "
                               "(on most parts), GPU or the rest of the machine" % ", ".join(packages))
        else:
            self.total_rail = None
            self.total_note = "no package domain among %s: no total" % ", ".join(d.name for d in self.domains)

    def _read(self):
        # type: () -> dict
        t_ns, values = self._energies()
        assert self._last is not None, "probe() takes the first reading"
        last_t, last_values = self._last
        self._last = (t_ns, values)
        span_s = (t_ns - last_t) / 1e9
        if span_s <= 0:
            raise SensorError("RAPL read at the same instant as the previous one")
        rails, deltas = {}, {}  # type: dict[str, float], dict[str, int]
        for domain in self.domains:
            delta = values[domain.zone] - last_values[domain.zone]
            if delta < 0:  # the counter wrapped at max_energy_range_uj
                if not domain.max_range_uj:
                    raise SensorError("RAPL %s went backwards and its max_energy_range_uj is unknown"
                                      % domain.zone)
                delta += domain.max_range_uj
            deltas[domain.name] = delta
            rails[domain.name] = delta / 1e6 / span_s
        packages = [rails[d.name] for d in self.domains if d.is_package]
        total = sum(packages) if packages else None
        extra = {"interval_ns": t_ns - last_t, "energy_uj_delta": deltas}
        return make_sample((t_ns + last_t) // 2, total, rails, extra)

    def describe(self):
        # type: () -> dict
        described = Sensor.describe(self)
        described["rails"] = [d.name for d in self.domains]
        return described


SENSOR_CLASS = RAPLSensor
