"""Quantities with units, as written in target files, manifests and deployment configs.

Every quantity must carry its unit: a bare ``10`` could be seconds or milliseconds,
bytes or megabytes, and a silently wrong budget is worse than an error.

- Durations -> seconds (float): ``ns``, ``us``/``µs``, ``ms``, ``s``, ``min``, ``h``.
  ``m`` is rejected as ambiguous (minutes? milliseconds?).
- Sizes -> bytes (int): ``B``, ``kB``/``KB``, ``MB``, ``GB``, ``TB``, ``KiB``..``TiB``,
  case-insensitive. ``KB``/``MB``/``GB``/``TB`` are *binary* (1024-based), like ``KiB``..:
  memory budgets are RAM sizes and "512MB of RAM" means 512 MiB to the teams writing them.
- Power -> watts (float): ``mW``, ``W``, ``kW``.
"""

from __future__ import annotations

import math
import re
from decimal import Decimal, InvalidOperation

from harness.errors import ConfigError

_QUANTITY = re.compile(r"^\s*([+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)\s*([^\s\d.+-][^\s]*)?\s*$")

_DURATION_UNITS: dict[str, float] = {
    "ns": 1e-9,
    "us": 1e-6,
    "\u00b5s": 1e-6,  # micro sign
    "\u03bcs": 1e-6,  # greek small letter mu
    "ms": 1e-3,
    "s": 1.0,
    "min": 60.0,
    "h": 3600.0,
}
_BYTE_UNITS: dict[str, int] = {
    "b": 1,
    "kb": 1024,
    "kib": 1024,
    "mb": 1024**2,
    "mib": 1024**2,
    "gb": 1024**3,
    "gib": 1024**3,
    "tb": 1024**4,
    "tib": 1024**4,
}
_POWER_UNITS: dict[str, float] = {"mW": 1e-3, "W": 1.0, "kW": 1e3}

_DURATION_HINT = "use a number with a unit such as 10ms, 2.5s, 800us"
_BYTES_HINT = "use a number with a unit such as 512MB, 1.5GiB, 800kB (KB/MB/GB are 1024-based)"
_POWER_HINT = "use a number with a unit such as 5W, 500mW, 0.5kW"


def _split(value: object, what: str, hint: str, source: str, key: str) -> tuple[str, str]:
    """Split ``value`` into (number text, unit text); reject anything that is not one."""
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise ConfigError(source, key, f"cannot read {value!r} as {what}: {hint}")
    if isinstance(value, (int, float)):
        raise ConfigError(source, key, f"{value!r} has no unit: add a unit, e.g. {_example(what)}")
    match = _QUANTITY.match(value)
    if match is None:
        raise ConfigError(source, key, f"cannot read {value!r} as {what}: {hint}")
    number, unit = match.group(1), match.group(2)
    if unit is None:
        raise ConfigError(source, key, f"{value!r} has no unit: add a unit, e.g. {_example(what)}")
    if number.startswith("-"):
        raise ConfigError(source, key, f"{value!r} is negative: {what} must be zero or more")
    return number, unit


def _example(what: str) -> str:
    return {"a duration": "10ms", "a size": "512MB", "a power": "5W"}[what]


def _finite(number: float, value: object, what: str, hint: str, source: str, key: str) -> float:
    if not math.isfinite(number):
        raise ConfigError(source, key, f"cannot read {value!r} as {what}: {hint}")
    return number


def parse_duration(value: object, source: str, key: str) -> float:
    """Read a duration such as ``10ms`` or ``1.5 min``; return seconds."""
    number, unit = _split(value, "a duration", _DURATION_HINT, source, key)
    if unit in ("m", "M"):
        raise ConfigError(
            source, key, f"unit 'm' in {value!r} is ambiguous: write 'min' for minutes or 'ms' for milliseconds"
        )
    factor = _DURATION_UNITS.get(unit)
    if factor is None:
        raise ConfigError(source, key, f"cannot read {value!r} as a duration: {_DURATION_HINT}")
    return _finite(float(number) * factor, value, "a duration", _DURATION_HINT, source, key)


def parse_bytes(value: object, source: str, key: str) -> int:
    """Read a size such as ``512MB`` or ``1.5 GiB``; return bytes (KB/MB/GB are 1024-based)."""
    number, unit = _split(value, "a size", _BYTES_HINT, source, key)
    lowered = unit.lower()
    if lowered in ("k", "m", "g", "t"):
        raise ConfigError(
            source, key, f"unit {unit!r} in {value!r} is incomplete: write {unit.upper()}B or {unit.upper()}iB"
        )
    factor = _BYTE_UNITS.get(lowered)
    if factor is None:
        raise ConfigError(source, key, f"cannot read {value!r} as a size: {_BYTES_HINT}")
    try:
        exact = Decimal(number) * factor
    except InvalidOperation:
        raise ConfigError(source, key, f"cannot read {value!r} as a size: {_BYTES_HINT}") from None
    if not exact.is_finite() or exact != exact.to_integral_value():
        raise ConfigError(source, key, f"{value!r} is not a whole number of bytes: use a larger unit or round it")
    return int(exact)


def parse_power(value: object, source: str, key: str) -> float:
    """Read a power such as ``5W`` or ``500mW``; return watts."""
    number, unit = _split(value, "a power", _POWER_HINT, source, key)
    factor = _POWER_UNITS.get(unit)
    if factor is None:
        raise ConfigError(source, key, f"cannot read {value!r} as a power: {_POWER_HINT}")
    return _finite(float(number) * factor, value, "a power", _POWER_HINT, source, key)


def parse_fraction(value: object, source: str, key: str) -> float:
    """A share between 0 and 1, written ``0.99`` or ``99%`` (``99`` alone is refused: it is
    ambiguous between 99% and an error)."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        fraction = float(value)
    elif isinstance(value, str) and value.strip().endswith("%"):
        try:
            fraction = float(value.strip()[:-1]) / 100.0
        except ValueError:
            fraction = math.nan
    else:
        raise ConfigError(source, key, f"cannot read {value!r} as a fraction: write 0.99 or 99%")
    if not 0.0 <= fraction <= 1.0 or math.isnan(fraction):
        raise ConfigError(source, key, f"{value!r} is not between 0 and 1 (0% and 100%): write e.g. 0.99 or 99%")
    return fraction
