"""Transports: how the orchestrator reaches a target (local subprocesses, SSH later)."""

from __future__ import annotations

from ..errors import HarnessError
from .base import CommandResult, ContentCache, RemoteProcess, Transport
from .local import LocalTransport


def open_transport(target) -> Transport:  # target: harness.inventory.Target
    """The transport a target declares."""
    kind = target.connection.transport
    if kind == "local":
        return LocalTransport(target.name, target.workdir)
    raise HarnessError(f"{target.source}: connection.transport: '{kind}' transport is not available "
                       "in this version (supported: local)")


__all__ = ["CommandResult", "ContentCache", "LocalTransport", "RemoteProcess", "Transport", "open_transport"]
