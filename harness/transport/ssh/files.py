"""Files on the device: SFTP transfers, the workdir, and what is done by command (df, rm -rf, sha256).

One SFTP client per connection, used by one thread at a time (the lock is shared with the
workdir's preparation). A device-side failure reads "<target>: cannot <do what>: <why>"; a full
disk, which OpenSSH's sftp-server reports as a bare "Failure", is told from `df`. Hashes come
from one ``sha256sum`` command for many files, or from the target's Python where coreutils are
missing.
"""

from __future__ import annotations

import posixpath
import re
import stat
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TypeVar

import paramiko

from harness.config.targets import Target
from harness.errors import TransportError
from harness.transport.base import CommandResult
from harness.transport.ssh.connection import LINK_ERRORS, Connection, SSHLink, error_reason
from harness.transport.ssh.process import run_command

# The sha256 of a file with nothing but the target's Python (when sha256sum is missing);
# Python 3.6-compatible.
PY_SHA256 = (  # sha256sum's output format, for devices without coreutils
    "import hashlib,sys\n"
    "for p in sys.argv[1:]:\n"
    "    h=hashlib.sha256()\n"
    "    with open(p,'rb') as f:\n"
    "        for c in iter(lambda: f.read(1<<20), b''): h.update(c)\n"
    "    print(h.hexdigest() + '  ' + p)\n"
)

T = TypeVar("T")


def make_dirs(sftp: paramiko.SFTPClient, path: str, target_name: str) -> None:
    """``mkdir -p`` over SFTP; a directory another process creates meanwhile is fine."""
    try:
        if stat.S_ISDIR(sftp.stat(path).st_mode or 0):
            return
        raise TransportError(f"{target_name}: cannot create {path}: a file is in the way")
    except FileNotFoundError:
        pass
    parent = posixpath.dirname(path.rstrip("/"))
    if parent and parent != path:
        make_dirs(sftp, parent, target_name)
    try:
        sftp.mkdir(path)
    except OSError as exc:
        try:
            if stat.S_ISDIR(sftp.stat(path).st_mode or 0):
                return  # someone else created it meanwhile
        except OSError:
            pass
        raise TransportError(f"{target_name}: cannot create {path}: {error_reason(exc)}") from None


class RemoteWorkdir:
    """The target's workdir on the device, absolute: a relative one in the target file is
    resolved against the login directory on the first connection, which also creates it."""

    def __init__(self, target: Target, sftp_lock: threading.RLock) -> None:
        self._target = target
        self._sftp_lock = sftp_lock
        self.path: str | None = target.workdir if target.workdir.startswith("/") else None
        self._ready = False

    def prepare(self, connection: Connection) -> None:
        """Resolve and create the workdir (once: later connections find it done)."""
        if self._ready:
            return
        with self._sftp_lock:
            try:
                sftp = connection.sftp()
                if self.path is None:
                    home = sftp.normalize(".")
                    self.path = posixpath.normpath(posixpath.join(home, self._target.workdir))
                make_dirs(sftp, self.path, self._target.name)
            except LINK_ERRORS as exc:
                raise TransportError(f"{self._target.name}: cannot prepare workdir {self._target.workdir}: "
                                     f"{error_reason(exc)}") from None
        self._ready = True


class RemoteFiles:
    """The file primitives of the Transport protocol over one target's link."""

    def __init__(self, link: SSHLink, sftp_lock: threading.RLock) -> None:
        self._link = link
        self._sftp_lock = sftp_lock
        self._target_name = link.target_name
        self._sha256_argv: list[str] | None = None  # settled by the first hash: sha256sum or the Python fallback

    def _sftp_call(self, what: str, failure: str, operation: Callable[[paramiko.SFTPClient], T], *,
                   retry: bool = True) -> T:
        """`operation` on the SFTP client; a device-side error becomes "<target>: <failure>: <why>"."""
        def on(connection: Connection) -> T:
            with self._sftp_lock:
                return operation(connection.sftp())

        try:
            return self._link.with_connection(what, on, retry=retry)
        except TransportError:
            raise
        except (OSError, paramiko.SSHException) as exc:
            raise TransportError(f"{self._target_name}: {failure}: {error_reason(exc)}") from None

    def exists(self, path: str) -> bool:
        def probe(sftp: paramiko.SFTPClient) -> bool:
            try:
                sftp.stat(path)
                return True
            except FileNotFoundError:
                return False

        return self._sftp_call(f"checking {path}", f"cannot check {path}", probe)

    def makedirs(self, path: str) -> None:
        self._sftp_call(f"creating {path}", f"cannot create {path}",
                        lambda sftp: make_dirs(sftp, path, self._target_name))

    def upload(self, local: Path, remote: str) -> int:
        """Copy `local` to `remote`; returns the bytes sent."""
        local = Path(local)

        def put(sftp: paramiko.SFTPClient) -> int:
            return sftp.put(str(local), remote, confirm=True).st_size or 0

        try:
            return self._sftp_call(f"upload of {local.name}", f"cannot copy {local} to {remote}", put)
        except TransportError as exc:
            # OpenSSH's sftp-server reports a full disk as a bare "Failure": ask df
            free = self._free_bytes(posixpath.dirname(remote))
            if free is not None and free < local.stat().st_size:
                raise TransportError(f"{self._target_name}: no space left on {self._target_name}:{remote} "
                                     f"({free / 2**20:.1f} MiB free, {local.stat().st_size / 2**20:.1f} MiB "
                                     "needed): free space in the target's workdir") from None
            raise exc

    def _free_bytes(self, directory: str) -> int | None:
        try:
            done = run_command(self._link, ["df", "-Pk", directory], timeout=15)
        except TransportError:
            return None
        lines = done.stdout.decode("utf-8", "replace").strip().splitlines()
        if done.returncode != 0 or len(lines) < 2:
            return None
        fields = lines[-1].split()
        return int(fields[3]) * 1024 if len(fields) >= 4 and fields[3].isdigit() else None

    def write_bytes(self, remote: str, data: bytes) -> None:
        def write(sftp: paramiko.SFTPClient) -> None:
            with sftp.open(remote, "wb") as handle:
                handle.write(data)

        self._sftp_call(f"writing {remote}", f"cannot write {remote}", write)

    def rename(self, source: str, destination: str) -> None:
        def move(sftp: paramiko.SFTPClient) -> None:
            try:
                sftp.posix_rename(source, destination)
            except OSError as exc:
                if "unsupported" not in str(exc).lower():
                    raise
                sftp.rename(source, destination)  # a server without posix-rename@openssh.com

        self._sftp_call(f"renaming {source}", f"cannot rename {source}", move, retry=False)

    def remove(self, path: str) -> None:
        """Remove a file, or a directory with everything in it; an absent path is fine."""
        def kind(sftp: paramiko.SFTPClient) -> str:
            try:
                mode = sftp.lstat(path).st_mode or 0
            except FileNotFoundError:
                return "absent"
            if stat.S_ISDIR(mode):
                return "dir"
            sftp.remove(path)
            return "file"

        if self._sftp_call(f"removing {path}", f"cannot remove {path}", kind) == "dir":
            run_command(self._link, ["rm", "-rf", "--", path]).check(self._target_name, f"removing {path}")

    def sha256(self, path: str) -> str:
        shown = path if not path.startswith("-") else "./" + path
        if self._sha256_argv is None:
            done = run_command(self._link, ["sha256sum", shown])
            if done.returncode != 127:
                self._sha256_argv = ["sha256sum"]
                return self._parse_digest(done, path)
            self._sha256_argv = [self._link.target.python, "-c", PY_SHA256]
        return self._parse_digest(run_command(self._link, [*self._sha256_argv, shown]), path)

    def sha256_many(self, paths: Sequence[str]) -> dict[str, str]:
        """Hashes of many files in ONE remote command (a device's login shell may cost
        100+ ms per exec, so hashing a pushed tree file by file is slow)."""
        if not paths:
            return {}
        shown = [p if not p.startswith("-") else "./" + p for p in paths]
        if self._sha256_argv is None:
            self.sha256(paths[0])  # settles sha256sum vs the python fallback
        argv = self._sha256_argv
        assert argv is not None, "settled by the sha256 above"
        done = run_command(self._link, [*argv, *shown])
        done.check(self._target_name, f"sha256 of {len(paths)} files")
        lines = done.stdout.decode("utf-8", "replace").splitlines()
        digests = [line.split()[0].lstrip("\\") if line.split() else "" for line in lines]
        if len(digests) != len(paths) or not all(re.fullmatch(r"[0-9a-f]{64}", d) for d in digests):
            raise TransportError(f"{self._target_name}: sha256 of {len(paths)} files: unexpected output "
                                 f"{done.stdout[:80]!r}")
        return dict(zip(paths, digests, strict=True))  # the lengths were compared above

    def _parse_digest(self, done: CommandResult, path: str) -> str:
        done.check(self._target_name, f"sha256 of {path}")
        words = done.stdout.decode("utf-8", "replace").split()
        digest = words[0].lstrip("\\") if words else ""
        if not re.fullmatch(r"[0-9a-f]{64}", digest):
            raise TransportError(f"{self._target_name}: sha256 of {path}: unexpected output {done.stdout[:80]!r}")
        return digest
