"""Transports that break on purpose, for tests of what the harness does about it."""

from __future__ import annotations

from pathlib import Path

from harness.transport.ssh import SSHTransport


class CorruptingTransport(SSHTransport):
    """A link that damages the upload: one byte of the file on the device is flipped after it
    arrived (the device's home is visible to root on the host, as a lab device's is)."""

    def upload(self, local: Path, remote: str) -> int:
        sent = super().upload(local, remote)
        data = bytearray(Path(remote).read_bytes())
        data[len(data) // 2] ^= 0xFF
        Path(remote).write_bytes(bytes(data))
        return sent
