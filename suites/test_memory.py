"""Memory suite: one test per (target, variant).

Peak resident memory (VmHWM) of a fresh agent process, split into runtime import, model
load and steady-state inference, plus the model's size on the device; fails when the
variant exceeds the manifest's max_memory budget on that target. A job killed for memory
is reported as "out of memory at <phase>" with the device's limit.
"""

from harness.plugin.fixtures import Harness


def test_memory(harness: Harness, target, variant) -> None:
    record = harness.measure_memory(target, variant)
    harness.require(harness.verdict(record))
