"""The SSH transport: a remote target driven through one reused paramiko connection.

Mirrors `LocalTransport` (same methods, same errors) so the content cache, the agent client
and the device lock run unchanged over SSH.

Decisions (see also docs/targets.md):

- One connection per transport, opened on first use and reused: TCP_NODELAY on the socket
  (an exec goes from ~45 ms to ~3 ms on loopback).
- A dead link is detected within a bound, not after the kernel's ~15 min of retransmits:
  an SSH keepalive goes out after KEEPALIVE_S without traffic from the host, and the socket's
  TCP_USER_TIMEOUT (LINK_TIMEOUT_S) drops the connection once anything sent stays
  unacknowledged that long. A link that goes silent is therefore noticed within about
  KEEPALIVE_S + LINK_TIMEOUT_S (20 s); what was running on it fails with "connection lost to
  <target> during <phase>". Through a jump host only the first hop's socket carries the
  timeout (the jump host's own TCP watches the leg behind it).
- A connection that broke is re-opened by the next call with a bounded retry: after
  RECONNECT_BACKOFF_S (0.5, 1, 2 s) each, each attempt told to the user through ``progress``,
  then one "unreachable" line naming the attempts. Only a refusal, a timeout or a drop is
  retried (a changed host key or a refused key is not). A first connection is tried once, so
  a device that refuses fails at once; once a retry series is spent, the next call again
  tries once (a device that stays down costs each later test one connect, not the series).
- A process whose connection broke cannot be killed over it; its remote pid is remembered and
  killed over the next connection that opens (nothing left running on the device).
"""

from __future__ import annotations

import collections
import errno
import posixpath
import queue
import re
import signal
import socket
import stat
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TypeVar

import paramiko

from harness.config.targets import Target
from harness.errors import ConnectionLost, TransportError, Unreachable
from harness.transport.base import CommandResult, QueuedLines
from harness.transport.local import MAX_LINE_BYTES, STDERR_TAIL_BYTES
from harness.transport.ssh.auth import authenticate
from harness.transport.ssh.channel import ExitSignalChannel, ExitSignalTransport, channel_alive
from harness.transport.ssh.command import PID_MARKER, describe_command, kill_argv, shell_command
from harness.transport.ssh.config import Endpoint, load_ssh_config, resolve_endpoint, unreachable
from harness.transport.ssh.known_hosts import KnownHosts, prefer_known_key_types

Progress = Callable[[str], None]

KEEPALIVE_S = 5
LINK_TIMEOUT_S = 15
SFTP_REPLY_TIMEOUT_S = 120.0
RECONNECT_BACKOFF_S = (0.5, 1.0, 2.0)
KILL_WAIT_S = 5.0
PID_WAIT_S = 2.0
PID_SEARCH_BYTES = 64 << 10
RECV_BYTES = 1 << 16

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


# --- a remote process ---------------------------------------------------------------------

class SSHProcess(QueuedLines):
    """A command on the device: stdout split into lines by a reader thread (or collected
    whole for `run`), the stderr tail kept, and the remote pid read from the wrapper's first
    stderr line so `kill()` can end the process tree on the device."""

    def __init__(self, owner: SSHTransport, channel: paramiko.Channel, what: str, *, collect: bool = False,
                 stderr_limit: int | None = STDERR_TAIL_BYTES) -> None:
        self._owner = owner
        self._channel = channel
        self.what = what
        self._remote_pid: int | None = None
        self._remote_group = False
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
        return not self._channel.eof_received and not self._killed and not self._owner._closing

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
                self._owner._debug(f"stdout reader ended: {exc}")
        finally:
            if self._lost():
                self._lines.put(self._owner._connection_lost(self.what))
            self._lines.put(None)

    def _too_long(self) -> TransportError:
        return TransportError(f"{self._owner.target_name}: a protocol line exceeded {MAX_LINE_BYTES >> 20} MiB")

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
            if not channel_alive(self._channel) and not self._owner._closing:
                raise self._owner._connection_lost(self.what)
        return self._channel.exit_status

    def running(self) -> bool:
        return not self._channel.status_event.is_set()

    def kill(self) -> None:
        """Kill the process (its whole group when it leads one) ON THE DEVICE, then close."""
        if self._channel.status_event.is_set() and getattr(self._channel, "got_status", False):
            self._close()
            return
        pid, group = self.remote_pid, self.remote_group
        self._killed = True
        if not channel_alive(self._channel):
            # the link is gone: no command can reach the device now; the next connection kills it
            if pid is not None and pid > 1:
                self._owner._orphans.append((pid, group))
            self._close()
            return
        if pid is not None and pid > 1:
            try:
                self._owner._exec_plain(kill_argv(pid, group), KILL_WAIT_S)
            except TransportError as exc:  # best effort: the original error is what matters
                self._owner._debug(f"kill of remote pid {pid} failed: {exc}")
        self._channel.status_event.wait(KILL_WAIT_S)
        self._close()

    def _close(self) -> None:
        try:
            self._channel.close()
        except Exception:
            pass


# --- the transport ------------------------------------------------------------------------

class _Connection:
    """The authenticated transports to the target (jump hops first) and a lazy SFTP client."""

    def __init__(self, hops: list[paramiko.Transport]) -> None:
        self.hops = hops
        self.transport = hops[-1]
        self._sftp: paramiko.SFTPClient | None = None

    def active(self) -> bool:
        return all(hop.is_active() for hop in self.hops)

    def sftp(self) -> paramiko.SFTPClient:
        if self._sftp is None:
            sftp = paramiko.SFTPClient.from_transport(self.transport)
            channel = sftp.get_channel() if sftp is not None else None
            if sftp is None or channel is None:  # paramiko's types allow None; a failed open raises instead
                raise paramiko.SSHException("no SFTP session channel")
            self._sftp = sftp
            channel.settimeout(SFTP_REPLY_TIMEOUT_S)  # a stalled link fails, never hangs
        return self._sftp

    def close(self) -> None:
        if self._sftp is not None:
            try:
                self._sftp.close()
            except Exception:
                pass
        for hop in reversed(self.hops):
            hop.close()


_LINK_ERRORS = (paramiko.SSHException, EOFError, OSError)


class SSHTransport:
    """Runs on a device over SSH. ``workdir`` is absolute on the device (a relative one in
    the target file is resolved against the login directory on first use)."""

    def __init__(self, target: Target, *, ssh_config_path: Path | None = None, known_hosts_path: Path | None = None,
                 progress: Progress | None = None) -> None:
        self.target = target
        self.progress = progress  # one-line news for the user (reconnect attempts); None: debug log only
        self.target_name = target.name
        self.bytes_sent = 0
        self.connects = 0  # how many connections were opened (1 unless one broke)
        self.debug_log: list[str] = []
        self._config_path = ssh_config_path
        self._known_hosts = KnownHosts(target, known_hosts_path, self._debug)
        self._endpoint: Endpoint | None = None
        self._connection: _Connection | None = None
        self._connect_lock = threading.RLock()
        self._sftp_lock = threading.RLock()
        self._workdir: str | None = target.workdir if target.workdir.startswith("/") else None
        self._workdir_ready = False
        self._sha256_argv: list[str] | None = None
        self._closing = False
        self._broken = False
        self._orphans: list[tuple[int, bool]] = []  # (remote pid, leads a group) cut off with a dead link

    # --- connection -----------------------------------------------------------------------
    @property
    def endpoint(self) -> Endpoint:
        if self._endpoint is None:
            self._endpoint = resolve_endpoint(self.target, load_ssh_config(self._config_path))
        return self._endpoint

    @property
    def workdir(self) -> str:
        if self._workdir is None:
            self._connected()
        assert self._workdir is not None
        return self._workdir

    def _debug(self, message: str) -> None:
        self.debug_log.append(message)
        del self.debug_log[:-50]

    def _tell(self, message: str) -> None:
        self._debug(message)
        if self.progress is not None:
            self.progress(message)

    def _connection_lost(self, phase: str, reason: str = "") -> ConnectionLost:
        return ConnectionLost(self.target_name, phase, reason)

    def _connected(self) -> _Connection:
        """The live connection, opened now if needed (one that broke: with the backoff series)."""
        with self._connect_lock:
            current = self._connection
            if current is not None and current.active():
                return current
            if current is not None:
                self._debug("connection found dead")
                current.close()
                self._connection = None
                self._broken = True
            self._closing = False
            connection = self._reconnect() if self._broken else self._open()
            self._connection = connection
            self._broken = False
            self.connects += 1
            self._kill_orphans(connection)
            self._prepare_workdir(connection)
            return connection

    def _reconnect(self) -> _Connection:
        """Open the connection again after it broke: RECONNECT_BACKOFF_S between attempts (an
        sshd restarting, a link flapping), each attempt told to the user, then one line."""
        attempts = len(RECONNECT_BACKOFF_S)
        started = time.monotonic()
        failure: Unreachable | None = None
        for number, delay in enumerate(RECONNECT_BACKOFF_S, 1):
            self._tell(f"{self.target_name}: connection lost; reconnecting in {delay:g}s (attempt {number}/{attempts})")
            time.sleep(delay)
            try:
                connection = self._open()
            except Unreachable as exc:
                failure = exc
                continue
            self._tell(f"{self.target_name}: reconnected (attempt {number}/{attempts})")
            return connection
        self._broken = False  # the series is spent: later calls try once, without waiting
        assert failure is not None
        raise Unreachable(f"{failure}; gave up after {attempts} reconnect attempts in "
                          f"{time.monotonic() - started:.1f}s")

    def _kill_orphans(self, connection: _Connection) -> None:
        """Kill (best effort) what ran on a connection that died: an agent or a lock helper
        the device's sshd has not noticed is orphaned would otherwise run on (and hold the
        device lock) until the device's own TCP gives up on the dead link."""
        orphans, self._orphans = self._orphans, []
        for pid, group in orphans:
            argv = kill_argv(pid, group)
            try:
                channel = connection.transport.open_session(timeout=self.target.connection.connect_timeout_s)
                channel.exec_command(" ".join(argv) + " 2>/dev/null")
                channel.status_event.wait(KILL_WAIT_S)
                channel.close()
                self._debug(f"killed remote pid {pid} left by the lost connection")
            except _LINK_ERRORS as exc:
                self._debug(f"kill of remote pid {pid} left by the lost connection failed: {exc}")

    def _drop(self, connection: _Connection) -> None:
        with self._connect_lock:
            if self._connection is connection:
                connection.close()
                self._connection = None
                self._broken = True

    def _open(self) -> _Connection:
        endpoint = self.endpoint
        hops: list[paramiko.Transport] = []
        try:
            for hop in (*endpoint.jumps, endpoint):
                hops.append(self._open_hop(hop, hops[-1] if hops else None, endpoint))
        except BaseException:
            for hop_transport in reversed(hops):
                hop_transport.close()
            raise
        return _Connection(hops)

    def _open_hop(self, hop: Endpoint, via: paramiko.Transport | None, final: Endpoint) -> paramiko.Transport:
        timeout = self.target.connection.connect_timeout_s
        sock = self._open_socket(hop, via, final, timeout)
        transport = ExitSignalTransport(sock)
        transport.banner_timeout = timeout
        transport.handshake_timeout = timeout
        transport.auth_timeout = timeout
        try:
            known = self._known_hosts.keys_for(hop.known_hosts_name)
            prefer_known_key_types(transport, [k for k in known if k.marker is None])
            try:
                transport.start_client(timeout=timeout)
                server_key = transport.get_remote_server_key()  # raises if the handshake timed out
            except (paramiko.SSHException, EOFError, OSError) as exc:
                reason = (str(exc) if str(exc) and str(exc) != "No existing session"
                          else f"no answer within {timeout:g}s")
                raise unreachable(self.target_name, hop, final, f"SSH handshake failed: {reason}; is this an SSH "
                                  "server? check connection.port, or raise connection.connect_timeout",
                                  transient=True) from None
            self._known_hosts.check(hop, server_key, known, via is not None)
            authenticate(transport, hop, final, self.target_name)
            transport.set_keepalive(KEEPALIVE_S)  # with LINK_TIMEOUT_S on the socket: a dead link is noticed
            return transport
        except BaseException:
            transport.close()
            raise

    def _open_socket(self, hop: Endpoint, via: paramiko.Transport | None, final: Endpoint,
                     timeout: float) -> socket.socket | paramiko.Channel:
        """A TCP connection to `hop`: directly, or forwarded by the jump host before it (`via`)."""
        name = self.target_name
        if via is not None:
            try:
                return via.open_channel("direct-tcpip", (hop.hostname, hop.port), ("127.0.0.1", 0), timeout=timeout)
            except paramiko.ChannelException as exc:
                hint = ("the jump host forbids forwarding (AllowTcpForwarding/PermitOpen in its sshd_config)"
                        if exc.code == 1 else "check host and port as seen from the jump host")
                raise unreachable(name, hop, final, f"the jump host could not connect: {exc.text}; {hint}",
                                  transient=True) from None
            except (paramiko.SSHException, EOFError, OSError) as exc:
                raise unreachable(name, hop, final, f"jump host connection failed: {exc}", transient=True) from None
        try:
            sock = socket.create_connection((hop.hostname, hop.port), timeout=timeout)
        except socket.gaierror as exc:
            raise unreachable(name, hop, final, f"cannot resolve host name {hop.hostname!r}: {exc.strerror}; check "
                              "connection.host (or HostName in ssh config) and DNS", transient=True) from None
        except ConnectionRefusedError:
            raise unreachable(name, hop, final, "connection refused: nothing listens on that port; check that "
                              "sshd runs on the device and connection.port", transient=True) from None
        except TimeoutError:
            raise unreachable(name, hop, final, f"no answer within {timeout:g}s: the device is off, on another "
                              "network or behind a firewall; raise connection.connect_timeout for a slow "
                              "link", transient=True) from None
        except OSError as exc:
            raise unreachable(name, hop, final, f"{exc.strerror or exc}; check the network path to the "
                              "device", transient=True) from None
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if hasattr(socket, "TCP_USER_TIMEOUT"):  # Linux: give up on data unacknowledged this long
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_USER_TIMEOUT, LINK_TIMEOUT_S * 1000)
        return sock

    def _prepare_workdir(self, connection: _Connection) -> None:
        if self._workdir_ready:
            return
        with self._sftp_lock:
            try:
                sftp = connection.sftp()
                if self._workdir is None:
                    home = sftp.normalize(".")
                    self._workdir = posixpath.normpath(posixpath.join(home, self.target.workdir))
                self._makedirs(sftp, self._workdir)
            except _LINK_ERRORS as exc:
                raise TransportError(f"{self.target_name}: cannot prepare workdir {self.target.workdir}: "
                                     f"{_reason(exc)}") from None
        self._workdir_ready = True

    def _with_connection(self, what: str, operation: Callable[[_Connection], T], *, retry: bool = True) -> T:
        """Run `operation` on the connection; a link that turns out dead is reopened once."""
        for attempt in range(2):
            connection = self._connected()
            try:
                return operation(connection)
            except TransportError:
                raise
            except _LINK_ERRORS as exc:
                if connection.active():
                    raise  # a real error from the device (e.g. no such file): the caller words it
                self._drop(connection)
                if attempt == 1 or not retry:
                    raise self._connection_lost(what, _reason(exc)) from None
        raise AssertionError("unreachable")

    # --- commands ---------------------------------------------------------------------------
    def _launch(self, argv: Sequence[str], cwd: str | None, env: Mapping[str, str] | None, *, wrap: bool = True,
                collect: bool = False, stderr_limit: int | None = STDERR_TAIL_BYTES) -> SSHProcess:
        command = shell_command(self.target_name, argv, cwd, env, wrap)
        what = describe_command(argv)

        def open_and_exec(connection: _Connection) -> SSHProcess:
            channel = connection.transport.open_session(timeout=self.target.connection.connect_timeout_s)
            channel.__class__ = ExitSignalChannel
            try:
                channel.exec_command(command)
            except _LINK_ERRORS:
                channel.close()
                raise
            return SSHProcess(self, channel, what, collect=collect, stderr_limit=stderr_limit)

        return self._with_connection(f"start of {what}", open_and_exec)

    def _exec_plain(self, argv: Sequence[str], timeout: float) -> CommandResult:
        """A command without the pid wrapper (used to kill: it must not need killing)."""
        process = self._launch(argv, None, None, wrap=False, collect=True, stderr_limit=None)
        process.send_stdin(b"")
        try:
            code = process.wait(timeout)
        except TimeoutError:
            process._close()
            raise TransportError(f"{self.target_name}: {argv[0]} timed out after {timeout:.0f}s") from None
        return CommandResult(tuple(argv), code, process.stdout_bytes(), process.stderr_bytes())

    def run(self, argv: Sequence[str], *, cwd: str | None = None, env: Mapping[str, str] | None = None,
            timeout: float = 60.0) -> CommandResult:
        process = self._launch(argv, cwd, env, collect=True, stderr_limit=None)
        process.send_stdin(b"")
        try:
            code = process.wait(timeout)
        except TimeoutError:
            process.kill()
            raise TransportError(f"{self.target_name}: {argv[0]} timed out after {timeout:.0f}s") from None
        return CommandResult(tuple(argv), code, process.stdout_bytes(), process.stderr_bytes())

    def start(self, argv: Sequence[str], *, cwd: str | None = None,
              env: Mapping[str, str] | None = None) -> SSHProcess:
        return self._launch(argv, cwd, env)

    # --- files ------------------------------------------------------------------------------
    def _sftp_call(self, what: str, failure: str, operation: Callable[[paramiko.SFTPClient], T], *,
                   retry: bool = True) -> T:
        """`operation` on the SFTP client; a device-side error becomes "<target>: <failure>: <why>"."""
        def on(connection: _Connection) -> T:
            with self._sftp_lock:
                return operation(connection.sftp())

        try:
            return self._with_connection(what, on, retry=retry)
        except TransportError:
            raise
        except (OSError, paramiko.SSHException) as exc:
            raise TransportError(f"{self.target_name}: {failure}: {_reason(exc)}") from None

    def exists(self, path: str) -> bool:
        def probe(sftp: paramiko.SFTPClient) -> bool:
            try:
                sftp.stat(path)
                return True
            except FileNotFoundError:
                return False

        return self._sftp_call(f"checking {path}", f"cannot check {path}", probe)

    def makedirs(self, path: str) -> None:
        self._sftp_call(f"creating {path}", f"cannot create {path}", lambda sftp: self._makedirs(sftp, path))

    def _makedirs(self, sftp: paramiko.SFTPClient, path: str) -> None:
        try:
            if stat.S_ISDIR(sftp.stat(path).st_mode or 0):
                return
            raise TransportError(f"{self.target_name}: cannot create {path}: a file is in the way")
        except FileNotFoundError:
            pass
        parent = posixpath.dirname(path.rstrip("/"))
        if parent and parent != path:
            self._makedirs(sftp, parent)
        try:
            sftp.mkdir(path)
        except OSError as exc:
            try:
                if stat.S_ISDIR(sftp.stat(path).st_mode or 0):
                    return  # someone else created it meanwhile
            except OSError:
                pass
            raise TransportError(f"{self.target_name}: cannot create {path}: {_reason(exc)}") from None

    def upload(self, local: Path, remote: str) -> int:
        local = Path(local)

        def put(sftp: paramiko.SFTPClient) -> int:
            return sftp.put(str(local), remote, confirm=True).st_size or 0

        try:
            size = self._sftp_call(f"upload of {local.name}", f"cannot copy {local} to {remote}", put)
        except TransportError as exc:
            # OpenSSH's sftp-server reports a full disk as a bare "Failure": ask df
            free = self._free_bytes(posixpath.dirname(remote))
            if free is not None and free < local.stat().st_size:
                raise TransportError(f"{self.target_name}: no space left on {self.target_name}:{remote} "
                                     f"({free / 2**20:.1f} MiB free, {local.stat().st_size / 2**20:.1f} MiB "
                                     "needed): free space in the target's workdir") from None
            raise exc
        self.bytes_sent += size
        return size

    def _free_bytes(self, directory: str) -> int | None:
        try:
            done = self.run(["df", "-Pk", directory], timeout=15)
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
        self.bytes_sent += len(data)

    def remote_sha256(self, path: str) -> str:
        shown = path if not path.startswith("-") else "./" + path
        if self._sha256_argv is None:
            done = self.run(["sha256sum", shown])
            if done.returncode != 127:
                self._sha256_argv = ["sha256sum"]
                return self._parse_digest(done, path)
            self._sha256_argv = [self.target.python, "-c", PY_SHA256]
        return self._parse_digest(self.run([*self._sha256_argv, shown]), path)

    def remote_sha256_many(self, paths: Sequence[str]) -> dict[str, str]:
        """Hashes of many files in ONE remote command (a device's login shell may cost
        100+ ms per exec, so hashing a pushed tree file by file is slow)."""
        if not paths:
            return {}
        shown = [p if not p.startswith("-") else "./" + p for p in paths]
        if self._sha256_argv is None:
            self.remote_sha256(paths[0])  # settles sha256sum vs the python fallback
        argv = self._sha256_argv
        assert argv is not None, "settled by the sha256 above"
        done = self.run([*argv, *shown])
        done.check(self.target_name, f"sha256 of {len(paths)} files")
        lines = done.stdout.decode("utf-8", "replace").splitlines()
        digests = [line.split()[0].lstrip("\\") if line.split() else "" for line in lines]
        if len(digests) != len(paths) or not all(re.fullmatch(r"[0-9a-f]{64}", d) for d in digests):
            raise TransportError(f"{self.target_name}: sha256 of {len(paths)} files: unexpected output "
                                 f"{done.stdout[:80]!r}")
        return dict(zip(paths, digests, strict=True))  # the lengths were compared above

    def _parse_digest(self, done: CommandResult, path: str) -> str:
        done.check(self.target_name, f"sha256 of {path}")
        words = done.stdout.decode("utf-8", "replace").split()
        digest = words[0].lstrip("\\") if words else ""
        if not re.fullmatch(r"[0-9a-f]{64}", digest):
            raise TransportError(f"{self.target_name}: sha256 of {path}: unexpected output {done.stdout[:80]!r}")
        return digest

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
            self.run(["rm", "-rf", "--", path]).check(self.target_name, f"removing {path}")

    def close(self) -> None:
        with self._connect_lock:
            self._closing = True
            if self._connection is not None:
                self._connection.close()
                self._connection = None


def _reason(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.errno is not None and exc.strerror:
        return exc.strerror
    if isinstance(exc, OSError) and exc.errno in (errno.ENOENT,):
        return "no such file"
    return str(exc) or type(exc).__name__
