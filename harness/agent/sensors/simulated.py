"""A SIMULATED Jetson Nano INA3221 for the device lab, where no power rail exists.

It keeps a JetPack 4 iio tree, byte for byte the layout a real Nano has,

    ROOT/sys/bus/i2c/drivers/ina3221x/6-0040/iio:device0/
        name (ina3221x), running_mode, rail_name_{0,1,2} (POM_5V_IN, POM_5V_GPU, POM_5V_CPU),
        in_voltage{N}_input (mV), in_current{N}_input (mA), in_power{N}_input (mW),
        crit_current_limit_{N}, warn_current_limit_{N} (mA)

updated every interval from a cgroup v1 ``cpuacct.usage`` counter (nanoseconds of CPU time
used by the simulated device's cgroup): POM_5V_IN = idle_mw + per_core_mw x busy cores, so
a heavier model costs more energy. The ina3221 reader reads it unchanged (root=ROOT).

    python -m <agent package>.sensors.simulated ROOT CGROUP_CPUACCT_USAGE_FILE \
        [--idle-mw 1300] [--per-core-mw 900] [--interval-s 0.1]

runs until killed (SIGTERM / SIGINT end it cleanly). Values are written atomically
(temporary file + rename), so a reader never sees half a number.
"""

import os
import signal
import sys
import threading

from ..clock import now_ns

IIO_DEVICE = "/sys/bus/i2c/drivers/ina3221x/6-0040/iio:device0"
RAILS = ("POM_5V_IN", "POM_5V_GPU", "POM_5V_CPU")
DEFAULT_IDLE_MW = 1300       # a Nano in 10 W mode, idle, desktop off
DEFAULT_PER_CORE_MW = 900    # one Cortex-A57 core fully busy at 1.43 GHz
DEFAULT_INTERVAL_S = 0.1
CPU_IDLE_SHARE = 0.12        # part of the idle board power on the CPU rail
GPU_IDLE_SHARE = 0.03
CPU_DYNAMIC_SHARE = 0.9      # part of the load's power the CPU rail sees (the rest: losses)
BUS_MV = {"POM_5V_IN": 5096, "POM_5V_GPU": 5024, "POM_5V_CPU": 5016}
DROOP_MV_PER_W = 12          # the 5 V input sags a little under load, as a real supply does
LIMITS_MA = {"POM_5V_IN": (7000, 5000), "POM_5V_GPU": (3000, 2000), "POM_5V_CPU": (3000, 2000)}


def read_cpuacct_usage(path):
    # type: (str) -> int
    with open(path, "r") as handle:
        return int(handle.read().split()[0])


class SimulatedINA3221(object):
    """The tree and one update step; the daemon loop is write_simulated_ina3221()."""

    def __init__(self, root, cpuacct_usage_path, idle_mw=DEFAULT_IDLE_MW, per_core_mw=DEFAULT_PER_CORE_MW):
        # type: (str, str, float, float) -> None
        self.directory = os.path.join(root, IIO_DEVICE.lstrip("/"))
        self.cpuacct_usage_path = cpuacct_usage_path
        self.idle_mw = float(idle_mw)
        self.per_core_mw = float(per_core_mw)
        self._last = None  # type: tuple[int, int] | None  # (wall_ns, usage_ns)
        self.busy_cores = 0.0

    def _write(self, name, value):
        # type: (str, object) -> None
        final = os.path.join(self.directory, name)
        temporary = os.path.join(self.directory, ".%s.tmp" % name)
        with open(temporary, "w") as handle:
            handle.write("%s\n" % value)
        os.replace(temporary, final)

    def create(self, wall_ns=None):
        # type: (int | None) -> None
        """The static files, idle values, and the starting point of the CPU counter."""
        if not os.path.isdir(self.directory):
            os.makedirs(self.directory)
        self._write("name", "ina3221x")
        self._write("running_mode", 1)
        for number, rail in enumerate(RAILS):
            self._write("rail_name_%d" % number, rail)
            crit, warn = LIMITS_MA[rail]
            self._write("crit_current_limit_%d" % number, crit)
            self._write("warn_current_limit_%d" % number, warn)
        self._last = (now_ns() if wall_ns is None else wall_ns, read_cpuacct_usage(self.cpuacct_usage_path))
        self.busy_cores = 0.0
        self._write_power(self.idle_mw, 0.0)

    def step(self, wall_ns=None):
        # type: (int | None) -> float
        """Follow the counter since the last step; returns POM_5V_IN in mW."""
        wall_ns = now_ns() if wall_ns is None else wall_ns
        usage = read_cpuacct_usage(self.cpuacct_usage_path)
        if self._last is None:
            self._last = (wall_ns, usage)
        last_wall, last_usage = self._last
        self._last = (wall_ns, usage)
        if wall_ns > last_wall and usage >= last_usage:  # a reset counter (new cgroup) counts as idle
            self.busy_cores = float(usage - last_usage) / (wall_ns - last_wall)
        elif usage < last_usage:
            self.busy_cores = 0.0
        dynamic_mw = self.per_core_mw * self.busy_cores
        return self._write_power(self.idle_mw + dynamic_mw, dynamic_mw)

    def _write_power(self, total_mw, dynamic_mw):
        # type: (float, float) -> float
        powers = {
            "POM_5V_IN": total_mw,
            "POM_5V_GPU": self.idle_mw * GPU_IDLE_SHARE,
            "POM_5V_CPU": self.idle_mw * CPU_IDLE_SHARE + dynamic_mw * CPU_DYNAMIC_SHARE,
        }
        for number, rail in enumerate(RAILS):
            milliwatts = int(round(powers[rail]))
            millivolts = int(round(BUS_MV[rail] - DROOP_MV_PER_W * dynamic_mw / 1000.0))
            milliamps = int(round(milliwatts * 1000.0 / millivolts))
            self._write("in_voltage%d_input" % number, millivolts)
            self._write("in_current%d_input" % number, milliamps)
            self._write("in_power%d_input" % number, milliwatts)
        return float(int(round(total_mw)))


def write_simulated_ina3221(root, cgroup_cpuacct_path, idle_mw=DEFAULT_IDLE_MW, per_core_mw=DEFAULT_PER_CORE_MW,
                            interval_s=DEFAULT_INTERVAL_S, stop_event=None):
    # type: (str, str, float, float, float, threading.Event | None) -> None
    """Keep the simulated tree under `root` updated every `interval_s` until `stop_event` is set."""
    simulated = SimulatedINA3221(root, cgroup_cpuacct_path, idle_mw, per_core_mw)
    simulated.create()
    stop_event = stop_event or threading.Event()
    while not stop_event.wait(interval_s):
        simulated.step()


def main(argv=None):
    # type: (list[str] | None) -> int
    import argparse

    parser = argparse.ArgumentParser(
        prog="python -m <agent>.sensors.simulated",
        description="Simulate a Jetson Nano INA3221 (JetPack 4 iio sysfs) driven by a cgroup's cpuacct.usage.")
    parser.add_argument("root", help="directory that plays the device's / (the tree goes under ROOT/sys/...)")
    parser.add_argument("cpuacct_usage", help="cgroup v1 cpuacct.usage file of the simulated device")
    parser.add_argument("--idle-mw", type=float, default=DEFAULT_IDLE_MW)
    parser.add_argument("--per-core-mw", type=float, default=DEFAULT_PER_CORE_MW)
    parser.add_argument("--interval-s", type=float, default=DEFAULT_INTERVAL_S)
    args = parser.parse_args(argv)
    if not os.path.isfile(args.cpuacct_usage):
        parser.error("%s does not exist (a cgroup v1 cpuacct.usage file is expected)" % args.cpuacct_usage)
    if args.interval_s <= 0:
        parser.error("--interval-s must be > 0")
    stop = threading.Event()

    def _stop(signum, frame):
        # type: (int, object) -> None
        stop.set()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    sys.stderr.write("simulated INA3221 under %s following %s (idle %.0f mW + %.0f mW per busy core)\n"
                     % (os.path.join(args.root, IIO_DEVICE.lstrip("/")), args.cpuacct_usage,
                        args.idle_mw, args.per_core_mw))
    sys.stderr.flush()
    write_simulated_ina3221(args.root, args.cpuacct_usage, args.idle_mw, args.per_core_mw,
                            args.interval_s, stop)
    return 0


if __name__ == "__main__":
    sys.exit(main())
