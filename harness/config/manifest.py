"""Reading the model manifest (suites/models.yaml): models, their variants, and budgets.

`load_manifest` reads and checks the manifest into a `Manifest` of frozen `ModelVariant`
values (harness.config.variants), one per variant, with its files, runtime, baseline link,
measurement settings, budgets (inline, or from a deployment config: see
harness.config.deployment_config) and sweeps. The key reference is docs/manifest.md.

Files are not required to exist at load time (the zoo may not be built yet); see
`ModelVariant.missing_files`.
"""

from __future__ import annotations

import dataclasses
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any

from harness.analysis.fidelity_settings import FidelitySettings
from harness.config.deployment_config import load_deployment_config
from harness.config.sections import (
    Section,
    check_name,
    join_key,
    load_yaml_mapping,
    resolve_local_path,
)
from harness.config.sweep_specs import Sweep, SweepSpecError, parse_manifest_sweeps
from harness.config.targets import ARCHES, RUNTIMES
from harness.config.targets import NAME_PATTERN as TARGET_NAME_PATTERN
from harness.config.units import parse_fraction
from harness.config.variants import (
    DTYPES,
    FORMATS,
    REGRESSION_METRICS,
    STATISTICS,
    VARIANT_KINDS,
    Budget,
    InputSpec,
    LatencySettings,
    Manifest,
    ModelVariant,
)
from harness.errors import ConfigError

MANIFEST_VERSION = 1
ZOO_DIR_ENV = "HARNESS_ZOO_DIR"

_RUNTIMES_BY_FORMAT: Mapping[str, tuple[str, ...]] = MappingProxyType(
    {
        "paddle": ("paddle-inference", "noop"),
        "paddle-lite": ("paddle-lite", "noop"),
        "onnx": ("onnxruntime", "noop"),
        "tflite": ("litert", "noop"),
        "none": ("noop",),
    }
)
_ROLES_BY_FORMAT: Mapping[str, Mapping[str, tuple[str, ...]]] = MappingProxyType(
    {
        "paddle": MappingProxyType({"model": (".pdmodel", ".json"), "params": (".pdiparams",)}),
        "paddle-lite": MappingProxyType({"model": (".nb",)}),
        "onnx": MappingProxyType({"model": (".onnx",)}),
        "tflite": MappingProxyType({"model": (".tflite",)}),
        "none": MappingProxyType({}),
    }
)
"""File roles each format needs, with the file endings each role accepts."""

_MODEL_NAME = re.compile(r"[a-z0-9][a-z0-9_.-]*")
_MODEL_HINT = "start with a lower-case letter or digit, then use lower-case letters, digits, '.', '_' or '-'"
_VARIANT_NAME = re.compile(r"[a-z0-9][a-z0-9_.]*")
_VARIANT_HINT = "use lower-case letters, digits, '.' and '_' (no '-': the variant id is <model>-<variant>)"
_PLACEHOLDER = re.compile(r"\{([^{}]*)\}")

_TOP_KEYS = ("version", "zoo_dir", "defaults", "models")
_DEFAULTS_KEYS = ("latency", "fidelity", "budget_statistic")
_LATENCY_KEYS = ("warmup_iterations", "warmup_duration", "min_iterations", "min_duration", "max_duration",
                 "max_iterations", "pairing", "paired_precision", "paired_rounds", "precision")
_FIDELITY_KEYS = ("inputs", "min_top1_agreement", "min_top5_agreement", "max_relative_error", "min_cosine")
_MODEL_KEYS = ("description", "input", "latency", "fidelity", "budgets", "variants", "regression_threshold", "sweeps",
               "dataset")
_VARIANT_KEYS = (
    "description", "kind", "format", "runtime", "files", "baseline", "runtime_options", "input", "latency", "fidelity",
    "arch", "regression_threshold", "sweeps",
)
_INPUT_KEYS = ("name", "shape", "dtype")
_BUDGET_KEYS = ("target_latency", "max_memory", "max_power", "statistic", "deployment", "min_accuracy",
                "max_accuracy_drop")


@dataclass(frozen=True)
class _Context:
    """What every part of the manifest is read against."""

    source: str
    base_dir: str  # the manifest's directory, absolute
    shown_dir: str  # the manifest's directory as given (for readable budget sources)
    zoo_dir: str
    statistic: str


def load_manifest(path: str | Path) -> Manifest:
    """Read and check the model manifest."""
    source = str(path)
    top = Section.of(load_yaml_mapping(path), source, "", _TOP_KEYS, required=("version", "models"))
    version = top.get_int("version")
    if version != MANIFEST_VERSION:
        raise top.error("version", f"unsupported version {version}: this harness reads version {MANIFEST_VERSION}")
    base_dir = os.path.abspath(os.path.dirname(source))
    defaults = top.get_section("defaults", _DEFAULTS_KEYS)
    context = _Context(
        source=source,
        base_dir=base_dir,
        shown_dir=os.path.dirname(source),
        zoo_dir=_zoo_dir(top, base_dir),
        statistic=defaults.get_choice("budget_statistic", STATISTICS, "p90"),
    )
    latency = _read_latency(defaults.get_section("latency", _LATENCY_KEYS), LatencySettings())
    fidelity = _read_fidelity(defaults.get_section("fidelity", _FIDELITY_KEYS), FidelitySettings())
    models_section = top.get_section("models", None, default_empty=False)
    if not models_section.data:
        raise top.error("models", "no models declared: add at least one model with its variants")
    models: dict[str, tuple[ModelVariant, ...]] = {}
    for name in models_section.data:
        check_name(name, _MODEL_NAME, source, models_section.key(name), "model name", _MODEL_HINT)
        models[name] = _read_model(
            models_section.get_section(name, _MODEL_KEYS, required=("variants",)), name, latency, fidelity, context)
    variants = tuple(variant for group in models.values() for variant in group)
    return Manifest(path=source, zoo_dir=context.zoo_dir, models=MappingProxyType(models), variants=variants)


def _zoo_dir(top: Section, base_dir: str) -> str:
    """``$HARNESS_ZOO_DIR`` (relative to the working directory) wins over ``zoo_dir``
    (relative to the manifest); the default is ``.zoo`` next to the manifest."""
    override = os.environ.get(ZOO_DIR_ENV)
    if override:
        return resolve_local_path(override, ZOO_DIR_ENV, "", os.getcwd())
    return resolve_local_path(top.get_str("zoo_dir", ".zoo"), top.source, "zoo_dir", base_dir)


def _read_latency(section: Section, base: LatencySettings) -> LatencySettings:
    """Override ``base`` with the keys present in ``section``."""
    getters: dict[str, Callable[[], Any]] = {
        "warmup_iterations": lambda: section.get_int("warmup_iterations", minimum=0),
        "warmup_duration_s": lambda: section.get_duration("warmup_duration"),
        "min_iterations": lambda: section.get_int("min_iterations", minimum=1),
        "min_duration_s": lambda: section.get_duration("min_duration"),
        "max_duration_s": lambda: section.get_duration("max_duration", positive=True),
        "max_iterations": lambda: section.get_int("max_iterations", minimum=1),
        "pairing": lambda: section.get_bool("pairing"),
        "paired_precision": lambda: section.get_fraction("paired_precision"),
        "paired_rounds": lambda: section.get_int("paired_rounds", minimum=0),
        "precision": lambda: section.get_fraction("precision"),
    }
    yaml_keys = dict(zip(getters, _LATENCY_KEYS, strict=True))
    overrides = {attr: get() for attr, get in getters.items() if section.has(yaml_keys[attr])}
    settings = dataclasses.replace(base, **overrides)
    if settings.max_duration_s < settings.min_duration_s:
        raise section.error(
            "max_duration",
            f"max_duration ({settings.max_duration_s:g}s) is shorter than min_duration "
            f"({settings.min_duration_s:g}s): raise max_duration or lower min_duration",
        )
    if settings.max_iterations < settings.min_iterations:
        raise section.error(
            "max_iterations",
            f"max_iterations ({settings.max_iterations}) is below min_iterations ({settings.min_iterations}): "
            "raise max_iterations or lower min_iterations",
        )
    return settings


def _read_fidelity(section: Section, base: FidelitySettings) -> FidelitySettings:
    """Override ``base`` with the keys present in ``section``."""
    getters: dict[str, Callable[[], Any]] = {
        "inputs": lambda: section.get_int("inputs", minimum=2, maximum=1024),
        "min_top1_agreement": lambda: section.get_fraction("min_top1_agreement"),
        "min_top5_agreement": lambda: section.get_fraction("min_top5_agreement"),
        "max_relative_error": lambda: section.get_float("max_relative_error", minimum=0.0),
        "min_cosine": lambda: section.get_float("min_cosine", minimum=-1.0),
    }
    return dataclasses.replace(base, **{key: get() for key, get in getters.items() if section.has(key)})


def _read_regression_threshold(section: Section, base: Mapping[str, float]) -> Mapping[str, float]:
    """``regression_threshold: 5%`` (every metric) or ``{latency: 3%, memory: 5%}`` (per metric),
    overriding ``base`` (the model's) key by key; a bare value replaces all of ``base``."""
    if not section.has("regression_threshold"):
        return base
    key = section.key("regression_threshold")
    value = section.raw("regression_threshold")

    def positive(raw: Any, where: str) -> float:
        fraction = parse_fraction(raw, section.source, where)
        if fraction <= 0:
            raise ConfigError(section.source, where, f"{raw!r} must be more than zero (e.g. 3% or 0.03)")
        return fraction

    if isinstance(value, Mapping):
        per_metric = Section.of(value, section.source, key, REGRESSION_METRICS)
        return MappingProxyType({**base, **{metric: positive(per_metric.raw(metric), per_metric.key(metric))
                                            for metric in per_metric.data if per_metric.has(metric)}})
    return MappingProxyType({"*": positive(value, key)})


def _read_sweeps(section: Section, base: Mapping[str, Sweep]) -> Mapping[str, Sweep]:
    """``sweeps: {threads: [1, 2, 4], batch: [1, 4]}`` (parameter -> values, see harness.config.sweep_specs),
    overriding ``base`` (the model's) parameter by parameter."""
    if not section.has("sweeps"):
        return base
    try:
        return MappingProxyType({**base, **parse_manifest_sweeps(section.raw("sweeps"), section.key("sweeps"))})
    except SweepSpecError as exc:
        raise ConfigError(section.source, exc.where, exc.reason) from None


def _read_model(
    section: Section, name: str, latency: LatencySettings, fidelity: FidelitySettings, context: _Context
) -> tuple[ModelVariant, ...]:
    model_latency = _read_latency(section.get_section("latency", _LATENCY_KEYS), latency)
    model_fidelity = _read_fidelity(section.get_section("fidelity", _FIDELITY_KEYS), fidelity)
    model_input = section.get_section("input", _INPUT_KEYS)
    budgets = _read_budgets(section.get_section("budgets", None), context)
    variants_section = section.get_section("variants", None, default_empty=False)
    if not variants_section.data:
        raise section.error("variants", "no variants declared: add at least one (e.g. fp32)")
    model_threshold = _read_regression_threshold(section, {})
    model_sweeps = _read_sweeps(section, {})
    dataset = _read_dataset(section, context)
    variants = []
    for variant_name in variants_section.data:
        check_name(variant_name, _VARIANT_NAME, context.source, variants_section.key(variant_name), "variant name",
                   _VARIANT_HINT)
        entry = variants_section.get_section(variant_name, _VARIANT_KEYS, required=("kind", "format", "runtime"))
        variant = _read_variant(entry, name, variant_name, model_input, model_latency, budgets, context)
        variants.append(dataclasses.replace(
            variant, fidelity=_read_fidelity(entry.get_section("fidelity", _FIDELITY_KEYS), model_fidelity),
            regression_threshold=_read_regression_threshold(entry, model_threshold),
            sweeps=_read_sweeps(entry, model_sweeps), dataset=dataset))
    _check_baselines(variants_section, variants)
    return tuple(variants)


def _read_dataset(section: Section, context: _Context) -> str | None:
    """``dataset: PATH`` (``{zoo}`` expanded): the model's labelled image set (.npz), or None."""
    if not section.has("dataset"):
        return None
    key = section.key("dataset")
    path = resolve_local_path(_expand_zoo(section.get_str("dataset"), context, key), context.source, key,
                              context.base_dir)
    if not path.endswith(".npz"):
        raise ConfigError(context.source, key,
                          "a dataset is an image set .npz file (harness.agent.images): fix the path")
    return path


def _read_variant(
    section: Section,
    model: str,
    name: str,
    model_input: Section,
    latency: LatencySettings,
    budgets: Mapping[str, Budget],
    context: _Context,
) -> ModelVariant:
    file_format = section.get_choice("format", FORMATS)
    runtime = section.get_choice("runtime", RUNTIMES)
    runtimes = _RUNTIMES_BY_FORMAT[file_format]
    if runtime not in runtimes:
        raise section.error("runtime",
                            f"runtime {runtime!r} cannot run format {file_format!r}; use {' or '.join(runtimes)}")
    baseline = section.get_str("baseline", None)
    return ModelVariant(
        model=model,
        name=name,
        kind=section.get_choice("kind", VARIANT_KINDS),
        format=file_format,
        runtime=runtime,
        files=_read_files(section.get_section("files", None), file_format, context),
        baseline=baseline,
        runtime_options=section.get_frozen("runtime_options"),
        input=_read_input(model_input, section.get_section("input", _INPUT_KEYS)),
        latency=_read_latency(section.get_section("latency", _LATENCY_KEYS), latency),
        budgets=budgets,
        description=section.get_str("description", ""),
        arch=section.get_choice("arch", ARCHES, None),
    )


def _read_files(section: Section, file_format: str, context: _Context) -> Mapping[str, str]:
    roles = _ROLES_BY_FORMAT[file_format]
    allowed = ", ".join(roles) or "none"
    for role in section.data:
        if role not in roles:
            raise section.error(role, f"unknown file role for format {file_format!r}; allowed roles: {allowed}")
    files = {}
    for role, endings in roles.items():
        value = section.get_str(role)
        key = section.key(role)
        path = resolve_local_path(_expand_zoo(value, context, key), context.source, key, context.base_dir)
        if not path.endswith(endings):
            raise ConfigError(context.source, key,
                              f"a {file_format} {role} file ends with {' or '.join(endings)}: fix the path")
        files[role] = path
    return MappingProxyType(files)


def _expand_zoo(value: str, context: _Context, key: str) -> str:
    for placeholder in _PLACEHOLDER.findall(value):
        if placeholder != "zoo":
            raise ConfigError(context.source, key, f"unknown placeholder {{{placeholder}}}: only {{zoo}} is expanded")
    return value.replace("{zoo}", context.zoo_dir)


def _read_input(model_input: Section, variant_input: Section) -> InputSpec:
    """Variant input keys override the model's, key by key."""
    fields = {**_input_fields(model_input), **_input_fields(variant_input)}
    for name in _INPUT_KEYS:
        if name not in fields:
            raise ConfigError(
                variant_input.source,
                variant_input.path,
                f"input has no {name!r}: set it in {model_input.path} (or in this variant's input)",
            )
    return InputSpec(name=fields["name"], shape=fields["shape"], dtype=fields["dtype"])


def _input_fields(section: Section) -> dict[str, Any]:
    fields: dict[str, Any] = {}
    if section.has("name"):
        fields["name"] = section.get_str("name")
    if section.has("dtype"):
        fields["dtype"] = section.get_choice("dtype", DTYPES)
    if section.has("shape"):
        shape = section.raw("shape")
        if not isinstance(shape, list) or not shape or not all(_is_dimension(item) for item in shape):
            raise section.error("shape", "expected a list of positive whole numbers, e.g. [1, 3, 224, 224]")
        fields["shape"] = tuple(shape)
    return fields


def _is_dimension(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


def _check_baselines(section: Section, variants: list[ModelVariant]) -> None:
    """Each ``baseline`` names another variant of the same model, and no chain cycles."""
    by_name = {variant.name: variant for variant in variants}
    for variant in variants:
        if variant.baseline is None:
            continue
        key = join_key(section.key(variant.name), "baseline")
        if variant.baseline == variant.name:
            raise ConfigError(section.source, key,
                              "a variant cannot be its own baseline: remove the key or name another variant")
        if variant.baseline not in by_name:
            raise ConfigError(
                section.source,
                key,
                f"unknown variant {variant.baseline!r}; variants of this model: {', '.join(by_name)}",
            )
    for variant in variants:
        chain = [variant.name]
        current = variant
        while current.baseline is not None:
            current = by_name[current.baseline]
            if current.name in chain:
                cycle = " -> ".join([*chain[chain.index(current.name) :], current.name])
                raise ConfigError(
                    section.source,
                    join_key(section.key(variant.name), "baseline"),
                    f"baseline chain cycles ({cycle}): remove baseline from the variant the others are "
                    "compared against",
                )
            chain.append(current.name)


def _read_budgets(section: Section, context: _Context) -> Mapping[str, Budget]:
    budgets = {}
    for target in section.data:
        if target != "*":
            check_name(target, TARGET_NAME_PATTERN, context.source, section.key(target), "target name",
                       'use a target name or "*"')
        budgets[target] = _read_budget(section.get_section(target, _BUDGET_KEYS), context)
    return MappingProxyType(budgets)


def _read_budget(section: Section, context: _Context) -> Budget:
    statistic = section.get_choice("statistic", STATISTICS, context.statistic)
    if section.has("deployment"):
        for name in ("target_latency", "max_memory", "max_power"):
            if section.has(name):
                raise section.error(name, "give either deployment or inline limits, not both")
        for name in ("min_accuracy", "max_accuracy_drop"):
            if section.has(name):
                raise section.error(name, "give either deployment or inline limits, not both (a deployment "
                                          "config's performance section takes min_accuracy and max_accuracy_drop)")
        return _read_deployment_budget(section, statistic, context)
    budget = Budget(
        target_latency_s=section.get_duration("target_latency", None, positive=True),
        max_memory_bytes=section.get_bytes("max_memory", None, positive=True),
        max_power_w=section.get_power("max_power", None, positive=True),
        statistic=statistic,
        source=f"{context.source}: {section.path}",
        min_accuracy=section.get_fraction("min_accuracy", None),
        max_accuracy_drop=section.get_fraction("max_accuracy_drop", None),
    )
    if not budget.sets_a_limit():
        raise ConfigError(context.source, section.path, "budget sets no limit: give target_latency, max_memory, "
                                                        "max_power, min_accuracy or max_accuracy_drop")
    return budget


def _read_deployment_budget(section: Section, statistic: str, context: _Context) -> Budget:
    key = section.key("deployment")
    written = section.get_str("deployment")
    shown = resolve_local_path(written, context.source, key, context.shown_dir)
    if not os.path.isfile(shown):
        raise ConfigError(context.source, key,
                          f"deployment config {shown} not found: the path is relative to {context.source}")
    return load_deployment_config(shown, statistic)


