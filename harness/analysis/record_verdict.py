"""The verdict of any stored record, by its metric: the one place that knows which check
judges which metric.

Used twice with the same result: by the suites to pass or fail a test, and by the report
to show the verdict from the store alone.
"""

from __future__ import annotations

from harness.analysis.accuracy import accuracy_verdict, combine
from harness.analysis.budgets import latency_verdict, memory_verdict, power_verdict
from harness.analysis.fidelity import fidelity_verdict, settings_from_meta
from harness.analysis.verdict import Verdict
from harness.records import MeasurementRecord


def record_verdict(record: MeasurementRecord) -> Verdict:
    """The verdict of any stored record, recomputed from what the store holds."""
    if record.status != "ok":
        return Verdict("error", str(record.meta.get("error", "measurement failed")))
    if record.metric == "power":
        return power_verdict(record.target, record.variant_id, record.summary, record.meta.get("budget"))
    if record.metric == "memory":
        return memory_verdict(record.target, record.variant_id, record.summary, record.meta.get("budget"))
    if record.metric == "fidelity":
        verdict = fidelity_verdict(record.target, record.variant_id, record.summary,
                                   settings_from_meta(record.meta.get("fidelity_settings")))
        return combine(verdict, accuracy_verdict(record.target, record.variant_id, record.summary.get("accuracy"),
                                                 record.meta.get("budget")))
    return latency_verdict(record.target, record.variant_id, record.summary, record.meta.get("budget"))
