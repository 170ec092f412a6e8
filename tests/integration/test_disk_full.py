"""A device whose work dir is full: a clear "no space left on <target>:<path>" error and a
cache that is not poisoned, over the local transport and over SSH (a real tmpfs)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from helpers.loopback_sshd import LoopbackSshd

from harness.errors import TransportError
from harness.transport.base import ContentCache
from harness.transport.local import LocalTransport


@pytest.fixture
def small_disk(tmp_path: Path):
    mount = tmp_path / "disk"
    mount.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mount)], check=True)
    yield mount
    subprocess.run(["umount", "-l", str(mount)], check=False)


def _big_file(tmp_path: Path) -> Path:
    model = tmp_path / "model.pdiparams"
    model.write_bytes(b"\x01" * (3 * 2**20))
    return model


def _cache_files(workdir: Path) -> list[Path]:
    return [p for p in (workdir / "cache").rglob("*") if p.is_file()] if (workdir / "cache").exists() else []


def test_local_disk_full_is_named_and_leaves_no_partial_file(tmp_path: Path, small_disk: Path) -> None:
    cache = ContentCache(LocalTransport("box", str(small_disk / "work")))
    with pytest.raises(TransportError) as failure:
        cache.push_file(_big_file(tmp_path))
    assert str(failure.value).startswith("box: no space left on box:") and str(small_disk) in str(failure.value)
    assert _cache_files(small_disk / "work") == []


def test_ssh_disk_full_is_named_and_leaves_no_partial_file(tmp_path: Path, small_disk: Path) -> None:
    lab = LoopbackSshd(tmp_path / "lab")
    try:
        transport = lab.transport(lab.target(workdir=str(small_disk / "work")))
        cache = ContentCache(transport)
        with pytest.raises(TransportError) as failure:
            cache.push_file(_big_file(tmp_path))
        message = str(failure.value)
        assert "no space left on board:" in message and "MiB free" in message, message
        assert _cache_files(small_disk / "work") == []
        small = tmp_path / "small.bin"
        small.write_bytes(b"fits")
        assert cache.push_file(small).startswith(str(small_disk / "work" / "cache"))  # the cache still works
        transport.close()
    finally:
        lab.stop()
