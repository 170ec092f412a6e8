"""The SQLite results store, through real files: round trips, ordering, crash safety, errors."""

from __future__ import annotations

import dataclasses
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from harness.errors import StoreError
from harness.records import MeasurementRecord, RunInfo
from harness.store import SQLiteStore, open_store
from harness.store.schema import SCHEMA_VERSION


def _run(run_id: str = "20260101-120000-aaaaaa", label: str | None = "nightly",
         started_at: str = "2026-01-01T12:00:00.000+00:00") -> RunInfo:
    return RunInfo(id=run_id, label=label, started_at=started_at, host="bench-host",
                   harness_version="0.1.0", git_sha="0123456789abcdef", git_dirty=True,
                   options={"target_spec": "local", "render_report": False, "nested": {"a": [1, 2]}})


def _measurement(run_id: str, variant: str = "fp32", status: str = "ok") -> MeasurementRecord:
    return MeasurementRecord(
        run_id=run_id, target="local", model="tiny_cnn", variant=variant, metric="latency", unit="ms",
        status=status, summary={"n": 3, "p50": 1.25, "p90_ci": [1.0, 1.5], "warnings": ["drift: x"]},
        meta={"runtime": "noop", "budget": None, "error": None if status == "ok" else "boom"},
        samples=(1_200_000, 1_250_000, 1_300_000) if status == "ok" else None,
        samples_unit="ns" if status == "ok" else None,
        recorded_at="2026-01-01T12:00:05.000+00:00")


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "results" / "store.sqlite"  # parent created by the store


def test_round_trip_survives_close_and_reopen(db_path: Path) -> None:
    run = _run()
    ok = _measurement(run.id)
    failed = _measurement(run.id, variant="int8", status="error")
    environment = {"declared": {"kind": "local", "tags": ["cpu"]}, "device": {"python": "3.11.7"}}

    store = open_store(db_path)
    try:
        store.create_run(run)
        ok_id = store.record_measurement(ok)
        failed_id = store.record_measurement(failed)
        store.record_environment(run.id, "local", environment)
    finally:
        store.close()
    assert db_path.is_file()

    reopened = open_store(db_path)
    try:
        assert reopened.get_run(run.id) == run
        assert reopened.get_run("no-such-run") is None
        records = reopened.measurements(run.id)
        assert records == [dataclasses.replace(ok, id=ok_id), dataclasses.replace(failed, id=failed_id)]
        assert records[0].samples == (1_200_000, 1_250_000, 1_300_000)
        assert records[0].variant_id == "tiny_cnn-fp32"
        assert records[1].samples is None
        assert reopened.environments(run.id) == {"local": environment}
    finally:
        reopened.close()


def test_sqlite_url_form_opens_the_same_file(db_path: Path) -> None:
    store = open_store(db_path)
    try:
        store.create_run(_run())
    finally:
        store.close()
    by_url = open_store(f"sqlite:///{db_path}")
    try:
        assert isinstance(by_url, SQLiteStore)
        assert [r.id for r in by_url.runs()] == [_run().id]
    finally:
        by_url.close()


def test_record_environment_replaces_per_target(db_path: Path) -> None:
    store = open_store(db_path)
    try:
        run = _run()
        store.create_run(run)
        store.record_environment(run.id, "local", {"v": 1})
        store.record_environment(run.id, "local", {"v": 2})
        store.record_environment(run.id, "jetson", {"v": 3})
        assert store.environments(run.id) == {"jetson": {"v": 3}, "local": {"v": 2}}
    finally:
        store.close()


def test_runs_by_label_newest_first(db_path: Path) -> None:
    store = open_store(db_path)
    try:
        store.create_run(_run("r-old", "nightly", "2026-01-01T00:00:00.000+00:00"))
        store.create_run(_run("r-new", "nightly", "2026-01-03T00:00:00.000+00:00"))
        store.create_run(_run("r-mid", "nightly", "2026-01-02T00:00:00.000+00:00"))
        store.create_run(_run("r-release", "release-1.4", "2026-01-04T00:00:00.000+00:00"))
        store.create_run(_run("r-nolabel", None, "2026-01-05T00:00:00.000+00:00"))
        assert [r.id for r in store.runs(label="nightly")] == ["r-new", "r-mid", "r-old"]
        assert [r.id for r in store.runs(label="release-1.4")] == ["r-release"]
        assert store.runs(label="weekly") == []
        assert [r.id for r in store.runs()] == ["r-nolabel", "r-release", "r-new", "r-mid", "r-old"]
        assert [r.id for r in store.runs(label="nightly", limit=2)] == ["r-new", "r-mid"]
    finally:
        store.close()


def test_finish_run_sets_end_and_status(db_path: Path) -> None:
    store = open_store(db_path)
    try:
        run = _run()
        store.create_run(run)
        assert store.get_run(run.id).status == "running"
        assert store.get_run(run.id).ended_at is None
        store.finish_run(run.id, "2026-01-01T12:30:00.000+00:00", "complete")
    finally:
        store.close()
    reopened = open_store(db_path)
    try:
        finished = reopened.get_run(run.id)
        assert finished.status == "complete"
        assert finished.ended_at == "2026-01-01T12:30:00.000+00:00"
        assert finished.started_at == run.started_at
    finally:
        reopened.close()


def test_measurement_is_visible_to_a_second_connection_before_the_run_ends(db_path: Path) -> None:
    writer = open_store(db_path)
    try:
        run = _run()
        writer.create_run(run)
        writer.record_measurement(_measurement(run.id))
        # a plain sqlite3 connection (another process would see the same)
        raw = sqlite3.connect(str(db_path))
        try:
            assert raw.execute("SELECT count(*) FROM measurements WHERE run_id = ?", (run.id,)).fetchone() == (1,)
            assert raw.execute("SELECT status FROM runs WHERE id = ?", (run.id,)).fetchone() == ("running",)
        finally:
            raw.close()
        reader = open_store(db_path)
        try:
            assert [m.variant for m in reader.measurements(run.id)] == ["fp32"]
            writer.record_measurement(_measurement(run.id, variant="int8"))
            assert [m.variant for m in reader.measurements(run.id)] == ["fp32", "int8"]
        finally:
            reader.close()
    finally:
        writer.close()


def test_a_killed_writer_loses_nothing_already_recorded(db_path: Path) -> None:
    """A real process records, then dies by SIGKILL without closing: the rows are there."""
    code = textwrap.dedent(f"""
        import os, signal
        from harness.records import MeasurementRecord, RunInfo
        from harness.store import open_store
        store = open_store({str(db_path)!r})
        store.create_run(RunInfo(id="crashed", label="nightly", started_at="2026-01-01T00:00:00+00:00",
                                 host="h", harness_version="0.1.0"))
        store.record_measurement(MeasurementRecord(
            run_id="crashed", target="local", model="m", variant="v", metric="latency", unit="ms",
            status="ok", summary={{"p50": 1.0}}, meta={{}}, samples=(1, 2, 3), samples_unit="ns"))
        os.kill(os.getpid(), signal.SIGKILL)
    """)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, timeout=60)
    assert done.returncode == -9, done.stderr.decode()
    store = open_store(db_path)
    try:
        run = store.get_run("crashed")
        assert run is not None and run.status == "running" and run.ended_at is None
        (record,) = store.measurements("crashed")
        assert record.samples == (1, 2, 3)
        assert record.recorded_at  # filled in by the store
    finally:
        store.close()


def _set_schema_version(path: Path, version: int) -> None:
    raw = sqlite3.connect(str(path))
    try:
        raw.execute("UPDATE schema_info SET version = ?", (version,))
        raw.commit()
    finally:
        raw.close()


def test_older_schema_version_asks_for_migration(db_path: Path) -> None:
    open_store(db_path).close()
    _set_schema_version(db_path, SCHEMA_VERSION - 1)
    with pytest.raises(StoreError) as caught:
        open_store(db_path)
    message = str(caught.value)
    assert "harness store migrate" in message
    assert str(db_path) in message
    assert f"schema version {SCHEMA_VERSION - 1}" in message


def test_newer_schema_version_is_refused(db_path: Path) -> None:
    open_store(db_path).close()
    _set_schema_version(db_path, SCHEMA_VERSION + 1)
    with pytest.raises(StoreError, match="upgrade the harness") as caught:
        open_store(db_path)
    assert str(db_path) in str(caught.value)


def test_a_file_that_is_not_a_database_is_refused_naming_it(tmp_path: Path) -> None:
    path = tmp_path / "notes.sqlite"
    path.write_bytes(b"these are my notes, not a database\n" * 200)
    with pytest.raises(StoreError) as caught:
        open_store(path)
    assert str(path) in str(caught.value)
    assert path.read_bytes().startswith(b"these are my notes")  # left untouched


def test_another_sqlite_database_without_our_schema_gets_it(tmp_path: Path) -> None:
    path = tmp_path / "other.sqlite"
    raw = sqlite3.connect(str(path))
    raw.execute("CREATE TABLE unrelated (x INTEGER)")
    raw.commit()
    raw.close()
    store = open_store(path)
    try:
        store.create_run(_run())
        assert store.get_run(_run().id) is not None
    finally:
        store.close()


@pytest.mark.parametrize("url, scheme", [("postgresql://lab-db/results", "postgresql"),
                                         ("mysql://host/db", "mysql")])
def test_unknown_url_scheme(url: str, scheme: str) -> None:
    with pytest.raises(StoreError) as caught:
        open_store(url)
    message = str(caught.value)
    assert f"'{scheme}'" in message and "not supported" in message


def test_sqlite_url_with_two_slashes_is_explained() -> None:
    with pytest.raises(StoreError, match="sqlite:///"):
        open_store("sqlite://results.sqlite")
