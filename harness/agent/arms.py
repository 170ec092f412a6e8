"""One arm of a paired job loaded in this process: runtime imported, model loaded, input
placed, warmed up; then timed one turn at a time (the interleaver decides the order).

The same class serves both modes of a paired job: every arm in the conductor's own process
(all arms on one interpreter), or one arm per child process (arm_process.py), which loads
its arm with this class too, so an arm is timed by the same code either way.
"""

import traceback

from .clock import now_ns
from .protocol import AgentFailure
from .runtimes import load_adapter_class
from .timing import timed_turn, warm_up

TYPE_CHECKING = False  # mypy takes this name as True: typing is for the type comments, not imported on the device
if TYPE_CHECKING:
    from typing import Callable  # noqa: F401 (named only in type comments, which ruff does not read)

    from .runtimes.base import BaseAdapter  # noqa: F401 (named only in type comments, which ruff does not read)


def arm_failure(name, runtime, failure):
    # type: (str, str, AgentFailure) -> AgentFailure
    """The same failure, its message naming the arm it happened in."""
    return AgentFailure(failure.kind, "arm %s (%s): %s" % (name, runtime, failure.message), failure.detail)


class LoadedArm(object):
    """An arm whose turns run in this process."""

    pid = None  # type: int | None  # the arm's own process, where it has one

    def __init__(self, spec):
        # type: (dict) -> None
        self.name = str(spec["name"])
        self.spec = spec
        self.runtime = str(spec["runtime"]["name"])
        self._run_once = None  # type: Callable[[], object] | None
        self._adapter = None  # type: BaseAdapter | None

    def prepare(self, settings, on_phase):
        # type: (dict, Callable[[str], None]) -> dict
        """Import, load, place the input, run once and warm up; what was run and how long it took."""
        try:
            return self._prepare(settings, on_phase)
        except AgentFailure as failure:
            raise arm_failure(self.name, self.runtime, failure) from failure
        except Exception as exc:
            raise arm_failure(self.name, self.runtime, AgentFailure(
                "model-load", "%s: %s" % (type(exc).__name__, exc), traceback.format_exc())) from exc

    def _prepare(self, settings, on_phase):
        # type: (dict, Callable[[str], None]) -> dict
        spec = self.spec
        runtime = spec["runtime"]
        adapter = load_adapter_class(self.runtime)(runtime.get("options") or {})
        on_phase("import")
        t0 = now_ns()
        adapter.import_runtime()
        import_ns = now_ns() - t0
        on_phase("load")
        t0 = now_ns()
        adapter.load(spec["model"].get("files", {}), spec["input"])
        load_ns = now_ns() - t0
        adapter.set_inputs(int(spec["input"].get("seed", 0)))
        run_once = adapter.runner()
        on_phase("first-inference")
        t0 = now_ns()
        run_once()
        first_ns = now_ns() - t0
        on_phase("warmup")
        t0 = now_ns()
        warmed = warm_up(run_once, int(settings["warmup_iterations"]), int(settings["warmup_duration_s"] * 1e9))
        warm_ns = now_ns() - t0
        self._run_once = run_once
        self._adapter = adapter
        return {"name": self.name,
                "runtime": dict(adapter.describe(), name=self.runtime, version=adapter.version()),
                "import_ns": import_ns, "load_ns": load_ns, "first_inference_ns": first_ns,
                "warmup_iterations": warmed,
                # what sizes a turn: the warm-up's mean, or the first inference where there was no warm-up
                "warmup_mean_ns": warm_ns // warmed if warmed else first_ns}

    def turn(self, count):
        # type: (int) -> list[int]
        """`count` timed inferences, back to back."""
        assert self._run_once is not None, "prepare() first"
        try:
            return timed_turn(self._run_once, count)
        except AgentFailure as failure:
            raise arm_failure(self.name, self.runtime, failure) from failure
        except Exception as exc:
            raise arm_failure(self.name, self.runtime, AgentFailure(
                "runtime-error", "failed while running: %s: %s" % (type(exc).__name__, exc),
                traceback.format_exc())) from exc

    def profile(self, mean_ns):
        # type: (float) -> dict
        """The runtime's own per-operator profile (after the timed rounds; see __main__._emit_profile)."""
        from .profiling import profile_adapter

        assert self._adapter is not None, "prepare() first"
        return profile_adapter(self._adapter, self.runtime, mean_ns)

    def close(self):
        # type: () -> None
        self._run_once = None
        self._adapter = None
