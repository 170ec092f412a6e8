"""The device's own stopping check for a paired job: is the ratio's CI narrow enough yet?

Stdlib only (no numpy on the device), so it works on per-round summaries, which are cheap:
round r gives d_r = log(median of arm a's turn / median of arm b's turn), and the interval is
a seeded percentile bootstrap of the median of d over rounds. The host recomputes the
reported interval from every sample (harness.analysis.paired: pooled medians, moving blocks
of rounds); this check only decides when to stop, and the result says which rule stopped it.
"""

import math
import random

TYPE_CHECKING = False  # mypy takes this name as True: typing is for the type comments, not imported on the device
if TYPE_CHECKING:
    from typing import Sequence  # noqa: F401 (named only in type comments, which ruff does not read)

CHECK_RESAMPLES = 200


def median(values):
    # type: (Sequence[float]) -> float
    ordered = sorted(values)
    n = len(ordered)
    if n == 0:
        raise ValueError("median of no values")
    half = n // 2
    return float(ordered[half]) if n % 2 else (ordered[half - 1] + ordered[half]) / 2.0


def turn_log_ratio(turn_a, turn_b):
    # type: (Sequence[int], Sequence[int]) -> float
    """log(median(a) / median(b)) of one round's two turns (nanoseconds, at least 1 each)."""
    return math.log(max(1.0, median(turn_a)) / max(1.0, median(turn_b)))


def relative_halfwidth(log_ratios, level=0.95, resamples=CHECK_RESAMPLES, seed=0):
    # type: (Sequence[float], float, int, int) -> float
    """Half the width of the bootstrap interval of exp(median(log_ratios)), relative to it
    (0.01 = +-1%); infinity with fewer than 5 rounds."""
    n = len(log_ratios)
    if n < 5:
        return float("inf")
    rng = random.Random(seed)
    pick = rng.randrange
    replicates = sorted(median([log_ratios[pick(n)] for _ in range(n)]) for _ in range(resamples))
    tail = (1.0 - level) / 2.0
    low = replicates[int(math.floor(tail * (resamples - 1)))]
    high = replicates[int(math.ceil((1.0 - tail) * (resamples - 1)))]
    center = median(log_ratios)
    return (math.exp(high) - math.exp(low)) / 2.0 / math.exp(center)
