"""Transports: how the orchestrator reaches a target (local subprocesses or SSH)."""

from __future__ import annotations

from collections.abc import Callable

from harness.errors import HarnessError
from harness.transport.base import CommandResult, ContentCache, RemoteProcess, Transport
from harness.transport.local import LocalTransport
from harness.transport.ssh import SSHTransport


def open_transport(target, progress: Callable[[str], None] | None = None) -> Transport:  # target: inventory.Target
    """The transport a target declares. An SSH transport connects on first use and tells
    `progress` when it reconnects after a broken connection."""
    kind = target.connection.transport
    if kind == "local":
        return LocalTransport(target.name, target.workdir)
    if kind == "ssh":
        return SSHTransport(target, progress=progress)  # it reads connection.known_hosts_file itself
    if kind == "labgrid":  # the board's address is known only once its place is acquired
        raise HarnessError(f"{target.name}: a labgrid target is reached through its place: open it with "
                           "harness.run.labgrid_device (the suites and `harness targets check` do)")
    raise HarnessError(f"{target.source}: connection.transport: '{kind}' transport is not available "
                       "in this version (supported: local, ssh, labgrid)")


__all__ = ["CommandResult", "ContentCache", "LocalTransport", "RemoteProcess", "SSHTransport", "Transport",
           "open_transport"]
