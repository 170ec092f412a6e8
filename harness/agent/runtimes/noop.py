"""A runtime that does nothing: measures the harness's own per-iteration overhead.

Stand-in models with a known, adjustable cost, for tests and for the lab's calibration:

- ``sleep_us``: sleep that many microseconds per inference (tests plant a slowdown with it);
- ``spin_us``: compute for that many microseconds of this thread's CPU time per inference.
  Its length is fixed in CPU time, not in wall time, so it does not depend on the host's
  speed: on an unshaped, idle core one inference takes ``spin_us``; a device whose CPU time
  is rationed (a cgroup quota) or shared stretches it in wall time, as it would a model.
"""

import time

from ..protocol import AgentFailure
from .base import BaseAdapter


def _nothing():
    return None


def _thread_cpu_s():
    # type: () -> float
    return time.clock_gettime(time.CLOCK_THREAD_CPUTIME_ID)


class Adapter(BaseAdapter):
    name = "noop"
    OPTIONS = {"sleep_us": (float, None), "spin_us": (float, None)}

    def version(self):
        return "builtin"

    def load(self, files, input_spec):
        self.input_spec = input_spec

    def set_inputs(self, seed):
        pass

    def runner(self):
        sleep_us = self.options.get("sleep_us")
        spin_us = self.options.get("spin_us")
        if sleep_us and spin_us:
            raise AgentFailure("bad-option", "noop: give sleep_us or spin_us, not both")
        if spin_us:
            return _spinner(float(spin_us) / 1e6)
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


def _spinner(cpu_seconds):
    # type: (float) -> object
    def spin():
        end = _thread_cpu_s() + cpu_seconds
        while _thread_cpu_s() < end:
            pass

    return spin
