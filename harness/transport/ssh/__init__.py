"""The SSH transport: a remote target driven through one reused paramiko connection.

`SSHTransport` mirrors `LocalTransport` (same methods, same errors) so the content cache, the
agent client and the device lock run unchanged over SSH (see also docs/targets.md).
"""

from harness.transport.ssh.config import Endpoint, resolve_endpoint
from harness.transport.ssh.transport import (
    KEEPALIVE_S,
    LINK_TIMEOUT_S,
    RECONNECT_BACKOFF_S,
    SSHProcess,
    SSHTransport,
)

__all__ = ["KEEPALIVE_S", "LINK_TIMEOUT_S", "RECONNECT_BACKOFF_S", "Endpoint", "SSHProcess", "SSHTransport",
           "resolve_endpoint"]
