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


def test_timing_loop_under_python36(benchmark, tmp_path) -> None:
    """The same loop on a JetPack-4-like interpreter: perf_counter (float) instead of
    perf_counter_ns. Reports the no-op sample median the agent measures there."""
    import json
    import shutil
    import subprocess
    from pathlib import Path

    prefix = subprocess.run(["pyenv", "prefix", "3.6.15"], capture_output=True, text=True)
    assert prefix.returncode == 0, "pyenv's Python 3.6.15 is needed: pyenv install 3.6.15"
    package = tmp_path / "harness_agent"
    shutil.copytree(Path(__file__).resolve().parents[2] / "harness" / "agent", package)

    def self_test() -> list[int]:
        done = subprocess.run([prefix.stdout.strip() + "/bin/python", "-m", "harness_agent", "--self-test"],
                              cwd=tmp_path, capture_output=True, text=True, timeout=60, check=True)
        events = [json.loads(line) for line in done.stdout.splitlines()]
        return next(e["latency_ns"] for e in events if e["event"] == "samples")

    samples = benchmark.pedantic(self_test, rounds=3, iterations=1)
    assert len(samples) >= 1000
    benchmark.extra_info["py36_noop_sample_median_ns"] = statistics.median(samples)
    print(f"\nPython 3.6 agent: no-op sample median {statistics.median(samples)} ns")
