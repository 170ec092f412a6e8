"""Results storage behind one interface, chosen by URL: a path or ``sqlite:///path``."""

from __future__ import annotations

from pathlib import Path

from ..errors import StoreError
from .base import Store
from .sqlite import SQLiteStore

DEFAULT_STORE = Path(".harness") / "results.sqlite"


def open_store(url: str | Path) -> Store:
    """Open (creating if needed) the store at `url`."""
    text = str(url)
    if text.startswith("sqlite:///"):
        return SQLiteStore(Path(text[len("sqlite:///"):]))
    if text.startswith("sqlite://"):
        raise StoreError(f"--store {text}: write sqlite:///RELATIVE or sqlite:////ABSOLUTE path")
    if "://" in text:
        scheme = text.split("://", 1)[0]
        raise StoreError(f"--store {text}: store backend '{scheme}' is not supported by this version "
                         "(supported: a file path or sqlite:///path)")
    return SQLiteStore(Path(text))


__all__ = ["DEFAULT_STORE", "Store", "SQLiteStore", "open_store"]
