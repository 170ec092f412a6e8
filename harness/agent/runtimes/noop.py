"""A runtime that does nothing: measures the harness's own per-iteration overhead."""

from .base import BaseAdapter


def _nothing():
    return None


class Adapter(BaseAdapter):
    name = "noop"
    OPTIONS = {}

    def version(self):
        return "builtin"

    def load(self, files, input_spec):
        self.input_spec = input_spec

    def set_inputs(self, seed):
        pass

    def runner(self):
        return _nothing

    def outputs(self):
        return []

    def describe(self):
        return {"precision": "none", "inputs": [], "outputs": []}
