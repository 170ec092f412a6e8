"""SQLite backend: the embedded default. WAL mode so a report can read while a run writes."""

from __future__ import annotations

import json
import sqlite3
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Mapping, Sequence

from ..errors import StoreError
from ..records import MeasurementRecord, RunInfo
from .schema import SCHEMA_VERSION, TABLES

BUSY_TIMEOUT_MS = 30_000


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


class SQLiteStore:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.url = f"sqlite:///{path}"
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(str(path), timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None)
            self._db.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            self._db.execute("PRAGMA journal_mode = WAL")
            self._db.execute("PRAGMA foreign_keys = ON")
        except (OSError, sqlite3.Error) as exc:
            raise StoreError(f"cannot open results store {path}: {exc}") from None
        self._ensure_schema()

    def _ensure_schema(self) -> None:
        try:
            with self._transaction():
                for statement in TABLES:
                    self._db.execute(statement)
                row = self._db.execute("SELECT version FROM schema_info").fetchone()
                if row is None:
                    self._db.execute("INSERT INTO schema_info (version) VALUES (?)", (SCHEMA_VERSION,))
                    return
        except sqlite3.DatabaseError as exc:
            raise StoreError(f"{self.path} is not a harness results store ({exc}); "
                             "point --store at another file") from None
        if row[0] != SCHEMA_VERSION:
            newer = row[0] > SCHEMA_VERSION
            raise StoreError(
                f"{self.path} has schema version {row[0]}, this harness uses {SCHEMA_VERSION}: "
                + ("upgrade the harness" if newer else f"run `harness store migrate --store {self.url}`"))

    def _transaction(self):
        db = self._db

        class _Tx:
            def __enter__(self_inner):
                db.execute("BEGIN IMMEDIATE")

            def __exit__(self_inner, exc_type, exc, tb):
                db.execute("COMMIT" if exc_type is None else "ROLLBACK")
                return False

        return _Tx()

    # --- writes -------------------------------------------------------------------------
    def create_run(self, run: RunInfo) -> None:
        with self._transaction():
            self._db.execute(
                "INSERT INTO runs (id, label, started_at, ended_at, status, host, harness_version, "
                "git_sha, git_dirty, options) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
                "ON CONFLICT (id) DO NOTHING",  # xdist workers of one run all create it
                (run.id, run.label, run.started_at, run.ended_at, run.status, run.host,
                 run.harness_version, run.git_sha,
                 None if run.git_dirty is None else int(run.git_dirty), json.dumps(dict(run.options))))

    def finish_run(self, run_id: str, ended_at: str, status: str) -> None:
        with self._transaction():
            self._db.execute("UPDATE runs SET ended_at = ?, status = ? WHERE id = ?", (ended_at, status, run_id))

    def record_environment(self, run_id: str, target: str, data: Mapping[str, Any]) -> None:
        with self._transaction():
            self._db.execute(
                "INSERT INTO environments (run_id, target, data) VALUES (?, ?, ?) "
                "ON CONFLICT (run_id, target) DO UPDATE SET data = excluded.data",
                (run_id, target, json.dumps(dict(data))))

    def record_measurement(self, record: MeasurementRecord) -> int:
        with self._transaction():
            cursor = self._db.execute(
                "INSERT INTO measurements (run_id, target, model, variant, metric, unit, status, "
                "summary, meta, samples, samples_unit, recorded_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (record.run_id, record.target, record.model, record.variant, record.metric,
                 record.unit, record.status, json.dumps(dict(record.summary)),
                 json.dumps(dict(record.meta)),
                 None if record.samples is None else json.dumps(list(record.samples)),
                 record.samples_unit, record.recorded_at or _now()))
            return int(cursor.lastrowid)

    # --- reads --------------------------------------------------------------------------
    _RUN_COLUMNS = "id, label, started_at, ended_at, status, host, harness_version, git_sha, git_dirty, options"

    @staticmethod
    def _run_from_row(row: Sequence[Any]) -> RunInfo:
        return RunInfo(id=row[0], label=row[1], started_at=row[2], ended_at=row[3], status=row[4],
                       host=row[5], harness_version=row[6], git_sha=row[7],
                       git_dirty=None if row[8] is None else bool(row[8]), options=json.loads(row[9]))

    def get_run(self, run_id: str) -> RunInfo | None:
        row = self._db.execute(f"SELECT {self._RUN_COLUMNS} FROM runs WHERE id = ?", (run_id,)).fetchone()
        return None if row is None else self._run_from_row(row)

    def runs(self, label: str | None = None, limit: int = 50) -> Sequence[RunInfo]:
        if label is None:
            rows = self._db.execute(
                f"SELECT {self._RUN_COLUMNS} FROM runs ORDER BY started_at DESC LIMIT ?", (limit,))
        else:
            rows = self._db.execute(
                f"SELECT {self._RUN_COLUMNS} FROM runs WHERE label = ? ORDER BY started_at DESC LIMIT ?",
                (label, limit))
        return [self._run_from_row(row) for row in rows.fetchall()]

    def measurements(self, run_id: str) -> Sequence[MeasurementRecord]:
        rows = self._db.execute(
            "SELECT id, run_id, target, model, variant, metric, unit, status, summary, meta, samples, "
            "samples_unit, recorded_at FROM measurements WHERE run_id = ? ORDER BY id", (run_id,)).fetchall()
        return [
            MeasurementRecord(
                id=row[0], run_id=row[1], target=row[2], model=row[3], variant=row[4], metric=row[5],
                unit=row[6], status=row[7], summary=json.loads(row[8]), meta=json.loads(row[9]),
                samples=None if row[10] is None else tuple(json.loads(row[10])),
                samples_unit=row[11], recorded_at=row[12])
            for row in rows
        ]

    def environments(self, run_id: str) -> Mapping[str, Mapping[str, Any]]:
        rows = self._db.execute("SELECT target, data FROM environments WHERE run_id = ? ORDER BY target",
                                (run_id,)).fetchall()
        return {target: json.loads(data) for target, data in rows}

    def close(self) -> None:
        self._db.close()
