"""Running an adapter's op profiler after the timed loop, outside the timed window."""

TYPE_CHECKING = False  # mypy takes this name as True: type-comment names only
if TYPE_CHECKING:
    from .runtimes.base import BaseAdapter  # noqa: F401 (named only in type comments, which ruff does not read)

PROFILE_ITERATIONS = (5, 100)  # at least / at most this many profiled inferences...
PROFILE_BUDGET_NS = 2000000000  # ...and about this much inference time


def profile_adapter(adapter, name, mean_ns, timed=PROFILE_ITERATIONS[1]):
    # type: (BaseAdapter, str, float, int) -> dict
    """The adapter's profile over about PROFILE_BUDGET_NS of inferences (at most `timed`, the
    count of timed ones); a failure is a profile that says why, never an error of the job."""
    count = max(PROFILE_ITERATIONS[0], min(PROFILE_ITERATIONS[1], timed, int(PROFILE_BUDGET_NS / max(1.0, mean_ns))))
    try:
        return adapter.profile(count)
    except Exception as exc:
        return {"supported": False, "reason": "%s profiling failed: %s: %s" % (name, type(exc).__name__, exc),
                "ops": [], "by_type": []}
