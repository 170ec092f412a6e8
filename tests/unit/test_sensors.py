"""Power sensor readers (harness/agent/sensors) against the formats real devices produce.

No fakes of the readers' inputs beyond what a real device would show: sysfs trees are
copied from tests/unit/fixtures/power/sysfs (real layouts, incl. the /sys/bus symlinks),
tool output is fed by a child process that prints the fixture lines the way tegrastats /
nvidia-smi print them (one line per interval, flushed), /proc/stat is the real one or a
fixture snapshot advanced tick by tick. See tests/unit/fixtures/power/README.md.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import pytest
from helpers.interpreters import pyenv_python_or_fail

import harness.agent
from harness.agent.clock import now_ns
from harness.agent.sensors import (
    SENSORS,
    Sampler,
    SensorError,
    SensorOptionError,
    SensorUnavailable,
    open_sensor,
    summarize_power,
    summarize_run,
    unavailable_summary,
)
from harness.agent.sensors import command as command_sensor
from harness.agent.sensors import nvml as nvml_sensor
from harness.agent.sensors import tegrastats as tegrastats_sensor
from harness.agent.sensors.simulated import IIO_DEVICE, SimulatedINA3221
from harness.config.targets import POWER_SENSORS

FIXTURES = Path(__file__).parent / "fixtures" / "power"
TEGRASTATS = FIXTURES / "tegrastats"
NVIDIA_SMI = FIXTURES / "nvidia-smi"
AGENT_DIR = Path(harness.agent.__file__).resolve().parent

# Prints a recorded file's lines like the tool does: one flushed line per interval, then
# starts over (the tools never stop by themselves) unless "once" is given.
FEEDER = (
    "import sys, time\n"
    "lines = [l for l in open(sys.argv[1]).read().splitlines()]\n"
    "interval, once = float(sys.argv[2]), len(sys.argv) > 3\n"
    "i = 0\n"
    "while True:\n"
    "    time.sleep(interval)\n"
    "    print(lines[i % len(lines)], flush=True)\n"
    "    i += 1\n"
    "    if once and i == len(lines):\n"
    "        sys.exit(3)\n"
)


def feeder(path: Path, interval_s: float = 0.02, once: bool = False) -> list[str]:
    argv = [sys.executable, "-c", FEEDER, str(path), str(interval_s)]
    return argv + ["once"] if once else argv


def lines_of(path: Path) -> list[str]:
    return path.read_text().splitlines()


def sysfs(name: str, tmp_path: Path) -> str:
    """A private copy of a fixture tree (symlinks kept) to use as the readers' root."""
    root = tmp_path / name
    shutil.copytree(FIXTURES / "sysfs" / name, root, symlinks=True)
    return str(root)


def write(path: str | Path, value: object) -> None:
    Path(path).write_text("%s\n" % value)


# -- registry and options ------------------------------------------------------------------

def test_registry_covers_every_sensor_a_target_file_may_declare() -> None:
    assert set(SENSORS) == set(POWER_SENSORS)
    for kind in POWER_SENSORS:
        sensor = open_sensor(kind, {"argv": ["true"]} if kind == "command" else {})
        assert sensor.describe()["sensor"] == kind


def test_unknown_sensor_and_bad_options_are_named() -> None:
    with pytest.raises(SensorOptionError, match="unknown power sensor 'pmic'.*tegrastats"):
        open_sensor("pmic", {})
    with pytest.raises(SensorOptionError, match="unknown option.*rail_name.*known: .*total_rail"):
        open_sensor("ina3221", {"rail_name": "VDD_IN"})
    with pytest.raises(SensorOptionError, match="interval_ms='fast' must be a number"):
        open_sensor("rapl", {"interval_ms": "fast"})
    with pytest.raises(SensorOptionError, match="needs power.options.argv"):
        open_sensor("command", {})
    with pytest.raises(SensorOptionError, match="argv=.*no shell"):
        open_sensor("command", {"argv": "cat /sys/power"})


def test_none_is_always_unavailable() -> None:
    sensor = open_sensor("none", {})
    with pytest.raises(SensorUnavailable, match="no power sensor declared for this target"):
        sensor.probe()
    with pytest.raises(SensorUnavailable):
        Sampler(sensor).start()
    summary = unavailable_summary("no power sensor declared for this target", sensor.describe())
    assert summary["status"] == "unavailable: no power sensor declared for this target"
    assert summary["energy_per_inference_mj"] is None and summary["load_mean_w"] is None


# -- tegrastats ---------------------------------------------------------------------------

TEGRASTATS_CASES = {
    # file: (total rail, total W of line 1, rails of line 1 in W, rails_sum_w or None)
    "nano_jp4.txt": ("POM_5V_IN", 0.933, {"POM_5V_IN": 0.933, "POM_5V_GPU": 0.0, "POM_5V_CPU": 0.158}, None),
    "tx2_jp4.txt": ("VDD_IN", 1.038, {"VDD_SYS_GPU": 0.153, "VDD_SYS_SOC": 0.613, "VDD_4V0_WIFI": 0.0,
                                      "VDD_IN": 1.038, "VDD_SYS_CPU": 0.306, "VDD_SYS_DDR": 0.211}, None),
    "xavier_jp4.txt": (None, None, {"GPU": 1.155, "CPU": 0.385, "SOC": 2.504, "CV": 0.0, "VDDRQ": 0.192,
                                    "SYS5V": 2.692}, 6.928),
    "orin_agx_jp5.txt": (None, None, {"VDD_GPU_SOC": 2.390, "VDD_CPU_CV": 0.796, "VIN_SYS_5V0": 3.984,
                                      "VDDQ_VDD2_1V8AO": 0.503}, 7.673),
    "orin_nx_jp5.txt": ("VDD_IN", 5.048, {"VDD_IN": 5.048, "VDD_CPU_GPU_CV": 0.605, "VDD_SOC": 1.391}, None),
    "orin_agx_jp6.txt": (None, None, {"VDD_GPU_SOC": 5.139, "VDD_CPU_CV": 1.186, "VIN_SYS_5V0": 4.242,
                                      "VDDQ_VDD2_1V8AO": 0.704}, 11.271),
    "orin_nano_jp6.txt": ("VDD_IN", 4.447, {"VDD_IN": 4.447, "VDD_CPU_GPU_CV": 0.516, "VDD_SOC": 1.317}, None),
}


@pytest.mark.parametrize("name", sorted(TEGRASTATS_CASES))
def test_tegrastats_every_format_rails_and_total(name: str) -> None:
    total_rail, total_w, rails, rails_sum = TEGRASTATS_CASES[name]
    sensor = open_sensor("tegrastats", {})
    sample = sensor.sample_from_line(123, lines_of(TEGRASTATS / name)[0])
    assert sample["t_ns"] == 123
    assert sample["rails"] == pytest.approx(rails)
    assert "NC" not in sample["rails"]
    assert sensor.describe()["total_rail"] == total_rail
    if total_rail is None:
        assert sample["total_w"] is None  # no made-up total
        assert sample["extra"]["rails_sum_w"] == pytest.approx(rails_sum)
        assert "no board-total rail" in sensor.describe()["total_note"]
        assert "lower bound" in sensor.describe()["total_note"]
    else:
        assert sample["total_w"] == pytest.approx(total_w)
        assert sample["total_w"] == sample["rails"][total_rail]  # the input rail alone, not a sum
        assert "rails_sum_w" not in sample["extra"]


def test_tegrastats_xavier_says_there_is_no_total_rail() -> None:
    sensor = open_sensor("tegrastats", {})
    sensor.sample_from_line(1, lines_of(TEGRASTATS / "xavier_jp4.txt")[0])
    assert sensor.describe()["total_note"] == (
        "no board-total rail on this board (Xavier): sum of listed rails is a lower bound (extra.rails_sum_w)")


def test_tegrastats_extras_cpu_gpu_memory_temperatures() -> None:
    parse = tegrastats_sensor.parse_line
    nano = parse(lines_of(TEGRASTATS / "nano_jp4.txt")[0])["extra"]
    assert nano["ram_used_mb"] == 1215 and nano["ram_total_mb"] == 3964
    assert nano["swap_used_mb"] == 0 and nano["swap_total_mb"] == 1982
    assert nano["cpu"] == [{"load_pct": 3, "freq_mhz": 102}, {"load_pct": 2, "freq_mhz": 102},
                           {"load_pct": 0, "freq_mhz": 102}, {"load_pct": 0, "freq_mhz": 102}]
    assert nano["emc_load_pct"] == 0 and nano["emc_freq_mhz"] == [1600]
    assert nano["gpu_load_pct"] == 0 and nano["gpu_freq_mhz"] == [76]
    assert nano["temps_c"] == {"PLL": 30.0, "CPU": 32.5, "PMIC": 100.0, "GPU": 31.0, "AO": 37.5, "thermal": 31.75}
    tx2 = parse(lines_of(TEGRASTATS / "tx2_jp4.txt")[1])["extra"]
    assert tx2["cpu"][1] is None and tx2["cpu"][2] is None  # Denver cores "off"
    assert tx2["cpu"][0] == {"load_pct": 88, "freq_mhz": 2035}
    orin = parse(lines_of(TEGRASTATS / "orin_agx_jp5.txt")[1])["extra"]
    assert orin["tegrastats_time"] == "11-22-2026 10:00:02"
    assert orin["gpu_load_pct"] == 96 and orin["gpu_freq_mhz"] == [1300, 1300]
    assert orin["temps_c"]["GPU"] == pytest.approx(44.062) and orin["temps_c"]["CV0"] is None  # -256C: off
    jp6 = parse(lines_of(TEGRASTATS / "orin_agx_jp6.txt")[0])
    assert jp6["extra"]["gpu_load_pct"] == 12 and jp6["extra"]["gpu_freq_mhz"] == [1300, 1300]
    assert jp6["rails_mw"]["VDD_GPU_SOC"] == [5139, 5139, 5139]
    assert jp6["extra"]["temps_c"]["tj"] == 46.5


def test_tegrastats_three_value_rails_use_the_first_value() -> None:
    sensor = open_sensor("tegrastats", {})
    sample = sensor.sample_from_line(1, lines_of(TEGRASTATS / "orin_nano_jp6.txt")[1])
    assert sample["total_w"] == pytest.approx(9.734)
    assert sample["extra"]["rails_mw_reported"]["VDD_IN"] == [9734, 7090, 9734]


def test_tegrastats_total_rail_option() -> None:
    sensor = open_sensor("tegrastats", {"total_rail": "VIN_SYS_5V0"})
    sample = sensor.sample_from_line(1, lines_of(TEGRASTATS / "orin_agx_jp5.txt")[0])
    assert sample["total_w"] == pytest.approx(3.984)
    assert "named by power.options.total_rail" in sensor.describe()["total_note"]


def test_tegrastats_line_without_rails_is_an_error_not_zero() -> None:
    sensor = open_sensor("tegrastats", {})
    with pytest.raises(SensorError, match="no power rails"):
        sensor.sample_from_line(1, lines_of(TEGRASTATS / "nano_2gb_jp4.txt")[0])


def test_tegrastats_runs_the_tool_as_an_argv_list() -> None:
    assert open_sensor("tegrastats", {"interval_ms": 250}).argv() == ["tegrastats", "--interval", "250"]
    assert open_sensor("tegrastats", {}).argv() == ["tegrastats", "--interval", "100"]


def test_tegrastats_missing_is_unavailable(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # a PATH without tegrastats, as on any non-Jetson
    with pytest.raises(SensorUnavailable, match="tegrastats not found on PATH"):
        open_sensor("tegrastats", {}).probe()


def test_tegrastats_board_without_rails_is_unavailable() -> None:
    sensor = open_sensor("tegrastats", {"command": feeder(TEGRASTATS / "nano_2gb_jp4.txt")})
    with pytest.raises(SensorUnavailable, match="no power rails"):
        sensor.probe()


def test_tegrastats_streamed_through_the_sampler() -> None:
    sensor = open_sensor("tegrastats", {"command": feeder(TEGRASTATS / "orin_nx_jp5.txt", 0.02)})
    sensor.probe()
    sampler = Sampler(sensor, 0.02).start()
    sampler.mark("load_begin")
    assert sampler.wait_for_samples(6, 10)
    sampler.mark("load_end")
    run = sampler.stop()
    samples = run["samples"]
    assert len(samples) >= 6 and run["errors"] == []
    assert [s["t_ns"] for s in samples] == sorted(s["t_ns"] for s in samples)
    assert {s["total_w"] for s in samples} <= {5.048, 12.731}
    assert {round(s["total_w"], 3) for s in samples[:2]} == {5.048, 12.731}
    assert run["markers"]["load_begin"] < samples[0]["t_ns"]
    assert run["sensor"]["total_rail"] == "VDD_IN" and run["sensor"]["sensor"] == "tegrastats"
    assert run["sensor"]["never_run_on_hardware"] is True


def test_tegrastats_exiting_mid_run_is_recorded() -> None:
    sensor = open_sensor("tegrastats", {"command": feeder(TEGRASTATS / "nano_jp4.txt", 0.02, once=True)})
    sampler = Sampler(sensor, 0.02).start()
    deadline = time.monotonic() + 10
    while not sampler._errors and time.monotonic() < deadline:
        time.sleep(0.02)
    run = sampler.stop()
    assert [round(s["total_w"], 3) for s in run["samples"]] == [0.933, 2.958, 4.796]
    assert len(run["errors"]) == 1
    assert "tegrastats exited (code 3)" in run["errors"][0]["message"]
    assert "sampling stopped" in run["errors"][0]["message"]


# -- INA3221 sysfs -------------------------------------------------------------------------

def test_ina3221_orin_nx_hwmon_vdd_in_is_the_total(tmp_path: Path) -> None:
    sensor = open_sensor("ina3221", {}, root=sysfs("orin_nx_jp5", tmp_path))
    sensor.probe()
    sample = sensor.read()
    assert sample["rails"] == pytest.approx({"VDD_IN": 5.048, "VDD_CPU_GPU_CV": 5.040 * 0.120,
                                             "VDD_SOC": 5.040 * 0.276})
    assert sample["total_w"] == sample["rails"]["VDD_IN"]
    assert sample["total_w"] != pytest.approx(sum(sample["rails"].values()))  # no double counting
    described = sensor.describe()
    assert described["total_rail"] == "VDD_IN" and described["layout"] == "hwmon"
    assert described["total_is_lower_bound"] is False


def test_ina3221_orin_agx_two_chips_skips_nc_and_sum_of_shunts(tmp_path: Path) -> None:
    root = sysfs("orin_agx_jp5", tmp_path)
    sensor = open_sensor("ina3221", {}, root=root)
    sensor.probe()
    sample = sensor.read()
    # each chip is reachable through /sys/bus/i2c/devices and /sys/bus/i2c/drivers: read once
    assert sorted(sample["rails"]) == ["VDDQ_VDD2_1V8AO", "VDD_CPU_CV", "VDD_GPU_SOC", "VIN_SYS_5V0"]
    assert sample["rails"]["VDD_GPU_SOC"] == pytest.approx(19.144 * 0.125)
    assert sample["rails"]["VDDQ_VDD2_1V8AO"] == pytest.approx(5.024 * 0.100)
    assert sample["total_w"] == pytest.approx(sum(sample["rails"].values()))
    described = sensor.describe()
    assert described["total_rail"] is None and described["total_is_lower_bound"] is True
    assert "sum of rails" in described["total_note"] and "lower bound" in described["total_note"]
    hwmon = Path(root, "sys/bus/i2c/devices/1-0040/hwmon/hwmon3")
    assert (hwmon / "in7_label").read_text() == "sum of shunt voltages\n"  # present, and skipped


def test_ina3221_xavier_nx_hwmon(tmp_path: Path) -> None:
    sensor = open_sensor("ina3221", {}, root=sysfs("xavier_nx_jp5", tmp_path))
    sample = sensor.read()  # probes on first use
    assert sensor.describe()["total_rail"] == "VDD_IN"
    assert sample["total_w"] == pytest.approx(5.016 * 0.936)
    assert len(sample["rails"]) == 3


def test_ina3221_nano_jetpack4_iio_uses_in_power(tmp_path: Path) -> None:
    root = sysfs("nano_jp4", tmp_path)
    sensor = open_sensor("ina3221", {}, root=root)
    sensor.probe()
    sample = sensor.read()
    assert sample["rails"] == {"POM_5V_IN": 0.933, "POM_5V_GPU": 0.0, "POM_5V_CPU": 0.155}
    assert sample["total_w"] == 0.933  # POM_5V_IN alone: GPU and CPU are branches of it
    assert sensor.describe()["layout"] == "iio"
    iio = Path(root, "sys/bus/i2c/drivers/ina3221x/6-0040/iio:device0")
    write(iio / "in_power0_input", 4796)
    assert sensor.read()["total_w"] == 4.796


def test_ina3221_tx2_iio_total_is_vdd_in_on_the_second_chip(tmp_path: Path) -> None:
    sensor = open_sensor("ina3221", {}, root=sysfs("tx2_jp4", tmp_path))
    sample = sensor.read()
    assert len(sample["rails"]) == 6
    assert sample["total_w"] == sample["rails"]["VDD_IN"] == pytest.approx(19.136 * 0.054, abs=1e-3)
    assert sensor.describe()["total_rail"] == "VDD_IN"


def test_ina3221_total_rail_option_and_a_wrong_one(tmp_path: Path) -> None:
    root = sysfs("orin_agx_jp5", tmp_path)
    sensor = open_sensor("ina3221", {"total_rail": "VIN_SYS_5V0"}, root=root)
    assert sensor.read()["total_w"] == pytest.approx(5.016 * 0.794)
    with pytest.raises(SensorUnavailable, match="total_rail=VDD_IN is not among"):
        open_sensor("ina3221", {"total_rail": "VDD_IN"}, root=root).probe()


def test_ina3221_absent_is_unavailable_with_where_it_looked(tmp_path: Path) -> None:
    with pytest.raises(SensorUnavailable, match=r"no INA3221 under /sys/bus/i2c/devices/\*/hwmon/hwmon\*"):
        open_sensor("ina3221", {}, root=str(tmp_path)).probe()
    # a Jetson-less machine's own /sys, read for real
    with pytest.raises(SensorUnavailable, match="no INA3221 under"):
        open_sensor("ina3221", {}).probe()


def test_read_errors_mid_sampling_are_recorded_and_sampling_continues(tmp_path: Path) -> None:
    root = sysfs("nano_jp4", tmp_path)
    power = Path(root, "sys/bus/i2c/drivers/ina3221x/6-0040/iio:device0/in_power0_input")
    sampler = Sampler(open_sensor("ina3221", {}, root=root), 0.01).start()
    assert sampler.wait_for_samples(3, 5)
    power.rename(power.with_suffix(".gone"))  # the driver unbound: the attribute vanishes
    deadline = time.monotonic() + 5
    while len(sampler._errors) < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    power.with_suffix(".gone").rename(power)
    write(power, 2958)
    before = len(sampler._samples)
    assert sampler.wait_for_samples(before + 3, 5)
    run = sampler.stop()
    assert len(run["errors"]) >= 2
    assert "in_power0_input" in run["errors"][0]["message"]
    totals = [s["total_w"] for s in run["samples"]]
    assert 0 not in totals and None not in totals  # never a silent 0 for the outage
    assert totals[0] == 0.933 and totals[-1] == 2.958


def test_garbage_in_a_sysfs_value_is_an_error_naming_the_file(tmp_path: Path) -> None:
    root = sysfs("nano_jp4", tmp_path)
    sensor = open_sensor("ina3221", {}, root=root)
    sensor.probe()
    write(Path(root, "sys/bus/i2c/drivers/ina3221x/6-0040/iio:device0/in_power2_input"), "")
    with pytest.raises(SensorError, match="in_power2_input does not hold a number"):
        sensor.read()


# -- RAPL ----------------------------------------------------------------------------------

def _zone(root: str, zone: str) -> Path:
    return Path(root, "sys/class/powercap", zone)


def test_rapl_power_from_energy_deltas_packages_summed_subdomains_as_rails(tmp_path: Path) -> None:
    root = sysfs("rapl_desktop", tmp_path)
    sensor = open_sensor("rapl", {}, root=root)
    sensor.probe()
    deltas = {"intel-rapl:0": 3_000_000, "intel-rapl:0:0": 2_000_000, "intel-rapl:0:1": 250_000,
              "intel-rapl:0:2": 400_000, "intel-rapl:1": 6_000_000}
    for zone, delta in deltas.items():
        energy = _zone(root, zone) / "energy_uj"
        write(energy, int(energy.read_text()) + delta)
    sample = sensor.read()
    span_s = sample["extra"]["interval_ns"] / 1e9
    assert sample["extra"]["energy_uj_delta"] == {
        "package-0": 3_000_000, "package-0/core": 2_000_000, "package-0/uncore": 250_000,
        "package-0/dram": 400_000, "psys": 6_000_000}
    assert sample["rails"]["package-0/core"] == pytest.approx(2.0 / span_s)
    assert sample["total_w"] == pytest.approx(3.0 / span_s)  # the package only: not core, dram or psys again
    described = sensor.describe()
    assert described["total_rail"] == "package-0"
    assert described["rails"] == ["package-0", "package-0/core", "package-0/uncore", "package-0/dram", "psys"]
    assert "not DRAM" in described["total_note"]


def test_rapl_two_packages_are_summed(tmp_path: Path) -> None:
    root = sysfs("rapl_server", tmp_path)
    sensor = open_sensor("rapl", {}, root=root)
    sensor.probe()
    for zone, delta in (("intel-rapl:0", 5_000_000), ("intel-rapl:1", 7_000_000), ("intel-rapl:0:0", 1_000_000)):
        energy = _zone(root, zone) / "energy_uj"
        write(energy, int(energy.read_text()) + delta)
    sample = sensor.read()
    span_s = sample["extra"]["interval_ns"] / 1e9
    assert sample["total_w"] == pytest.approx(12.0 / span_s)
    assert sensor.describe()["total_rail"] == "package-0+package-1"
    assert sample["rails"]["package-0/dram"] == pytest.approx(1.0 / span_s)
    assert sample["rails"]["package-1/dram"] == 0.0


def test_rapl_wrap_around_at_max_energy_range(tmp_path: Path) -> None:
    root = sysfs("rapl_server", tmp_path)
    package = _zone(root, "intel-rapl:0")
    max_range = int((package / "max_energy_range_uj").read_text())
    write(package / "energy_uj", max_range - 1_000_000)
    sensor = open_sensor("rapl", {}, root=root)
    sensor.probe()
    write(package / "energy_uj", 2_500_000)  # wrapped
    sample = sensor.read()
    assert sample["extra"]["energy_uj_delta"]["package-0"] == 3_500_000
    assert sample["rails"]["package-0"] == pytest.approx(3.5 / (sample["extra"]["interval_ns"] / 1e9))
    assert sample["rails"]["package-0"] > 0


def _probe_as_nobody(root: str) -> str:
    """Probe RAPL in a forked child that dropped root, as the agent runs on a locked-down host."""
    reader, writer = os.pipe()
    pid = os.fork()
    if pid == 0:  # child: no exec, the reader code is already loaded
        try:
            os.close(reader)
            os.setgroups([])
            os.setgid(65534)
            os.setuid(65534)
            try:
                open_sensor("rapl", {}, root=root).probe()
                message = "probe succeeded"
            except SensorUnavailable as exc:
                message = "unavailable: " + exc.reason
            os.write(writer, message.encode())
        finally:
            os._exit(0)
    os.close(writer)
    with os.fdopen(reader) as pipe:
        message = pipe.read()
    os.waitpid(pid, 0)
    return message


def test_rapl_unreadable_energy_is_unavailable_with_the_reason() -> None:
    top = tempfile.mkdtemp(prefix="rapl-perm-", dir="/tmp")
    try:
        os.chmod(top, 0o755)  # traversable by the unprivileged prober; energy_uj itself is not readable
        root = os.path.join(top, "root")
        shutil.copytree(FIXTURES / "sysfs" / "rapl_desktop", root, symlinks=True)
        for energy in Path(root).glob("sys/devices/virtual/powercap/intel-rapl/**/energy_uj"):
            os.chmod(energy, 0o400)  # what Linux >= 5.10 does (CVE-2020-8694)
        if os.geteuid() == 0:
            message = _probe_as_nobody(root)
        else:
            for energy in Path(root).glob("sys/devices/virtual/powercap/intel-rapl/**/energy_uj"):
                os.chmod(energy, 0)
            with pytest.raises(SensorUnavailable) as caught:
                open_sensor("rapl", {}, root=root).probe()
            message = "unavailable: " + caught.value.reason
    finally:
        shutil.rmtree(top)
    assert message.startswith("unavailable: RAPL energy_uj not readable: permission denied"), message
    assert "energy_uj" in message and "root" in message


def test_rapl_absent_is_unavailable(tmp_path: Path) -> None:
    with pytest.raises(SensorUnavailable, match="no RAPL domains under"):
        open_sensor("rapl", {}, root=str(tmp_path)).probe()


# -- nvidia-smi ----------------------------------------------------------------------------

def test_nvml_parses_a_query_line() -> None:
    gpu = nvml_sensor.parse_gpu_line("0, 35.12, 250.00, 1410, 5001, 45, 12")
    assert gpu == {"index": 0, "power_w": 35.12, "power_limit_w": 250.0, "sm_clock_mhz": 1410.0,
                   "mem_clock_mhz": 5001.0, "temperature_c": 45.0, "utilization_pct": 12.0, "notes": {}}
    missing = nvml_sensor.parse_gpu_line("0, [N/A], [Not Supported], 1530, 5001, 41, 3")
    assert missing["power_w"] is None and missing["power_limit_w"] is None
    assert missing["notes"] == {"power.draw": "N/A", "power.limit": "Not Supported"}
    with pytest.raises(SensorError, match="7"):
        nvml_sensor.parse_gpu_line("NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver.")


def test_nvml_runs_nvidia_smi_as_an_argv_list() -> None:
    assert open_sensor("nvml", {"interval_ms": 100}).argv() == [
        "nvidia-smi",
        "--query-gpu=index,power.draw,power.limit,clocks.sm,clocks.mem,temperature.gpu,utilization.gpu",
        "--format=csv,noheader,nounits", "-lms", "100"]


def _stream(kind: str, options: dict, count: int) -> dict:
    sensor = open_sensor(kind, options)
    sensor.probe()
    sampler = Sampler(sensor, 0.02).start()
    assert sampler.wait_for_samples(count, 10)
    return sampler.stop()


def test_nvml_one_gpu_streamed() -> None:
    run = _stream("nvml", {"command": feeder(NVIDIA_SMI / "one_gpu.txt")}, 4)
    totals = [s["total_w"] for s in run["samples"]]
    assert set(totals) <= {35.12, 36.40, 182.77, 191.03} and len(set(totals)) >= 3
    first = run["samples"][0]
    assert first["rails"] == {"gpu0": first["total_w"]}
    assert first["extra"]["gpus"]["gpu0"]["power_limit_w"] == 250.0
    assert run["sensor"]["total_rail"] == "gpu0" and run["errors"] == []
    assert run["sensor"]["never_run_on_hardware"] is True


def test_nvml_two_gpus_one_tick_per_sample_and_gpu_option() -> None:
    run = _stream("nvml", {"command": feeder(NVIDIA_SMI / "two_gpus.txt", 0.01)}, 4)
    for sample in run["samples"]:
        assert sorted(sample["rails"]) == ["gpu0", "gpu1"]
        assert sample["total_w"] == pytest.approx(sample["rails"]["gpu0"] + sample["rails"]["gpu1"])
    assert {round(s["total_w"], 2) for s in run["samples"]} <= {120.15, 346.46, 350.21}
    run = _stream("nvml", {"command": feeder(NVIDIA_SMI / "two_gpus.txt", 0.01), "gpu": 1,
                           "never_run_on_hardware": False}, 3)
    assert {s["total_w"] for s in run["samples"]} <= {58.90, 59.02, 59.11}
    assert run["sensor"]["total_rail"] == "gpu1" and run["sensor"]["never_run_on_hardware"] is False


def test_nvml_power_not_supported_is_none_with_a_note_never_zero() -> None:
    run = _stream("nvml", {"command": feeder(NVIDIA_SMI / "power_not_supported.txt")}, 3)
    assert all(s["total_w"] is None for s in run["samples"])
    assert "gpu0 power.draw: N/A" in run["samples"][0]["extra"]["notes"]
    run["markers"] = {"idle_begin": 0, "idle_end": 1, "load_begin": 2, "load_end": now_ns()}
    summary = summarize_run(run, inferences=100, latency_ms_mean=5.0)
    assert summary["status"].startswith("unavailable: ")
    assert "power.draw not available on gpu0" in summary["status"]
    partly = _stream("nvml", {"command": feeder(NVIDIA_SMI / "partly_not_supported.txt")}, 3)
    assert {s["total_w"] for s in partly["samples"]} <= {22.31, 23.05, 41.66}
    assert partly["samples"][0]["extra"]["gpus"]["gpu0"]["temperature_c"] is None


def test_nvml_missing_is_unavailable(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(SensorUnavailable, match="nvidia-smi not found on PATH"):
        open_sensor("nvml", {}).probe()


def test_nvml_failing_tool_is_unavailable_with_its_message(tmp_path: Path) -> None:
    failing = tmp_path / "smi.txt"
    failing.write_text("NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver. "
                       "Make sure that the latest NVIDIA driver is installed and running.\n")
    sensor = open_sensor("nvml", {"command": feeder(failing, 0.01, once=True)})
    with pytest.raises(SensorUnavailable, match="nvidia-smi exited.*NVIDIA-SMI has failed"):
        sensor.probe()


# -- external meter command ----------------------------------------------------------------

@pytest.mark.parametrize("text, watts", [("4.87", 4.87), ("4.87 W", 4.87), ("4.87W", 4.87), ("4870 mW", 4.87),
                                         ("4870000 uW", 4.87), ("  5\n", 5.0), ("1.2e1 W", 12.0)])
def test_command_output_formats(text: str, watts: float) -> None:
    assert command_sensor.parse_watts(text) == pytest.approx(watts)


@pytest.mark.parametrize("text", ["", "n/a", "4.87 kWh", "Power: 4.87 W", "-1.0", "4.87 W\n5.0 W"])
def test_command_unparseable_output_is_an_error(text: str) -> None:
    with pytest.raises(SensorError):
        command_sensor.parse_watts(text)


METER = (
    "import os, sys\n"
    "path = sys.argv[1]\n"
    "n = int(open(path).read())\n"
    "open(path + '.tmp', 'w').write(str(n + 1))\n"
    "os.replace(path + '.tmp', path)\n"
    "outputs = ['4.87', '4870 mW', 'sensor busy', '5.1 W']\n"
    "if n == 4:\n"
    "    sys.stderr.write('i2c read failed\\n'); sys.exit(2)\n"
    "print(outputs[n % len(outputs)])\n"
)


def test_command_meter_parse_errors_are_recorded_not_zeros(tmp_path: Path) -> None:
    counter = tmp_path / "calls"
    counter.write_text("0")
    sensor = open_sensor("command", {"argv": [sys.executable, "-c", METER, str(counter)], "interval_ms": 10})
    sensor.probe()  # call 0: 4.87
    sampler = Sampler(sensor).start()
    deadline = time.monotonic() + 10
    while int(counter.read_text()) < 9 and time.monotonic() < deadline:
        time.sleep(0.01)
    run = sampler.stop()
    totals = [s["total_w"] for s in run["samples"]]
    assert totals[:3] == [4.87, 5.1, 4.87]  # calls 1 (4870 mW), 3, 5: call 2 printed garbage, 4 failed
    assert 0 not in totals and None not in totals
    messages = [e["message"] for e in run["errors"]]
    assert any("cannot read a power value from 'sensor busy'" in m for m in messages)
    assert any("exited with code 2: i2c read failed" in m for m in messages)


def test_command_missing_is_unavailable() -> None:
    with pytest.raises(SensorUnavailable, match="power command not found: /nonexistent/meter"):
        open_sensor("command", {"argv": ["/nonexistent/meter"]}).probe()


# -- estimate ------------------------------------------------------------------------------

def _advance_stat(path: Path, busy_per_cpu: list[int], idle_per_cpu: list[int]) -> None:
    """Add ticks to a /proc/stat snapshot the way the kernel does: per cpu and in the sum."""
    lines = path.read_text().splitlines()
    rows = {line.split()[0]: [int(v) for v in line.split()[1:]] for line in lines if line.startswith("cpu")}
    for index, (busy, idle) in enumerate(zip(busy_per_cpu, idle_per_cpu)):
        rows["cpu%d" % index][0] += busy  # user
        rows["cpu%d" % index][3] += idle
    rows["cpu"] = [sum(rows["cpu%d" % i][k] for i in range(len(busy_per_cpu))) for k in range(10)]
    out = []
    for line in lines:
        name = line.split()[0] if line.strip() else ""
        if name in rows:
            prefix = "cpu  " if name == "cpu" else name + " "
            out.append(prefix + " ".join(str(v) for v in rows[name]))
        else:
            out.append(line)
    path.write_text("\n".join(out) + "\n")


def test_estimate_from_proc_stat_is_labelled_estimated(tmp_path: Path) -> None:
    stat_file = tmp_path / "proc" / "stat"
    stat_file.parent.mkdir()
    shutil.copy(FIXTURES / "proc" / "stat_nano.txt", stat_file)
    sensor = open_sensor("estimate", {}, root=str(tmp_path))
    sensor.probe()
    described = sensor.describe()
    assert described["estimated"] is True and "estimated" in described["total_note"]
    _advance_stat(stat_file, [100, 100, 0, 0], [0, 0, 100, 100])  # two of four cores busy
    sample = sensor.read()
    assert sample["estimated"] is True
    assert sample["extra"]["busy_share"] == pytest.approx(0.5)
    assert sample["total_w"] == pytest.approx(2.0 + 4.0 * 2)  # defaults: 2 W idle + 4 W per busy core
    capped = open_sensor("estimate", {"idle_w": 1.5, "max_w": 6.5}, root=str(tmp_path))
    capped.probe()
    _advance_stat(stat_file, [100, 100, 0, 0], [0, 0, 100, 100])
    assert capped.read()["total_w"] == pytest.approx(4.0)


def test_estimate_on_this_machines_real_proc_stat() -> None:
    sensor = open_sensor("estimate", {"idle_w": 1.0, "per_core_w": 2.0})
    sampler = Sampler(sensor, 0.05).start()
    assert sampler.wait_for_samples(2, 5)
    run = sampler.stop()
    cores = sensor.describe()["total_note"]
    assert "%d cores" % os.cpu_count() in cores
    for sample in run["samples"]:
        assert sample["estimated"] is True
        assert 1.0 <= sample["total_w"] <= 1.0 + 2.0 * os.cpu_count()


def test_summaries_of_estimates_say_estimated() -> None:
    samples = [{"t_ns": t, "total_w": w, "rails": {}, "extra": {}, "estimated": True}
               for t, w in zip(range(0, 10), [2.0] * 5 + [6.0] * 5)]
    markers = {"idle_begin": 0, "idle_end": 4, "load_begin": 5, "load_end": 9}
    summary = summarize_power(samples, markers, inferences=10, latency_ms_mean=2.0)
    assert summary["status"] == "ok"
    assert summary["estimated"] is True and summary["label"] == "estimated"
    assert "estimated" in summary["basis"]
    assert summary["energy_per_inference_mj"] == pytest.approx(8.0)


# -- Sampler markers, windows and the summary ----------------------------------------------

def _synthetic(idle_w: float, load_w: float) -> tuple[list[dict], dict]:
    """10 Hz samples: 2 s idle, then 3 s of load; markers as the agent sets them."""
    samples = []
    for i in range(50):
        t = i * 100_000_000
        watts = idle_w if t < 2_000_000_000 else load_w
        samples.append({"t_ns": t, "total_w": watts + (0.1 if i % 2 else -0.1),
                        "rails": {"VDD_CPU": watts / 2}, "extra": {}})
    markers = {"idle_begin": 50_000_000, "idle_end": 1_950_000_000,
               "load_begin": 2_050_000_000, "load_end": 4_950_000_000}
    return samples, markers


def test_energy_per_inference_from_idle_and_load_windows() -> None:
    samples, markers = _synthetic(2.0, 5.0)
    summary = summarize_power(samples, markers, inferences=290, latency_ms_mean=10.0,
                              sensor={"sensor": "ina3221", "total_rail": "VDD_IN", "estimated": False})
    assert summary["status"] == "ok" and summary["reason"] is None
    assert summary["idle_samples"] == 19 and summary["load_samples"] == 29
    assert summary["idle_mean_w"] == pytest.approx(2.0 + 0.1 / 19, abs=0.01)
    assert summary["load_mean_w"] == pytest.approx(5.0, abs=0.01)
    assert summary["load_peak_w"] == pytest.approx(5.1)
    assert summary["sample_rate_hz"] == pytest.approx(10.0)
    assert summary["energy_per_inference_mj"] == pytest.approx(
        (summary["load_mean_w"] - summary["idle_mean_w"]) * 10.0)
    assert summary["energy_per_inference_mj"] == pytest.approx(30.0, abs=0.2)
    assert summary["energy_per_inference_gross_mj"] == pytest.approx(50.0, abs=0.2)
    assert summary["energy_per_inference_window_mj"] == pytest.approx(
        (summary["load_mean_w"] - summary["idle_mean_w"]) * 2.9 * 1000 / 290)
    assert summary["rails"]["VDD_CPU"] == {"idle_mean_w": 1.0, "load_mean_w": 2.5}
    assert summary["estimated"] is False and summary["label"] == "measured"
    assert summary["basis"] == "rail VDD_IN" and summary["inferences"] == 290


def test_insufficient_samples_in_the_load_window() -> None:
    samples, markers = _synthetic(2.0, 5.0)
    markers.update(load_begin=2_050_000_000, load_end=2_250_000_000)  # a 0.2 s timed loop
    summary = summarize_power(samples, markers, inferences=20, latency_ms_mean=10.0)
    assert summary["status"] == "insufficient samples"
    assert summary["load_samples"] == 2
    assert "2 sample(s) inside the load window" in summary["reason"]
    assert "10.00 samples/s" in summary["reason"]
    assert "lengthen latency.min_duration_s to at least 0.4 s" in summary["reason"]
    assert summary["energy_per_inference_mj"] is None and summary["energy_per_inference_gross_mj"] is None


def test_missing_idle_window_is_not_ok() -> None:
    samples, markers = _synthetic(2.0, 5.0)
    del markers["idle_begin"], markers["idle_end"]
    summary = summarize_power(samples, markers, inferences=290, latency_ms_mean=10.0)
    assert summary["status"] == "insufficient samples"
    assert "no idle window" in summary["reason"]
    assert summary["energy_per_inference_mj"] is None
    assert summary["energy_per_inference_gross_mj"] == pytest.approx(50.0, abs=0.2)


def test_no_samples_at_all_reports_the_errors() -> None:
    summary = summarize_power([], {"load_begin": 0, "load_end": 1}, errors=[{"t_ns": 0, "message": "boom"}])
    assert summary["status"] == "insufficient samples"
    assert "no samples were taken (1 read errors; first: boom)" == summary["reason"]


def test_rails_sum_lower_bound_when_no_total_rail() -> None:
    sensor = open_sensor("tegrastats", {})
    lines = lines_of(TEGRASTATS / "xavier_jp4.txt")
    samples = [sensor.sample_from_line(t * 100_000_000, lines[0 if t < 10 else 1]) for t in range(20)]
    markers = {"idle_begin": 0, "idle_end": 950_000_000, "load_begin": 1_000_000_000, "load_end": 1_950_000_000}
    summary = summarize_power(samples, markers, inferences=100, latency_ms_mean=10.0, sensor=sensor.describe())
    assert summary["status"] == "ok"
    assert summary["lower_bound"] is True and summary["basis"].startswith("sum of rails (lower bound")
    assert summary["idle_mean_w"] == pytest.approx(6.928)
    assert summary["load_mean_w"] == pytest.approx(12.354 + 0.771 + 3.468 + 0 + 1.540 + 3.191)
    assert summary["total_rail"] is None and "Xavier" in summary["total_note"]


def test_sampler_markers_bracket_the_samples_of_a_live_run(tmp_path: Path) -> None:
    root = sysfs("nano_jp4", tmp_path)
    power = Path(root, "sys/bus/i2c/drivers/ina3221x/6-0040/iio:device0/in_power0_input")
    sampler = Sampler(open_sensor("ina3221", {"interval_ms": 20}, root=root)).start()
    sampler.idle_window(0.3)
    write(power, 4796)
    sampler.mark("load_begin")
    time.sleep(0.3)
    sampler.mark("load_end")
    run = sampler.stop()
    assert run["interval_s"] == 0.02
    markers = run["markers"]
    assert markers["idle_begin"] < markers["idle_end"] < markers["load_begin"] < markers["load_end"]
    summary = summarize_run(run, inferences=30, latency_ms_mean=10.0)
    assert summary["status"] == "ok", summary["reason"]
    assert summary["idle_mean_w"] == pytest.approx(0.933) and summary["load_mean_w"] == pytest.approx(4.796)
    assert summary["energy_per_inference_mj"] == pytest.approx((4.796 - 0.933) * 10.0)
    assert 30 <= summary["sample_rate_hz"] <= 60
    assert summary["never_run_on_hardware"] is True and summary["sensor"] == "ina3221"


# -- the simulated INA3221 -----------------------------------------------------------------

def test_simulated_ina3221_follows_cpuacct_usage(tmp_path: Path) -> None:
    usage = tmp_path / "cpuacct.usage"
    usage.write_text("1000000000\n")
    root = str(tmp_path / "device")
    simulated = SimulatedINA3221(root, str(usage), idle_mw=1300, per_core_mw=900)
    simulated.create(wall_ns=0)
    sensor = open_sensor("ina3221", {}, root=root)
    sensor.probe()
    assert sensor.describe()["layout"] == "iio" and sensor.describe()["total_rail"] == "POM_5V_IN"
    assert sensor.read()["total_w"] == 1.3  # idle

    usage.write_text("1500000000\n")  # half a core for one second: a light model
    assert simulated.step(wall_ns=1_000_000_000) == 1750.0
    light = sensor.read()
    usage.write_text("3500000000\n")  # two cores for one second: a heavier model
    simulated.step(wall_ns=2_000_000_000)
    heavy = sensor.read()
    assert light["total_w"] == 1.75 and heavy["total_w"] == 3.1
    assert heavy["rails"]["POM_5V_CPU"] > light["rails"]["POM_5V_CPU"] > 0.156
    assert heavy["rails"]["POM_5V_GPU"] == light["rails"]["POM_5V_GPU"]
    # the tree is a real Nano's: V x I agrees with the power attribute, as the driver's does
    iio = Path(root, IIO_DEVICE.lstrip("/"))
    volts = int((iio / "in_voltage0_input").read_text()) / 1000
    amps = int((iio / "in_current0_input").read_text()) / 1000
    assert volts * amps == pytest.approx(3.1, rel=0.01)
    assert sorted(p.name for p in iio.iterdir()) == sorted(
        ["name", "running_mode"] + ["%s%d%s" % (a, n, b) for n in range(3) for a, b in (
            ("rail_name_", ""), ("in_voltage", "_input"), ("in_current", "_input"), ("in_power", "_input"),
            ("crit_current_limit_", ""), ("warn_current_limit_", ""))])


def test_simulated_ina3221_daemon_measured_through_the_sampler(tmp_path: Path) -> None:
    """The lab's set-up: the daemon follows a cgroup counter that a "model" advances."""
    usage = tmp_path / "cpuacct.usage"
    usage.write_text("0\n")
    root = tmp_path / "device"
    env = dict(os.environ, PYTHONPATH=str(AGENT_DIR.parent.parent))
    daemon = subprocess.Popen([sys.executable, "-m", "harness.agent.sensors.simulated", str(root), str(usage),
                               "--idle-mw", "1300", "--per-core-mw", "900", "--interval-s", "0.02"],
                              env=env, stderr=subprocess.PIPE)
    busy_cores = [0.0]
    stop = threading.Event()

    def cgroup() -> None:  # the kernel's side: CPU time accrues at busy_cores x wall time
        total, last = 0.0, time.monotonic()
        while not stop.wait(0.005):
            now = time.monotonic()
            total += busy_cores[0] * (now - last) * 1e9
            last = now
            tmp = usage.with_suffix(".tmp")
            tmp.write_text("%d\n" % total)
            tmp.replace(usage)

    ticker = threading.Thread(target=cgroup, daemon=True)
    ticker.start()
    try:
        deadline = time.monotonic() + 10
        while not (root / IIO_DEVICE.lstrip("/") / "in_power0_input").exists():
            assert daemon.poll() is None, daemon.stderr.read().decode()
            assert time.monotonic() < deadline
            time.sleep(0.02)
        sensor = open_sensor("ina3221", {"interval_ms": 20}, root=str(root))
        sensor.probe()
        sampler = Sampler(sensor).start()
        time.sleep(0.1)
        sampler.idle_window(0.5)
        busy_cores[0] = 2.0
        time.sleep(0.15)  # let the daemon's interval catch up before the timed loop begins
        sampler.mark("load_begin")
        time.sleep(0.6)
        sampler.mark("load_end")
        run = sampler.stop()
    finally:
        stop.set()
        daemon.terminate()
        assert daemon.wait(timeout=10) == 0  # SIGTERM ends it cleanly
        daemon.stderr.close()
    summary = summarize_run(run, inferences=60, latency_ms_mean=10.0)
    assert summary["status"] == "ok", summary["reason"]
    assert summary["idle_mean_w"] == pytest.approx(1.3, abs=0.05)
    assert summary["load_mean_w"] == pytest.approx(1.3 + 2 * 0.9, abs=0.25)
    assert summary["energy_per_inference_mj"] == pytest.approx(18.0, abs=2.5)


# -- Python 3.6 ----------------------------------------------------------------------------

PY36_SCRIPT = r"""
import json, sys, time
from harness_agent.sensors import SENSORS, Sampler, open_sensor, summarize_run
from harness_agent.sensors import command, estimate, ina3221, none, nvml, rapl, simulated, tegrastats
line, tree = sys.argv[1], sys.argv[2]
t = open_sensor("tegrastats", {})
sample = t.sample_from_line(1, line)
s = open_sensor("ina3221", {"interval_ms": 10}, root=tree)
s.probe()
sampler = Sampler(s).start()
sampler.mark("idle_begin"); time.sleep(0.1); sampler.mark("idle_end")
sampler.mark("load_begin"); time.sleep(0.1); sampler.mark("load_end")
summary = summarize_run(sampler.stop(), inferences=10, latency_ms_mean=10.0)
print(json.dumps({"tegrastats": sample["total_w"], "rails": sample["rails"], "ina3221": s.read()["total_w"],
                  "status": summary["status"], "kinds": sorted(SENSORS), "version": sys.version.split()[0]}))
"""


@pytest.fixture(scope="module")
def python36() -> str:
    return pyenv_python_or_fail("3.6.15")  # fails, saying what to install: this check must not be skipped


def test_sensors_compile_import_and_read_under_python36(python36: str, tmp_path: Path) -> None:
    shutil.copytree(AGENT_DIR, tmp_path / "harness_agent", ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    env["PYTHONPATH"] = str(tmp_path)
    compiled = subprocess.run([python36, "-m", "compileall", "-q", "harness_agent/sensors"], cwd=tmp_path,
                              env=env, capture_output=True, timeout=120)
    assert compiled.returncode == 0, (compiled.stdout + compiled.stderr).decode()
    tree = sysfs("nano_jp4", tmp_path)
    done = subprocess.run([python36, "-c", PY36_SCRIPT, lines_of(TEGRASTATS / "orin_agx_jp5.txt")[0], tree],
                          cwd=tmp_path, env=env, capture_output=True, timeout=120)
    assert done.returncode == 0, done.stderr.decode()
    result = json.loads(done.stdout)
    assert result["version"] == "3.6.15"
    assert result["tegrastats"] is None and result["rails"]["VIN_SYS_5V0"] == 3.984
    assert result["ina3221"] == 0.933 and result["status"] == "ok"
    assert result["kinds"] == sorted(POWER_SENSORS)
    sources = sorted(p.stem for p in (tmp_path / "harness_agent" / "sensors").glob("*.py"))
    assert sources == ["__init__", "command", "errors", "estimate", "ina3221", "none", "nvml", "rapl",
                       "sampler", "sensor", "simulated", "streaming", "summary", "sysfs", "tegrastats"]
