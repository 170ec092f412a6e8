"""Sweep specs: which parameter of a variant to vary, over which values (parsing only).

A sweep varies ONE parameter of one variant over a list of values; each value is a *point*,
measured as a variant of its own (harness.run.sweep_points derives it):

    parameter    what a point changes                                   value syntax
    threads      runtime_options.threads (every runtime that has it)    1, 2, 4
    batch        input shape[0]                                         1, 4
    resolution   input H and W (NCHW or NHWC, from the shape)           224 (square) | 640x32 (W x H)
    precision    another variant of the same model and runtime whose    fp32, fp16, int8
                 kind is that precision (fp32 -> int8-ptq, ...)
    power_mode   runtime_options.power_mode (paddle-lite only)          high, low, full, no_bind,
                                                                        rand_high, rand_low or LITE_POWER_*

Where sweeps come from:
- the command line, `--sweep threads=1,2,4 --sweep batch=1,4` (`parse_sweep_options`), applied to
  every selected variant;
- the manifest, a `sweeps:` mapping on a model (every variant) or a variant (overrides the
  model's key by key), e.g. `sweeps: {threads: [1, 2, 4], resolution: [224, 448]}`
  (`parse_manifest_sweeps`; ModelVariant.sweeps holds the result).
A command-line sweep of a parameter replaces the manifest's sweep of that parameter. Several
sweeps of one variant are separate curves (one parameter varied at a time), not a grid.

Point names: `<variant>@<parameter>=<value label>`, e.g. `mobilenet_v3_small-fp32@threads=2`
(`point_name`, read back by `parse_point_id`), so stored records say which point they are.

Nothing here knows what a variant is: this module is read by the manifest reader as well as
by the expansion (harness.run.sweep_points) and the cheapest-point choice (harness.analysis.cheapest).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

SweepValue = int | tuple[int, int] | str
"""A parsed value: int (threads, batch), (width, height) (resolution), str (precision, power_mode)."""

PARAMETERS = ("threads", "batch", "resolution", "precision", "power_mode")
PRECISIONS = ("int4", "int8", "fp16", "bf16", "fp32", "fp64")  # cheapest first
# Paddle Lite power modes, lowest power first (LITE_POWER_NO_BIND lets the OS place threads)
POWER_LADDER = ("LITE_POWER_LOW", "LITE_POWER_RAND_LOW", "LITE_POWER_NO_BIND", "LITE_POWER_HIGH",
                "LITE_POWER_RAND_HIGH", "LITE_POWER_FULL")
POINT_SEPARATOR = "@"
_POWER_SHORT = {mode[len("LITE_POWER_"):].lower(): mode for mode in POWER_LADDER}
_RESOLUTION = re.compile(r"^(\d+)(?:x(\d+))?$")
_EXAMPLES = {"threads": "[1, 2, 4]", "batch": "[1, 4]", "resolution": "[224, 448]", "precision": "[fp32, int8]",
             "power_mode": "[low, high]"}


class SweepSpecError(ValueError):
    """A sweep that cannot be read: `where` (an option or manifest key) and `reason` (what to write instead)."""

    def __init__(self, where: str, reason: str) -> None:
        super().__init__(f"{where}: {reason}")
        self.where = where
        self.reason = reason


@dataclass(frozen=True)
class Sweep:
    """One parameter and the values to measure it at; `source` says where it was written."""

    parameter: str
    values: tuple[SweepValue, ...]
    source: str = "--sweep"

    def labels(self) -> list[str]:
        return [value_label(self.parameter, value) for value in self.values]


def value_label(parameter: str, value: SweepValue) -> str:
    """How a value is written in a point's name: ``2``, ``224`` (square) or ``640x32``."""
    if parameter == "resolution" and isinstance(value, tuple):
        width, height = value
        return str(width) if width == height else f"{width}x{height}"
    return str(value)


def parse_sweep_value(parameter: str, raw: object, where: str) -> SweepValue:
    """One value of `parameter` as written (a YAML scalar or a piece of a --sweep option)."""
    text = str(raw).strip()
    if isinstance(raw, bool) or not text:
        raise SweepSpecError(where, f"{raw!r} is not a {parameter} value")
    if parameter in ("threads", "batch"):
        if isinstance(raw, float) or not text.isdigit() or int(text) < 1:
            raise SweepSpecError(where, f"{parameter} values are whole numbers >= 1, got {raw!r}")
        return int(text)
    if parameter == "resolution":
        match = _RESOLUTION.match(text.lower())
        if not match or int(match.group(1)) < 1 or (match.group(2) and int(match.group(2)) < 1):
            raise SweepSpecError(where, f"resolution values are a size like 224 (square) or 640x32 "
                                 f"(width x height), got {raw!r}")
        width = int(match.group(1))
        return (width, int(match.group(2)) if match.group(2) else width)
    if parameter == "precision":
        if text.lower() not in PRECISIONS:
            raise SweepSpecError(where, f"precision values are {', '.join(PRECISIONS)}, got {raw!r}")
        return text.lower()
    if parameter == "power_mode":
        # an unknown mode is kept as written: the expansion skips its point with the known modes
        return _POWER_SHORT.get(text.lower(), text.upper() if text.upper() in POWER_LADDER else text)
    raise SweepSpecError(where, f"unknown sweep parameter {parameter!r}; sweepable: {', '.join(PARAMETERS)}")


def parse_sweep_values(parameter: str, values: object, where: str = "sweeps") -> Sweep:
    """A sweep from a parameter name and its values (a list, or one comma-separated string)."""
    if parameter not in PARAMETERS:
        raise SweepSpecError(where, f"unknown sweep parameter {parameter!r}; sweepable: {', '.join(PARAMETERS)}")
    if isinstance(values, str):
        values = values.split(",")
    if not isinstance(values, (list, tuple)) or not values:
        raise SweepSpecError(where, f"give a list of {parameter} values, e.g. {_EXAMPLES[parameter]}")
    parsed = tuple(parse_sweep_value(parameter, raw, where) for raw in values)
    labels = [value_label(parameter, value) for value in parsed]
    duplicates = sorted({label for label in labels if labels.count(label) > 1})
    if duplicates:
        raise SweepSpecError(where, f"{parameter} value {duplicates[0]} is listed twice")
    return Sweep(parameter, parsed, where)


def parse_sweep_option(text: str) -> Sweep:
    """`threads=1,2,4` (the value of one --sweep option)."""
    parameter, sep, values = text.partition("=")
    parameter = parameter.strip().replace("-", "_")
    if not sep or not parameter or not values.strip():
        raise SweepSpecError(f"--sweep {text!r}", f"write PARAMETER=V1,V2,..., e.g. --sweep threads=1,2,4 "
                             f"(sweepable: {', '.join(PARAMETERS)})")
    return parse_sweep_values(parameter, values, f"--sweep {parameter}")


def parse_sweep_options(texts: Iterable[str]) -> tuple[Sweep, ...]:
    """Every --sweep option; one parameter may be swept once."""
    sweeps: dict[str, Sweep] = {}
    for text in texts:
        sweep = parse_sweep_option(text)
        if sweep.parameter in sweeps:
            merged = ",".join(sweeps[sweep.parameter].labels() + sweep.labels())
            raise SweepSpecError(f"--sweep {sweep.parameter}", "given twice: list all values in one option, "
                                 f"e.g. --sweep {sweep.parameter}={merged}")
        sweeps[sweep.parameter] = sweep
    return tuple(sweeps.values())


def parse_manifest_sweeps(data: object, where: str) -> dict[str, Sweep]:
    """A manifest `sweeps:` mapping {parameter: [values]} -> {parameter: Sweep}."""
    if not isinstance(data, Mapping):
        raise SweepSpecError(where, "expected a mapping of parameter -> list of values, "
                             "e.g. {threads: [1, 2, 4], batch: [1, 4]}")
    return {str(parameter): parse_sweep_values(str(parameter), values, f"{where}.{parameter}")
            for parameter, values in data.items()}


def point_name(base: str, parameter: str, label: str) -> str:
    """The name of one point of `base` (a variant id or a variant name): ``base@parameter=label``."""
    return f"{base}{POINT_SEPARATOR}{parameter}={label}"


def parse_point_id(text: str) -> tuple[str, str, str] | None:
    """`mobilenet_v3_small-fp32@threads=2` (or a variant name `fp32@threads=2`) ->
    (base, parameter, value label); None for an id that is not a sweep point."""
    base, sep, rest = text.rpartition(POINT_SEPARATOR)
    parameter, eq, label = rest.partition("=")
    if not sep or not eq or parameter not in PARAMETERS or not base or not label:
        return None
    return base, parameter, label
