"""The local transport: the `local` target is this machine, driven through the same
interface as a remote device (subprocesses instead of SSH channels)."""

from __future__ import annotations

import collections
import errno
import io
import os
import queue
import shutil
import subprocess
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import IO, cast

from harness.errors import TransportError
from harness.transport.base import CommandResult, QueuedLines, sha256_file

MAX_LINE_BYTES = 64 << 20  # one protocol line (raw samples of a long run) may be large
STDERR_TAIL_BYTES = 16 << 10


class LocalProcess(QueuedLines):
    """A subprocess whose stdout lines are read by a thread into a queue, so reads can time out."""

    def __init__(self, argv: Sequence[str], cwd: str | None, env: Mapping[str, str], target: str = "local") -> None:
        self.target = target
        try:
            self._proc = subprocess.Popen(
                list(argv), cwd=cwd, env=dict(env), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                stderr=subprocess.PIPE, start_new_session=True)
        except OSError as exc:
            raise TransportError(f"{target}: cannot start {argv[0]}: {exc.strerror}") from None
        self._lines: queue.Queue = queue.Queue()
        self._stderr: collections.deque[bytes] = collections.deque()
        self._stderr_size = 0
        self._lock = threading.Lock()
        threading.Thread(target=self._pump_stdout, args=(self._proc.stdout,), daemon=True).start()
        self._stderr_thread = threading.Thread(target=self._pump_stderr, args=(self._proc.stderr,), daemon=True)
        self._stderr_thread.start()

    def _pump_stdout(self, stream: IO[bytes]) -> None:
        try:
            while True:
                line = stream.readline(MAX_LINE_BYTES + 1)
                if not line:
                    break
                if len(line) > MAX_LINE_BYTES and not line.endswith(b"\n"):
                    self._lines.put(TransportError(
                        f"{self.target}: a protocol line exceeded {MAX_LINE_BYTES >> 20} MiB"))
                    # drain the rest of this line without keeping it
                    while line and not line.endswith(b"\n"):
                        line = stream.readline(MAX_LINE_BYTES)
                    continue
                self._lines.put(line.rstrip(b"\n"))
        finally:
            self._lines.put(None)

    def _pump_stderr(self, stream: IO[bytes]) -> None:
        buffered = cast(io.BufferedReader, stream)  # Popen's pipes are buffered readers: read1 returns what is there
        for chunk in iter(lambda: buffered.read1(8192), b""):
            with self._lock:
                self._stderr.append(chunk)
                self._stderr_size += len(chunk)
                while self._stderr_size > STDERR_TAIL_BYTES and len(self._stderr) > 1:
                    self._stderr_size -= len(self._stderr.popleft())

    def send_stdin(self, data: bytes) -> None:
        assert self._proc.stdin is not None
        try:
            self._proc.stdin.write(data)
            self._proc.stdin.close()
        except BrokenPipeError:
            pass  # the process died early; its exit status and stderr tell why

    def stderr_tail(self) -> str:
        self._stderr_thread.join(timeout=1.0)
        with self._lock:
            return b"".join(self._stderr).decode("utf-8", "replace")

    def wait(self, timeout: float) -> int:
        try:
            return self._proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            raise TimeoutError from None

    def kill(self) -> None:
        if self._proc.poll() is None:
            try:
                os.killpg(self._proc.pid, 9)  # the whole session: no orphaned runtime threads
            except ProcessLookupError:
                pass
        self._proc.wait()


class LocalTransport:
    """Runs on this machine. `workdir` is an absolute local directory."""

    def __init__(self, target_name: str, workdir: str) -> None:
        self.target_name = target_name
        self.workdir = str(Path(workdir).resolve())
        Path(self.workdir).mkdir(parents=True, exist_ok=True)
        self.bytes_sent = 0

    def _env(self, env: Mapping[str, str] | None) -> dict[str, str]:
        merged = dict(os.environ)
        merged.update(env or {})
        return merged

    def run(self, argv: Sequence[str], *, cwd: str | None = None, env: Mapping[str, str] | None = None,
            timeout: float = 60.0) -> CommandResult:
        try:
            done = subprocess.run(list(argv), cwd=cwd, env=self._env(env), capture_output=True,
                                  timeout=timeout, stdin=subprocess.DEVNULL)
        except FileNotFoundError:
            return CommandResult(tuple(argv), 127, b"", f"{argv[0]}: not found".encode())
        except subprocess.TimeoutExpired:
            raise TransportError(f"{self.target_name}: {argv[0]} timed out after {timeout:.0f}s") from None
        return CommandResult(tuple(argv), done.returncode, done.stdout, done.stderr)

    def start(self, argv: Sequence[str], *, cwd: str | None = None,
              env: Mapping[str, str] | None = None) -> LocalProcess:
        return LocalProcess(argv, cwd, self._env(env), self.target_name)

    def exists(self, path: str) -> bool:
        return os.path.exists(path)

    def makedirs(self, path: str) -> None:
        try:
            os.makedirs(path, exist_ok=True)
        except OSError as exc:
            raise TransportError(f"{self.target_name}: cannot create {path}: {exc.strerror}") from None

    def upload(self, local: Path, remote: str) -> int:
        try:
            shutil.copyfile(local, remote)
        except OSError as exc:
            if exc.errno == errno.ENOSPC:
                raise TransportError(f"{self.target_name}: no space left on {self.target_name}:{remote}: free space "
                                     "in the target's workdir") from None
            raise TransportError(f"{self.target_name}: cannot copy {local} to {remote}: {exc.strerror}") from None
        size = os.path.getsize(remote)
        self.bytes_sent += size
        return size

    def write_bytes(self, remote: str, data: bytes) -> None:
        Path(remote).write_bytes(data)

    def remote_sha256(self, path: str) -> str:
        return sha256_file(Path(path))

    def remote_sha256_many(self, paths: Sequence[str]) -> dict[str, str]:
        return {path: sha256_file(Path(path)) for path in paths}

    def rename(self, source: str, destination: str) -> None:
        try:
            os.rename(source, destination)
        except OSError as exc:
            raise TransportError(f"{self.target_name}: cannot rename {source}: {exc.strerror}") from None

    def remove(self, path: str) -> None:
        if os.path.isdir(path):
            shutil.rmtree(path, ignore_errors=True)
        elif os.path.exists(path):
            os.remove(path)

    def close(self) -> None:
        pass


__all__ = ["LocalProcess", "LocalTransport"]
