"""The connection to one target: opened on first use, reused, watched, and reopened after it broke.

- One connection per transport, opened on first use and reused: TCP_NODELAY on the socket
  (an exec goes from ~45 ms to ~3 ms on loopback).
- A dead link is detected within a bound, not after the kernel's ~15 min of retransmits:
  an SSH keepalive goes out after ``connection.keepalive`` (default KEEPALIVE_S, 5 s) without
  traffic from the host, and the socket's TCP_USER_TIMEOUT (``connection.link_timeout``,
  default LINK_TIMEOUT_S, 15 s) drops the connection once anything sent stays unacknowledged
  that long. A link that goes silent is therefore noticed within about keepalive +
  link_timeout (20 s by default); what was running on it fails with "connection lost to
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

import datetime
import errno
import shlex
import socket
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import paramiko

from harness.config.targets import DEFAULT_KEEPALIVE_S, DEFAULT_LINK_TIMEOUT_S, Target
from harness.errors import ConnectionLost, TransportError, Unreachable
from harness.transport.ssh.auth import authenticate
from harness.transport.ssh.channel import ExitSignalTransport
from harness.transport.ssh.command import kill_argv
from harness.transport.ssh.config import Endpoint, load_ssh_config, resolve_endpoint, unreachable
from harness.transport.ssh.known_hosts import KnownHosts, prefer_known_key_types

Progress = Callable[[str], None]

KEEPALIVE_S = DEFAULT_KEEPALIVE_S  # the defaults of connection.keepalive / connection.link_timeout
LINK_TIMEOUT_S = DEFAULT_LINK_TIMEOUT_S
SFTP_REPLY_TIMEOUT_S = 120.0
RECONNECT_BACKOFF_S = (0.5, 1.0, 2.0)
KILL_WAIT_S = 5.0
DEBUG_LOG_LINES = 50

# what paramiko raises when the link (or the device's answer) fails
LINK_ERRORS = (paramiko.SSHException, EOFError, OSError)

T = TypeVar("T")


class Connection:
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


def error_reason(exc: BaseException) -> str:
    """What went wrong, in the words a user reads after "<target>: cannot ...: "."""
    if isinstance(exc, OSError) and exc.errno is not None and exc.strerror:
        return exc.strerror
    if isinstance(exc, OSError) and exc.errno in (errno.ENOENT,):
        return "no such file"
    return str(exc) or type(exc).__name__


class SSHLink:
    """One target's connection, shared by everything its transport runs.

    `on_open` runs on each new connection (under the connection lock, after orphans were
    killed): the transport prepares its workdir there. `debug_log` keeps the last
    DEBUG_LOG_LINES things worth knowing after a failure (reconnects, failed kills)."""

    def __init__(self, target: Target, *, ssh_config_path: Path | None, known_hosts_path: Path | None,
                 progress: Progress | None, on_open: Callable[[Connection], None]) -> None:
        self.target = target
        self.target_name = target.name
        self.progress = progress  # one-line news for the user (reconnect attempts); None: debug log only
        self.connects = 0  # how many connections were opened (1 unless one broke)
        self.debug_log: list[str] = []
        self.closing = False  # close() was called: streams that end now were not lost
        self._config_path = ssh_config_path
        self._known_hosts = KnownHosts(target, known_hosts_path, self.debug)
        self._on_open = on_open
        self._endpoint: Endpoint | None = None
        self._connection: Connection | None = None
        self._lock = threading.RLock()
        self._broken = False
        # (remote pid, leads a group, its start time) cut off with a dead link
        self._orphans: list[tuple[int, bool, str | None]] = []

    @property
    def endpoint(self) -> Endpoint:
        if self._endpoint is None:
            self._endpoint = resolve_endpoint(self.target, load_ssh_config(self._config_path))
        return self._endpoint

    def debug(self, message: str) -> None:
        self.debug_log.append(f"{datetime.datetime.now():%H:%M:%S.%f}"[:-3] + f" {message}")
        del self.debug_log[:-DEBUG_LOG_LINES]

    def tell(self, message: str) -> None:
        self.debug(message)
        if self.progress is not None:
            self.progress(message)

    def connection_lost(self, phase: str, reason: str = "") -> ConnectionLost:
        return ConnectionLost(self.target_name, phase, reason)

    def leave_orphan(self, pid: int, group: bool, start: str | None = None) -> None:
        """A remote process that could not be killed (its link is gone): the next connection
        kills it, if that pid still has this start time (see command.kill_argv)."""
        self._orphans.append((pid, group, start))

    def connected(self) -> Connection:
        """The live connection, opened now if needed (one that broke: with the backoff series)."""
        with self._lock:
            current = self._connection
            if current is not None and current.active():
                return current
            if current is not None:
                self.debug("connection found dead")
                current.close()
                self._connection = None
                self._broken = True
            self.closing = False
            connection = self._reconnect() if self._broken else self._open()
            self._connection = connection
            self._broken = False
            self.connects += 1
            self._kill_orphans(connection)
            self._on_open(connection)
            return connection

    def with_connection(self, what: str, operation: Callable[[Connection], T], *, retry: bool = True) -> T:
        """Run `operation` on the connection; a link that turns out dead is reopened once."""
        for attempt in range(2):
            connection = self.connected()
            try:
                return operation(connection)
            except TransportError:
                raise
            except LINK_ERRORS as exc:
                if connection.active():
                    raise  # a real error from the device (e.g. no such file): the caller words it
                self._drop(connection)
                if attempt == 1 or not retry:
                    raise self.connection_lost(what, error_reason(exc)) from None
        raise AssertionError("unreachable")

    def close(self) -> None:
        with self._lock:
            self.closing = True
            if self._connection is not None:
                self._connection.close()
                self._connection = None

    def _reconnect(self) -> Connection:
        """Open the connection again after it broke: RECONNECT_BACKOFF_S between attempts (an
        sshd restarting, a link flapping), each attempt told to the user, then one line."""
        attempts = len(RECONNECT_BACKOFF_S)
        started = time.monotonic()
        failure: Unreachable | None = None
        for number, delay in enumerate(RECONNECT_BACKOFF_S, 1):
            self.tell(f"{self.target_name}: connection lost; reconnecting in {delay:g}s (attempt {number}/{attempts})")
            time.sleep(delay)
            try:
                connection = self._open()
            except Unreachable as exc:
                failure = exc
                continue
            self.tell(f"{self.target_name}: reconnected (attempt {number}/{attempts})")
            return connection
        self._broken = False  # the series is spent: later calls try once, without waiting
        assert failure is not None
        raise Unreachable(f"{failure}; gave up after {attempts} reconnect attempts in "
                          f"{time.monotonic() - started:.1f}s")

    def _kill_orphans(self, connection: Connection) -> None:
        """Kill (best effort) what ran on a connection that died: an agent or a lock helper
        the device's sshd has not noticed is orphaned would otherwise run on (and hold the
        device lock) until the device's own TCP gives up on the dead link."""
        orphans, self._orphans = self._orphans, []
        for pid, group, start in orphans:
            argv = kill_argv(pid, group, start)
            try:
                channel = connection.transport.open_session(timeout=self.target.connection.connect_timeout_s)
                channel.exec_command(shlex.join(argv) + " 2>/dev/null")
                channel.status_event.wait(KILL_WAIT_S)
                channel.close()
                self.debug(f"killed remote pid {pid} left by the lost connection")
            except LINK_ERRORS as exc:
                self.debug(f"kill of remote pid {pid} left by the lost connection failed: {exc}")

    def _drop(self, connection: Connection) -> None:
        with self._lock:
            if self._connection is connection:
                connection.close()
                self._connection = None
                self._broken = True

    def _open(self) -> Connection:
        endpoint = self.endpoint
        hops: list[paramiko.Transport] = []
        try:
            for hop in (*endpoint.jumps, endpoint):
                hops.append(self._open_hop(hop, hops[-1] if hops else None, endpoint))
        except BaseException:
            for hop_transport in reversed(hops):
                hop_transport.close()
            raise
        return Connection(hops)

    def _open_hop(self, hop: Endpoint, via: paramiko.Transport | None, final: Endpoint) -> paramiko.Transport:
        timeout = self.target.connection.connect_timeout_s
        sock = self._open_socket(hop, via, final, timeout)
        transport = ExitSignalTransport(sock)
        transport.banner_timeout = timeout
        transport.handshake_timeout = timeout
        transport.auth_timeout = timeout
        try:
            known = self._known_hosts.keys_for(hop)
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
            # with the socket's TCP_USER_TIMEOUT (link_timeout): a dead link is noticed
            transport.set_keepalive(round(self.target.connection.keepalive_s))
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
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_USER_TIMEOUT,
                            max(1, round(self.target.connection.link_timeout_s * 1000)))
        return sock
