"""Units: every accepted spelling, and every rejected one with its message."""

from __future__ import annotations

import math

import pytest

from harness.config.units import parse_bytes, parse_duration, parse_power
from harness.errors import ConfigError

SOURCE = "suites/models.yaml"
KEY = "defaults.latency.min_duration"


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("10ms", 0.010),
        ("10 ms", 0.010),
        ("0.5s", 0.5),
        (".5s", 0.5),
        ("250us", 250e-6),
        ("250µs", 250e-6),  # micro sign
        ("250μs", 250e-6),  # greek mu
        ("1.5 min", 90.0),
        ("2h", 7200.0),
        ("100ns", 100e-9),
        ("0s", 0.0),
        ("1e3ms", 1.0),
        ("  3s  ", 3.0),
    ],
)
def test_duration_accepted(text: str, seconds: float) -> None:
    assert math.isclose(parse_duration(text, SOURCE, KEY), seconds, rel_tol=1e-12)


@pytest.mark.parametrize(
    ("value", "fragment"),
    [
        ("10 parsecs", "cannot read '10 parsecs' as a duration: use a number with a unit such as 10ms, 2.5s, 800us"),
        ("fast", "cannot read 'fast' as a duration"),
        ("2m", "'m' in '2m' is ambiguous: write 'min' for minutes or 'ms' for milliseconds"),
        ("10", "'10' has no unit: add a unit, e.g. 10ms"),
        (10, "10 has no unit: add a unit, e.g. 10ms"),
        (0.5, "0.5 has no unit: add a unit, e.g. 10ms"),
        ("-5ms", "is negative"),
        ("nan s", "cannot read"),
        ("1e999s", "cannot read"),
        ([1, 2], "cannot read [1, 2] as a duration"),
        (True, "cannot read True as a duration"),
        (None, "cannot read None as a duration"),
        ("10MS", "cannot read"),
        ("10 ms extra", "cannot read"),
        ("", "cannot read"),
    ],
)
def test_duration_rejected(value: object, fragment: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_duration(value, SOURCE, KEY)
    assert caught.value.source == SOURCE
    assert caught.value.key == KEY
    assert fragment in str(caught.value)
    assert str(caught.value).startswith(f"{SOURCE}: {KEY}: ")


@pytest.mark.parametrize(
    ("text", "size"),
    [
        ("512MB", 512 * 1024**2),
        ("512 MiB", 512 * 1024**2),
        ("1.5GiB", 3 * 512 * 1024**2),
        ("1.5GB", 3 * 512 * 1024**2),
        ("800kB", 800 * 1024),
        ("800KB", 800 * 1024),
        ("800 KiB", 800 * 1024),
        ("1024B", 1024),
        ("2TB", 2 * 1024**4),
        ("1tib", 1024**4),
        ("1gb", 1024**3),
        ("0.5KB", 512),
    ],
)
def test_bytes_accepted(text: str, size: int) -> None:
    result = parse_bytes(text, SOURCE, "performance.max_memory")
    assert result == size
    assert isinstance(result, int)


@pytest.mark.parametrize(
    ("value", "fragment"),
    [
        ("2G", "unit 'G' in '2G' is incomplete: write GB or GiB"),
        ("2M", "unit 'M' in '2M' is incomplete"),
        ("2k", "unit 'k' in '2k' is incomplete: write KB or KiB"),
        ("512", "has no unit: add a unit, e.g. 512MB"),
        (512, "has no unit: add a unit, e.g. 512MB"),
        ("0.3B", "not a whole number of bytes"),
        ("1 PB", "cannot read '1 PB' as a size"),
        ("lots", "cannot read 'lots' as a size"),
        ("-1MB", "is negative"),
        ({"a": 1}, "cannot read {'a': 1} as a size"),
    ],
)
def test_bytes_rejected(value: object, fragment: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_bytes(value, SOURCE, "performance.max_memory")
    assert caught.value.key == "performance.max_memory"
    assert fragment in str(caught.value)


@pytest.mark.parametrize(
    ("text", "watts"),
    [("5W", 5.0), ("5 W", 5.0), ("500mW", 0.5), ("0.5 kW", 500.0), ("0W", 0.0)],
)
def test_power_accepted(text: str, watts: float) -> None:
    assert math.isclose(parse_power(text, SOURCE, "performance.power_consumption"), watts)


@pytest.mark.parametrize(
    ("value", "fragment"),
    [
        ("5", "has no unit: add a unit, e.g. 5W"),
        (5, "has no unit"),
        ("5 watts", "cannot read '5 watts' as a power: use a number with a unit such as 5W, 500mW, 0.5kW"),
        ("5MW", "cannot read"),
        ("5w", "cannot read"),
        ("-1W", "is negative"),
        ([5], "cannot read"),
    ],
)
def test_power_rejected(value: object, fragment: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_power(value, SOURCE, "performance.power_consumption")
    assert fragment in str(caught.value)
