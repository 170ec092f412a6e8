"""The SQL both backends share: every query of the store, written once.

A backend subclass supplies the connection, its `Dialect` (placeholders, the few DDL words
that differ: harness.store.schema), how a write transaction and the schema transaction are
taken, and which driver exceptions it raises; everything else lives here, so SQLite and
PostgreSQL read and write the same rows the same way.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager
from datetime import UTC, datetime
from typing import Any

from harness.errors import StoreError
from harness.records import MeasurementRecord, RunInfo
from harness.store import schema
from harness.store.schema import Dialect


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


_RUN_COLUMNS = "id, label, started_at, ended_at, status, host, harness_version, git_sha, git_dirty, options"
_MEASUREMENT_COLUMNS = ("run_id, target, model, variant, metric, unit, status, summary, meta, samples, "
                        "samples_unit, recorded_at")
_INSERT_MEASUREMENT = (f"INSERT INTO measurements ({_MEASUREMENT_COLUMNS}) "
                       "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id")


class SQLStore:
    """A `Store` over a DB-API connection; subclasses: SQLiteStore, PostgresStore."""

    dialect: Dialect
    backend: str
    url: str  # safe to print
    where: str  # how messages name the store (the path for SQLite, the redacted URL otherwise)
    elsewhere: str  # "another file" / "another database": where the user can point --store instead
    schema_version: int
    _db: Any
    _db_errors: tuple[type[BaseException], ...] = ()

    # --- backend hooks ----------------------------------------------------------------------
    def _transaction(self) -> AbstractContextManager[Any]:
        """One write transaction, committed on success, rolled back on an exception."""
        raise NotImplementedError

    def _schema_transaction(self) -> AbstractContextManager[Any]:
        """A write transaction that also excludes every other process creating or migrating
        the schema of this store at the same time."""
        raise NotImplementedError

    def _insert_many(self, statement: str, rows: Sequence[tuple]) -> list[int]:
        """Run an INSERT ... RETURNING id for each row (inside a transaction); the ids."""
        return [int(self._db.execute(statement, row).fetchone()[0]) for row in rows]

    def _ready(self) -> None:
        """Called before every operation (PostgreSQL reconnects a dropped connection here)."""

    def _scrub(self, message: str) -> str:
        """A driver message made safe to show (PostgreSQL removes any password)."""
        return message

    # --- helpers ----------------------------------------------------------------------------
    @contextmanager
    def _guard(self, doing: str) -> Iterator[None]:
        """Driver errors become one-line StoreErrors naming the store (never a traceback
        from inside the driver, never a credential)."""
        try:
            self._ready()
            yield
        except StoreError:
            raise
        except self._db_errors as exc:
            raise StoreError(f"results store {self.where}: {doing} failed: {self._scrub(_one_line(exc))}") from None

    def _execute(self, statement: str, params: Sequence[Any] = ()):
        return self._db.execute(self.dialect.sql(statement), tuple(params))

    # --- schema -----------------------------------------------------------------------------
    def _ensure_schema(self, migrate: bool) -> None:
        """Create the schema in an empty store; check the version of an existing one (and
        with `migrate`, bring an older one up to date)."""
        self.migrated_from: int | None = None
        try:
            with self._schema_transaction():
                version = self._stored_version()
                if version is None:
                    for statement in schema.TABLES:
                        self._db.execute(self.dialect.ddl(statement))
                    if self._execute("SELECT version FROM schema_info").fetchone() is None:
                        self._execute("INSERT INTO schema_info (version) VALUES (?)", (schema.SCHEMA_VERSION,))
                    self.schema_version = schema.SCHEMA_VERSION
                    return
                if version > schema.SCHEMA_VERSION:
                    raise StoreError(f"{self.where} has schema version {version}, this harness uses "
                                     f"{schema.SCHEMA_VERSION}: upgrade the harness (or point --store at "
                                     f"{self.elsewhere})")
                if version < schema.SCHEMA_VERSION:
                    if not migrate:
                        raise StoreError(f"{self.where} has schema version {version}, this harness uses "
                                         f"{schema.SCHEMA_VERSION}: run `harness store migrate --store {self.url}` "
                                         "(back the store up first)")
                    self._migrate(version)
                    self.migrated_from = version
                self.schema_version = schema.SCHEMA_VERSION
        except StoreError:
            raise
        except self._db_errors as exc:
            raise StoreError(f"{self.where} is not a harness results store ({self._scrub(_one_line(exc))}); "
                             f"point --store at {self.elsewhere}") from None

    def _stored_version(self) -> int | None:
        """The version in schema_info; None for a store without our schema yet."""
        if self._execute(self.dialect.table_exists, ("schema_info",)).fetchone() is None:
            return None
        row = self._execute("SELECT version FROM schema_info").fetchone()
        if row is None:  # created by a harness that died before writing the version
            self._execute("INSERT INTO schema_info (version) VALUES (?)", (schema.SCHEMA_VERSION,))
            return schema.SCHEMA_VERSION
        return int(row[0])

    def _migrate(self, version: int) -> None:
        for step in range(version, schema.SCHEMA_VERSION):
            statements = schema.MIGRATIONS.get(step)
            if statements is None:
                raise StoreError(f"{self.where} has schema version {version} and this harness has no migration "
                                 f"from version {step} to {step + 1}: export the results with the harness that "
                                 f"wrote them, or point --store at {self.elsewhere}")
            for statement in statements:
                self._db.execute(self.dialect.ddl(statement))
        self._execute("UPDATE schema_info SET version = ?", (schema.SCHEMA_VERSION,))

    # --- writes -----------------------------------------------------------------------------
    def create_run(self, run: RunInfo) -> None:
        with self._guard("recording run " + run.id), self._transaction():
            self._execute(
                f"INSERT INTO runs ({_RUN_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
                "ON CONFLICT (id) DO NOTHING",  # xdist workers of one run all create it
                (run.id, run.label, run.started_at, run.ended_at, run.status, run.host,
                 run.harness_version, run.git_sha,
                 None if run.git_dirty is None else int(run.git_dirty), json.dumps(dict(run.options))))

    def finish_run(self, run_id: str, ended_at: str, status: str) -> None:
        with self._guard("finishing run " + run_id), self._transaction():
            self._execute("UPDATE runs SET ended_at = ?, status = ? WHERE id = ?", (ended_at, status, run_id))

    def record_environment(self, run_id: str, target: str, data: Mapping[str, Any]) -> None:
        with self._guard(f"recording the environment of {target}"), self._transaction():
            self._execute(
                "INSERT INTO environments (run_id, target, data) VALUES (?, ?, ?) "
                "ON CONFLICT (run_id, target) DO UPDATE SET data = excluded.data",
                (run_id, target, json.dumps(dict(data))))

    @staticmethod
    def _measurement_row(record: MeasurementRecord) -> tuple:
        return (record.run_id, record.target, record.model, record.variant, record.metric,
                record.unit, record.status, json.dumps(dict(record.summary)), json.dumps(dict(record.meta)),
                None if record.samples is None else json.dumps(list(record.samples)),
                record.samples_unit, record.recorded_at or _now())

    def record_measurement(self, record: MeasurementRecord) -> int:
        with self._guard(f"recording a measurement of {record.target}/{record.variant_id}"), self._transaction():
            return int(self._execute(_INSERT_MEASUREMENT, self._measurement_row(record)).fetchone()[0])

    def record_measurements(self, records: Sequence[MeasurementRecord]) -> list[int]:
        if not records:
            return []
        with self._guard(f"recording {len(records)} measurements"), self._transaction():
            return self._insert_many(self.dialect.sql(_INSERT_MEASUREMENT),
                                     [self._measurement_row(record) for record in records])

    # --- reads ------------------------------------------------------------------------------
    @staticmethod
    def _run_from_row(row: Sequence[Any]) -> RunInfo:
        return RunInfo(id=row[0], label=row[1], started_at=row[2], ended_at=row[3], status=row[4],
                       host=row[5], harness_version=row[6], git_sha=row[7],
                       git_dirty=None if row[8] is None else bool(row[8]), options=json.loads(row[9]))

    def get_run(self, run_id: str) -> RunInfo | None:
        with self._guard(f"reading run {run_id}"):
            row = self._execute(f"SELECT {_RUN_COLUMNS} FROM runs WHERE id = ?", (run_id,)).fetchone()
        return None if row is None else self._run_from_row(row)

    def runs(self, label: str | None = None, limit: int = 50) -> Sequence[RunInfo]:
        with self._guard("listing runs"):
            if label is None:
                rows = self._execute(f"SELECT {_RUN_COLUMNS} FROM runs ORDER BY started_at DESC, id DESC LIMIT ?",
                                     (limit,)).fetchall()
            else:
                rows = self._execute(f"SELECT {_RUN_COLUMNS} FROM runs WHERE label = ? "
                                     "ORDER BY started_at DESC, id DESC LIMIT ?", (label, limit)).fetchall()
        return [self._run_from_row(row) for row in rows]

    @staticmethod
    def _measurement_from_row(row: Sequence[Any]) -> MeasurementRecord:
        return MeasurementRecord(
            id=int(row[0]), run_id=row[1], target=row[2], model=row[3], variant=row[4], metric=row[5],
            unit=row[6], status=row[7], summary=json.loads(row[8]), meta=json.loads(row[9]),
            samples=None if row[10] is None else tuple(json.loads(row[10])),
            samples_unit=row[11], recorded_at=row[12])

    def measurements(self, run_id: str) -> Sequence[MeasurementRecord]:
        with self._guard(f"reading the measurements of run {run_id}"):
            rows = self._execute(f"SELECT id, {_MEASUREMENT_COLUMNS} FROM measurements WHERE run_id = ? ORDER BY id",
                                 (run_id,)).fetchall()
        return [self._measurement_from_row(row) for row in rows]

    def measurements_of_runs(self, run_ids: Sequence[str], *, samples: bool = False) -> Sequence[MeasurementRecord]:
        if not run_ids:
            return []
        columns = f"id, {_MEASUREMENT_COLUMNS}" if samples else \
            f"id, {_MEASUREMENT_COLUMNS}".replace(", samples,", ", NULL,")
        marks = ", ".join("?" for _ in run_ids)
        with self._guard(f"reading the measurements of {len(run_ids)} runs"):
            rows = self._execute(f"SELECT {columns} FROM measurements WHERE run_id IN ({marks}) ORDER BY id",
                                 tuple(run_ids)).fetchall()
        order = {run_id: i for i, run_id in enumerate(run_ids)}
        records = [self._measurement_from_row(row) for row in rows]
        return sorted(records, key=lambda r: order[r.run_id])  # stable: by id within a run

    def history(self, target: str, model: str, variant: str, metric: str = "latency", label: str | None = None,
                limit: int = 50) -> Sequence[MeasurementRecord]:
        columns = ", ".join(f"m.{c.strip()}" for c in f"id, {_MEASUREMENT_COLUMNS}".split(","))
        where = "m.target = ? AND m.model = ? AND m.variant = ? AND m.metric = ?"
        params: list[Any] = [target, model, variant, metric]
        if label is not None:
            where += " AND r.label = ?"
            params.append(label)
        with self._guard(f"reading the history of {target}/{model}-{variant} {metric}"):
            rows = self._execute(f"SELECT {columns} FROM measurements m JOIN runs r ON r.id = m.run_id WHERE {where} "
                                 "ORDER BY r.started_at DESC, r.id DESC, m.id DESC LIMIT ?",
                                 (*params, limit)).fetchall()
        return [self._measurement_from_row(row) for row in rows]

    def environments(self, run_id: str) -> Mapping[str, Mapping[str, Any]]:
        with self._guard(f"reading the environments of run {run_id}"):
            rows = self._execute("SELECT target, data FROM environments WHERE run_id = ? ORDER BY target",
                                 (run_id,)).fetchall()
        return {target: json.loads(data) for target, data in rows}

    def info(self) -> Mapping[str, Any]:
        with self._guard("reading its summary"):
            runs = self._execute("SELECT count(*) FROM runs").fetchone()[0]
            measurements = self._execute("SELECT count(*) FROM measurements").fetchone()[0]
        latest = self.runs(limit=1)
        return {"backend": self.backend, "url": self.url, "schema_version": self.schema_version,
                "runs": int(runs), "measurements": int(measurements),
                "latest_run": latest[0].id if latest else None}

    def close(self) -> None:
        try:
            self._db.close()
        except self._db_errors:
            pass
