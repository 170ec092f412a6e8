"""A monotonic, high-resolution nanosecond clock: perf_counter_ns where it exists (3.7+)."""

import time

try:
    now_ns = time.perf_counter_ns
    CLOCK_NAME = "perf_counter_ns"
except AttributeError:  # Python 3.6

    def now_ns():  # type: () -> int
        return int(time.perf_counter() * 1e9)

    CLOCK_NAME = "perf_counter"


def clock_resolution_ns():  # type: () -> float
    """The clock's advertised resolution in nanoseconds."""
    return time.get_clock_info("perf_counter").resolution * 1e9
