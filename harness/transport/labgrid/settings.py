"""Which coordinator and priority a labgrid target uses in a session.

The address: ``--lg-coordinator`` (the session's), else the target file's
``connection.coordinator``, else ``$LG_COORDINATOR``, else labgrid's default 127.0.0.1:20408.
The priority: ``--lg-priority``, else the target file's ``connection.priority`` (0).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from harness.config.targets import Target
from harness.transport.labgrid.client import COORDINATOR_ENV, DEFAULT_COORDINATOR


@dataclass(frozen=True)
class LabgridSettings:
    coordinator: str | None = None  # --lg-coordinator
    priority: float | None = None  # --lg-priority


def coordinator_for(target: Target, settings: LabgridSettings) -> tuple[str, str]:
    """(address, where it came from) for ``target``."""
    declared = target.connection.labgrid.coordinator if target.connection.labgrid else None
    if settings.coordinator:
        return settings.coordinator, "from --lg-coordinator"
    if declared:
        return declared, f"from {target.source} connection.coordinator"
    if os.environ.get(COORDINATOR_ENV):
        return os.environ[COORDINATOR_ENV], f"from ${COORDINATOR_ENV}"
    return DEFAULT_COORDINATOR, "labgrid's default address"


def priority_for(target: Target, settings: LabgridSettings) -> float:
    if settings.priority is not None:
        return settings.priority
    return target.connection.labgrid.priority if target.connection.labgrid else 0.0


__all__ = ["LabgridSettings", "coordinator_for", "priority_for"]
