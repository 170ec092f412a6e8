"""A target made reachable for one session: its transport, push cache and agent client."""

from __future__ import annotations

import posixpath
from collections.abc import Callable
from pathlib import Path

from harness.errors import HarnessError, TransportError
from harness.run.agent_client import AgentClient
from harness.transport import ContentCache, Transport, open_transport
from harness.transport.labgrid import LabgridBoard
from harness.transport.lock import DeviceLock


class Device:
    """Opened once per target per session and reused by every test on that target.

    A labgrid target's device holds its ``board`` (the acquired place): labgrid's lock is its
    only lock (no flock on the board), ``target`` is then the target as an ssh target at the
    place's NetworkService, and ``record_name`` the name its measurements carry: the target's,
    or ``<target>@<place>`` for a target that matches any free place of a kind, so each board
    keeps its own history."""

    def __init__(self, target, transport: Transport | None = None, *, board: LabgridBoard | None = None,
                 record_name: str | None = None) -> None:  # target: inventory.Target
        self.target = target
        self.transport = transport or open_transport(target)
        self.cache = ContentCache(self.transport)
        self.agent = AgentClient(self.transport, self.cache)
        self.board = board
        self.record_name = record_name or target.name
        self._lock: DeviceLock | None = None
        self._board_lost: str | None = None

    @property
    def board_meta(self) -> dict | None:
        """Which board measured (place, exporter, address), for each record; None off labgrid."""
        return self.board.board.meta() if self.board is not None and self.board.board is not None else None

    def interpreter_for(self, runtime: str) -> str:
        """The Python that runs `runtime` on this device (the target file says which)."""
        if runtime == "noop":
            return self.target.python
        declared = self.target.runtimes.get(runtime)
        if declared is None:
            known = ", ".join(sorted(self.target.runtimes)) or "none"
            raise HarnessError(f"{self.target.name}: runtime '{runtime}' is not declared in "
                               f"{self.target.source} (declared: {known})")
        if declared.setup_env is not None:
            return posixpath.join(self.setup_env_dir(runtime), "bin", "python3")
        return declared.python

    def setup_env_dir(self, runtime: str) -> str:
        """Where `harness targets setup` installs ``runtime`` on this device (absolute)."""
        setup_env = self.target.runtimes[runtime].setup_env
        if setup_env is None:
            raise HarnessError(f"{self.target.name}: runtime '{runtime}' is not installed by `harness targets "
                               f"setup` (it has no setup entry in {self.target.source})")
        return posixpath.join(self.transport.workdir, setup_env)

    def push_model_files(self, files: dict[str, str]) -> dict[str, str]:
        """Push each model file by content hash; role -> path on the device."""
        return {role: self.cache.push_file(Path(path)) for role, path in files.items()}

    def lock(self, run_id: str, wait_s: float, on_wait: Callable[[str], None] | None = None) -> None:
        """Take the device's exclusive lock for this session (released by close()).

        Two orchestrators never measure on one device at once: the second waits, saying who
        holds the lock and since when, and gives up after `wait_s`. On a labgrid board the
        place is the lock: this checks it is still ours before each job, and once it was taken
        away every later job on the board fails with that reason (nothing is re-acquired). A
        coordinator that cannot answer is said, not taken for a loss: no one can take the
        place through it either."""
        if self.board is not None:
            if self._board_lost is None:
                try:
                    self._board_lost = self.board.lost()
                except TransportError as exc:  # nobody can take the place while the coordinator is down either
                    if on_wait is not None:
                        on_wait(f"{self.record_name}: the labgrid place cannot be checked before this job ({exc}); "
                                "carrying on with it: it was acquired at the start and the next job checks again")
            if self._board_lost is not None:
                raise TransportError(f"{self.record_name}: {self._board_lost}: the board's remaining tests fail")
            return
        if self._lock is not None and not self._lock.still_held():
            # its helper went with a broken connection: the device is not ours now (a helper
            # still running on the device is killed by the transport once it reconnects)
            lost, self._lock = self._lock, None
            lost.release()
            if on_wait is not None:
                on_wait(f"{self.target.name}: the device lock was lost with the connection; taking it again")
        if self._lock is None:
            self._lock = DeviceLock(self.transport, self.target.python, self.agent.agent_dir(), run_id=run_id,
                                    wait_s=wait_s, on_wait=on_wait).acquire()

    def close(self) -> None:
        try:
            if self._lock is not None:
                try:
                    self._lock.release()
                finally:
                    self._lock = None
            self.transport.close()
        finally:
            if self.board is not None:
                self.board.release()
