"""Timing two or more arms interleaved: rounds of one turn per arm, in a shuffled order.

Whatever moves on the device while a job runs (frequency, a neighbour's load, thermals)
moves every arm of a round alike, so the ratio of the arms is far steadier than either
arm's own figure (Google Benchmark's random interleaving; Abedi and Brecht's randomized
multiple interleaved trials). The order of each round is drawn from a seeded generator and
recorded, so no arm always runs first (after a cache-warming neighbour, say).

A turn is `k` back-to-back inferences of one arm, `k` chosen per arm from its warm-up so a
turn lasts about `turn_ms`: long enough that the switch between arms is a small part of it
(the host measures what the first inference of a turn costs extra and reports it), short
enough for many rounds. Stops, and says which rule stopped it:
    "rounds"        a fixed count of rounds was asked for and done;
    "precision"     adaptive: every ratio's interval (paired_stats) is within +-precision,
                    after min_rounds and the minimum duration;
    "max-duration"  the time ran out first (a verdict on it may be inconclusive);
    "max-rounds"    the round cap was reached first;
    "arm-failed"    an arm failed mid-run; the whole rounds before it are kept.
"""

import math
import random

from .clock import now_ns
from .paired_stats import relative_halfwidth, turn_log_ratio
from .protocol import AgentFailure

TYPE_CHECKING = False  # mypy takes this name as True: typing is for the type comments, not imported on the device
if TYPE_CHECKING:
    from typing import Any, Callable  # noqa: F401 (named only in type comments, which ruff does not read)

PAIRED_DEFAULTS = {
    "seed": 0,             # the round order's generator
    "precision": 0.01,     # adaptive: stop when every ratio's 95% interval is within +-1% (0: never)
    "rounds": 0,           # > 0: exactly this many rounds (fixed count), precision ignored
    "min_rounds": 10,
    "max_rounds": 100000,
    "turn_ms": 10.0,
    "min_turn_iterations": 5,
    "max_turn_iterations": 1000,
}
CHECK_GROWTH = 1.25  # the stopping check runs at rounds 10, 13, 16, 20, ... (a few dozen checks at most)
PROGRESS_INTERVAL_NS = 1000000000


def turn_iterations(mean_ns, paired):
    # type: (int, dict) -> int
    """Inferences per turn for an arm whose warm-up mean was `mean_ns`."""
    wanted = int(math.ceil(float(paired["turn_ms"]) * 1e6 / max(1, mean_ns)))
    return int(max(paired["min_turn_iterations"], min(paired["max_turn_iterations"], wanted)))


def interleave(arms, warm_means_ns, latency, paired, on_progress=None):
    # type: (list, list[int], dict, dict, Callable[[int, int, float], None] | None) -> dict
    """Run rounds until a stopping rule holds; every arm's turns, the orders, and why it stopped.

    `arms[0]` is the candidate; the ratios checked are arm 0 against each other arm."""
    count = len(arms)
    rng = random.Random(int(paired["seed"]))
    ks = [turn_iterations(mean, paired) for mean in warm_means_ns]
    turns = [[] for _ in arms]  # type: list[list[list[int]]]
    overhead = [[] for _ in arms]  # type: list[list[int]]
    log_ratios = [[] for _ in arms[1:]]  # type: list[list[float]]
    orders = []  # type: list[list[int]]
    fixed = int(paired["rounds"])
    precision = float(paired["precision"])
    min_ns = int(latency["min_duration_s"] * 1e9)
    max_ns = int(latency["max_duration_s"] * 1e9)
    start = now_ns()
    next_check = max(5, int(paired["min_rounds"]))
    next_progress = start + PROGRESS_INTERVAL_NS
    halfwidth = float("inf")
    stopped_by = ""
    failure = None  # type: AgentFailure | None
    failed_arm = None  # type: str | None
    while not stopped_by:
        order = list(range(count))
        rng.shuffle(order)
        done = []  # type: list[tuple[int, list[int], int]]
        try:
            for index in order:
                t0 = now_ns()
                samples = arms[index].turn(ks[index])
                done.append((index, samples, now_ns() - t0 - sum(samples)))
        except AgentFailure as exc:
            failure, failed_arm, stopped_by = exc, arms[index].name, "arm-failed"
            break  # the unfinished round is dropped: every kept round has a turn of every arm
        for index, samples, cost in done:
            turns[index].append(samples)
            overhead[index].append(cost)
        orders.append(order)
        rounds = len(orders)
        for other in range(1, count):
            log_ratios[other - 1].append(turn_log_ratio(turns[0][-1], turns[other][-1]))
        now = now_ns()
        if fixed > 0:
            if rounds >= fixed:
                stopped_by = "rounds"
        elif precision > 0 and rounds >= next_check and now - start >= min_ns:
            halfwidth = max(relative_halfwidth(ratios, seed=rounds) for ratios in log_ratios)
            next_check = max(rounds + 1, int(rounds * CHECK_GROWTH))
            if halfwidth <= precision:
                stopped_by = "precision"
        if not stopped_by and now - start >= max_ns:
            stopped_by = "max-duration"
        if not stopped_by and rounds >= int(paired["max_rounds"]):
            stopped_by = "max-rounds"
        if on_progress is not None and now >= next_progress:
            on_progress(rounds, now - start, halfwidth)
            next_progress = now + PROGRESS_INTERVAL_NS
    return {"turn_iterations": ks, "turns": turns, "overhead_ns": overhead, "orders": orders,
            "stopped_by": stopped_by, "window_ns": now_ns() - start,
            "device_halfwidth": None if halfwidth == float("inf") else halfwidth,
            "failure": failure, "failed_arm": failed_arm}
