"""Expanding a variant into its sweep points: the derived variants to measure (pure).

Each value of a sweep (harness.config.sweep_specs) of a variant is one `SweepPoint`, whose
`variant` is the swept variant with that one parameter changed, or None with the reason
when the point cannot run (no such runtime option, a fixed input shape, no variant of that
precision).

Point ids: `<variant id>@<parameter>=<value>`, e.g. `mobilenet_v3_small-fp32@threads=2`; the
derived variant's name is `<variant name>@<parameter>=<value>` so stored records say which
point they are. A derived variant's baseline is the same point of its baseline
(`int8@threads=2` is compared with `fp32@threads=2`, measured or not), except for precision
points, which are real manifest variants and keep their own baseline.

Batch and resolution points change the input shape. Whether the model takes the new shape
is the model file's business: the caller passes `input_shape`, the shape the file declares
(None per dynamic dim, see harness.run.declared_input_shapes, which reads the files), and a
point that needs a fixed dim changed is skipped with the reason. Without it (or for formats
whose runtime reshapes freely, paddle and paddle-lite) the point runs and a model that cannot
take the shape fails with the runtime's error.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from harness.config.sweep_specs import (
    PARAMETERS,
    POWER_LADDER,
    Sweep,
    SweepValue,
    point_name,
    value_label,
)
from harness.config.variants import ModelVariant

DeclaredShape = tuple[int | None, ...]
"""An input shape as a model file declares it: None for a dynamic dim."""
InputShapeOf = Callable[[ModelVariant], DeclaredShape | None]
"""The declared input shape of a variant's model, or None when the runtime reshapes freely."""

# variant kinds (manifest VARIANT_KINDS) by the precision they stand for; pruned, distilled and
# other variants are a different model, not a precision of one, and have no precision points
PRECISION_OF_KIND: Mapping[str, str] = {"fp32": "fp32", "fp16": "fp16", "int8-ptq": "int8", "int8-qat": "int8"}
# the runtime option a parameter sets, per runtime
RUNTIME_OPTION: Mapping[str, Mapping[str, str]] = {
    "threads": {"paddle-inference": "threads", "onnxruntime": "threads", "paddle-lite": "threads", "litert": "threads"},
    "power_mode": {"paddle-lite": "power_mode"},
}


@dataclass(frozen=True)
class SweepPoint:
    """One point of one sweep of one variant; `variant` is None when the point cannot run."""

    base: str  # the swept variant's id, e.g. mobilenet_v3_small-fp32
    parameter: str
    value: SweepValue
    index: int  # position in the sweep as written (power_mode cost falls back to it)
    variant: ModelVariant | None
    skipped: str = ""  # why the point cannot run on this variant

    @property
    def label(self) -> str:
        return value_label(self.parameter, self.value)

    @property
    def id(self) -> str:
        return point_name(self.base, self.parameter, self.label)


def image_layout(shape: Sequence[int]) -> str | None:
    """"NCHW" or "NHWC" for a rank-4 image input (channels 1, 3 or 4), else None."""
    if len(shape) != 4:
        return None
    if shape[1] in (1, 3, 4) and shape[3] not in (1, 3, 4):
        return "NCHW"
    if shape[3] in (1, 3, 4):
        return "NHWC"
    return None


def _replace_dims(shape: tuple[int, ...], parameter: str, value: SweepValue) -> tuple[tuple[int, ...], list[int], str]:
    """The new shape, the indices that changed meaning, or an error."""
    new = list(shape)
    if parameter == "batch":
        if not shape:
            return shape, [], "input has no batch dimension"
        assert isinstance(value, int)  # sweep_specs parses batch values to int
        new[0] = value
        return tuple(new), [0], ""
    layout = image_layout(shape)
    if layout is None:
        return shape, [], f"input shape {list(shape)} is not an NCHW/NHWC image: no resolution to change"
    assert isinstance(value, tuple)  # sweep_specs parses resolution values to (width, height)
    width, height = value
    h, w = (2, 3) if layout == "NCHW" else (1, 2)
    new[h], new[w] = height, width
    return tuple(new), [h, w], ""


def _precision_of(variant: ModelVariant) -> str:
    return PRECISION_OF_KIND.get(variant.kind, "")


def _precision_variant(variant: ModelVariant, precision: str,
                       siblings: Sequence[ModelVariant]) -> tuple[ModelVariant | None, str]:
    """The variant of the same model and runtime at `precision`, or (None, reason)."""
    if _precision_of(variant) == precision:
        return variant, ""
    if not _precision_of(variant):
        return None, f"{variant.id} is a {variant.kind} variant: it has no {precision} counterpart to sweep to"
    candidates = [c for c in siblings if c.model == variant.model and c.runtime == variant.runtime
                  and c.name != variant.name and _precision_of(c) == precision]
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
                   input_shape: InputShapeOf | None = None) -> list[SweepPoint]:
    """One point per value of `sweep` for `variant`.

    `siblings`: the model's other variants (precision sweeps pick among them). `input_shape`:
    the model's declared input shape with None for dynamic dims, or None when the runtime
    reshapes freely; without it batch/resolution points are not checked here and a model that
    cannot take the shape fails when it runs. It is asked only for batch and resolution sweeps."""
    declared = input_shape(variant) if input_shape is not None and sweep.parameter in ("batch", "resolution") else None
    return [_point(variant, sweep, index, value, siblings, declared) for index, value in enumerate(sweep.values)]


def _point(variant: ModelVariant, sweep: Sweep, index: int, value: SweepValue, siblings: Sequence[ModelVariant],
           declared: DeclaredShape | None) -> SweepPoint:
    """The point of `variant` at `value` (the `index`-th value of `sweep`)."""
    label = value_label(sweep.parameter, value)
    name = point_name(variant.name, sweep.parameter, label)

    def point(derived: ModelVariant | None = None, skipped: str = "") -> SweepPoint:
        return SweepPoint(variant.id, sweep.parameter, value, index, derived, skipped)

    if sweep.parameter in RUNTIME_OPTION:
        option = RUNTIME_OPTION[sweep.parameter].get(variant.runtime)
        if option is None:
            return point(skipped=f"{variant.runtime} has no {sweep.parameter} option")
        if sweep.parameter == "power_mode" and value not in POWER_LADDER:
            return point(skipped=f"unknown paddle-lite power mode {value!r} (known: {', '.join(POWER_LADDER)})")
        return point(dataclasses.replace(variant, name=name, baseline=_point_baseline(variant, sweep, label),
                                         runtime_options={**dict(variant.runtime_options), option: value}))
    if sweep.parameter in ("batch", "resolution"):
        shape, changed, error = _replace_dims(tuple(variant.input.shape), sweep.parameter, value)
        if error:
            return point(skipped=f"{variant.id}: {error}")
        if declared is not None:
            fixed = [i for i in changed if i < len(declared) and declared[i] is not None and declared[i] != shape[i]]
            if fixed:
                return point(skipped=(
                    f"{variant.id}: the model's input is fixed at {_shown(declared)}; "
                    f"{sweep.parameter}={label} needs dims {fixed} dynamic (re-export with a dynamic input)"))
        return point(dataclasses.replace(variant, name=name, baseline=_point_baseline(variant, sweep, label),
                                         input=dataclasses.replace(variant.input, shape=shape)))
    # precision
    assert isinstance(value, str)  # sweep_specs parses precision values to str
    chosen, reason = _precision_variant(variant, value, siblings)
    if chosen is None:
        return point(skipped=reason)
    baseline = chosen.baseline if chosen.name != variant.name else variant.baseline
    return point(dataclasses.replace(chosen, name=name, baseline=baseline))


def _point_baseline(variant: ModelVariant, sweep: Sweep, label: str) -> str | None:
    if variant.baseline is None:
        return None
    return point_name(variant.baseline, sweep.parameter, label)


def _shown(declared: DeclaredShape) -> list[int | str]:
    return ["?" if d is None else d for d in declared]


def sweeps_for(variant: ModelVariant, cli_sweeps: Sequence[Sweep] = ()) -> list[Sweep]:
    """The manifest's sweeps of `variant`, with command-line sweeps replacing the same parameter."""
    merged = dict(variant.sweeps)
    for sweep in cli_sweeps:
        merged[sweep.parameter] = sweep
    return [merged[p] for p in PARAMETERS if p in merged]


def expand(variants: Sequence[ModelVariant], cli_sweeps: Sequence[Sweep] = (),
           siblings: Sequence[ModelVariant] | None = None,
           input_shape: InputShapeOf | None = None) -> list[SweepPoint]:
    """Every point of every sweep of every variant (manifest sweeps + command-line sweeps).

    `siblings` defaults to `variants` (pass the whole manifest's variants when only some are
    selected, so precision sweeps can find their counterparts)."""
    pool = list(siblings if siblings is not None else variants)
    points = []
    for variant in variants:
        for sweep in sweeps_for(variant, cli_sweeps):
            points.extend(expand_variant(variant, sweep, pool, input_shape))
    return points
