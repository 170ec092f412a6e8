"""How the lab reports: the callback every step writes its lines to, and the sizes in them."""

from __future__ import annotations

from collections.abc import Callable

Progress = Callable[[str], None]
"""Receives each progress line (`print` by default; tests collect the lines)."""


def format_size(n: int) -> str:
    """A byte count as the lab's lines show it: ``256 MiB``, ``1.5 GiB``, ``512 B``."""
    for unit, factor in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= factor:
            return f"{n / factor:.3g} {unit}"
    return f"{n} B"


__all__ = ["Progress", "format_size"]
