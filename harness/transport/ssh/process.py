"""A command on the device: started on an exec channel, read by threads, killed on the device.

stdout is split into lines by a reader thread (or collected whole for `run`), the stderr tail
is kept, and the remote pid is read from the wrapper's first stderr line (see `command`), so
`kill()` ends the process tree ON THE DEVICE with a separate ``kill -KILL -PGID``. A process
whose link is gone cannot be killed over it: the link remembers its pid for the next
connection. A process killed by a signal reports ``-signal`` from `wait()`.
"""

from __future__ import annotations

import collections
import queue
import signal
import threading
import time
from collections.abc import Mapping, Sequence

import paramiko

from harness.errors import TransportError
from harness.transport.base import CommandResult, QueuedLines
from harness.transport.local import MAX_LINE_BYTES, STDERR_TAIL_BYTES
from harness.transport.ssh.channel import ExitSignalChannel, channel_alive
from harness.transport.ssh.command import PID_MARKER, describe_command, kill_argv, shell_command
from harness.transport.ssh.connection import KILL_WAIT_S, LINK_ERRORS, Connection, SSHLink

PID_WAIT_S = 2.0
PID_SEARCH_BYTES = 64 << 10
RECV_BYTES = 1 << 16


class SSHProcess(QueuedLines):
    """A command on the device: stdout split into lines by a reader thread (or collected
    whole for `run`), the stderr tail kept, and the remote pid read from the wrapper's first
    stderr line so `kill()` can end the process tree on the device."""

    def __init__(self, link: SSHLink, channel: paramiko.Channel, what: str, *, collect: bool = False,
                 stderr_limit: int | None = STDERR_TAIL_BYTES) -> None:
        self._link = link
        self._channel = channel
        self.what = what
        self._remote_pid: int | None = None
        self._remote_group = False
        self._remote_start: str | None = None  # the start time /proc/PID/stat gave (clock ticks after boot)
        self._pid_known = threading.Event()
        self._killed = False
        self._collect = collect
        self._stdout_chunks: list[bytes] = []
        self._lines: queue.Queue = queue.Queue()
        self._stderr: collections.deque[bytes] = collections.deque()
        self._stderr_size = 0
        self._stderr_limit = stderr_limit
        self._lock = threading.Lock()
        self._stdout_thread = threading.Thread(target=self._pump_stdout, daemon=True)
        self._stderr_thread = threading.Thread(target=self._pump_stderr, daemon=True)
        self._stdout_thread.start()
        self._stderr_thread.start()

    @property
    def remote_pid(self) -> int | None:
        """The process's pid on the device (waits briefly for the wrapper's report: stdout
        and stderr arrive on separate streams); None if it never came."""
        self._pid_known.wait(PID_WAIT_S)
        return self._remote_pid

    @property
    def remote_group(self) -> bool:
        """Whether the process leads its own process group on the device."""
        self._pid_known.wait(PID_WAIT_S)
        return self._remote_group

    # reader threads
    def _lost(self) -> bool:
        """True when the stream ended because the connection broke (no EOF from the device)."""
        return not self._channel.eof_received and not self._killed and not self._link.closing

    def _pump_stdout(self) -> None:
        pending = bytearray()
        scanned = 0
        discarding = False
        try:
            while True:
                chunk = self._channel.recv(RECV_BYTES)
                if not chunk:
                    break
                if self._collect:
                    self._stdout_chunks.append(chunk)
                    continue
                pending += chunk
                while True:
                    newline = pending.find(b"\n", scanned)
                    if newline < 0:
                        scanned = len(pending)
                        if len(pending) > MAX_LINE_BYTES and not discarding:
                            self._lines.put(self._too_long())
                            discarding = True
                        if discarding:
                            pending.clear()
                            scanned = 0
                        break
                    if newline > MAX_LINE_BYTES and not discarding:
                        self._lines.put(self._too_long())
                    elif not discarding:
                        self._lines.put(bytes(pending[:newline]))
                    discarding = False
                    del pending[:newline + 1]
                    scanned = 0
            if pending and not discarding and not self._collect:
                self._lines.put(bytes(pending))
        except Exception as exc:  # paramiko raises socket/SSH errors when the link dies
            if not self._lost():
                self._link.debug(f"stdout reader ended: {exc}")
        finally:
            if self._lost():
                self._lines.put(self._link.connection_lost(self.what))
            self._lines.put(None)

    def _too_long(self) -> TransportError:
        return TransportError(f"{self._link.target_name}: a protocol line exceeded {MAX_LINE_BYTES >> 20} MiB")

    def _pump_stderr(self) -> None:
        head = bytearray()  # stderr before the wrapper's pid line (login scripts may print)
        try:
            while True:
                chunk = self._channel.recv_stderr(RECV_BYTES)
                if not chunk:
                    break
                if not self._pid_known.is_set():
                    head += chunk
                    chunk = self._take_pid_line(head)
                    if not chunk:
                        continue
                self._keep_stderr(chunk)
        except Exception:
            pass
        finally:
            if head:
                self._keep_stderr(bytes(head))
            self._pid_known.set()

    def _take_pid_line(self, head: bytearray) -> bytes:
        """Find the wrapper's `harness-pid PID [group]` line in the stderr seen so far.

        Returns the stderr to keep once the line is found (everything but that line), or b""
        while still looking. Past PID_SEARCH_BYTES without it, give up: all of it is stderr
        (the shell failed before the wrapper ran, or no wrapper was used)."""
        start = 0
        while True:
            newline = head.find(b"\n", start)
            if newline < 0:
                break
            line = bytes(head[start:newline])
            if line.startswith(PID_MARKER):
                fields = line[len(PID_MARKER):].split()
                if fields and fields[0].isdigit():
                    self._remote_pid = int(fields[0])
                    self._remote_group = fields[1:2] == [b"group"]
                    starts = [f[len(b"start="):].decode() for f in fields[1:] if f.startswith(b"start=")]
                    self._remote_start = starts[0] if starts and starts[0].isdigit() else None
                    kept = bytes(head[:start] + head[newline + 1:])
                    head.clear()
                    self._pid_known.set()
                    return kept
            start = newline + 1
        if len(head) > PID_SEARCH_BYTES:
            kept = bytes(head)
            head.clear()
            self._pid_known.set()
            return kept
        return b""

    def _keep_stderr(self, chunk: bytes) -> None:
        with self._lock:
            self._stderr.append(chunk)
            self._stderr_size += len(chunk)
            if self._stderr_limit is not None:
                while self._stderr_size > self._stderr_limit and len(self._stderr) > 1:
                    self._stderr_size -= len(self._stderr.popleft())

    # RemoteProcess
    def send_stdin(self, data: bytes) -> None:
        try:
            if data:
                self._channel.sendall(data)
            self._channel.shutdown_write()
        except (OSError, EOFError, paramiko.SSHException):
            pass  # the process (or the link) died early: wait() and read_line() tell which

    def stderr_tail(self) -> str:
        return self.stderr_bytes().decode("utf-8", "replace")

    def stderr_bytes(self) -> bytes:
        self._stderr_thread.join(timeout=1.0)
        with self._lock:
            return b"".join(self._stderr)

    def stdout_bytes(self) -> bytes:
        """Everything the process wrote to stdout (only for `collect=True`)."""
        self._stdout_thread.join(timeout=5.0)
        return b"".join(self._stdout_chunks)

    def wait(self, timeout: float) -> int:
        if not self._channel.status_event.wait(timeout):
            raise TimeoutError
        if not getattr(self._channel, "got_status", False):
            if self._killed:
                return -signal.SIGKILL
            if not channel_alive(self._channel) and not self._link.closing:
                raise self._link.connection_lost(self.what)
        return self._channel.exit_status

    def running(self) -> bool:
        return not self._channel.status_event.is_set()

    def kill(self) -> None:
        """Kill the process (its whole group when it leads one) ON THE DEVICE, then close."""
        if self._channel.status_event.is_set() and getattr(self._channel, "got_status", False):
            self._close()
            return
        pid, group, start = self.remote_pid, self.remote_group, self._remote_start
        self._killed = True
        if not channel_alive(self._channel):
            # the link is gone: no command can reach the device now; the next connection kills it
            if pid is not None and pid > 1:
                self._link.leave_orphan(pid, group, start)
            self._close()
            return
        started = time.monotonic()
        if pid is not None and pid > 1:
            try:
                run_unwrapped(self._link, kill_argv(pid, group, start), KILL_WAIT_S)
            except TransportError as exc:  # best effort: the original error is what matters
                self._link.debug(f"kill of remote pid {pid} failed: {exc}")
        else:
            self._link.debug(f"{self.what}: no remote pid reported, so nothing to kill on the device")
        ended = self._channel.status_event.wait(KILL_WAIT_S)
        self._link.debug(f"killed {self.what} (remote pid {pid}{' and its group' if group else ''}): "
                         + (f"its exit seen after {time.monotonic() - started:.2f}s" if ended else
                            f"no exit status within {time.monotonic() - started:.1f}s"))
        self._close()

    def _close(self) -> None:
        try:
            self._channel.close()
        except Exception:
            pass


def launch(link: SSHLink, argv: Sequence[str], cwd: str | None, env: Mapping[str, str] | None, *,
           wrap: bool = True, collect: bool = False, stderr_limit: int | None = STDERR_TAIL_BYTES) -> SSHProcess:
    """Start `argv` on its own exec channel (`wrap`: through the pid wrapper, so it can be killed)."""
    command = shell_command(link.target_name, argv, cwd, env, wrap)
    what = describe_command(argv)

    def open_and_exec(connection: Connection) -> SSHProcess:
        channel = connection.transport.open_session(timeout=link.target.connection.connect_timeout_s)
        channel.__class__ = ExitSignalChannel
        try:
            channel.exec_command(command)
        except LINK_ERRORS:
            channel.close()
            raise
        return SSHProcess(link, channel, what, collect=collect, stderr_limit=stderr_limit)

    return link.with_connection(f"start of {what}", open_and_exec)


def run_command(link: SSHLink, argv: Sequence[str], *, cwd: str | None = None, env: Mapping[str, str] | None = None,
                timeout: float = 60.0) -> CommandResult:
    """Run `argv` to completion with empty stdin; past `timeout` it is killed on the device."""
    return _run_to_completion(link, argv, cwd, env, timeout, wrap=True)


def run_unwrapped(link: SSHLink, argv: Sequence[str], timeout: float) -> CommandResult:
    """A command without the pid wrapper (used to kill: it must not need killing)."""
    return _run_to_completion(link, argv, None, None, timeout, wrap=False)


def _run_to_completion(link: SSHLink, argv: Sequence[str], cwd: str | None, env: Mapping[str, str] | None,
                       timeout: float, *, wrap: bool) -> CommandResult:
    process = launch(link, argv, cwd, env, wrap=wrap, collect=True, stderr_limit=None)
    process.send_stdin(b"")
    try:
        code = process.wait(timeout)
    except TimeoutError:
        if wrap:
            process.kill()
        else:
            process._close()  # nothing to kill it with: it is the kill
        raise TransportError(f"{link.target_name}: {argv[0]} timed out after {timeout:.0f}s") from None
    return CommandResult(tuple(argv), code, process.stdout_bytes(), process.stderr_bytes())
