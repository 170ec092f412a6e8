"""Run-to-run noise: the sd of log(statistic) between runs of unchanged code, estimated
from a per-run history. No single pair of runs can show it; ``decide`` needs it as ``run_sd``."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from harness.analysis.regression.rule import DEFAULT_THRESHOLD
from harness.analysis.regression.steps import fit_levels


def estimate_run_sd(run_statistics: Sequence[float | None], *, min_size: int = 2) -> float | None:
    """The sd of log(statistic) between runs of unchanged code, from a per-run series in
    time order (nightly p50s of one target/model/variant) or from repeated A/A runs.

    The series is cut at its level changes first (the segmentation of ``detect_steps``, any
    size), so code changes do not inflate it, while slow machine-state wander between runs
    still counts (it separates a reference run from a candidate run as much as noise does). Runs
    further than 3.5 robust sds from their segment's median are dropped: contended runs,
    which ``decide`` screens by their flags anyway; better still, leave out the runs whose
    summary carries a noise or drift warning before calling this. None with < 4 values.
    Includes within-run sampling noise, which makes it slightly conservative in ``decide``.
    """
    fitted = fit_levels(run_statistics, threshold=DEFAULT_THRESHOLD, min_size=min_size, penalty=None)
    if fitted is None or len(fitted.positions) < 4:
        return None
    y, starts, ends = fitted.raw, fitted.starts, fitted.ends
    residuals = np.concatenate([y[s:e] - np.median(y[s:e]) for s, e in zip(starts, ends, strict=True)])
    spread = 1.4826 * float(np.median(np.abs(residuals)))
    keep = np.abs(residuals) <= 3.5 * spread if spread > 0 else np.ones(residuals.size, dtype=bool)
    dof = int(keep.sum()) - len(starts)
    if dof < 2:
        return None
    return float(math.sqrt(np.sum(residuals[keep] ** 2) / dof))
