"""The real `labgrid-client`, run as a subprocess, and what its output says.

labgrid's Python client (``ClientSession``) reads its arguments from argparse, so it has no
stable API to call; its command line is the interface labgrid documents. The client lives in
its own environment (``.venv-labgrid``, made by ``make envs``: its grpcio and protobuf pins are
not the harness's, and its pytest plugin must not load into the suites), found through
``$HARNESS_LABGRID_CLIENT``, that environment, or ``PATH``.

Every call names the coordinator explicitly (``-x``) and runs without ``LG_PLACE``/``LG_TOKEN``
from the caller's environment, so a user's shell settings never redirect the harness.
"""

from __future__ import annotations

import ast
import os
import re
import shutil
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.errors import TransportError

LABGRID_CLIENT_ENV = "HARNESS_LABGRID_CLIENT"
COORDINATOR_ENV = "LG_COORDINATOR"
DEFAULT_COORDINATOR = "127.0.0.1:20408"
CLIENT_TIMEOUT_S = 30.0
_REPO = Path(__file__).resolve().parents[3]
_CALLER_SETTINGS = ("LG_PLACE", "LG_TOKEN", "LG_ENV", "LG_STATE", "LG_INITIAL_STATE")
_RESOURCE = re.compile(r"^(Acquired|Matching) resource '([^']*)' \(([^/]+)/([^/]+)/([^/]+)/([^)]+)\):$")
_UNREACHABLE = ("Could not connect to coordinator", "coordinator is unavailable", "failed to connect to all addresses")


class LabgridError(TransportError):
    """labgrid said no (a place that does not exist, one already acquired) or did not answer."""


class CoordinatorUnreachable(LabgridError):
    """No labgrid coordinator answers at the address."""


def find_labgrid_client() -> str:
    """The ``labgrid-client`` to run (see the module docstring), or a LabgridError saying how to get one."""
    explicit = os.environ.get(LABGRID_CLIENT_ENV)
    if explicit:
        if not os.access(explicit, os.X_OK):
            raise LabgridError(f"{LABGRID_CLIENT_ENV}={explicit} is not an executable labgrid-client")
        return explicit
    bundled = _REPO / ".venv-labgrid" / "bin" / "labgrid-client"
    if bundled.is_file():
        return str(bundled)
    found = shutil.which("labgrid-client")
    if found is None:
        raise LabgridError("labgrid-client not found: run `make envs` (it installs labgrid into .venv-labgrid), "
                           f"`pip install labgrid`, or set {LABGRID_CLIENT_ENV}")
    return found


@dataclass(frozen=True)
class PlaceResource:
    """A resource of a place as `labgrid-client show` prints it (``exporter/group/cls/name``)."""

    exporter: str
    group: str
    cls: str
    name: str
    params: Mapping[str, Any]
    acquired: bool


@dataclass(frozen=True)
class PlaceInfo:
    """One place as the coordinator sees it now."""

    name: str
    acquired: str | None  # "host/user", None when free
    reservation: str | None  # the token it is allocated to
    tags: Mapping[str, str] = field(default_factory=dict)
    resources: tuple[PlaceResource, ...] = ()

    def network_service(self) -> PlaceResource | None:
        return next((r for r in self.resources if r.cls == "NetworkService"), None)


@dataclass(frozen=True)
class ReservationInfo:
    token: str
    owner: str
    state: str  # waiting | allocated | acquired | expired | invalid
    prio: float
    allocated: tuple[str, ...]  # place names


class LabgridClient:
    """`labgrid-client -x COORDINATOR ...`; ``origin`` says where the address came from, for errors."""

    def __init__(self, coordinator: str, origin: str, executable: str | None = None,
                 timeout_s: float = CLIENT_TIMEOUT_S) -> None:
        self.coordinator = coordinator
        self.origin = origin
        self.executable = executable or find_labgrid_client()
        self.timeout_s = timeout_s

    def argv(self, *args: str) -> list[str]:
        return [self.executable, "-x", self.coordinator, *args]

    def env(self) -> dict[str, str]:
        return {k: v for k, v in os.environ.items() if k not in _CALLER_SETTINGS}

    def run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        try:
            done = subprocess.run(self.argv(*args), capture_output=True, text=True, timeout=self.timeout_s,
                                  env=self.env(), stdin=subprocess.DEVNULL)
        except subprocess.TimeoutExpired:
            raise LabgridError(f"labgrid-client {' '.join(args)} got no answer from the coordinator at "
                               f"{self.coordinator} ({self.origin}) within {self.timeout_s:g}s") from None
        if check and done.returncode != 0:
            raise self.failure(args, done.stdout + done.stderr)
        return done

    def failure(self, args: Sequence[str], output: str) -> LabgridError:
        if any(marker in output for marker in _UNREACHABLE):
            return CoordinatorUnreachable(
                f"labgrid coordinator {self.coordinator} ({self.origin}) is not reachable: start "
                "labgrid-coordinator there, or point --lg-coordinator / LG_COORDINATOR / connection.coordinator "
                "at the lab's")
        lines = [line.strip() for line in output.strip().splitlines() if line.strip()]
        said = next((line for line in reversed(lines) if "Error" in line or "error" in line), lines[-1] if lines
                    else "no output")
        return LabgridError(f"labgrid-client {' '.join(args)} failed: {said.removeprefix('labgrid-client: ')[:300]}")

    # --- reservations ------------------------------------------------------------------------
    def reserve(self, filters: Mapping[str, str], priority: float) -> str:
        """A reservation in the coordinator's queue; its token."""
        done = self.run("reserve", "--shell", "--prio", f"{priority:g}", *(f"{k}={v}" for k, v in filters.items()))
        match = re.search(r"LG_TOKEN=(\S+)", done.stdout)
        if match is None:
            raise LabgridError(f"labgrid-client reserve printed no token: {done.stdout.strip()[:200]}")
        return match.group(1)

    def start_wait(self, token: str) -> subprocess.Popen[str]:
        """`labgrid-client wait TOKEN`: polls (and so keeps alive) the reservation every second,
        printing it, until the coordinator allocates a place; the caller reads and ends it."""
        return subprocess.Popen(self.argv("wait", token), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                text=True, env=self.env(), stdin=subprocess.DEVNULL)

    def reservations(self) -> list[ReservationInfo]:
        return parse_reservations(self.run("reservations").stdout)

    def cancel_reservation(self, token: str) -> None:
        self.run("cancel-reservation", token)

    # --- places ------------------------------------------------------------------------------
    def acquire(self, place: str) -> None:
        self.run("-p", place, "acquire")

    def release(self, place: str, kick: bool = False) -> None:
        self.run("-p", place, "release", *(("--kick",) if kick else ()))

    def show(self, place: str) -> PlaceInfo:
        places = parse_places(self.run("-p", place, "show").stdout)
        if not places:
            raise LabgridError(f"labgrid-client -p {place} show printed no place")
        return places[0]

    def places(self) -> list[PlaceInfo]:
        return parse_places(self.run("-v", "places").stdout)


def parse_places(text: str) -> list[PlaceInfo]:
    """``Place 'NAME':`` blocks (`show`, `-v places`) with the resources printed after them."""
    places: list[PlaceInfo] = []
    current: dict[str, Any] | None = None
    resource: list[Any] | None = None

    def close_resource() -> None:
        nonlocal resource
        if resource is not None and current is not None:
            header, body = resource[0], "\n".join(resource[1:])
            try:
                data = ast.literal_eval(body.strip()) if body.strip() else {}
            except (ValueError, SyntaxError):
                data = {}
            current["resources"].append(PlaceResource(
                exporter=header.group(3), group=header.group(4), cls=header.group(5), name=header.group(6),
                params=dict(data.get("params", {})) if isinstance(data, dict) else {},
                acquired=header.group(1) == "Acquired"))
        resource = None

    def close_place() -> None:
        close_resource()
        if current is not None:
            places.append(PlaceInfo(name=current["name"], acquired=current.get("acquired"),
                                    reservation=current.get("reservation"), tags=current.get("tags", {}),
                                    resources=tuple(current["resources"])))

    for line in text.splitlines():
        head = re.match(r"^Place '([^']+)':$", line)
        if head:
            close_place()
            current = {"name": head.group(1), "resources": []}
            continue
        found = _RESOURCE.match(line)
        if found:
            close_resource()
            resource = [found]
            continue
        if resource is not None and line.startswith(" "):
            resource.append(line)
            continue
        if current is None:
            continue
        fields = re.match(r"^  (acquired|reservation|tags): (.*)$", line)
        if fields:
            key, value = fields.group(1), fields.group(2).strip()
            if key == "tags":
                current["tags"] = dict(item.split("=", 1) for item in value.split(", ") if "=" in item)
            else:
                current[key] = None if value == "None" else value
    close_place()
    return places


def parse_reservations(text: str) -> list[ReservationInfo]:
    """`labgrid-client reservations` (and `wait`'s blocks: unindented) into values."""
    found: list[ReservationInfo] = []
    block: dict[str, Any] = {}

    def close() -> None:
        if "token" in block:
            found.append(ReservationInfo(token=block["token"], owner=block.get("owner", ""),
                                         state=block.get("state", ""), prio=float(block.get("prio", 0.0)),
                                         allocated=tuple(block.get("allocated", ()))))

    in_allocations = False
    for raw in text.splitlines():
        line = raw.strip()
        if line.startswith("Reservation '") or (line.startswith("owner:") and "token" in block):
            close()
            block, in_allocations = {}, False
        if ":" not in line:
            continue
        key, _, value = line.partition(":")
        value = value.strip()
        if key in ("owner", "token", "state", "prio"):
            block[key] = value
            in_allocations = False
        elif key == "allocations":
            in_allocations = True
        elif in_allocations and key == "main":
            block["allocated"] = [name.strip() for name in value.split(",") if name.strip()]
        elif key in ("filters", "created", "timeout"):
            in_allocations = False
    close()
    return found


__all__ = ["COORDINATOR_ENV", "DEFAULT_COORDINATOR", "LABGRID_CLIENT_ENV", "CoordinatorUnreachable",
           "LabgridClient", "LabgridError", "PlaceInfo", "PlaceResource", "ReservationInfo", "find_labgrid_client",
           "parse_places", "parse_reservations"]
