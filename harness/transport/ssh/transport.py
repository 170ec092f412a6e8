"""`SSHTransport`: the Transport protocol for a target reached over SSH, assembled from its parts.

Mirrors `LocalTransport` (same methods, same errors) so the content cache, the agent client
and the device lock run unchanged over SSH. The link (`connection`) owns the connection;
commands run as `process.SSHProcess`; files go through `files.RemoteFiles`.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from pathlib import Path

from harness.config.targets import Target
from harness.transport.base import CommandResult
from harness.transport.ssh.config import Endpoint
from harness.transport.ssh.connection import Progress, SSHLink
from harness.transport.ssh.files import RemoteFiles, RemoteWorkdir
from harness.transport.ssh.process import SSHProcess, launch, run_command


class SSHTransport:
    """Runs on a device over SSH. ``workdir`` is absolute on the device (a relative one in
    the target file is resolved against the login directory on first use)."""

    def __init__(self, target: Target, *, ssh_config_path: Path | None = None, known_hosts_path: Path | None = None,
                 progress: Progress | None = None) -> None:
        self.target = target
        self.target_name = target.name
        self.bytes_sent = 0
        sftp_lock = threading.RLock()  # the workdir's preparation and the file operations share the SFTP client
        self._workdir = RemoteWorkdir(target, sftp_lock)
        self._link = SSHLink(target, ssh_config_path=ssh_config_path, known_hosts_path=known_hosts_path,
                             progress=progress, on_open=self._workdir.prepare)
        self._files = RemoteFiles(self._link, sftp_lock)

    @property
    def progress(self) -> Progress | None:
        """One-line news for the user (reconnect attempts); None: debug log only."""
        return self._link.progress

    @property
    def connects(self) -> int:
        """How many connections were opened (1 unless one broke)."""
        return self._link.connects

    @property
    def debug_log(self) -> list[str]:
        """The last things worth knowing after a failure (reconnects, failed kills)."""
        return self._link.debug_log

    @property
    def endpoint(self) -> Endpoint:
        return self._link.endpoint

    @property
    def workdir(self) -> str:
        if self._workdir.path is None:
            self._link.connected()
        assert self._workdir.path is not None
        return self._workdir.path

    # --- commands ---------------------------------------------------------------------------
    def run(self, argv: Sequence[str], *, cwd: str | None = None, env: Mapping[str, str] | None = None,
            timeout: float = 60.0) -> CommandResult:
        return run_command(self._link, argv, cwd=cwd, env=env, timeout=timeout)

    def start(self, argv: Sequence[str], *, cwd: str | None = None,
              env: Mapping[str, str] | None = None) -> SSHProcess:
        return launch(self._link, argv, cwd, env)

    # --- files ------------------------------------------------------------------------------
    def exists(self, path: str) -> bool:
        return self._files.exists(path)

    def makedirs(self, path: str) -> None:
        self._files.makedirs(path)

    def upload(self, local: Path, remote: str) -> int:
        size = self._files.upload(local, remote)
        self.bytes_sent += size
        return size

    def write_bytes(self, remote: str, data: bytes) -> None:
        self._files.write_bytes(remote, data)
        self.bytes_sent += len(data)

    def remote_sha256(self, path: str) -> str:
        return self._files.sha256(path)

    def remote_sha256_many(self, paths: Sequence[str]) -> dict[str, str]:
        """Hashes of many files in one round trip on the device."""
        return self._files.sha256_many(paths)

    def rename(self, source: str, destination: str) -> None:
        self._files.rename(source, destination)

    def remove(self, path: str) -> None:
        self._files.remove(path)

    def close(self) -> None:
        self._link.close()
