"""The callback every lab step reports through: one human-readable line at a time."""

from __future__ import annotations

from collections.abc import Callable

Progress = Callable[[str], None]
"""Receives each progress line (`print` by default; tests collect the lines)."""

__all__ = ["Progress"]
