"""How each metric is compared across runs: its per-run value, the samples it is decided on
(None: one value per run), its direction, and its regression threshold.

- latency: the raw per-iteration samples (statistic: p50);
- power: the sensor's samples inside the timed load window (statistic: mean power);
- memory (peak RSS) and fidelity (top-1 agreement, else minimum cosine): one number per
  run, from a fresh process or from seeded inputs, so there are no samples to test.

The threshold of a key is the manifest's ``regression_threshold`` for that metric, stored
with each measurement, else the caller's default (``regression.DEFAULT_THRESHOLD``).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from harness.analysis.regression import DEFAULT_THRESHOLD
from harness.records import MeasurementRecord


@dataclass(frozen=True)
class MetricRule:
    """How one metric is compared: its per-run value, its samples (None: one value per run)."""

    metric: str
    statistic: str  # shown and passed to decide ("median" is shown as p50)
    unit: str
    higher_is_worse: bool
    value: Callable[[MeasurementRecord], float | None]
    samples: Callable[[MeasurementRecord], Sequence[float] | None] | None
    what: str  # for reasons: "peak RSS", ...


def _latency_samples(record: MeasurementRecord) -> Sequence[float] | None:
    return record.samples or None


def _power_samples(record: MeasurementRecord) -> Sequence[float] | None:
    """The sensor's readings inside the timed load window (W), in time order."""
    if (record.summary.get("status") or "") != "ok":
        return None
    markers = record.meta.get("power_markers") or {}
    begin, end = markers.get("load_begin"), markers.get("load_end")
    points = record.meta.get("power_timeline") or []
    watts = [p[1] for p in points if p[1] is not None and (begin is None or p[0] >= begin)
             and (end is None or p[0] <= end)]
    return [w for w in watts if w > 0] or None


def _power_value(record: MeasurementRecord) -> float | None:
    return record.summary.get("load_mean_w") if (record.summary.get("status") or "") == "ok" else None


def _fidelity_value(record: MeasurementRecord) -> float | None:
    if record.summary.get("baseline_only"):
        return None
    for key in ("top1_agreement", "cosine_min"):
        value = record.summary.get(key)
        if value is not None:
            return float(value)
    return None


RULES: Mapping[str, MetricRule] = {
    "latency": MetricRule("latency", "median", "ms", True, lambda r: r.summary.get("p50"), _latency_samples,
                          "p50 latency"),
    "power": MetricRule("power", "mean", "W", True, _power_value, _power_samples, "mean power under load"),
    "memory": MetricRule("memory", "peak", "bytes", True, lambda r: r.summary.get("peak_rss_bytes"), None,
                         "peak RSS"),
    "fidelity": MetricRule("fidelity", "agreement", "ratio", False, _fidelity_value, None,
                           "agreement with the baseline model"),
}


def comparable(record: MeasurementRecord) -> bool:
    """Records that carry something to compare at all (a baseline's own fidelity record
    holds only the diversity of its outputs: nothing to compare across runs)."""
    if record.metric not in RULES:
        return False
    return not (record.metric == "fidelity" and record.summary.get("baseline_only"))


def with_samples(record: MeasurementRecord) -> tuple[MeasurementRecord, str | None]:
    """The record with the samples its metric is decided on (pair_runs needs them), and why
    an ok record cannot be compared (None when it can)."""
    rule = RULES[record.metric]
    if record.status != "ok":
        return record, None
    value = rule.value(record)
    if value is None or not math.isfinite(float(value)) or float(value) <= 0:
        state = record.summary.get("status")
        why = f"power {state}" if record.metric == "power" and state and state != "ok" else f"no {rule.what}"
        return dataclasses.replace(record, samples=None), why
    samples = rule.samples(record) if rule.samples is not None else (float(value),)
    if not samples:
        return dataclasses.replace(record, samples=None), f"no {rule.what} samples"
    if isinstance(samples, tuple) and samples is record.samples:  # latency: the stored samples themselves
        return record, None
    # the metric's own values (W; one peak or agreement): MeasurementRecord.samples is typed
    # for the stored ns ints, and this record is only paired and decided on, never stored
    return dataclasses.replace(record, samples=tuple(samples)), None  # type: ignore[arg-type]


def threshold_for(record: MeasurementRecord, default: float = DEFAULT_THRESHOLD) -> float:
    """The manifest's regression threshold for the record's metric (stored in its meta)."""
    stored = record.meta.get("regression_threshold") or {}
    value = stored.get(record.metric, stored.get("*")) if isinstance(stored, Mapping) else stored
    return float(value) if value else default
