"""Model variants as values: what the manifest declares for each variant, checked and frozen.

A `ModelVariant` is one variant (fp32, int8, ...) of one model with its files, runtime,
baseline link, input, measurement settings and per-target `Budget`s; a `Manifest` is all of
them. Reading suites/models.yaml into these is harness.config.manifest, a deployment config
into a `Budget` harness.config.deployment_config; the key reference is docs/manifest.md.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from harness.analysis.fidelity_settings import FidelitySettings
from harness.config.sections import empty_mapping
from harness.config.sweep_specs import Sweep

STATISTICS = ("p50", "p90", "p95", "p99", "mean")
VARIANT_KINDS = ("fp32", "fp16", "int8-ptq", "int8-qat", "pruned", "distilled", "other")
FORMATS = ("paddle", "paddle-lite", "onnx", "tflite", "none")
DTYPES = ("float32", "float16", "bfloat16", "int8", "uint8", "int32", "int64")
REGRESSION_METRICS = ("latency", "memory", "power", "fidelity")
"""Metrics a ``regression_threshold`` mapping may name (a bare value applies to all of them)."""


@dataclass(frozen=True)
class InputSpec:
    """The input the agent generates for the model: one tensor."""

    name: str
    shape: tuple[int, ...]
    dtype: str


@dataclass(frozen=True)
class LatencySettings:
    """Warm up for both ``warmup_iterations`` and ``warmup_duration_s``, then iterate until
    both ``min_iterations`` and ``min_duration_s`` are reached, stopping at ``max_duration_s``
    or ``max_iterations``, whichever comes first."""

    warmup_iterations: int = 10
    warmup_duration_s: float = 0.5
    min_iterations: int = 50
    min_duration_s: float = 2.0
    max_duration_s: float = 60.0
    max_iterations: int = 200_000
    # a variant with a baseline is timed interleaved with it (harness.run.paired_latency) until the
    # speed-up's 95% interval is within +-paired_precision, or for exactly paired_rounds rounds
    pairing: bool = True
    paired_precision: float = 0.01
    paired_rounds: int = 0
    # > 0: a single arm is timed until p50's 95% interval (and the budgeted percentile's) is
    # within +-precision, at least min_iterations and the MLPerf floor (64 for p90, 662 for p99)
    precision: float = 0.0


@dataclass(frozen=True)
class Budget:
    """Limits a variant must meet on a target. ``None`` = no limit of that kind.

    ``statistic`` is the latency statistic compared with ``target_latency_s``. ``source``
    says where the budget was written (``suites/models.yaml: models.x.budgets.*`` or a
    deployment config's path). ``deployment`` / ``monitoring`` are a deployment config's
    other sections, kept as information.
    """

    target_latency_s: float | None
    max_memory_bytes: int | None
    max_power_w: float | None
    statistic: str
    source: str
    deployment: Mapping[str, Any] = field(default_factory=empty_mapping, hash=False)
    monitoring: Mapping[str, Any] = field(default_factory=empty_mapping, hash=False)
    # task accuracy (top-1 on the model's dataset, measured on the target): the lowest share allowed,
    # and the largest fall against the baseline as a share of images (0.02 = 2 percentage points)
    min_accuracy: float | None = None
    max_accuracy_drop: float | None = None

    def sets_a_limit(self) -> bool:
        return any(value is not None for value in (self.target_latency_s, self.max_memory_bytes, self.max_power_w,
                                                   self.min_accuracy, self.max_accuracy_drop))


@dataclass(frozen=True)
class ModelVariant:
    """One variant (fp32, int8, ...) of one model, ready to benchmark."""

    model: str
    name: str
    kind: str
    format: str
    runtime: str
    files: Mapping[str, str] = field(hash=False)
    baseline: str | None
    runtime_options: Mapping[str, Any] = field(hash=False)
    input: InputSpec
    latency: LatencySettings
    budgets: Mapping[str, Budget] = field(hash=False)
    description: str = ""
    fidelity: FidelitySettings = FidelitySettings()
    arch: str | None = None  # the only CPU architecture the files run on (a Paddle Lite .nb); None = any
    # smallest relative change called a regression against a baseline run, per metric ("*" = every
    # metric); empty = the harness default (harness.analysis.regression.DEFAULT_THRESHOLD)
    regression_threshold: Mapping[str, float] = field(default_factory=empty_mapping, hash=False)
    # parameter -> its sweep: the points to measure besides the variant itself (harness.run.sweep_points)
    sweeps: Mapping[str, Sweep] = field(default_factory=empty_mapping, hash=False)
    # the model's labelled image set (harness.agent.images format): fidelity runs on its images and
    # counts top-1 on the target; None = seeded structured inputs, no task accuracy
    dataset: str | None = None

    @property
    def id(self) -> str:
        return f"{self.model}-{self.name}"

    @property
    def is_baseline(self) -> bool:
        return self.baseline is None

    def regression_threshold_for(self, metric: str) -> float | None:
        """The manifest's regression threshold for ``metric`` (None: use the default)."""
        return self.regression_threshold.get(metric, self.regression_threshold.get("*"))

    def budget_for(self, target_name: str) -> Budget | None:
        """The budget for ``target_name``: its own entry wins over the ``"*"`` entry."""
        return self.budgets.get(target_name, self.budgets.get("*"))

    def missing_files(self) -> list[str]:
        """Absolute paths of this variant's files that do not exist (yet)."""
        return [path for path in self.files.values() if not os.path.isfile(path)]


@dataclass(frozen=True)
class Manifest:
    path: str
    zoo_dir: str
    models: Mapping[str, tuple[ModelVariant, ...]] = field(hash=False)
    variants: tuple[ModelVariant, ...]

    def get(self, variant_id: str) -> ModelVariant | None:
        """The variant with id ``<model>-<variant>``, or None."""
        return next((variant for variant in self.variants if variant.id == variant_id), None)

    def baseline_of(self, variant: ModelVariant) -> ModelVariant | None:
        """The variant ``variant`` is compared against (same model), or None for a baseline."""
        if variant.baseline is None:
            return None
        return next(v for v in self.models[variant.model] if v.name == variant.baseline)
