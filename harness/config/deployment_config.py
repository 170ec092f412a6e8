"""A team's deployment config (the form teams already write) read as a `Budget`.

A manifest budget may point at one (``budgets: {<target>: {deployment: PATH}}``); only its
``performance`` section sets limits, the ``deployment`` and ``monitoring`` sections are kept
on the budget as information. The key reference is docs/manifest.md.
"""

from __future__ import annotations

from pathlib import Path

from harness.config.sections import Section, load_yaml_mapping
from harness.config.variants import Budget

_DEPLOYMENT_KEYS = ("deployment", "performance", "monitoring")
_PERFORMANCE_KEYS = ("target_latency", "max_memory", "power_consumption", "min_accuracy", "max_accuracy_drop")


def load_deployment_config(path: str | Path, statistic: str = "p90") -> Budget:
    """Read a deployment config's ``performance`` section into a `Budget`.

    ``performance`` may set ``target_latency``, ``max_memory``, ``power_consumption``,
    ``min_accuracy`` and ``max_accuracy_drop`` (shares: 0.9 or 90%; a drop of 2% is 2 points);
    the ``deployment`` and ``monitoring`` sections are kept on the budget as information.
    """
    source = str(path)
    top = Section.of(load_yaml_mapping(path), source, "", _DEPLOYMENT_KEYS, required=("performance",))
    performance = top.get_section("performance", _PERFORMANCE_KEYS)
    budget = Budget(
        target_latency_s=performance.get_duration("target_latency", None, positive=True),
        max_memory_bytes=performance.get_bytes("max_memory", None, positive=True),
        max_power_w=performance.get_power("power_consumption", None, positive=True),
        statistic=statistic,
        source=source,
        deployment=top.get_frozen("deployment"),
        monitoring=top.get_frozen("monitoring"),
        min_accuracy=performance.get_fraction("min_accuracy", None),
        max_accuracy_drop=performance.get_fraction("max_accuracy_drop", None),
    )
    if not budget.sets_a_limit():
        raise top.error("performance", "sets no limit: give target_latency, max_memory, power_consumption, "
                                       "min_accuracy or max_accuracy_drop")
    return budget
