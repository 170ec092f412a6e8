"""One labgrid place taken for a session: reserved in the coordinator's queue, acquired, read,
watched, released.

    board = LabgridBoard(target, client, priority=0).acquire(wait_s=600, on_wait=print)
    ssh_target = board.ssh_target()     # the Target with the place's NetworkService as its host
    ...
    board.lost()                        # None while the place is still ours, else why not
    board.release()

Every place, named or matched, is taken through a reservation (a named place is the filter
``name=<place>``, which labgrid's scheduler understands), so two orchestrators wait in
labgrid's queue in priority order, and with ``match`` each orchestrator (each pytest-xdist
worker) is allocated a different free place. `labgrid-client wait` keeps the reservation alive
while it waits (a reservation nobody polls expires after 60 s).
"""

from __future__ import annotations

import dataclasses
import getpass
import os
import queue
import socket
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from harness.config.targets import Target
from harness.transport.labgrid import acquisitions
from harness.transport.labgrid.client import LabgridClient, LabgridError, PlaceInfo, parse_reservations

PROGRESS_EVERY_S = 10.0


def labgrid_owner() -> str:
    """The ``host/user`` labgrid records for this process (LG_HOSTNAME / LG_USERNAME win, as in labgrid)."""
    return f"{os.environ.get('LG_HOSTNAME', socket.gethostname())}/{os.environ.get('LG_USERNAME', getpass.getuser())}"


@dataclass(frozen=True)
class Board:
    """The acquired place, as each measurement records it."""

    place: str
    exporter: str
    group: str
    address: str
    port: int
    username: str | None
    coordinator: str
    token: str

    def meta(self) -> dict[str, Any]:
        return {"transport": "labgrid", "place": self.place, "exporter": self.exporter, "group": self.group,
                "address": self.address, "port": self.port, "coordinator": self.coordinator}


class LabgridBoard:
    def __init__(self, target: Target, client: LabgridClient, *, priority: float, run_id: str = "") -> None:
        if target.connection.labgrid is None:
            raise LabgridError(f"{target.name}: not a labgrid target ({target.source})")
        self.target = target
        self.spec = target.connection.labgrid
        self.client = client
        self.priority = priority
        self.run_id = run_id
        self.owner = labgrid_owner()
        self.board: Board | None = None
        self._token: str | None = None
        self._place: str | None = None  # acquired by this board (and not yet released)

    # --- taking it ---------------------------------------------------------------------------
    def acquire(self, wait_s: float, on_wait: Callable[[str], None] | None = None) -> Board:
        say = on_wait or (lambda line: None)
        places = self.client.places()
        if not any(self._could_use(place) for place in places):  # a reservation for it would wait forever
            known = ", ".join(place.name for place in places) or "none"
            raise LabgridError(f"{self.target.name}: the labgrid coordinator at {self.client.coordinator} has no "
                               f"{self.spec.describe()} (its places: {known}): fix connection.place or "
                               f"connection.match in {self.target.source}, or create the place (labgrid-client -p "
                               "NAME create / add-match / set-tags)")
        self._check_stale(say)
        self._token = self.client.reserve(self.spec.filters, self.priority)
        try:
            place = self._wait_for_allocation(self._token, wait_s, say)
            self.client.acquire(place)
            self._place = place
            acquisitions.remember(acquisitions.Acquisition(
                coordinator=self.client.coordinator, place=place, token=self._token, owner=self.owner,
                pid=os.getpid(), host=socket.gethostname(), run=self.run_id, target=self.target.name,
                since=acquisitions.now_text()))
            self.board = self._read_board(self.client.show(place), self._token)
        except BaseException:
            self.release()
            raise
        say(f"{self.target.name}: acquired labgrid place {self.board.place} (exporter {self.board.exporter}, "
            f"{self.board.address}:{self.board.port}) from {self.client.coordinator}")
        return self.board

    def _check_stale(self, say: Callable[[str], None]) -> None:
        """A place this user still holds for a run whose process is gone: fail on a named place
        (its reservation would wait forever), tell the user on a match (another board may serve)."""
        for stale in acquisitions.orphaned(self.client.coordinator):
            if self.spec.place is not None and stale.place != self.spec.place:
                continue
            try:
                info = self.client.show(stale.place)
            except LabgridError:
                continue
            if info.acquired != stale.owner or info.reservation != stale.token:
                acquisitions.forget(stale.coordinator, stale.place, stale.token)  # released since
                continue
            message = (f"{self.target.name}: labgrid place {stale.place} is still acquired by {stale.owner} for run "
                       f"{stale.run or '?'} (pid {stale.pid} on {stale.host}, which is no longer running) since "
                       f"{stale.since}: a crashed run left it; release it with {stale.release_commands()}")
            if self.spec.place is not None:
                raise LabgridError(message)
            say(message)

    def _wait_for_allocation(self, token: str, wait_s: float, say: Callable[[str], None]) -> str:
        started = time.monotonic()
        waiter = self.client.start_wait(token)
        lines: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=_pump, args=(waiter, lines), daemon=True).start()
        output: list[str] = []
        next_note = started + min(2.0, PROGRESS_EVERY_S)
        try:
            while True:
                try:
                    line = lines.get(timeout=0.5)
                except queue.Empty:
                    line = ""
                if line is None:
                    break
                if line:
                    output.append(line)
                    del output[:-40]
                now = time.monotonic()
                if now - started > wait_s:
                    raise LabgridError(f"{self.target.name}: no labgrid {self.spec.describe()} became free within "
                                       f"{wait_s:g}s (--lock-timeout) at {self.client.coordinator}: "
                                       f"{self._holders()}")
                if now >= next_note:
                    say(f"{self.target.name}: waiting in labgrid's queue for {self.spec.describe()} (priority "
                        f"{self.priority:g}, {now - started:.0f}s of {wait_s:g}s): {self._holders()}")
                    next_note = now + PROGRESS_EVERY_S
        finally:
            if waiter.poll() is None:
                waiter.kill()
            waiter.wait()
        states = parse_reservations("\n".join(output))
        final = states[-1] if states else None
        if waiter.returncode != 0 or final is None:
            raise self.client.failure(("wait", token), "\n".join(output))
        if final.state not in ("allocated", "acquired") or not final.allocated:
            raise LabgridError(f"{self.target.name}: labgrid reservation {token} for {self.spec.describe()} ended "
                               f"{final.state} without a place: does a place with those tags exist? "
                               f"(labgrid-client -x {self.client.coordinator} -v places)")
        return final.allocated[0]

    def _holders(self) -> str:
        """Who holds the places this target could use, for a progress line."""
        try:
            places = [p for p in self.client.places() if self._could_use(p)]
            waiting = [r for r in self.client.reservations() if r.state == "waiting"]
        except LabgridError as exc:
            return f"(could not list places: {exc})"
        if not places:
            return "no such place is declared on the coordinator"
        held = ", ".join(f"{p.name} acquired by {p.acquired}" if p.acquired else
                         f"{p.name} allocated to reservation {p.reservation}" if p.reservation else
                         f"{p.name} free" for p in places)
        return f"{held}; {len(waiting)} reservation(s) waiting, this one included"

    def _could_use(self, place: PlaceInfo) -> bool:
        if self.spec.place is not None:
            return place.name == self.spec.place
        return all(place.tags.get(k) == v for k, v in self.spec.match.items())

    def _read_board(self, info: PlaceInfo, token: str) -> Board:
        service = info.network_service()
        if service is None:
            raise LabgridError(f"{self.target.name}: labgrid place {info.name} has no NetworkService resource: "
                               "export one (address, username, port) for the board, see docs/lab-scale.md")
        address = str(service.params.get("address") or "")
        if not address:
            raise LabgridError(f"{self.target.name}: labgrid place {info.name}'s NetworkService has no address")
        username = service.params.get("username")
        return Board(place=info.name, exporter=service.exporter, group=service.group, address=address,
                     port=int(service.params.get("port") or 22), username=str(username) if username else None,
                     coordinator=self.client.coordinator, token=token)

    # --- using it ----------------------------------------------------------------------------
    def ssh_target(self) -> Target:
        """The target as an ssh target at the place's NetworkService (its SSH settings kept)."""
        if self.board is None:
            raise LabgridError(f"{self.target.name}: the labgrid place is not acquired")
        connection = dataclasses.replace(self.target.connection, transport="ssh", host=self.board.address,
                                         port=self.board.port, user=self.board.username)
        return dataclasses.replace(self.target, connection=connection)

    def lost(self) -> str | None:
        """None while the place is still acquired by this user under this run's reservation,
        else what happened to it (released by someone else). Raises LabgridError when the
        coordinator cannot say (unreachable): that is not a loss, the next check asks again."""
        if self.board is None:
            return "the labgrid place is not acquired"
        info = self.client.show(self.board.place)
        if info.acquired == self.owner and info.reservation == self.board.token:
            return None
        now = f"acquired by {info.acquired}" if info.acquired else "released"
        return (f"labgrid place {self.board.place} was taken away during the run (it is now {now}; "
                f"another user ran `labgrid-client -p {self.board.place} release --kick`?)")

    # --- giving it back ----------------------------------------------------------------------
    def release(self) -> None:
        """Release the place (if it is still ours) and cancel the reservation; never raises.
        When the coordinator cannot be reached the record of the acquisition is kept, so the
        next run names it as stale if labgrid still holds it."""
        token, self._token = self._token, None
        place, self._place = self._place, None
        done = True
        if place is not None:
            try:
                info = self.client.show(place)
                if info.acquired == self.owner and info.reservation == token:
                    self.client.release(place)
            except LabgridError:
                done = False
        if token is not None:
            try:
                self.client.cancel_reservation(token)
            except LabgridError as exc:
                done = done and "does not exist" in str(exc)  # expired or cancelled already: nothing to undo
            if place is not None and done:
                acquisitions.forget(self.client.coordinator, place, token)


def _pump(process: subprocess.Popen[str], into: queue.Queue[str | None]) -> None:
    assert process.stdout is not None
    for line in process.stdout:
        into.put(line.rstrip("\n"))
    into.put(None)


__all__ = ["Board", "LabgridBoard", "labgrid_owner"]
