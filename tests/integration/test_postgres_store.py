"""The PostgreSQL store as a lab uses it: a real server (the session's private cluster,
``pg_cluster`` of tests/conftest.py: initdb + pg_ctl on a loopback port), several
orchestrator processes writing at once, the pytest plugin writing to it, and reports and
comparisons read from it exactly as from SQLite.
"""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
import textwrap
import uuid
from pathlib import Path
from typing import Any

import pytest
from helpers.project import copy_suites, local_target, write_target
from helpers.suites import run_suites

from harness.analysis.budgets import compare_to_baselines
from harness.analysis.record_verdict import record_verdict
from harness.analysis.regression import decide, pair_runs
from harness.lab.postgres import PostgresCluster
from harness.report.build import build_run_report_data
from harness.store import Store, open_store

REPO = Path(__file__).resolve().parents[2]
WRITERS = 4
PER_WRITER = 300


def _fresh_database(cluster: PostgresCluster) -> str:
    return cluster.create_database(f"it_{uuid.uuid4().hex[:12]}")


# --- concurrent writers ----------------------------------------------------------------------

# One orchestrator: opens the store, says "ready", waits for "go" on stdin (so all four write
# at the same moment), then records its own run measurement by measurement, as a session does,
# with a short pause after each (a job's time: SQLite's lock is not fair, so writers inserting
# back to back could take turns run by run instead of interleaving).
WRITER = textwrap.dedent("""
    import sys
    import time
    from harness.records import MeasurementRecord, RunInfo
    from harness.store import open_store
    url, writer, count = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    run_id = f"writer-{writer}"
    store = open_store(url)
    print("ready", flush=True)
    assert sys.stdin.readline().strip() == "go"
    store.create_run(RunInfo(id=run_id, label="concurrent", started_at=f"2026-01-01T00:00:0{writer}+00:00",
                             host=f"runner-{writer}", harness_version="0.1.0", options={"writer": writer}))
    for seq in range(count):
        target = f"board-{writer}-{seq % 4}"
        store.record_measurement(MeasurementRecord(
            run_id=run_id, target=target, model="m", variant=f"v{seq}", metric="latency", unit="ms",
            status="ok", summary={"p50": writer + seq / 1000}, meta={"writer": writer, "seq": seq},
            samples=tuple(range(writer * 1000, writer * 1000 + 50)), samples_unit="ns"))
        if seq < 4:  # each target's environment, once
            store.record_environment(run_id, target, {"writer": writer})
        time.sleep(0.005)
    store.finish_run(run_id, "2026-01-01T01:00:00+00:00", "complete")
    store.close()
    print("done", flush=True)
""")


@pytest.mark.parametrize("backend", ["postgresql", "sqlite"])
def test_concurrent_writer_processes_lose_nothing_and_never_mix_runs(backend: str, request: pytest.FixtureRequest,
                                                                     tmp_path: Path) -> None:
    if backend == "postgresql":
        url = _fresh_database(request.getfixturevalue("pg_cluster"))
    else:
        url = f"sqlite:///{tmp_path / 'shared.sqlite'}"
    writers = [subprocess.Popen([sys.executable, "-c", WRITER, url, str(i), str(PER_WRITER)], cwd=REPO,
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
               for i in range(WRITERS)]
    try:
        for writer in writers:  # every store open (and the schema created once) before anyone writes
            assert writer.stdout.readline().strip() == "ready", writer.stderr.read()
        for writer in writers:
            writer.stdin.write("go\n")
            writer.stdin.flush()
        outcomes = [writer.communicate(timeout=300) for writer in writers]
    finally:
        for writer in writers:
            if writer.poll() is None:
                writer.kill()
                writer.wait()
    assert [w.returncode for w in writers] == [0] * WRITERS, [err[-2000:] for _, err in outcomes]

    store = open_store(url)
    try:
        runs = {run.id: run for run in store.runs(label="concurrent")}
        assert sorted(runs) == [f"writer-{i}" for i in range(WRITERS)]
        all_ids: list[int] = []
        spans = []
        for i in range(WRITERS):
            run = runs[f"writer-{i}"]
            assert (run.status, run.host, dict(run.options)) == ("complete", f"runner-{i}", {"writer": i})
            records = store.measurements(run.id)
            # nothing lost, nothing duplicated, nothing from another run, in the order written
            assert [r.meta["seq"] for r in records] == list(range(PER_WRITER))
            assert {r.meta["writer"] for r in records} == {i}
            assert all(r.run_id == run.id and r.target.startswith(f"board-{i}-") for r in records)
            assert all(r.samples == tuple(range(i * 1000, i * 1000 + 50)) for r in records)
            assert store.environments(run.id) == {f"board-{i}-{k}": {"writer": i} for k in range(4)}
            ids = [r.id for r in records]
            all_ids += ids
            spans.append((min(ids), max(ids)))
        assert len(set(all_ids)) == WRITERS * PER_WRITER
        assert store.info()["measurements"] == WRITERS * PER_WRITER
    finally:
        store.close()
    spans.sort()
    overlapping = sum(1 for a, b in zip(spans, spans[1:]) if b[0] < a[1])
    assert overlapping >= 1, f"the writers did not overlap in time ({spans}): the test proved nothing"


# --- the same data read from both backends ------------------------------------------------------

MANIFEST = """\
version: 1
defaults:
  latency: {warmup_iterations: 2, warmup_duration: 0s, min_iterations: 40, min_duration: 20ms, max_duration: 5s}
models:
  empty:
    input: {name: x, shape: [1], dtype: float32}
    budgets:
      alpha: {target_latency: 10s, max_memory: 4GB}
      beta: {target_latency: 1ns}
    variants:
      a: {kind: fp32, format: none, runtime: noop, files: {}}
      b: {kind: other, format: none, runtime: noop, files: {}, baseline: a}
  unbuilt:  # its files were never built: an error row in the store, shown in the report
    input: {name: x, shape: [1, 3, 8, 8], dtype: float32}
    variants:
      fp32: {kind: fp32, format: paddle, runtime: paddle-inference,
             files: {model: zoo/unbuilt.pdmodel, params: zoo/unbuilt.pdiparams}}
"""


def _project(root: Path) -> Path:
    """Two lab boards (local transport, estimated power) and the latency, memory and power suites."""
    for name in ("alpha", "beta"):
        write_target(root / "targets", local_target(
            name, description=f"lab board {name}", workdir=root / "work" / name, python=sys.executable,
            runtimes={"paddle-inference": sys.executable}, power={"sensor": "estimate"}, tags=["lab"],
            limits={"job_timeout": "60s"}))
    copy_suites(root, ("test_latency.py", "test_memory.py", "test_power.py"))
    (root / "suites" / "models.yaml").write_text(MANIFEST)
    return root


def _suite_run(project: Path, store: str, label: str, *extra: str) -> str:
    done = run_suites(["suites", "--target=all", f"--store={store}", f"--run-label={label}",
                       "-k", "not (test_power and beta)", *extra],  # power takes ~2 s a test: one target is enough
                      cwd=project, quiet=("-q",))
    assert done.returncode in (0, 1), done.stdout[-3000:] + done.stderr[-3000:]  # 1: budgets missed (on purpose)
    return done.stdout


def _copy_run(source: Store, destination: Store, run_id: str) -> None:
    destination.create_run(source.get_run(run_id))
    for target, data in source.environments(run_id).items():
        destination.record_environment(run_id, target, data)
    for record in source.measurements(run_id):
        destination.record_measurement(dataclasses.replace(record, id=None))


def _without_ids(value: Any) -> Any:
    """Measurement ids (and store URLs) are the only things allowed to differ."""
    if isinstance(value, dict):
        return {k: _without_ids(v) for k, v in value.items() if k not in ("id", "url", "store_url")}
    if isinstance(value, (list, tuple)):
        return [_without_ids(v) for v in value]
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return _without_ids({f.name: getattr(value, f.name) for f in dataclasses.fields(value)})
    return value


def _comparisons(store: Store, baseline_id: str, candidate_id: str) -> dict[str, Any]:
    baseline, candidate = store.measurements(baseline_id), store.measurements(candidate_id)
    pairs, missing = pair_runs(baseline, candidate, metric=None)
    return {
        "decisions": [(p.key, decide(p.reference.samples, p.candidate.samples, resamples=200)) for p in pairs],
        "missing": missing,
        "baselines": [compare_to_baselines(records) for records in (baseline, candidate)],
        "verdicts": [record_verdict(r) for r in (*baseline, *candidate)],
    }


def test_reports_and_comparisons_read_identically_from_both_backends(pg_cluster: PostgresCluster,
                                                                    tmp_path: Path) -> None:
    """A release run written by the plugin to SQLite, a nightly run written by the plugin
    (two pytest-xdist workers) straight to PostgreSQL; each copied into the other store.
    Then both stores hold the same data and must give the same reports and comparisons."""
    project = _project(tmp_path / "project")
    sqlite_url = f"sqlite:///{tmp_path / 'results.sqlite'}"
    pg_url = _fresh_database(pg_cluster)

    _suite_run(project, sqlite_url, "release-1.0", "--no-report")
    output = _suite_run(project, pg_url, "nightly", "-n", "2", f"--report-dir={tmp_path / 'reports'}")
    assert f"results store: {pg_url}" in output

    sqlite_store, pg_store = open_store(sqlite_url), open_store(pg_url)
    try:
        (release,) = sqlite_store.runs()
        (nightly,) = pg_store.runs()
        assert (release.label, nightly.label) == ("release-1.0", "nightly")
        assert nightly.status == "complete"  # the xdist controller finished the run in PostgreSQL
        assert (tmp_path / "reports" / nightly.id / "index.html").is_file()  # ... and rendered it from there
        records = pg_store.measurements(nightly.id)
        assert {r.metric for r in records} == {"latency", "memory", "power"}
        assert {r.status for r in records} == {"ok", "error"}  # the unbuilt variant is recorded as an error
        assert len({r.meta["orchestrator"]["worker"] for r in records}) == 2  # both workers wrote

        _copy_run(sqlite_store, pg_store, release.id)
        _copy_run(pg_store, sqlite_store, nightly.id)
        assert [r.id for r in sqlite_store.runs()] == [r.id for r in pg_store.runs()]
        assert [r.id for r in sqlite_store.runs(label="nightly")] == [nightly.id]

        for run_id in (release.id, nightly.id):
            assert sqlite_store.get_run(run_id) == pg_store.get_run(run_id)
            assert _without_ids(sqlite_store.measurements(run_id)) == _without_ids(pg_store.measurements(run_id))
            assert sqlite_store.environments(run_id) == pg_store.environments(run_id)
            from_sqlite = build_run_report_data(sqlite_store, run_id)
            from_pg = build_run_report_data(pg_store, run_id)
            assert from_sqlite["targets"] and from_sqlite["counts"]
            assert json.dumps(_without_ids(from_sqlite), sort_keys=True, default=str) == \
                json.dumps(_without_ids(from_pg), sort_keys=True, default=str)

        comparisons = [_comparisons(store, release.id, nightly.id) for store in (sqlite_store, pg_store)]
        assert comparisons[0]["decisions"], "nothing was compared"
        assert repr(_without_ids(comparisons[0])) == repr(_without_ids(comparisons[1]))
    finally:
        sqlite_store.close()
        pg_store.close()
