"""The store interface every backend implements (SQLite now; PostgreSQL for a lab later)."""

from __future__ import annotations

from typing import Any, Mapping, Protocol, Sequence

from ..records import MeasurementRecord, RunInfo


class Store(Protocol):
    """Append-mostly results storage. Every write is committed before it returns, so a
    crash loses nothing already recorded."""

    url: str

    def create_run(self, run: RunInfo) -> None:
        """Insert the run; a run with the same id already there is kept (idempotent)."""

    def finish_run(self, run_id: str, ended_at: str, status: str) -> None: ...

    def record_environment(self, run_id: str, target: str, data: Mapping[str, Any]) -> None: ...

    def record_measurement(self, record: MeasurementRecord) -> int: ...

    def get_run(self, run_id: str) -> RunInfo | None: ...

    def runs(self, label: str | None = None, limit: int = 50) -> Sequence[RunInfo]: ...

    def measurements(self, run_id: str) -> Sequence[MeasurementRecord]: ...

    def environments(self, run_id: str) -> Mapping[str, Mapping[str, Any]]: ...

    def close(self) -> None: ...
