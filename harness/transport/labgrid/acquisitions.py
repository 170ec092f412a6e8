"""What this machine's runs hold in labgrid, written beside the coordinator's own state.

labgrid records a place as acquired by ``host/user``, not by a process: after an orchestrator
is SIGKILLed (or its machine loses power) the place stays acquired and its reservation never
expires. Each acquisition is therefore also written here (one small JSON file per coordinator
and place: pid, run, token, since) and removed on release. A later run that finds a file whose
process is gone, for a place labgrid still shows acquired by this user with that token, knows
the acquisition is stale and says how to release it.
"""

from __future__ import annotations

import json
import os
import re
import socket
import time
from dataclasses import asdict, dataclass
from pathlib import Path

STATE_ENV = "HARNESS_LABGRID_STATE"


@dataclass(frozen=True)
class Acquisition:
    coordinator: str
    place: str
    token: str
    owner: str  # labgrid's "host/user"
    pid: int
    host: str
    run: str
    target: str
    since: str

    def process_alive(self) -> bool:
        if self.host != socket.gethostname():
            return True  # another machine's: this one cannot tell
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True

    def release_commands(self, client: str = "labgrid-client") -> str:
        return (f"`{client} -x {self.coordinator} -p {self.place} release` and "
                f"`{client} -x {self.coordinator} cancel-reservation {self.token}`")


def state_dir() -> Path:
    explicit = os.environ.get(STATE_ENV)
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_STATE_HOME") or os.path.join(os.path.expanduser("~"), ".local", "state")
    return Path(base) / "edge-harness" / "labgrid"


def _file(coordinator: str, place: str) -> Path:
    safe = re.sub(r"[^A-Za-z0-9_.-]", "_", coordinator)
    return state_dir() / safe / f"{place}.json"


def remember(acquisition: Acquisition) -> None:
    path = _file(acquisition.coordinator, acquisition.place)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(f".{os.getpid()}.tmp")
    partial.write_text(json.dumps(asdict(acquisition), indent=1))
    os.replace(partial, path)


def forget(coordinator: str, place: str, token: str) -> None:
    """Remove the file, if it is still the one written for ``token``."""
    path = _file(coordinator, place)
    try:
        if json.loads(path.read_text()).get("token") == token:
            path.unlink()
    except (OSError, ValueError):
        pass


def orphaned(coordinator: str) -> list[Acquisition]:
    """Acquisitions recorded for ``coordinator`` whose process is no longer running."""
    folder = _file(coordinator, "x").parent
    found = []
    for path in sorted(folder.glob("*.json")) if folder.is_dir() else ():
        try:
            acquisition = Acquisition(**json.loads(path.read_text()))
        except (OSError, ValueError, TypeError):
            continue
        if not acquisition.process_alive():
            found.append(acquisition)
    return found


def now_text() -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime())


__all__ = ["STATE_ENV", "Acquisition", "forget", "now_text", "orphaned", "remember", "state_dir"]
