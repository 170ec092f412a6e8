"""Lasting level changes in a per-run history (nightly p50s): steps and slow drifts
(asv's ``step_detect`` idea). Pure, no I/O.

The method (``detect_steps``)
-----------------------------
Over a per-run series in time order (one value per night), an optimal piecewise-constant
fit of log(values) by dynamic programming (least squares plus a penalty per segment of
``PENALTY_FACTOR * sigma^2 * ln(n)``, sigma the robust night-to-night noise; every segment
at least ``min_size`` long, and points further than 4 sigma from a running median of
``2 min_size - 1`` points clipped first, so one bad night is never a step). Consecutive
level changes in the same direction separated by short segments (at most ``max_ramp_gap``
points) are one event: a slow drift is fitted as a staircase of small steps, each below the threshold,
whose sum is not. An event is reported when its total change reaches the threshold; kind
"step" for a single level change, "drift" for a ramp.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from harness.analysis.regression.rule import DEFAULT_THRESHOLD

PENALTY_FACTOR = 3.0
_SQRT2 = math.sqrt(2.0)


@dataclass(frozen=True)
class Step:
    """A lasting level change in a per-run series.

    `index` is the first point at the new level (for a drift, where the ramp starts) and
    `end_index` the first point of the last level of the ramp (== index for a step).
    `before` / `after` are the fitted levels (geometric means of the segments around it).
    """

    index: int
    before: float
    after: float
    ratio: float  # after / before
    kind: str = "step"  # "step" | "drift"
    end_index: int | None = None


def _segment(y: np.ndarray, penalty: float, min_size: int) -> list[int]:
    """Optimal segmentation of y (least squares + penalty per segment): segment starts."""
    n = y.size
    s1 = np.concatenate([[0.0], np.cumsum(y)])
    s2 = np.concatenate([[0.0], np.cumsum(y * y)])
    best = np.full(n + 1, np.inf)
    best[0] = -penalty  # the first segment carries no penalty
    previous = np.zeros(n + 1, dtype=int)
    for end in range(min_size, n + 1):
        starts = np.arange(0, end - min_size + 1)
        starts = starts[np.isfinite(best[starts])]
        if starts.size == 0:
            continue
        length = end - starts
        total = s1[end] - s1[starts]
        cost = (s2[end] - s2[starts]) - total * total / length
        candidate = best[starts] + np.maximum(cost, 0.0) + penalty
        j = int(np.argmin(candidate))
        best[end] = candidate[j]
        previous[end] = starts[j]
    bounds = []
    end = n
    while end > 0:
        start = int(previous[end])
        bounds.append(start)
        end = start
    return sorted(bounds)


@dataclass(frozen=True)
class LevelFit:
    """The optimal piecewise-constant fit of a history's logs (``fit_levels``).

    Segment bounds index the usable points (`positions` maps them back to the history)."""

    positions: list[int]  # where in the history each usable point is
    raw: np.ndarray  # log of the usable points
    clipped: np.ndarray  # the same with single-point outliers clipped: what was fitted
    starts: list[int]  # first point of each segment
    ends: list[int]  # one past the last point of each segment
    levels: list[float]  # mean of `clipped` over each segment


def fit_levels(history: Sequence[float | None], *, threshold: float, min_size: int,
               penalty: float | None) -> LevelFit | None:
    """The optimal piecewise-constant fit of log(history) (method: module docstring), None
    if there are fewer than 2 x `min_size` usable points."""
    if not threshold > 0:
        raise ValueError(f"threshold {threshold}: must be > 0")
    if min_size < 1:
        raise ValueError(f"min_size {min_size}: must be >= 1")
    positions, values = [], []
    for i, value in enumerate(history):
        if value is None or not math.isfinite(float(value)):
            continue
        if value <= 0:
            raise ValueError(f"history[{i}] = {value!r}: values must be positive")
        positions.append(i)
        values.append(float(value))
    n = len(values)
    if n < 2 * min_size or n < 2:
        return None
    raw = np.log(np.asarray(values))
    y = raw
    diffs = np.diff(y)
    sigma = 1.4826 * float(np.median(np.abs(diffs - np.median(diffs)))) / _SQRT2
    sigma = max(sigma, threshold / 20, 1e-9)
    beta = PENALTY_FACTOR * sigma * sigma * math.log(max(n, 3)) if penalty is None else float(penalty)
    if min_size >= 2:  # tame single-point outliers: clip to 4 sigma around a short running median
        width = min(2 * min_size - 1, n - (1 - n % 2))
        padded = np.pad(y, width // 2, mode="edge")
        running = np.median(np.lib.stride_tricks.sliding_window_view(padded, width), axis=1)
        y = np.clip(y, running - 4 * sigma, running + 4 * sigma)
    starts = _segment(y, beta, min_size)
    ends = starts[1:] + [n]
    levels = [float(np.mean(y[s:e])) for s, e in zip(starts, ends, strict=True)]
    return LevelFit(positions, raw, y, starts, ends, levels)


def detect_steps(history: Sequence[float | None], *, threshold: float = DEFAULT_THRESHOLD,
                 min_size: int = 2, max_ramp_gap: int = 4, penalty: float | None = None) -> list[Step]:
    """Lasting steps and slow drifts in a per-run series (e.g. nightly p50s), oldest first.

    Missing nights (None or NaN) are skipped; indexes refer to `history` as given. A change
    is reported when its total relative size reaches `threshold`; `min_size` is the shortest
    run of points that counts as a level (2: one bad night is not a step). `penalty`
    overrides the per-segment cost (in squared log units). Method: module docstring.
    """
    fitted = fit_levels(history, threshold=threshold, min_size=min_size, penalty=penalty)
    if fitted is None:
        return []
    positions, starts, ends, levels = fitted.positions, fitted.starts, fitted.ends, fitted.levels
    steps: list[Step] = []
    b = 1  # boundary b sits between segment b-1 and segment b
    while b < len(starts):
        direction = np.sign(levels[b] - levels[b - 1])
        last = b
        while (last + 1 < len(starts) and np.sign(levels[last + 1] - levels[last]) == direction
               and ends[last] - starts[last] <= max_ramp_gap):
            last += 1
        ratio = math.exp(levels[last] - levels[b - 1])
        if abs(ratio - 1) >= threshold:
            steps.append(Step(index=positions[starts[b]], before=math.exp(levels[b - 1]),
                              after=math.exp(levels[last]), ratio=ratio,
                              kind="step" if last == b else "drift", end_index=positions[starts[last]]))
        b = last + 1
    return _placed(steps, history)


def _placed(steps: list[Step], history: Sequence[float | None]) -> list[Step]:
    """Steps moved to the first run actually nearer the new level.

    A segment holds at least ``min_size`` runs, so when only the newest run moved, the last
    segment also holds the run before it and its boundary lands one run early, with a level
    halfway. Such a change is one run, not a step: it is dropped (a caller shows it as
    unconfirmed) rather than blamed on a run that did not change."""
    out = []
    for step in steps:
        if step.kind != "step":
            out.append(step)
            continue
        before, after = math.log(step.before), math.log(step.after)
        usable = [i for i in range(step.index, len(history))
                  if history[i] is not None and math.isfinite(float(history[i]))]  # type: ignore[arg-type]
        first = next((i for i in usable if abs(math.log(history[i]) - after)  # type: ignore[arg-type]
                      < abs(math.log(history[i]) - before)), None)  # type: ignore[arg-type]
        if first is None or (first == usable[-1] and len(usable) > 1):
            continue
        out.append(Step(index=first, before=step.before, after=step.after, ratio=step.ratio, kind=step.kind,
                        end_index=first))
    return out
