"""Parameter sweeps (host side, pure): which points to measure, and which point is cheapest.

A sweep varies ONE parameter of one variant over a list of values; each value is a *point*,
measured as a variant of its own, derived from the swept one:

    parameter    what a point changes                                   value syntax
    threads      runtime_options.threads (every runtime that has it)    1, 2, 4
    batch        input shape[0]                                         1, 4
    resolution   input H and W (NCHW or NHWC, from the shape)           224 (square) | 640x32 (W x H)
    precision    another variant of the same model and runtime whose    fp32, fp16, int8
                 kind is that precision (fp32 -> int8-ptq, ...)
    power_mode   runtime_options.power_mode (paddle-lite only)          high, low, full, no_bind,
                                                                        rand_high, rand_low or LITE_POWER_*

Where sweeps come from:
- the command line, `--sweep threads=1,2,4 --sweep batch=1,4` (`parse_sweep_option`), applied to
  every selected variant;
- the manifest, a `sweeps:` mapping on a model (every variant) or a variant (overrides the
  model's key by key), e.g. `sweeps: {threads: [1, 2, 4], resolution: [224, 448]}`
  (`parse_sweep_values` checks each list; ModelVariant.sweeps holds the result).
A command-line sweep of a parameter replaces the manifest's sweep of that parameter. Several
sweeps of one variant are separate curves (one parameter varied at a time), not a grid.

Point ids: `<variant id>@<parameter>=<value>`, e.g. `mobilenet_v3_small-fp32@threads=2`; the
derived variant's name is `<variant name>@<parameter>=<value>` so stored records say which
point they are (`parse_point_id`). A derived variant's baseline is the same point of its
baseline (`int8@threads=2` is compared with `fp32@threads=2`, measured or not), except for
precision points, which are real manifest variants and keep their own baseline.

Which inputs can change shape (resolution and batch sweeps; checked on this zoo):
- Paddle Inference runs the legacy `.pdmodel` exports (fixed InputSpec [1,3,224,224]) at
  other batches and resolutions: the predictor reshapes its input and these nets are fully
  convolutional with adaptive pooling (mobilenet_v3_small at 448x448 and batch 4, tiny_cnn at
  128x128 and batch 4, int8 too). Paddle Lite's `.nb` likewise. `declared_input_shape` returns
  None for them: the runtime decides, and a net that cannot reshape fails with the runtime's error.
- The paddle2onnx exports have fixed dims [1,3,224,224]: ONNX Runtime refuses other shapes, so
  those points are skipped with the reason. ppocr_rec's ONNX model is dynamic in batch, height
  and width ([-1, 3, ?, ?]).
- The MediaPipe .tflite models are fixed (shape_signature 1x128x128x3 / 1x192x192x3; their
  anchor RESHAPEs would not survive a resize anyway).

Cheapest point: `cheapest_point(points, budget)` returns the point with the lowest cost that
meets every limit of the budget (latency statistic, peak memory, power). Cost order, cheapest
first: threads ascending (cores held), batch ascending and resolution ascending by pixels
(memory and compute per request), precision int4 < int8 < fp16 < bf16 < fp32 < fp64 (bits
per value), power_mode from the lowest-power mode up (Paddle Lite's ladder, else the order the
sweep lists them in).
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Iterable, Mapping, Sequence

if TYPE_CHECKING:  # no runtime import: manifest.py imports this module
    from harness.config.variants import ModelVariant
    from harness.records import MeasurementRecord

PARAMETERS = ("threads", "batch", "resolution", "precision", "power_mode")
PRECISIONS = ("int4", "int8", "fp16", "bf16", "fp32", "fp64")  # cheapest first
# variant kinds (manifest VARIANT_KINDS) by the precision they stand for; pruned, distilled and
# other variants are a different model, not a precision of one, and have no precision points
PRECISION_OF_KIND = {"fp32": "fp32", "fp16": "fp16", "int8-ptq": "int8", "int8-qat": "int8"}
# the runtime option a parameter sets, per runtime
RUNTIME_OPTION = {
    "threads": {"paddle-inference": "threads", "onnxruntime": "threads", "paddle-lite": "threads", "litert": "threads"},
    "power_mode": {"paddle-lite": "power_mode"},
}
# Paddle Lite power modes, lowest power first (LITE_POWER_NO_BIND lets the OS place threads)
POWER_LADDER = ("LITE_POWER_LOW", "LITE_POWER_RAND_LOW", "LITE_POWER_NO_BIND", "LITE_POWER_HIGH",
                "LITE_POWER_RAND_HIGH", "LITE_POWER_FULL")
_POWER_SHORT = dict((mode[len("LITE_POWER_"):].lower(), mode) for mode in POWER_LADDER)
_RESOLUTION = re.compile(r"^(\d+)(?:x(\d+))?$")
POINT_SEPARATOR = "@"


class SweepSpecError(ValueError):
    """A sweep that cannot be read: `where` (an option or manifest key) and `reason` (what to write instead)."""

    def __init__(self, where: str, reason: str) -> None:
        super().__init__(f"{where}: {reason}")
        self.where = where
        self.reason = reason


@dataclass(frozen=True)
class Sweep:
    parameter: str
    values: tuple[Any, ...]  # int (threads, batch), (width, height) (resolution), str (precision, power_mode)
    source: str = "--sweep"

    def labels(self) -> list[str]:
        return [value_label(self.parameter, value) for value in self.values]


@dataclass(frozen=True)
class SweepPoint:
    """One point of one sweep of one variant; `variant` is None when the point cannot run."""

    base: str  # the swept variant's id, e.g. mobilenet_v3_small-fp32
    parameter: str
    value: Any
    index: int  # position in the sweep as written (power_mode cost falls back to it)
    variant: ModelVariant | None
    skipped: str = ""  # why the point cannot run on this variant

    @property
    def label(self) -> str:
        return value_label(self.parameter, self.value)

    @property
    def id(self) -> str:
        return f"{self.base}{POINT_SEPARATOR}{self.parameter}={self.label}"


# --------------------------------------------------------------------------- parsing


def value_label(parameter: str, value: Any) -> str:
    if parameter == "resolution":
        width, height = value
        return str(width) if width == height else f"{width}x{height}"
    return str(value)


def _parse_value(parameter: str, raw: Any, where: str) -> Any:
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
        mode = _POWER_SHORT.get(text.lower(), text.upper() if text.upper() in POWER_LADDER else text)
        return mode
    raise SweepSpecError(where, f"unknown sweep parameter {parameter!r}; sweepable: {', '.join(PARAMETERS)}")


def parse_sweep_values(parameter: str, values: Any, where: str = "sweeps") -> Sweep:
    """A sweep from a parameter name and its values (a list, or one comma-separated string)."""
    if parameter not in PARAMETERS:
        raise SweepSpecError(where, f"unknown sweep parameter {parameter!r}; sweepable: {', '.join(PARAMETERS)}")
    if isinstance(values, str):
        values = [part for part in values.split(",")]
    if not isinstance(values, (list, tuple)) or not values:
        raise SweepSpecError(where, f"give a list of {parameter} values, e.g. {_EXAMPLES[parameter]}")
    parsed = tuple(_parse_value(parameter, raw, where) for raw in values)
    labels = [value_label(parameter, value) for value in parsed]
    duplicates = sorted(set(label for label in labels if labels.count(label) > 1))
    if duplicates:
        raise SweepSpecError(where, f"{parameter} value {duplicates[0]} is listed twice")
    return Sweep(parameter, parsed, where)


_EXAMPLES = {"threads": "[1, 2, 4]", "batch": "[1, 4]", "resolution": "[224, 448]", "precision": "[fp32, int8]",
             "power_mode": "[low, high]"}


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
            raise SweepSpecError(f"--sweep {sweep.parameter}", "given twice: list all values in one option, "
                                 f"e.g. --sweep {sweep.parameter}={','.join(sweeps[sweep.parameter].labels() + sweep.labels())}")
        sweeps[sweep.parameter] = sweep
    return tuple(sweeps.values())


def parse_manifest_sweeps(data: Any, where: str) -> dict[str, Sweep]:
    """A manifest `sweeps:` mapping {parameter: [values]} -> {parameter: Sweep}."""
    if not isinstance(data, Mapping):
        raise SweepSpecError(where, f"expected a mapping of parameter -> list of values, "
                             "e.g. {threads: [1, 2, 4], batch: [1, 4]}")
    return {str(parameter): parse_sweep_values(str(parameter), values, f"{where}.{parameter}")
            for parameter, values in data.items()}


def parse_point_id(text: str) -> tuple[str, str, str] | None:
    """`mobilenet_v3_small-fp32@threads=2` (or a variant name `fp32@threads=2`) ->
    (base, parameter, value label); None for an id that is not a sweep point."""
    base, sep, rest = text.rpartition(POINT_SEPARATOR)
    parameter, eq, label = rest.partition("=")
    if not sep or not eq or parameter not in PARAMETERS or not base or not label:
        return None
    return base, parameter, label


# --------------------------------------------------------------------------- expansion


def image_layout(shape: Sequence[int]) -> str | None:
    """"NCHW" or "NHWC" for a rank-4 image input (channels 1, 3 or 4), else None."""
    if len(shape) != 4:
        return None
    if shape[1] in (1, 3, 4) and shape[3] not in (1, 3, 4):
        return "NCHW"
    if shape[3] in (1, 3, 4):
        return "NHWC"
    return None


def _replace_dims(shape: tuple[int, ...], parameter: str, value: Any) -> tuple[tuple[int, ...], list[int], str]:
    """The new shape, the indices that changed meaning, or an error."""
    new = list(shape)
    if parameter == "batch":
        if not shape:
            return shape, [], "input has no batch dimension"
        new[0] = value
        return tuple(new), [0], ""
    layout = image_layout(shape)
    if layout is None:
        return shape, [], f"input shape {list(shape)} is not an NCHW/NHWC image: no resolution to change"
    width, height = value
    h, w = (2, 3) if layout == "NCHW" else (1, 2)
    new[h], new[w] = height, width
    return tuple(new), [h, w], ""


def _precision_variant(variant: ModelVariant, precision: str, siblings: Sequence[ModelVariant]):
    """The variant of the same model and runtime at `precision`, or (None, reason)."""
    def precision_of(candidate) -> str:
        return PRECISION_OF_KIND.get(candidate.kind, "")

    if precision_of(variant) == precision:
        return variant, ""
    if not precision_of(variant):
        return None, f"{variant.id} is a {variant.kind} variant: it has no {precision} counterpart to sweep to"
    candidates = [c for c in siblings if c.model == variant.model and c.runtime == variant.runtime
                  and c.name != variant.name and precision_of(c) == precision]
    linked = [c for c in candidates if c.baseline == variant.name or variant.baseline == c.name]
    if len(linked) == 1:
        return linked[0], ""
    if len(candidates) == 1:
        return candidates[0], ""
    if not candidates:
        return None, f"{variant.model} has no {precision} variant for {variant.runtime}"
    return None, (f"{variant.model} has {len(candidates)} {precision} variants for {variant.runtime} "
                  f"({', '.join(c.name for c in candidates)}) and none has {variant.name} as baseline")


def expand_variant(variant: ModelVariant, sweep: Sweep, siblings: Sequence[ModelVariant] = (),
                   input_shape: Callable[[ModelVariant], tuple | None] | None = None) -> list[SweepPoint]:
    """One point per value of `sweep` for `variant`.

    `siblings`: the model's other variants (precision sweeps pick among them). `input_shape`:
    the model's declared input shape with None for dynamic dims, or None when the runtime
    reshapes freely (see `declared_input_shape`); without it batch/resolution points are not
    checked here and a model that cannot take the shape fails when it runs."""
    points = []
    declared = input_shape(variant) if input_shape is not None and sweep.parameter in ("batch", "resolution") else None
    for index, value in enumerate(sweep.values):
        label = value_label(sweep.parameter, value)
        name = f"{variant.name}{POINT_SEPARATOR}{sweep.parameter}={label}"

        def point(derived=None, skipped=""):
            return SweepPoint(variant.id, sweep.parameter, value, index, derived, skipped)

        if sweep.parameter in RUNTIME_OPTION:
            option = RUNTIME_OPTION[sweep.parameter].get(variant.runtime)
            if option is None:
                points.append(point(skipped=f"{variant.runtime} has no {sweep.parameter} option"))
                continue
            if sweep.parameter == "power_mode" and value not in POWER_LADDER:
                points.append(point(skipped=f"unknown paddle-lite power mode {value!r} (known: "
                                            f"{', '.join(POWER_LADDER)})"))
                continue
            derived = dataclasses.replace(variant, name=name, baseline=_point_baseline(variant, sweep, label),
                                          runtime_options={**dict(variant.runtime_options), option: value})
            points.append(point(derived))
        elif sweep.parameter in ("batch", "resolution"):
            shape, changed, error = _replace_dims(tuple(variant.input.shape), sweep.parameter, value)
            if error:
                points.append(point(skipped=f"{variant.id}: {error}"))
                continue
            if declared is not None:
                fixed = [i for i in changed if i < len(declared) and declared[i] is not None
                         and declared[i] != shape[i]]
                if fixed:
                    points.append(point(skipped=(
                        f"{variant.id}: the model's input is fixed at {list(_shown(declared))}; "
                        f"{sweep.parameter}={label} needs dims {fixed} dynamic (re-export with a dynamic input)")))
                    continue
            derived = dataclasses.replace(variant, name=name, baseline=_point_baseline(variant, sweep, label),
                                          input=dataclasses.replace(variant.input, shape=shape))
            points.append(point(derived))
        else:  # precision
            chosen, reason = _precision_variant(variant, value, siblings)
            if chosen is None:
                points.append(point(skipped=reason))
                continue
            baseline = chosen.baseline if chosen.name != variant.name else variant.baseline
            points.append(point(dataclasses.replace(chosen, name=name, baseline=baseline)))
    return points


def _point_baseline(variant: ModelVariant, sweep: Sweep, label: str) -> str | None:
    if variant.baseline is None:
        return None
    return f"{variant.baseline}{POINT_SEPARATOR}{sweep.parameter}={label}"


def _shown(declared: Sequence[Any]) -> list[Any]:
    return ["?" if d is None else d for d in declared]


def sweeps_for(variant: ModelVariant, cli_sweeps: Sequence[Sweep] = ()) -> list[Sweep]:
    """The manifest's sweeps of `variant`, with command-line sweeps replacing the same parameter."""
    merged = dict(getattr(variant, "sweeps", None) or {})
    for sweep in cli_sweeps:
        merged[sweep.parameter] = sweep
    return [merged[p] for p in PARAMETERS if p in merged]


def expand(variants: Sequence[ModelVariant], cli_sweeps: Sequence[Sweep] = (),
           siblings: Sequence[ModelVariant] | None = None,
           input_shape: Callable[[ModelVariant], tuple | None] | None = None) -> list[SweepPoint]:
    """Every point of every sweep of every variant (manifest sweeps + command-line sweeps).

    `siblings` defaults to `variants` (pass the whole manifest's variants when only some are
    selected, so precision sweeps can find their counterparts)."""
    pool = list(siblings if siblings is not None else variants)
    points = []
    for variant in variants:
        for sweep in sweeps_for(variant, cli_sweeps):
            points.extend(expand_variant(variant, sweep, pool, input_shape))
    return points


def declared_input_shape(variant: ModelVariant) -> tuple | None:
    """The first input's shape as the model file declares it (None per dynamic dim), for
    formats whose runtime refuses other shapes (onnx, tflite); None for formats whose runtime
    reshapes freely (paddle, paddle-lite) or when the file cannot be read here.

    Reads the model file on the host (lazy imports of onnx / ai_edge_litert)."""
    path = dict(variant.files).get("model")
    if not path:
        return None
    try:
        if variant.format == "onnx":
            import onnx

            graph = onnx.load(path, load_external_data=False).graph
            initializers = {i.name for i in graph.initializer}
            first = next(i for i in graph.input if i.name not in initializers)
            return tuple(d.dim_value if d.HasField("dim_value") and d.dim_value > 0 else None
                         for d in first.type.tensor_type.shape.dim)
        if variant.format == "tflite":
            from ai_edge_litert.interpreter import Interpreter

            detail = Interpreter(model_path=path).get_input_details()[0]
            return tuple(int(d) if int(d) > 0 else None for d in detail["shape_signature"])
    except Exception:  # unreadable here: let the runtime decide
        return None
    return None


# --------------------------------------------------------------------------- results and the cheapest point


@dataclass(frozen=True)
class PointResult:
    """What was measured at one point (from stored records)."""

    id: str  # point id: <variant id>@<parameter>=<value>
    target: str
    base: str
    parameter: str
    label: str
    value: Any
    latency_ms: Mapping[str, float] = field(default_factory=dict)  # p50, p90, ..., mean
    throughput_per_s: float | None = None  # inputs per second (batch counted)
    peak_memory_bytes: int | None = None
    power_w: float | None = None
    errors: tuple[str, ...] = ()
    index: int = 0  # order written in the sweep, when known


def point_results(records: Iterable[MeasurementRecord]) -> list[PointResult]:
    """Group latency / memory / power records of sweep points into one PointResult each."""
    grouped: dict[tuple[str, str], dict[str, Any]] = {}
    for record in records:
        parsed = parse_point_id(record.variant_id)
        if parsed is None:
            continue
        base, parameter, label = parsed
        entry = grouped.setdefault((record.target, record.variant_id), {
            "id": record.variant_id, "target": record.target, "base": base, "parameter": parameter,
            "label": label, "latency_ms": {}, "errors": []})
        if record.status != "ok":
            entry["errors"].append(f"{record.metric}: {record.meta.get('error', 'failed')}")
            continue
        summary = record.summary
        if record.metric == "latency":
            entry["latency_ms"] = {k: summary[k] for k in ("p50", "p90", "p95", "p99", "mean", "min", "max")
                                   if isinstance(summary.get(k), (int, float))}
            batch = ((record.meta.get("input") or {}).get("shape") or [1])[0] or 1
            if summary.get("throughput") is not None:
                entry["throughput_per_s"] = summary["throughput"] * batch
            if summary.get("peak_rss_bytes") is not None and "peak_memory_bytes" not in entry:
                entry["peak_memory_bytes"] = summary["peak_rss_bytes"]
        elif record.metric == "memory" and summary.get("peak_rss_bytes") is not None:
            entry["peak_memory_bytes"] = summary["peak_rss_bytes"]  # the memory job's peak wins
        elif record.metric == "power" and summary.get("load_mean_w") is not None:
            entry["power_w"] = summary["load_mean_w"]
    results = []
    for entry in grouped.values():
        try:
            value = _parse_value(entry["parameter"], entry["label"], entry["id"])
        except SweepSpecError:
            value = entry["label"]
        results.append(PointResult(value=value, errors=tuple(entry.pop("errors")), **entry))
    return results


def cost_key(parameter: str, value: Any, index: int = 0) -> tuple:
    """Sort key of a point's cost (see the module docstring): smaller is cheaper."""
    if parameter in ("threads", "batch"):
        return (int(value),)
    if parameter == "resolution":
        width, height = value if isinstance(value, tuple) else (int(value), int(value))
        return (width * height, width)
    if parameter == "precision":
        return (PRECISIONS.index(value) if value in PRECISIONS else len(PRECISIONS), index)
    if parameter == "power_mode":
        return (POWER_LADDER.index(value) if value in POWER_LADDER else len(POWER_LADDER), index)
    return (index,)


COST_ORDER = {
    "threads": "fewest threads first",
    "batch": "smallest batch first",
    "resolution": "fewest pixels first",
    "precision": "fewest bits first (int8 < fp16 < fp32)",
    "power_mode": "lowest-power mode first",
}


@dataclass(frozen=True)
class CheapestChoice:
    point: PointResult | None  # None: no point meets every limit
    parameter: str
    cost_order: str
    checks: tuple[Mapping[str, Any], ...]  # per point, cheapest first: {"id", "label", "meets", "failures"}
    message: str


def _limits(budget: Any) -> dict[str, Any]:
    if budget is None:
        return {}
    if isinstance(budget, Mapping):
        get = budget.get
    else:
        def get(key, default=None):
            return getattr(budget, key, default)
    return {"target_latency_s": get("target_latency_s"), "max_memory_bytes": get("max_memory_bytes"),
            "max_power_w": get("max_power_w"), "statistic": get("statistic") or "p90"}


def check_point(point: PointResult, budget: Any) -> list[str]:
    """The limits `point` misses (or cannot be shown to meet); empty = meets every limit."""
    limits = _limits(budget)
    failures = list(point.errors)
    if limits.get("target_latency_s") is not None:
        statistic = limits["statistic"]
        value = point.latency_ms.get(statistic)
        limit_ms = limits["target_latency_s"] * 1000.0
        if value is None:
            failures.append(f"no {statistic} latency measured")
        elif value > limit_ms:
            failures.append(f"{statistic} {value:.3f} ms > {limit_ms:.3f} ms")
    if limits.get("max_memory_bytes") is not None:
        if point.peak_memory_bytes is None:
            failures.append("no peak memory measured")
        elif point.peak_memory_bytes > limits["max_memory_bytes"]:
            failures.append(f"peak memory {point.peak_memory_bytes / 2**20:.1f} MiB > "
                            f"{limits['max_memory_bytes'] / 2**20:.1f} MiB")
    if limits.get("max_power_w") is not None:
        if point.power_w is None:
            failures.append("no power measured")
        elif point.power_w > limits["max_power_w"]:
            failures.append(f"power {point.power_w:.2f} W > {limits['max_power_w']:.2f} W")
    return failures


def cheapest_point(points: Sequence[PointResult], budget: Any) -> CheapestChoice:
    """The cheapest point of ONE sweep (one target, one base variant, one parameter) that meets
    every limit of `budget` (a manifest Budget, or the dict stored in a record's meta["budget"]).

    A budget with no limit at all makes every measured point qualify, so the cheapest one wins."""
    if not points:
        return CheapestChoice(None, "", "", (), "no points measured")
    parameters = {p.parameter for p in points}
    groups = {(p.target, p.base) for p in points}
    if len(parameters) > 1 or len(groups) > 1:
        raise ValueError("cheapest_point compares the points of one sweep: one target, one variant, one parameter "
                         f"(got {sorted(parameters)} over {sorted(groups)})")
    parameter = points[0].parameter
    ordered = sorted(points, key=lambda p: cost_key(parameter, p.value, p.index))
    checks = []
    chosen = None
    for point in ordered:
        failures = check_point(point, budget)
        checks.append({"id": point.id, "label": point.label, "meets": not failures, "failures": failures})
        if chosen is None and not failures:
            chosen = point
    if chosen is None:
        message = (f"no {parameter} point of {points[0].base} on {points[0].target} meets the budget "
                   f"(cheapest tried: {checks[0]['label']}: {'; '.join(checks[0]['failures'])})")
    else:
        message = (f"cheapest point meeting every budget: {parameter}={chosen.label} "
                   f"({COST_ORDER.get(parameter, 'sweep order')})")
    return CheapestChoice(chosen, parameter, COST_ORDER.get(parameter, "sweep order"), tuple(checks), message)


@dataclass(frozen=True)
class SweepCurve:
    """One sweep as the report draws it: points in cost order, the budget, the cheapest point."""

    target: str
    base: str
    parameter: str
    points: tuple[PointResult, ...]
    budget: Mapping[str, Any] | None
    choice: CheapestChoice


def sweep_curves(records: Sequence[MeasurementRecord]) -> list[SweepCurve]:
    """Every sweep found in `records` (grouped by target, base variant and parameter)."""
    results = point_results(records)
    budgets = {}
    for record in records:
        if parse_point_id(record.variant_id) and record.meta.get("budget"):
            budgets.setdefault((record.target, record.variant_id), record.meta["budget"])
    grouped: dict[tuple[str, str, str], list[PointResult]] = {}
    for result in results:
        grouped.setdefault((result.target, result.base, result.parameter), []).append(result)
    curves = []
    for (target, base, parameter), group in sorted(grouped.items()):
        ordered = tuple(sorted(group, key=lambda p: cost_key(parameter, p.value, p.index)))
        budget = next((budgets[(target, p.id)] for p in ordered if (target, p.id) in budgets), None)
        curves.append(SweepCurve(target, base, parameter, ordered, budget, cheapest_point(ordered, budget)))
    return curves
