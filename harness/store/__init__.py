"""Results storage behind one interface, chosen by URL.

    .harness/results.sqlite, sqlite:///relative/path, sqlite:////absolute/path   SQLite (default)
    postgresql://USER@HOST:PORT/DBNAME (or postgres://...)                       PostgreSQL (a lab)

Both backends hold the same schema (harness.store.schema) and give the same records back.
"""

from __future__ import annotations

from pathlib import Path

from harness.errors import StoreError
from harness.store.base import Store
from harness.store.postgres import SCHEMES as POSTGRES_SCHEMES
from harness.store.postgres import PostgresStore, redact_url
from harness.store.sqlite import SQLiteStore

DEFAULT_STORE = Path(".harness") / "results.sqlite"
SUPPORTED = "a file path, sqlite:///PATH, or postgresql://USER@HOST:PORT/DBNAME"


def open_store(url: str | Path, *, migrate: bool = False) -> Store:
    """Open (creating if needed) the store at `url`.

    A store whose schema is older than this harness's is refused with a message naming
    `harness store migrate`, unless `migrate` is set: then it is brought up to date first.
    """
    text = str(url)
    if text.startswith("sqlite:///"):
        return SQLiteStore(Path(text[len("sqlite:///"):]), migrate=migrate)
    if text.startswith("sqlite://"):
        raise StoreError(f"--store {text}: write sqlite:///RELATIVE or sqlite:////ABSOLUTE path")
    if "://" in text:
        scheme = text.split("://", 1)[0]
        if scheme.lower() in POSTGRES_SCHEMES:
            return PostgresStore(text, migrate=migrate)
        raise StoreError(f"--store {redact_url(text)}: store backend '{scheme}' is not supported "
                         f"(supported: {SUPPORTED})")
    return SQLiteStore(Path(text), migrate=migrate)


__all__ = ["DEFAULT_STORE", "PostgresStore", "SQLiteStore", "Store", "open_store", "redact_url"]
