"""Opening a labgrid target for a session: take a place through the coordinator, then reach
its NetworkService with the SSH transport (host keys verified as for any ssh target)."""

from __future__ import annotations

from collections.abc import Callable

from harness.config.targets import Target
from harness.run.device import Device
from harness.transport import open_transport
from harness.transport.labgrid import LabgridBoard, LabgridClient, LabgridSettings, coordinator_for
from harness.transport.labgrid.settings import priority_for


def open_labgrid_device(target: Target, settings: LabgridSettings, run_id: str, wait_s: float,
                        notify: Callable[[str], None]) -> Device:
    """Reserve (waiting up to ``wait_s`` in the coordinator's queue, with progress), acquire and
    read the place; a failure after the place was taken gives it back."""
    address, origin = coordinator_for(target, settings)
    board = LabgridBoard(target, LabgridClient(address, origin), priority=priority_for(target, settings),
                         run_id=run_id)
    taken = board.acquire(wait_s, on_wait=notify)
    try:
        ssh_target = board.ssh_target()
        spec = target.connection.labgrid
        name = target.name if spec is not None and spec.place is not None else f"{target.name}@{taken.place}"
        return Device(ssh_target, open_transport(ssh_target, progress=notify), board=board, record_name=name)
    except BaseException:
        board.release()
        raise


def open_device(target: Target, notify: Callable[[str], None], *, purpose: str, wait_s: float = 600.0) -> Device:
    """A device for a command outside a session (`harness targets check|setup`): a labgrid
    target's place is reserved and acquired for the command's length (``purpose`` is recorded
    as its run), any other target is opened directly."""
    if target.connection.transport == "labgrid":
        return open_labgrid_device(target, LabgridSettings(), purpose, wait_s, notify)
    return Device(target)


__all__ = ["open_device", "open_labgrid_device"]
