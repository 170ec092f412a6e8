"""What every runtime adapter provides (Python 3.6 compatible, no ABCs needed).

Life cycle, driven by the job runner:
    adapter = Adapter(options)      # validates options; imports nothing heavy
    adapter.import_runtime()        # imports the runtime: AgentFailure("runtime-missing") if absent
    adapter.load(files, input_spec) # loads the model: "model-load" on failure
    adapter.set_inputs(seed)        # places one structured input (seeded)
    adapter.place(array)            # places one given input (accuracy jobs: labelled images)
    run = adapter.runner()          # a no-argument callable doing exactly one inference
    adapter.describe()              # runtime version, precision actually used, signatures
    adapter.profile(iterations)     # optional: per-operator time from the runtime's own profiler,
                                    # run after the timed loop, outside the timed window
"""

from ..protocol import AgentFailure

TYPE_CHECKING = False  # mypy takes this name as True: typing is for the type comments, not imported on the device
if TYPE_CHECKING:
    from typing import Any, Callable  # noqa: F401 (named only in type comments, which ruff does not read)


class BaseAdapter(object):
    name = "base"
    # option name -> (type, default); anything else in a Job is a "bad-option" error
    OPTIONS = {}  # type: dict

    def __init__(self, options):
        # type: (dict) -> None
        self.options = self._validated(options or {})

    def _validated(self, options):
        # type: (dict) -> dict
        unknown = sorted(set(options) - set(self.OPTIONS))
        if unknown:
            raise AgentFailure(
                "bad-option",
                "%s: unknown option(s) %s (known: %s)"
                % (self.name, ", ".join(unknown), ", ".join(sorted(self.OPTIONS)) or "none"))
        values = {}
        for key, spec in self.OPTIONS.items():
            kind, default = spec[0], spec[1]
            value = options.get(key, default)
            if value is not None and not _is_kind(value, kind):
                raise AgentFailure(
                    "bad-option", "%s: option %s=%r must be %s" % (self.name, key, value, _kind_name(kind)))
            if len(spec) > 2 and value is not None and value not in spec[2]:
                raise AgentFailure(
                    "bad-option", "%s: option %s=%r must be one of %s"
                    % (self.name, key, value, ", ".join(str(c) for c in spec[2])))
            values[key] = value
        return values

    def _require_at_least(self, values, key, minimum):
        # type: (dict, str, int) -> None
        """For an adapter's _validated(): option `key`, where set, is a number >= `minimum`."""
        if values[key] is not None and values[key] < minimum:
            raise AgentFailure(
                "bad-option", "%s: option %s=%r must be >= %d" % (self.name, key, values[key], minimum))

    def _require_single_input(self, names):
        # type: (list[str]) -> None
        """For set_inputs(): the model has exactly one input (`names`: its inputs' names)."""
        if len(names) != 1:
            raise AgentFailure(
                "bad-option", "%s: model has %d inputs (%s); only single-input models are supported so far"
                % (self.name, len(names), ", ".join(names)))

    def _require_input_dtype(self, input_name, model_dtype, job_dtype):
        # type: (str, str, str) -> None
        """For set_inputs(): the Job's input dtype is the one the model's input declares."""
        if model_dtype != job_dtype:
            raise AgentFailure(
                "bad-option", "%s: model input %r is %s but the job's input dtype is %s; set the variant's "
                "input dtype to %s" % (self.name, input_name, model_dtype, job_dtype, model_dtype))

    def import_runtime(self):
        # type: () -> None
        pass

    def version(self):
        # type: () -> str
        return "unknown"

    def load(self, files, input_spec):
        # type: (dict, dict) -> None
        raise NotImplementedError

    def set_inputs(self, seed):
        # type: (int) -> None
        raise NotImplementedError

    def place(self, array):
        # type: (Any) -> None
        """Place one given input array (numpy, the model's input shape): what accuracy jobs feed."""
        raise AgentFailure("bad-option", "%s cannot take given inputs (needed by accuracy jobs)" % self.name)

    def runner(self):
        # type: () -> Callable[[], object]
        raise NotImplementedError

    def outputs(self):
        # type: () -> list
        """The output arrays of the last inference (numpy), in the model's output order."""
        raise AgentFailure("bad-option", "%s cannot return model outputs (needed by fidelity jobs)" % self.name)

    def describe(self):
        # type: () -> dict
        return {}

    def profile(self, iterations):
        # type: (int) -> dict
        """Per-operator time breakdown from the runtime's own profiler (format: see "op profiles" below).

        Adapters whose runtime has a profiler override this; the default says it has none."""
        return unsupported_profile("not supported by %s" % self.name)


# --------------------------------------------------------------------------- op profiles
#
# What `profile(iterations)` returns, for every runtime:
#   {"supported": bool, "reason": str, "profiler": what produced it, "iterations": n,
#    "wall_ms": wall time of the profiled inferences (profiler on), "op_time_ms": sum of op times,
#    "coverage": op_time_ms / wall_ms,
#    "ops": [{"op", "type", "time_ms", "share", "calls"}, ...]   sorted by share, descending
#    "by_type": [{"type", "time_ms", "share", "calls", "ops"}, ...]}
# time_ms is the op's total over all profiled inferences; share = time_ms / wall_ms, so shares
# sum to the coverage (<= 1; the rest is framework time between ops). Where op times add up to
# more than the wall time (ops running in parallel), shares are scaled to sum to 1.

MAX_PROFILE_OPS = 100  # the top ones; by_type covers them all


def unsupported_profile(reason):
    # type: (str) -> dict
    return {"supported": False, "reason": reason, "ops": [], "by_type": []}


def finish_profile(ops, wall_ms, iterations, profiler, reason=""):
    # type: (list, float, int, str, str) -> dict
    """Shares, sorting and per-type totals for a list of {"op", "type", "time_ms", "calls"}."""
    ops = [dict(op) for op in ops if op.get("time_ms") is not None]
    total = sum(op["time_ms"] for op in ops)
    if not ops or total <= 0:
        return unsupported_profile(reason or "%s recorded no operator events" % profiler)
    denominator = max(float(wall_ms or 0.0), total)
    by_type = {}  # type: dict[str, dict]  # op type -> its totals
    for op in ops:
        op["time_ms"] = round(op["time_ms"], 6)
        op["share"] = round(op["time_ms"] / denominator, 6)
        entry = by_type.setdefault(op["type"], {"type": op["type"], "time_ms": 0.0, "calls": 0, "ops": 0})
        entry["time_ms"] += op["time_ms"]
        entry["calls"] += int(op.get("calls") or 0)
        entry["ops"] += 1
    ops.sort(key=lambda op: (-op["time_ms"], op["op"]))
    types = sorted(by_type.values(), key=lambda t: (-t["time_ms"], t["type"]))
    for entry in types:
        entry["time_ms"] = round(entry["time_ms"], 6)
        entry["share"] = round(entry["time_ms"] / denominator, 6)
    return {
        "supported": True,
        "reason": reason,
        "profiler": profiler,
        "iterations": iterations,
        "wall_ms": round(float(wall_ms or 0.0), 6),
        "op_time_ms": round(total, 6),
        "coverage": round(total / denominator, 6),
        "ops_total": len(ops),
        "ops": ops[:MAX_PROFILE_OPS],
        "by_type": types,
    }


def _is_kind(value, kind):
    if kind is bool:
        return isinstance(value, bool)
    if kind is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if kind is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    return isinstance(value, kind)


def _kind_name(kind):
    return {bool: "true or false", int: "an integer", float: "a number", str: "a string"}.get(kind, str(kind))


def require_file(files, role):
    # type: (dict, str) -> str
    import os

    path = files.get(role)
    if not path:
        raise AgentFailure("protocol", "job names no %r model file" % role)
    if not os.path.isfile(path):
        raise AgentFailure("model-missing", "model file not found on device: %s" % path)
    return path


def predictor_runner(predictor):
    # type: (Any) -> Callable[[], None]
    """The runner of a predictor whose `run()` does one inference on the inputs already set
    (Paddle Inference's and Paddle Lite's): each call is exactly one `predictor.run()`."""

    def run_once():
        predictor.run()

    return run_once


def distribution_version(distribution, module):
    # type: (str, object) -> str
    """The installed version of `distribution` (importlib.metadata, Python 3.8+), else the
    `__version__` of its imported `module`, else "unknown"."""
    try:
        from importlib import metadata  # 3.8+

        return metadata.version(distribution)
    except Exception:
        return getattr(module, "__version__", "unknown")


def first_line(exc, text=None):
    # type: (BaseException, str | None) -> str
    """The first non-blank line of `text` (default: str(exc)), at most 600 characters, or the
    exception's type name where there is none: the runtime's own reason, to quote in a failure."""
    text = str(exc) if text is None else text
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return (lines[0] if lines else type(exc).__name__)[:600]


def import_runtime_modules(runtime, modules, install=""):
    # type: (str, tuple[str, ...], str) -> list
    """The modules named (dotted names, imported in order) that a runtime needs.

    If one is absent: AgentFailure("runtime-missing") saying `runtime` cannot be imported and,
    where `install` names them, what to install for this interpreter."""
    import importlib

    try:
        return [importlib.import_module(name) for name in modules]
    except ImportError as exc:
        hint = (" (install %s for this interpreter, or declare the interpreter that has them)" % install
                if install else "")
        raise AgentFailure("runtime-missing", "%s cannot be imported: %s%s" % (runtime, exc, hint)) from exc
