"""A runtime that does nothing: measures the harness's own per-iteration overhead.

Option ``sleep_us``: sleep that many microseconds per inference instead, a stand-in model
with a known, adjustable cost (tests plant a slowdown with it).
"""

import time

from .base import BaseAdapter


def _nothing():
    return None


class Adapter(BaseAdapter):
    name = "noop"
    OPTIONS = {"sleep_us": (float, None)}

    def version(self):
        return "builtin"

    def load(self, files, input_spec):
        self.input_spec = input_spec

    def set_inputs(self, seed):
        pass

    def runner(self):
        sleep_us = self.options.get("sleep_us")
        if not sleep_us:
            return _nothing
        seconds = float(sleep_us) / 1e6

        def sleep():
            time.sleep(seconds)

        return sleep

    def outputs(self):
        return []

    def describe(self):
        return {"precision": "none", "inputs": [], "outputs": []}
