"""A single arm timed until its percentiles are known precisely enough (``latency.precision``).

The timed loop runs in chunks (each chunk is timing.timed_loop, unchanged; between chunks,
outside any timed call, the samples so far are sorted and checked). It stops once, for every
percentile asked, the distribution-free 95% interval of that percentile (order statistics
at ranks n q +- 1.96 sqrt(n q (1 - q))) is within +-precision of it, and at least the minimum
count for that percentile has been timed: MLPerf LoadGen's early-stopping floor, the n with
q^n below 0.13% (64 inferences for p90, 662 for p99). Or at max_duration / max_iterations.
"""

import math

from .clock import now_ns
from .timing import timed_loop

TYPE_CHECKING = False  # mypy takes this name as True: typing is for the type comments, not imported on the device
if TYPE_CHECKING:
    from typing import Callable, Sequence  # noqa: F401 (named only in type comments, which ruff does not read)

TAIL_PROBABILITY = 0.0013  # LoadGen: 64 queries for p90 and 662 for p99 both leave q^n just under this
CHUNK_GROWTH = 0.25  # each chunk times 25% more samples than there are


def minimum_count(percentile):
    # type: (float) -> int
    """The fewest samples that can bound `percentile` (50, 90, 99...) in the LoadGen sense."""
    q = percentile / 100.0
    if q <= 0.5:
        return 1
    return int(math.ceil(math.log(TAIL_PROBABILITY) / math.log(q)))


def percentile_halfwidth(ordered, percentile):
    # type: (Sequence[int], float) -> float
    """Half the width of the 95% order-statistic interval of `percentile`, relative to it."""
    n = len(ordered)
    q = percentile / 100.0
    spread = 1.96 * math.sqrt(n * q * (1 - q))
    low = int(max(0, math.floor(n * q - spread) - 1))
    high = int(min(n - 1, math.ceil(n * q + spread)))
    point = ordered[int(min(n - 1, max(0, round(n * q) - 1)))]
    if point <= 0:
        return float("inf")
    return (ordered[high] - ordered[low]) / 2.0 / point


def timed_until_precise(run_once, settings, on_progress=None):
    # type: (Callable[[], object], dict, Callable[[int, int], object] | None) -> dict
    """timed_loop's result, timed until settings["precision"] holds for settings["percentiles"]."""
    precision = float(settings["precision"])
    percentiles = [float(p) for p in settings.get("percentiles") or (50,)]
    floor = max([int(settings["min_iterations"])] + [minimum_count(p) for p in percentiles])
    start = now_ns()
    max_end = start + int(settings["max_duration_s"] * 1e9)
    max_iterations = int(settings["max_iterations"])
    samples = []  # type: list[int]
    chunk = floor
    min_ns = int(settings["min_duration_s"] * 1e9)
    stopped_by = "max-duration"
    halfwidths = {}  # type: dict[str, float]
    while True:
        remaining = max_end - now_ns()
        if remaining <= 0:
            break
        part = timed_loop(run_once, chunk, 0 if samples else min_ns, remaining, max_iterations - len(samples),
                          on_progress)
        samples.extend(part["latency_ns"])
        if part["stopped_by"] == "max-iterations" or len(samples) >= max_iterations:
            stopped_by = "max-iterations"
            break
        if part["stopped_by"] == "max-duration":
            break
        if len(samples) >= floor:
            ordered = sorted(samples)
            halfwidths = dict(("p%g" % p, percentile_halfwidth(ordered, p)) for p in percentiles)
            if max(halfwidths.values()) <= precision:
                stopped_by = "precision"
                break
        chunk = max(1, int(len(samples) * CHUNK_GROWTH))
    return {"latency_ns": samples, "window_ns": now_ns() - start, "stopped_by": stopped_by,
            "window_start_ns": start, "precision": precision,
            "halfwidths": dict((k, round(v, 6)) for k, v in halfwidths.items())}
