"""The store interface every backend implements (SQLite: embedded default; PostgreSQL: a lab)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from harness.records import MeasurementRecord, RunInfo


class Store(Protocol):
    """Append-mostly results storage. Every write is committed before it returns, so a
    crash loses nothing already recorded. Several processes may write at once (pytest-xdist
    workers of one run, orchestrators of different runs): each write is one transaction.

    `url` names the store for people (a path, `sqlite:///...`, or `postgresql://user@host:port/db`
    with any password left out): it is safe to print."""

    url: str
    schema_version: int
    migrated_from: int | None  # the version this store had before open_store(..., migrate=True) upgraded it

    def create_run(self, run: RunInfo) -> None:
        """Insert the run; a run with the same id already there is kept (idempotent)."""

    def finish_run(self, run_id: str, ended_at: str, status: str) -> None: ...

    def record_environment(self, run_id: str, target: str, data: Mapping[str, Any]) -> None: ...

    def record_measurement(self, record: MeasurementRecord) -> int: ...

    def record_measurements(self, records: Sequence[MeasurementRecord]) -> list[int]:
        """Several measurements in one transaction (imports, copies); ids in order."""

    def get_run(self, run_id: str) -> RunInfo | None: ...

    def runs(self, label: str | None = None, limit: int = 50) -> Sequence[RunInfo]: ...

    def measurements(self, run_id: str) -> Sequence[MeasurementRecord]: ...

    def measurements_of_runs(self, run_ids: Sequence[str], *, samples: bool = False) -> Sequence[MeasurementRecord]:
        """The measurements of several runs in one query, by run (in `run_ids`' order) then
        id. Samples are left out (None) unless `samples`: the trend over 30 runs reads
        summaries only, and decoding raw samples was most of reading a run."""

    def history(self, target: str, model: str, variant: str, metric: str = "latency", label: str | None = None,
                limit: int = 50) -> Sequence[MeasurementRecord]:
        """One (target, model, variant, metric) across runs, newest run first (runs of `label`
        only, when given): the `limit` newest records, in one query. A trend over 100 runs
        costs milliseconds this way, against seconds reading every run's measurements."""

    def environments(self, run_id: str) -> Mapping[str, Mapping[str, Any]]: ...

    def info(self) -> Mapping[str, Any]:
        """backend, url, schema_version, runs, measurements, latest_run (for `harness store info`)."""

    def close(self) -> None: ...
