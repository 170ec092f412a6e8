"""Latency suite: one test per (target, variant).

Each test measures the variant on the target through the agent (warm-up, then at least
the manifest's minimum iterations and duration), records every sample in the results
store, and fails when the variant misses its latency budget on that target.
"""

from harness.plugin.fixtures import Harness


def test_latency(harness: Harness, target, variant) -> None:
    record = harness.measure_latency(target, variant)
    harness.require(harness.verdict(record))
