"""Targets reached through a labgrid coordinator: reserve and acquire a place, then SSH to its
NetworkService (docs/lab-scale.md)."""

from harness.transport.labgrid.board import Board, LabgridBoard, labgrid_owner
from harness.transport.labgrid.client import (
    COORDINATOR_ENV,
    DEFAULT_COORDINATOR,
    CoordinatorUnreachable,
    LabgridClient,
    LabgridError,
)
from harness.transport.labgrid.settings import LabgridSettings, coordinator_for

__all__ = ["COORDINATOR_ENV", "DEFAULT_COORDINATOR", "Board", "CoordinatorUnreachable", "LabgridBoard",
           "LabgridClient", "LabgridError", "LabgridSettings", "coordinator_for", "labgrid_owner"]
