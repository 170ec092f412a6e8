"""The Transport protocol (behaviour) and the content-addressed push built on it.

A Target is data; a Transport runs commands and moves files for one target. Both the
local and the SSH transport implement the same small set of primitives, and the
content-addressed cache (`ContentCache`) is written once on top of them:

    <workdir>/cache/<sha256>/<file name>      one file per content hash
    <workdir>/agent/<tree hash>/<package>/... the agent, pushed as a tree

A push uploads to a temporary name, verifies the sha256 on the device, then renames
atomically, so an interrupted or corrupted upload never poisons the cache.
"""

from __future__ import annotations

import hashlib
import posixpath
import queue
import time
import uuid
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from harness.errors import TransportError

HASH_CHUNK = 1 << 20


def sha256_file(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(HASH_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


@dataclass(frozen=True)
class CommandResult:
    argv: tuple[str, ...]
    returncode: int
    stdout: bytes
    stderr: bytes

    def check(self, target: str, what: str) -> CommandResult:
        """Raise TransportError naming the target and the last stderr line if it failed."""
        if self.returncode != 0:
            tail = self.stderr.decode("utf-8", "replace").strip().splitlines()[-1:] or ["no output"]
            raise TransportError(f"{target}: {what} failed (exit {self.returncode}): {tail[0][:300]}")
        return self


class RemoteProcess(Protocol):
    """A process started on the target whose stdout is read line by line."""

    def send_stdin(self, data: bytes) -> None:
        """Write all of `data` to the process's stdin and close it."""

    def read_line(self, timeout: float) -> bytes | None:
        """The next stdout line (without newline), None at end of output.

        Raises TimeoutError if no complete line arrives within `timeout` seconds, and
        TransportError if a line exceeds the transport's line limit."""

    def stderr_tail(self) -> str:
        """The last few kilobytes the process wrote to stderr."""

    def wait(self, timeout: float) -> int:
        """Exit status (negative signal number if killed by a signal)."""

    def kill(self) -> None: ...


def lines_until(process: RemoteProcess, deadline: float) -> Iterator[bytes]:
    """The process's stdout lines until its output ends; TimeoutError once the monotonic
    `deadline` passes with no line (what a reader of a job's or a helper's events waits for)."""
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError
        line = process.read_line(timeout=remaining)
        if line is None:
            return
        yield line


class QueuedLines:
    """read_line() over a queue a reader thread fills with stdout lines (bytes), an
    Exception to raise, or None at end of output: shared by the local and SSH processes."""

    _lines: queue.Queue

    def read_line(self, timeout: float) -> bytes | None:
        try:
            item = self._lines.get(timeout=timeout)
        except queue.Empty:
            raise TimeoutError from None
        if isinstance(item, Exception):
            raise item
        return item


class Transport(Protocol):
    target_name: str
    bytes_sent: int

    @property
    def workdir(self) -> str:
        """Absolute on the target; the SSH transport learns it on its first connection."""

    def run(self, argv: Sequence[str], *, cwd: str | None = None, env: Mapping[str, str] | None = None,
            timeout: float = 60.0) -> CommandResult: ...

    def start(self, argv: Sequence[str], *, cwd: str | None = None,
              env: Mapping[str, str] | None = None) -> RemoteProcess: ...

    # primitives the content cache is built on
    def exists(self, path: str) -> bool: ...

    def makedirs(self, path: str) -> None: ...

    def upload(self, local: Path, remote: str) -> int:
        """Copy a local file to `remote`; returns the bytes sent over the link."""

    def write_bytes(self, remote: str, data: bytes) -> None: ...

    def remote_sha256(self, path: str) -> str: ...

    def remote_sha256_many(self, paths: Sequence[str]) -> dict[str, str]:
        """Hashes of many files in one round trip on the device."""

    def rename(self, source: str, destination: str) -> None: ...

    def remove(self, path: str) -> None: ...

    def close(self) -> None: ...


@dataclass
class PushStats:
    """What pushing cost in this session: shown in the run summary."""

    files_sent: int = 0
    bytes_sent: int = 0
    cache_hits: int = 0
    cached_paths: dict[str, str] = field(default_factory=dict)  # sha256 -> remote path


class ContentCache:
    """Pushes files to a target by content hash; a file already there is not sent again."""

    def __init__(self, transport: Transport) -> None:
        self.transport = transport
        self.stats = PushStats()

    def push_file(self, local: Path, sha256: str | None = None) -> str:
        """Remote path of `local`'s content on the target, uploading it if needed."""
        local = Path(local)
        if not local.is_file():
            raise TransportError(f"{self.transport.target_name}: cannot push {local}: no such file")
        digest = sha256 or sha256_file(local)
        remote_dir = posixpath.join(self.transport.workdir, "cache", digest)
        remote = posixpath.join(remote_dir, local.name)
        known = self.stats.cached_paths.get(digest + "/" + local.name)
        if known or self.transport.exists(remote):
            self.stats.cache_hits += 1
            self.stats.cached_paths[digest + "/" + local.name] = remote
            return remote
        self.transport.makedirs(remote_dir)
        self._upload_verified(local, remote, digest)
        self.stats.cached_paths[digest + "/" + local.name] = remote
        return remote

    def push_tree(self, files: Mapping[str, Path], kind: str = "agent") -> str:
        """Push a set of files (relative posix path -> local file) as one directory named by
        the hash of the whole tree; returns that directory."""
        digest = tree_sha256(files)
        remote_root = posixpath.join(self.transport.workdir, kind, digest)
        marker = posixpath.join(remote_root, ".complete")
        if self.transport.exists(marker):
            self.stats.cache_hits += 1
            return remote_root
        staging = f"{remote_root}.tmp-{uuid.uuid4().hex[:8]}"
        try:
            expected = {}
            for relative, local in sorted(files.items()):
                destination = posixpath.join(staging, relative)
                self.transport.makedirs(posixpath.dirname(destination))
                self.stats.bytes_sent += self.transport.upload(Path(local), destination)
                self.stats.files_sent += 1
                expected[destination] = sha256_file(Path(local))
            found = self.transport.remote_sha256_many(list(expected))  # one round trip for the tree
            corrupt = [path for path, digest in expected.items() if found.get(path) != digest]
            if corrupt:
                raise TransportError(
                    f"{self.transport.target_name}: upload of {posixpath.basename(corrupt[0])} corrupted: sha256 "
                    f"on device {found.get(corrupt[0], '?')[:12]}... != {expected[corrupt[0]][:12]}...; nothing "
                    "was cached, retry the run")
            self.transport.write_bytes(posixpath.join(staging, ".complete"), b"")
        except TransportError:
            self.transport.remove(staging)  # no half-pushed trees left on the device
            raise
        try:
            self.transport.rename(staging, remote_root)
        except TransportError:
            # another orchestrator pushed the same tree first: theirs is identical
            self.transport.remove(staging)
            if not self.transport.exists(marker):
                raise
        return remote_root

    def _upload_verified(self, local: Path, remote: str, digest: str, in_place: bool = False) -> None:
        temporary = remote if in_place else f"{remote}.part-{uuid.uuid4().hex[:8]}"
        try:
            sent = self.transport.upload(local, temporary)
        except TransportError:
            self.transport.remove(temporary)  # a partial upload (disk full, link lost) is not left behind
            raise
        self.stats.files_sent += 1
        self.stats.bytes_sent += sent
        found = self.transport.remote_sha256(temporary)
        if found != digest:
            self.transport.remove(temporary)
            raise TransportError(
                f"{self.transport.target_name}: upload of {local.name} corrupted: sha256 on device "
                f"{found[:12]}... != {digest[:12]}...; nothing was cached, retry the run")
        if not in_place:
            self.transport.rename(temporary, remote)


def tree_sha256(files: Mapping[str, Path]) -> str:
    digest = hashlib.sha256()
    for relative in sorted(files):
        digest.update(relative.encode("utf-8") + b"\0")
        digest.update(sha256_file(Path(files[relative])).encode("ascii") + b"\n")
    return digest.hexdigest()


def agent_files(package_dir: Path, package_name: str) -> dict[str, Path]:
    """The agent's source files, keyed by their path under `package_name/`."""
    files = {}
    for path in sorted(package_dir.rglob("*.py")):
        relative = path.relative_to(package_dir).as_posix()
        files[f"{package_name}/{relative}"] = path
    return files
