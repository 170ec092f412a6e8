"""What every runtime adapter provides (Python 3.6 compatible, no ABCs needed).

Life cycle, driven by the job runner:
    adapter = Adapter(options)      # validates options; imports nothing heavy
    adapter.import_runtime()        # imports the runtime: AgentFailure("runtime-missing") if absent
    adapter.load(files, input_spec) # loads the model: "model-load" on failure
    adapter.set_inputs(seed)        # places one structured input (seeded)
    run = adapter.runner()          # a no-argument callable doing exactly one inference
    adapter.describe()              # runtime version, precision actually used, signatures
"""

from ..protocol import AgentFailure


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

    def runner(self):
        raise NotImplementedError

    def outputs(self):
        # type: () -> list
        """The output arrays of the last inference (numpy), in the model's output order."""
        raise AgentFailure("bad-option", "%s cannot return model outputs (needed by fidelity jobs)" % self.name)

    def describe(self):
        # type: () -> dict
        return {}


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
