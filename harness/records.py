"""Plain values that cross module boundaries: a run, a measurement, an environment.

Measuring produces them, the store persists them, compare and report read them. Each
carries `RECORD_VERSION` in what it persists so later readers can migrate old rows.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

RECORD_VERSION = 1


@dataclass(frozen=True)
class RunInfo:
    """One invocation of the suites (or of `harness` measuring something)."""

    id: str
    label: str | None
    started_at: str  # ISO 8601, UTC
    host: str
    harness_version: str
    git_sha: str | None = None
    git_dirty: bool | None = None
    options: Mapping[str, Any] = field(default_factory=dict)
    ended_at: str | None = None
    status: str = "running"  # running | complete | interrupted


@dataclass(frozen=True)
class MeasurementRecord:
    """One metric of one variant on one target in one run.

    `status` is "ok" or "error"; an error keeps its message in `meta["error"]` so a failed
    variant shows up in the report instead of vanishing. `summary` holds the statistics
    (units in `unit`), `samples` the raw per-iteration values in `samples_unit`.
    """

    run_id: str
    target: str
    model: str
    variant: str
    metric: str  # "latency", ...
    unit: str  # unit of the summary statistics, e.g. "ms"
    status: str
    summary: Mapping[str, Any]
    meta: Mapping[str, Any]
    samples: tuple[int, ...] | None = None
    samples_unit: str | None = None  # e.g. "ns"
    recorded_at: str | None = None
    id: int | None = None

    @property
    def variant_id(self) -> str:
        return f"{self.model}-{self.variant}"
