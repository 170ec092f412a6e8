"""The arm64 root filesystem builder's pieces that need no debootstrap run (that one is in
tests/integration/test_arm_device.py): cache keys and the progress it passes on."""

from __future__ import annotations

import sys
from dataclasses import replace

from harness.lab.rootfs import ARM64_BOOKWORM, _stream


def test_cache_key_follows_what_is_built_not_where_from() -> None:
    assert ARM64_BOOKWORM.dirname.startswith("debian-bookworm-arm64-")
    assert replace(ARM64_BOOKWORM, mirror="http://mirror.example/debian").key() == ARM64_BOOKWORM.key()
    assert replace(ARM64_BOOKWORM, include=("python3",)).key() != ARM64_BOOKWORM.key()
    assert ARM64_BOOKWORM.qemu_handler == "qemu-aarch64"


def test_progress_says_each_phase_once_not_every_package() -> None:
    script = ("for n in range(200): print('I: Retrieving pkg%d' % n); print('I: Validating pkg%d' % n)\n"
              "for n in range(200): print('I: Configuring pkg%d...' % n)\n"
              "print('I: Base system installed successfully.')")
    said: list[str] = []
    finished = _stream([sys.executable, "-c", script], said.append, started=0.0)
    assert finished.returncode == 0
    assert len(said) <= 6, said  # Retrieving, Configuring, Base: not 601 lines
    assert any("Retrieving pkg0" in line for line in said) and any("Configuring pkg0" in line for line in said)
    assert finished.lines[-1] == "I: Base system installed successfully."
