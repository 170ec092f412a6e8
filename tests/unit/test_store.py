"""The results store, through real files and a real PostgreSQL server: round trips, ordering,
crash safety, schema versions and migration, errors.

Every test taking `backend` runs twice: against an SQLite file and against a database of a
private PostgreSQL cluster (the session's ``pg_cluster`` of tests/conftest.py: initdb + pg_ctl
on a loopback port). Without PostgreSQL server binaries on the machine the
postgresql cases are skipped, saying what to install.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sqlite3
import subprocess
import sys
import textwrap
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from harness.errors import StoreError
from harness.lab.postgres import PostgresCluster, find_bindir, private_cluster
from harness.lab.sshd import LabError, free_port
from harness.records import MeasurementRecord, RunInfo
from harness.store import PostgresStore, SQLiteStore, open_store, redact_url, schema
from harness.store.cli import add_store_commands
from harness.store.schema import SCHEMA_VERSION


def _run(run_id: str = "20260101-120000-aaaaaa", label: str | None = "nightly",
         started_at: str = "2026-01-01T12:00:00.000+00:00") -> RunInfo:
    return RunInfo(id=run_id, label=label, started_at=started_at, host="bench-host",
                   harness_version="0.1.0", git_sha="0123456789abcdef", git_dirty=True,
                   options={"target_spec": "local", "render_report": False, "nested": {"a": [1, 2]}})


def _measurement(run_id: str, variant: str = "fp32", status: str = "ok", target: str = "local") -> MeasurementRecord:
    return MeasurementRecord(
        run_id=run_id, target=target, model="tiny_cnn", variant=variant, metric="latency", unit="ms",
        status=status, summary={"n": 3, "p50": 1.25, "p90_ci": [1.0, 1.5], "warnings": ["drift: x"]},
        meta={"runtime": "noop", "budget": None, "error": None if status == "ok" else "boom"},
        samples=(1_200_000, 1_250_000, 1_300_000) if status == "ok" else None,
        samples_unit="ns" if status == "ok" else None,
        recorded_at="2026-01-01T12:00:05.000+00:00")


# --- the two backends ----------------------------------------------------------------------

@dataclasses.dataclass
class Backend:
    """One store location plus raw driver access to it (what another process would see)."""

    name: str
    url: str  # what --store gets
    where: str  # how error messages must name it
    raw: Callable[[str, tuple], list]  # a statement on a fresh plain driver connection, committed

    def open(self, migrate: bool = False):
        return open_store(self.url, migrate=migrate)

    def set_schema_version(self, version: int) -> None:
        self.raw("UPDATE schema_info SET version = ?", (version,))


def _sqlite_raw(path: Path) -> Callable[[str, tuple], list]:
    def raw(statement: str, params: tuple = ()) -> list:
        db = sqlite3.connect(str(path))
        try:
            rows = db.execute(statement, params).fetchall()
            db.commit()
            return rows
        finally:
            db.close()
    return raw


def _postgres_raw(url: str) -> Callable[[str, tuple], list]:
    def raw(statement: str, params: tuple = ()) -> list:
        import psycopg

        with psycopg.connect(url, autocommit=True) as db:
            cursor = db.execute(statement.replace("?", "%s"), params)
            return cursor.fetchall() if cursor.description else []
    return raw


@pytest.fixture
def pg_database(pg_cluster: PostgresCluster) -> Iterator[str]:
    """A fresh, empty database of the session's cluster; its URL."""
    name = f"t_{uuid.uuid4().hex[:12]}"
    url = pg_cluster.create_database(name)
    yield url
    pg_cluster.drop_database(name)


@pytest.fixture(params=["sqlite", "postgresql"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Backend:
    if request.param == "sqlite":
        path = tmp_path / "results" / "store.sqlite"  # parent created by the store
        return Backend("sqlite", str(path), str(path), _sqlite_raw(path))
    url = request.getfixturevalue("pg_database")
    return Backend("postgresql", url, url, _postgres_raw(url))


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "results" / "store.sqlite"


# --- round trips ---------------------------------------------------------------------------

def test_round_trip_survives_close_and_reopen(backend: Backend) -> None:
    run = _run()
    ok = _measurement(run.id)
    failed = _measurement(run.id, variant="int8", status="error")
    environment = {"declared": {"kind": "local", "tags": ["cpu"]}, "device": {"python": "3.11.7"}}

    store = backend.open()
    try:
        store.create_run(run)
        ok_id = store.record_measurement(ok)
        failed_id = store.record_measurement(failed)
        store.record_environment(run.id, "local", environment)
    finally:
        store.close()
    if backend.name == "sqlite":
        assert Path(backend.url).is_file()

    reopened = backend.open()
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


def test_values_come_back_exactly(backend: Backend) -> None:
    """Key order, float text, NaN, big integers, unicode: JSON is kept as the text written."""
    run = dataclasses.replace(_run(), git_dirty=False, git_sha=None, label=None,
                              options={"z": 1, "a": {"y": [0.1, 1e-300, 2.5e300]}, "ünïcode": "中文 ✓"})
    record = dataclasses.replace(
        _measurement(run.id, target="jetson-ñ"), summary={"zeta": 0.1 + 0.2, "alpha": float("nan"), "k": -0.0},
        meta={"quote": "it's \"quoted\" \\ and \x01 control", "none": None, "list": []},
        samples=(0, 1, 2**53 + 1, 2**62), recorded_at=None)
    store = backend.open()
    try:
        store.create_run(run)
        record_id = store.record_measurement(record)
        store.record_measurement(dataclasses.replace(record, variant="empty", samples=()))
    finally:
        store.close()
    store = backend.open()
    try:
        assert store.get_run(run.id) == run
        assert list(store.get_run(run.id).options) == ["z", "a", "ünïcode"]
        got, empty = store.measurements(run.id)
    finally:
        store.close()
    assert got.id == record_id and got.target == "jetson-ñ"
    assert list(got.summary) == ["zeta", "alpha", "k"]
    assert got.summary["zeta"] == 0.1 + 0.2 and str(got.summary["k"]) == "-0.0"
    assert got.summary["alpha"] != got.summary["alpha"]  # NaN survives (JSONB would refuse it)
    assert got.meta == record.meta
    assert got.samples == (0, 1, 2**53 + 1, 2**62)
    assert got.recorded_at  # filled in by the store
    assert empty.samples == ()


def test_sqlite_url_form_opens_the_same_file(db_path: Path) -> None:
    store = open_store(db_path)
    try:
        store.create_run(_run())
    finally:
        store.close()
    by_url = open_store(f"sqlite:///{db_path}")
    try:
        assert isinstance(by_url, SQLiteStore)
        assert by_url.url == f"sqlite:///{db_path}"
        assert [r.id for r in by_url.runs()] == [_run().id]
    finally:
        by_url.close()


@pytest.mark.parametrize("scheme", ["postgresql", "postgres"])
def test_postgresql_url_selects_the_postgres_backend(pg_database: str, scheme: str) -> None:
    url = pg_database.replace("postgresql://", f"{scheme}://")
    store = open_store(url)
    try:
        assert isinstance(store, PostgresStore)
        assert store.url == url
        store.create_run(_run())
    finally:
        store.close()
    again = open_store(pg_database)
    try:
        assert [r.id for r in again.runs()] == [_run().id]
    finally:
        again.close()


def test_record_environment_replaces_per_target(backend: Backend) -> None:
    store = backend.open()
    try:
        run = _run()
        store.create_run(run)
        store.record_environment(run.id, "local", {"v": 1})
        store.record_environment(run.id, "local", {"v": 2})
        store.record_environment(run.id, "jetson", {"v": 3})
        assert store.environments(run.id) == {"jetson": {"v": 3}, "local": {"v": 2}}
        assert list(store.environments(run.id)) == ["jetson", "local"]
    finally:
        store.close()


def test_create_run_is_idempotent(backend: Backend) -> None:
    """pytest-xdist workers of one run all create it: the first one's row stays."""
    store = backend.open()
    try:
        store.create_run(_run())
        store.create_run(dataclasses.replace(_run(), host="second-worker"))
        assert store.get_run(_run().id).host == "bench-host"
        assert len(store.runs()) == 1
    finally:
        store.close()


def test_runs_by_label_newest_first(backend: Backend) -> None:
    store = backend.open()
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


def test_run_order_is_bytewise_and_ties_break_by_id(backend: Backend) -> None:
    """Same order from both backends, whatever the PostgreSQL database's locale: byte order
    ("C" collation), equal start times broken by id."""
    store = backend.open()
    try:
        same = "2026-01-01T00:00:00.000+00:00"
        for run_id in ("b-run", "a-run", "B-run", "_run", "c-run"):
            store.create_run(_run(run_id, "x", same))
        assert [r.id for r in store.runs(label="x")] == ["c-run", "b-run", "a-run", "_run", "B-run"]
        store.record_environment("a-run", "b", {})
        store.record_environment("a-run", "B", {})
        store.record_environment("a-run", "_", {})
        assert list(store.environments("a-run")) == ["B", "_", "b"]
    finally:
        store.close()


def test_finish_run_sets_end_and_status(backend: Backend) -> None:
    store = backend.open()
    try:
        run = _run()
        store.create_run(run)
        assert store.get_run(run.id).status == "running"
        assert store.get_run(run.id).ended_at is None
        store.finish_run(run.id, "2026-01-01T12:30:00.000+00:00", "complete")
    finally:
        store.close()
    reopened = backend.open()
    try:
        finished = reopened.get_run(run.id)
        assert finished.status == "complete"
        assert finished.ended_at == "2026-01-01T12:30:00.000+00:00"
        assert finished.started_at == run.started_at
    finally:
        reopened.close()


def test_record_measurements_in_one_transaction(backend: Backend) -> None:
    store = backend.open()
    try:
        run = _run()
        store.create_run(run)
        first = store.record_measurement(_measurement(run.id, variant="v0"))
        batch = [_measurement(run.id, variant=f"v{i}") for i in range(1, 40)]
        ids = store.record_measurements(batch)
        assert store.record_measurements([]) == []
        assert len(ids) == 39 and ids == sorted(ids) and ids[0] > first
        assert [r.variant for r in store.measurements(run.id)] == [f"v{i}" for i in range(40)]
        assert [r.id for r in store.measurements(run.id)] == [first, *ids]
        # a batch that fails part way leaves nothing behind
        with pytest.raises(StoreError):
            store.record_measurements([_measurement(run.id, variant="ok"), _measurement("no-such-run")])
        assert len(store.measurements(run.id)) == 40
    finally:
        store.close()


def test_history_of_one_variant_across_runs_newest_first(backend: Backend) -> None:
    store = backend.open()
    try:
        days = {"r1": ("nightly", "2026-01-01"), "r2": ("nightly", "2026-01-02"), "r3": ("release", "2026-01-03"),
                "r4": ("nightly", "2026-01-04"), "r5": ("nightly", "2026-01-05")}
        for run_id, (label, day) in days.items():
            store.create_run(_run(run_id, label, f"{day}T00:00:00.000+00:00"))
            p50 = float(run_id[1])
            store.record_measurements([
                dataclasses.replace(_measurement(run_id), summary={"p50": p50}),
                dataclasses.replace(_measurement(run_id, variant="int8"), summary={"p50": p50 / 2}),
                dataclasses.replace(_measurement(run_id, target="jetson"), summary={"p50": -p50}),
                dataclasses.replace(_measurement(run_id), metric="memory", summary={"peak": 1}),
            ])
        store.record_measurement(dataclasses.replace(_measurement("r4"), summary={"p50": 4.5}))  # re-measured
        history = store.history("local", "tiny_cnn", "fp32")
        assert [(r.run_id, r.summary["p50"]) for r in history] == [
            ("r5", 5.0), ("r4", 4.5), ("r4", 4.0), ("r3", 3.0), ("r2", 2.0), ("r1", 1.0)]
        assert history[0] == store.measurements("r5")[0]  # whole records, samples included
        assert [r.run_id for r in store.history("local", "tiny_cnn", "fp32", label="nightly", limit=3)] == \
            ["r5", "r4", "r4"]
        assert [r.summary for r in store.history("local", "tiny_cnn", "fp32", metric="memory", label="release")] == \
            [{"peak": 1}]
        assert store.history("nowhere", "tiny_cnn", "fp32") == []
    finally:
        store.close()


def test_a_measurement_of_an_unknown_run_is_a_one_line_store_error(backend: Backend) -> None:
    store = backend.open()
    try:
        with pytest.raises(StoreError) as caught:
            store.record_measurement(_measurement("never-created"))
        message = str(caught.value)
        assert backend.where in message and "local/tiny_cnn-fp32" in message
        assert "\n" not in message
        store.create_run(_run())  # the store is still usable afterwards
        assert store.record_measurement(_measurement(_run().id)) > 0
    finally:
        store.close()


def test_info_counts_what_the_store_holds(backend: Backend) -> None:
    store = backend.open()
    try:
        assert dict(store.info()) == {"backend": backend.name, "url": store.url, "schema_version": SCHEMA_VERSION,
                                      "runs": 0, "measurements": 0, "latest_run": None}
        store.create_run(_run("r1", started_at="2026-01-01T00:00:00+00:00"))
        store.create_run(_run("r2", started_at="2026-01-02T00:00:00+00:00"))
        store.record_measurements([_measurement("r1"), _measurement("r2"), _measurement("r2")])
        info = store.info()
        assert (info["runs"], info["measurements"], info["latest_run"]) == (2, 3, "r2")
    finally:
        store.close()


# --- visibility and crash safety --------------------------------------------------------------

def test_measurement_is_visible_to_a_second_connection_before_the_run_ends(backend: Backend) -> None:
    writer = backend.open()
    try:
        run = _run()
        writer.create_run(run)
        writer.record_measurement(_measurement(run.id))
        # a plain driver connection (another process would see the same)
        assert backend.raw("SELECT count(*) FROM measurements WHERE run_id = ?", (run.id,)) == [(1,)]
        assert backend.raw("SELECT status FROM runs WHERE id = ?", (run.id,)) == [("running",)]
        reader = backend.open()
        try:
            assert [m.variant for m in reader.measurements(run.id)] == ["fp32"]
            writer.record_measurement(_measurement(run.id, variant="int8"))
            assert [m.variant for m in reader.measurements(run.id)] == ["fp32", "int8"]
        finally:
            reader.close()
    finally:
        writer.close()


def test_a_killed_writer_loses_nothing_already_recorded(backend: Backend) -> None:
    """A real process records, then dies by SIGKILL without closing: the rows are there."""
    code = textwrap.dedent(f"""
        import os, signal
        from harness.records import MeasurementRecord, RunInfo
        from harness.store import open_store
        store = open_store({backend.url!r})
        store.create_run(RunInfo(id="crashed", label="nightly", started_at="2026-01-01T00:00:00+00:00",
                                 host="h", harness_version="0.1.0"))
        store.record_measurement(MeasurementRecord(
            run_id="crashed", target="local", model="m", variant="v", metric="latency", unit="ms",
            status="ok", summary={{"p50": 1.0}}, meta={{}}, samples=(1, 2, 3), samples_unit="ns"))
        os.kill(os.getpid(), signal.SIGKILL)
    """)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, timeout=60)
    assert done.returncode == -9, done.stderr.decode()
    store = backend.open()
    try:
        run = store.get_run("crashed")
        assert run is not None and run.status == "running" and run.ended_at is None
        (record,) = store.measurements("crashed")
        assert record.samples == (1, 2, 3)
        assert record.recorded_at  # filled in by the store
    finally:
        store.close()


def test_postgres_store_reconnects_after_its_connection_is_dropped(pg_database: str) -> None:
    """The database ended the session (a restart, an idle timeout): the next write reconnects."""
    store = open_store(pg_database)
    try:
        store.create_run(_run())
        backend_pid = store._db.info.backend_pid
        _postgres_raw(pg_database)("SELECT pg_terminate_backend(?)", (backend_pid,))
        with pytest.raises(StoreError) as caught:  # the write in flight when it dropped: a clear error
            store.record_measurement(_measurement(_run().id))
        assert pg_database in str(caught.value)
        store.record_measurement(_measurement(_run().id, variant="after"))  # and the next one works
        assert [r.variant for r in store.measurements(_run().id)] == ["after"]
    finally:
        store.close()


# --- schema versions and migration -------------------------------------------------------------

def test_older_schema_version_asks_for_migration(backend: Backend) -> None:
    backend.open().close()
    backend.set_schema_version(SCHEMA_VERSION - 1)
    with pytest.raises(StoreError) as caught:
        backend.open()
    message = str(caught.value)
    assert "harness store migrate" in message
    assert backend.where in message
    assert f"schema version {SCHEMA_VERSION - 1}" in message
    assert f"--store {backend.url if backend.name == 'postgresql' else 'sqlite:///' + backend.url}" in message


def test_newer_schema_version_is_refused(backend: Backend) -> None:
    backend.open().close()
    backend.set_schema_version(SCHEMA_VERSION + 1)
    with pytest.raises(StoreError, match="upgrade the harness") as caught:
        backend.open()
    assert backend.where in str(caught.value)
    with pytest.raises(StoreError, match="upgrade the harness"):
        backend.open(migrate=True)  # never "migrated" downwards


def _store_cli(*argv: str) -> int:
    parser = argparse.ArgumentParser(prog="harness")
    add_store_commands(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(list(argv))
    return args.func(args)


@pytest.fixture
def next_schema_version(monkeypatch: pytest.MonkeyPatch) -> int:
    """This harness as if it were one schema version ahead, with a migration step to it."""
    monkeypatch.setattr(schema, "SCHEMA_VERSION", SCHEMA_VERSION + 1)
    monkeypatch.setattr(schema, "MIGRATIONS", {
        **schema.MIGRATIONS,
        SCHEMA_VERSION: ("ALTER TABLE runs ADD COLUMN note {text}",
                         "CREATE INDEX IF NOT EXISTS measurements_by_metric ON measurements (metric)"),
    })
    return SCHEMA_VERSION + 1


def test_harness_store_migrate_upgrades_an_older_store_keeping_its_data(
        backend: Backend, next_schema_version: int, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture) -> None:
    with monkeypatch.context() as old_harness:  # a store written by the previous harness version
        old_harness.setattr(schema, "SCHEMA_VERSION", next_schema_version - 1)
        store = backend.open()
        try:
            store.create_run(_run())
            record_id = store.record_measurement(_measurement(_run().id))
        finally:
            store.close()

    with pytest.raises(StoreError, match="harness store migrate"):
        backend.open()
    assert _store_cli("store", "migrate", "--store", backend.url) == 0
    out = capsys.readouterr().out
    assert f"migrated from schema version {next_schema_version - 1} to {next_schema_version}" in out

    store = backend.open()  # now accepted, data intact, new column there
    try:
        assert store.schema_version == next_schema_version
        assert store.get_run(_run().id) == _run()
        assert [r.id for r in store.measurements(_run().id)] == [record_id]
    finally:
        store.close()
    assert backend.raw("SELECT note FROM runs", ()) == [(None,)]
    assert backend.raw("SELECT version FROM schema_info", ()) == [(next_schema_version,)]

    assert _store_cli("store", "migrate", "--store", backend.url) == 0  # a second time: nothing to do
    assert f"schema version {next_schema_version}, up to date" in capsys.readouterr().out


def test_a_fresh_store_is_created_at_the_current_version(backend: Backend, next_schema_version: int) -> None:
    store = backend.open()
    try:
        assert store.schema_version == next_schema_version and store.migrated_from is None
    finally:
        store.close()
    assert backend.raw("SELECT version FROM schema_info", ()) == [(next_schema_version,)]


def test_migrate_without_a_step_names_the_gap(backend: Backend) -> None:
    backend.open().close()
    backend.set_schema_version(SCHEMA_VERSION - 1)
    with pytest.raises(StoreError) as caught:
        backend.open(migrate=True)
    assert f"no migration from version {SCHEMA_VERSION - 1} to {SCHEMA_VERSION}" in str(caught.value)
    assert backend.raw("SELECT version FROM schema_info", ()) == [(SCHEMA_VERSION - 1,)]  # untouched


def test_harness_store_info(backend: Backend, capsys: pytest.CaptureFixture) -> None:
    store = backend.open()
    try:
        store.create_run(_run())
        store.record_measurement(_measurement(_run().id))
        url = store.url
    finally:
        store.close()
    assert _store_cli("store", "info", "--store", backend.url, "--json") == 0
    info = json.loads(capsys.readouterr().out)
    assert info == {"backend": backend.name, "url": url, "schema_version": SCHEMA_VERSION, "runs": 1,
                    "measurements": 1, "latest_run": _run().id}
    assert _store_cli("store", "info", "--store", backend.url) == 0
    assert "measurements:   1" in capsys.readouterr().out


# --- stores that are not ours, and bad URLs ------------------------------------------------------

def test_a_file_that_is_not_a_database_is_refused_naming_it(tmp_path: Path) -> None:
    path = tmp_path / "notes.sqlite"
    path.write_bytes(b"these are my notes, not a database\n" * 200)
    with pytest.raises(StoreError) as caught:
        open_store(path)
    assert str(path) in str(caught.value)
    assert path.read_bytes().startswith(b"these are my notes")  # left untouched


def test_another_database_without_our_schema_gets_it(backend: Backend) -> None:
    if backend.name == "sqlite":
        Path(backend.url).parent.mkdir(parents=True)
    backend.raw("CREATE TABLE unrelated (x INTEGER)", ())
    backend.raw("INSERT INTO unrelated (x) VALUES (7)", ())
    store = backend.open()
    try:
        store.create_run(_run())
        assert store.get_run(_run().id) is not None
    finally:
        store.close()
    assert backend.raw("SELECT x FROM unrelated", ()) == [(7,)]


def test_a_schema_info_table_that_is_not_ours_is_refused(backend: Backend) -> None:
    if backend.name == "sqlite":
        Path(backend.url).parent.mkdir(parents=True)
    backend.raw("CREATE TABLE schema_info (name TEXT)", ())
    with pytest.raises(StoreError) as caught:
        backend.open()
    message = str(caught.value)
    assert backend.where in message and "not a harness results store" in message
    assert "\n" not in message


def test_concurrent_first_opens_create_the_schema_once(pg_database: str) -> None:
    """Four orchestrators start at the same moment against an empty database."""
    code = textwrap.dedent(f"""
        from harness.store import open_store
        open_store({pg_database!r}).close()
        print("ok")
    """)
    procs = [subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True) for _ in range(4)]
    results = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0, 0], [err for _, err in results]
    assert _postgres_raw(pg_database)("SELECT version FROM schema_info", ()) == [(SCHEMA_VERSION,)]


def test_unreachable_postgres_server_is_a_clear_error() -> None:
    url = f"postgresql://harness@127.0.0.1:{free_port()}/results"
    with pytest.raises(StoreError) as caught:
        open_store(url)
    message = str(caught.value)
    assert message.startswith(f"cannot connect to results store {url}: ")
    assert "\n" not in message


@pytest.fixture(scope="module")
def pg_cluster_with_password() -> Iterator[PostgresCluster]:
    try:
        find_bindir()
    except LabError as exc:
        pytest.skip(str(exc))
    with private_cluster(password="S3cret-pw!") as cluster:
        cluster.create_database("results")
        yield cluster


def test_credentials_are_never_printed(pg_cluster_with_password: PostgresCluster,
                                       capsys: pytest.CaptureFixture) -> None:
    cluster = pg_cluster_with_password
    plain = cluster.url("results")
    with_password = plain.replace(f"{cluster.user}@", f"{cluster.user}:S3cret-pw!@")
    store = open_store(with_password)
    try:
        assert store.url == plain
        store.create_run(_run())
        with pytest.raises(StoreError) as caught:
            store.record_measurement(_measurement("never-created"))
        assert "S3cret" not in str(caught.value)
    finally:
        store.close()
    assert _store_cli("store", "info", "--store", with_password) == 0
    assert _store_cli("store", "migrate", "--store", with_password + "?sslmode=disable&password=S3cret-pw!") == 0
    out = capsys.readouterr().out
    assert plain in out and "S3cret" not in out

    for wrong in (plain, plain.replace(f"{cluster.user}@", f"{cluster.user}:wrong-pw@"),
                  plain + "?password=wrong-pw"):
        with pytest.raises(StoreError) as caught:
            open_store(wrong)
        assert "cannot connect" in str(caught.value) and "wrong-pw" not in str(caught.value)


@pytest.mark.parametrize("url, shown", [
    ("postgresql://u:pw@db.lab:5432/results", "postgresql://u@db.lab:5432/results"),
    ("postgresql://u@db.lab/results?sslmode=require&password=pw", "postgresql://u@db.lab/results?sslmode=require"),
    ("postgres://u:p%40ss@h1:5432,h2:5433/r", "postgres://u@h1:5432,h2:5433/r"),
    ("postgresql://db.lab/results", "postgresql://db.lab/results"),
])
def test_redact_url(url: str, shown: str) -> None:
    assert redact_url(url) == shown


@pytest.mark.parametrize("url, scheme", [("mysql://host/db", "mysql"), ("mongodb://u:pw@host/db", "mongodb")])
def test_unknown_url_scheme(url: str, scheme: str) -> None:
    with pytest.raises(StoreError) as caught:
        open_store(url)
    message = str(caught.value)
    assert f"'{scheme}'" in message and "not supported" in message and "postgresql://" in message
    assert ":pw@" not in message


def test_sqlite_url_with_two_slashes_is_explained() -> None:
    with pytest.raises(StoreError, match="sqlite:///"):
        open_store("sqlite://results.sqlite")


def test_every_backend_creates_the_same_tables_and_columns(backend: Backend) -> None:
    backend.open().close()
    if backend.name == "sqlite":
        tables = [r[0] for r in backend.raw("SELECT name FROM sqlite_master WHERE type = 'table' "
                                            "AND name NOT LIKE 'sqlite_%' ORDER BY name", ())]
        columns = {t: [r[1] for r in backend.raw(f"PRAGMA table_info({t})", ())] for t in tables}
    else:
        tables = [r[0] for r in backend.raw("SELECT table_name FROM information_schema.tables "
                                            "WHERE table_schema = current_schema() ORDER BY table_name", ())]
        columns = {t: [r[0] for r in backend.raw("SELECT column_name FROM information_schema.columns WHERE "
                                                 "table_name = ? ORDER BY ordinal_position", (t,))] for t in tables}
    assert columns == {
        "environments": ["run_id", "target", "data"],
        "measurements": ["id", "run_id", "target", "model", "variant", "metric", "unit", "status", "summary",
                         "meta", "samples", "samples_unit", "recorded_at"],
        "runs": ["id", "label", "started_at", "ended_at", "status", "host", "harness_version", "git_sha",
                 "git_dirty", "options"],
        "schema_info": ["version"],
    }
