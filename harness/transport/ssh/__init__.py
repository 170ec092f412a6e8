"""The SSH transport: a remote target driven through one reused paramiko connection.

Mirrors `LocalTransport` (same methods, same errors) so the content cache, the agent client
and the device lock run unchanged over SSH (see also docs/targets.md). One concern a module,
each one's docstring says what it decided:

- `config`: where to connect: ssh_config and the target file resolved to an `Endpoint` with its
  jump hops (ProxyJump), and how a failure to reach one is worded;
- `known_hosts`: which host keys are trusted (OpenSSH's known_hosts, ``strict`` or ``accept-new``);
- `auth`: public-key login (key files, ssh-agent, ``~/.ssh/id_*``), never passwords;
- `connection`: the one connection per transport: TCP_NODELAY, keepalive and TCP_USER_TIMEOUT
  (a dead link noticed within KEEPALIVE_S + LINK_TIMEOUT_S), reconnects after
  RECONNECT_BACKOFF_S, and the remote processes a dead link left behind;
- `command`: the shell text sent, every word quoted, with the pid-reporting wrapper;
- `channel`: a session channel that reads ``exit-signal`` (a killed process reports -signal);
- `process`: a command on the device (`SSHProcess`): its output read by threads, killed on the device;
- `files`: SFTP transfers, the workdir, remote hashes;
- `transport`: `SSHTransport`, which puts them together.
"""

from harness.transport.ssh.config import Endpoint, resolve_endpoint
from harness.transport.ssh.connection import KEEPALIVE_S, LINK_TIMEOUT_S, RECONNECT_BACKOFF_S
from harness.transport.ssh.process import SSHProcess
from harness.transport.ssh.transport import SSHTransport

__all__ = ["KEEPALIVE_S", "LINK_TIMEOUT_S", "RECONNECT_BACKOFF_S", "Endpoint", "SSHProcess", "SSHTransport",
           "resolve_endpoint"]
