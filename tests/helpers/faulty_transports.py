"""Transports that break on purpose, for tests of what the harness does about it."""

from __future__ import annotations

from pathlib import Path

from harness.transport.local import LocalTransport
from harness.transport.ssh import SSHTransport


def flip_middle_byte(path: Path) -> None:
    """Damage a file the way a bad link or disk does: one byte flipped, size unchanged."""
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))


class CorruptingSSHTransport(SSHTransport):
    """A link that damages every upload: one byte of the file on the device is flipped after
    it arrived (the device's files are visible on this machine: a loopback sshd, or a lab
    device's home as root sees it)."""

    def upload(self, local: Path, remote: str) -> int:
        sent = super().upload(local, remote)
        flip_middle_byte(Path(remote))
        return sent


class CorruptingLocalTransport(LocalTransport):
    """The local transport with an upload that flips one byte of every file it copies."""

    def upload(self, local: Path, remote: str) -> int:
        size = super().upload(local, remote)
        flip_middle_byte(Path(remote))
        return size
