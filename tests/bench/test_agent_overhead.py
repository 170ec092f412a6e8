"""Benchmarks of the harness's own overhead (pytest-benchmark; goals are reported, not asserted).

`us_per_iteration` in extra_info is what the timing loop costs per call beyond the model:
two clock reads, the call, one append and the stop checks. It is computed from the
fastest round, timed here too so it is filled in under --benchmark-disable as well.
"""

from __future__ import annotations

import statistics
import time
from typing import Any, Callable

from harness.agent.timing import timed_loop, warm_up

ITERATIONS = 100_000
NO_LIMIT_NS = 600 * 10**9


def _nothing() -> None:
    return None


def _timed_rounds(function: Callable[[], Any], durations: list[float]) -> Callable[[], Any]:
    def round_() -> Any:
        started = time.perf_counter()
        out = function()
        durations.append(time.perf_counter() - started)
        return out

    return round_


def test_timed_loop_overhead_per_iteration(benchmark) -> None:
    durations: list[float] = []
    loop = _timed_rounds(lambda: timed_loop(_nothing, ITERATIONS, 0, NO_LIMIT_NS, 10 * ITERATIONS), durations)
    out = benchmark.pedantic(loop, rounds=5, iterations=1)
    assert len(out["latency_ns"]) == ITERATIONS
    assert out["stopped_by"] == "min-reached"
    benchmark.extra_info["us_per_iteration"] = min(durations) / ITERATIONS * 1e6
    # what a no-op "inference" reads as inside the loop: the floor of every latency sample
    benchmark.extra_info["noop_sample_median_ns"] = statistics.median(out["latency_ns"])
    print(f"\ntimed_loop: {benchmark.extra_info['us_per_iteration']:.3f} us/iteration, "
          f"no-op sample median {benchmark.extra_info['noop_sample_median_ns']} ns")


def test_warm_up_overhead_per_iteration(benchmark) -> None:
    durations: list[float] = []
    done = benchmark.pedantic(_timed_rounds(lambda: warm_up(_nothing, ITERATIONS, 0), durations),
                              rounds=5, iterations=1)
    assert done == ITERATIONS
    benchmark.extra_info["us_per_iteration"] = min(durations) / ITERATIONS * 1e6
    print(f"\nwarm_up: {benchmark.extra_info['us_per_iteration']:.3f} us/iteration")
