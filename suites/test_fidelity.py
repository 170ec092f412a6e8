"""Fidelity suite: does each variant still compute what its baseline computes?

Every variant runs on the same fixed, seeded set of structured inputs as its baseline
(whose outputs are computed once per run and target and cached on the host); the test
fails when agreement is below the manifest's fidelity settings (top-1 agreement, relative
error, cosine). For a baseline, the test checks that its outputs differ across the inputs,
so that agreement with it means something.
"""

import pytest

from harness.plugin.fixtures import Harness

pytestmark = pytest.mark.no_sweeps  # a point that changes the input shape has no baseline to agree with


def test_fidelity(harness: Harness, target, variant) -> None:
    record = harness.measure_fidelity(target, variant)
    harness.require(harness.verdict(record))
