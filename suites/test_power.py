"""Power suite: one test per (target, variant), on the sensor the target file declares.

The agent samples the sensor in a background thread: an idle window first, then the timed
loop under load, bracketed by markers. Reported: idle and load power, peak, energy per
inference and the sensor's sampling rate; fails when mean power under load exceeds the
manifest's max_power. A target whose sensor is missing or unreadable is skipped with
"power unavailable: <reason>"; an estimate is labelled as one everywhere.
"""

import pytest

from harness.plugin.fixtures import Harness

pytestmark = pytest.mark.no_sweeps  # sweeps are measured for latency and memory; power per point would double the run


def test_power(harness: Harness, target, variant) -> None:
    record = harness.measure_power(target, variant)
    harness.require(harness.verdict(record))
