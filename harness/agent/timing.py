"""The timing loop: warm-up, then iterate until a minimum count AND a minimum duration.

Kept minimal on purpose: per iteration two clock reads, one call, one append and two
comparisons. Its overhead is measured by tests/bench/test_agent_overhead.py.
"""

from .clock import now_ns

TYPE_CHECKING = False  # mypy takes this name as True: typing is for the type comments, not imported on the device
if TYPE_CHECKING:
    from typing import Callable  # noqa: F401 (named only in type comments, which ruff does not read)

PROGRESS_INTERVAL_NS = 1000000000  # one progress event per second of timing


def warm_up(run_once, iterations, duration_ns):
    # type: (Callable[[], object], int, int) -> int
    """Run until both `iterations` calls and `duration_ns` have passed; return the count."""
    start = now_ns()
    done = 0
    while done < iterations or now_ns() - start < duration_ns:
        run_once()
        done += 1
    return done


def timed_loop(run_once, min_iterations, min_duration_ns, max_duration_ns, max_iterations,
               on_progress=None):
    # type: (Callable[[], object], int, int, int, int, Callable[[int, int], object] | None) -> dict
    """Time each call of `run_once` in nanoseconds.

    Stops once at least `min_iterations` calls AND `min_duration_ns` have passed, or at the
    first of `max_duration_ns` / `max_iterations` (then `stopped_by` says which, so the host
    can flag a run that never reached its minimum count).
    """
    clock = now_ns
    samples = []  # type: list[int]
    append = samples.append
    start = clock()
    min_end = start + min_duration_ns
    max_end = start + max_duration_ns
    next_progress = start + PROGRESS_INTERVAL_NS
    count = 0
    stopped_by = "min-reached"
    while True:
        t0 = clock()
        run_once()
        t1 = clock()
        append(t1 - t0)
        count += 1
        if count >= min_iterations and t1 >= min_end:
            break
        if t1 >= max_end:
            stopped_by = "max-duration"
            break
        if count >= max_iterations:
            stopped_by = "max-iterations"
            break
        if t1 >= next_progress:
            if on_progress is not None:
                on_progress(count, t1 - start)
            next_progress = t1 + PROGRESS_INTERVAL_NS
    return {"latency_ns": samples, "window_ns": clock() - start, "stopped_by": stopped_by,
            "window_start_ns": start}


def timed_turn(run_once, count):
    # type: (Callable[[], object], int) -> list[int]
    """One arm's turn in a paired job: `count` calls, each timed as in timed_loop."""
    clock = now_ns
    samples = []  # type: list[int]
    append = samples.append
    for _ in range(count):
        t0 = clock()
        run_once()
        t1 = clock()
        append(t1 - t0)
    return samples
