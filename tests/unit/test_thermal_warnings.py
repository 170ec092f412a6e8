"""Heating, throttling and frequency drops between a job's start and end become warnings."""

from harness.run.latency_summary import thermal_warnings

BEFORE = {"temperatures_c": {"cpu-thermal": 41.0}, "cpu_freq_khz": {"cpu0": 1479000}, "throttle_count": 2}


def test_a_steady_device_gets_no_warning() -> None:
    after = {"temperatures_c": {"cpu-thermal": 43.5}, "cpu_freq_khz": {"cpu0": 1479000}, "throttle_count": 2}
    assert thermal_warnings(BEFORE, after) == []


def test_heating_throttling_and_frequency_drop_are_each_named() -> None:
    after = {"temperatures_c": {"cpu-thermal": 58.0}, "cpu_freq_khz": {"cpu0": 921600}, "throttle_count": 5}
    warnings = thermal_warnings(BEFORE, after)
    assert any("temperature rose 17.0 °C (cpu-thermal)" in w for w in warnings)
    assert any("3 throttle event(s)" in w for w in warnings)
    assert any("cpu0 frequency dropped 1479 -> 922 MHz" in w for w in warnings)


def test_missing_sensors_are_not_guessed() -> None:
    assert thermal_warnings(None, None) == []
    empty = {"temperatures_c": {}, "cpu_freq_khz": {}, "throttle_count": None}
    assert thermal_warnings(empty, empty) == []
