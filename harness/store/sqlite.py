"""SQLite backend: the embedded default. WAL mode so a report can read while a run writes;
writers take the database lock for one short transaction each (BEGIN IMMEDIATE) and wait
up to BUSY_TIMEOUT_MS for it, so several processes on one machine can write at once."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from harness.errors import StoreError
from harness.store.schema import SQLITE
from harness.store.sql import SQLStore

BUSY_TIMEOUT_MS = 30_000


class SQLiteStore(SQLStore):
    dialect = SQLITE
    backend = "sqlite"
    elsewhere = "another file"
    _db_errors = (sqlite3.Error,)

    def __init__(self, path: Path, *, migrate: bool = False) -> None:
        self.path = Path(path)
        self.url = f"sqlite:///{self.path}"
        self.where = str(self.path)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(str(self.path), timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None)
            self._db.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            self._enable_wal()
            self._db.execute("PRAGMA foreign_keys = ON")
        except (OSError, sqlite3.Error) as exc:
            raise StoreError(f"cannot open results store {self.path}: {exc}") from None
        try:
            self._ensure_schema(migrate)
        except StoreError:
            self._db.close()
            raise

    def _enable_wal(self) -> None:
        """Switch a (new) file to WAL, waiting up to BUSY_TIMEOUT_MS for other openers: the switch
        needs an exclusive lock and SQLite answers "database is locked" at once instead of calling
        the busy handler (seen with four processes opening one fresh store at the same moment)."""
        deadline = time.monotonic() + BUSY_TIMEOUT_MS / 1000
        while True:
            try:
                self._db.execute("PRAGMA journal_mode = WAL")
                return
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) or time.monotonic() > deadline:
                    raise
                time.sleep(0.05)

    @contextmanager
    def _transaction(self) -> Iterator[None]:
        self._db.execute("BEGIN IMMEDIATE")  # the write lock now: no deadlock upgrading a read lock later
        try:
            yield
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    _schema_transaction = _transaction  # BEGIN IMMEDIATE already excludes every other writer
