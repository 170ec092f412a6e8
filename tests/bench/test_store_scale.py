"""How far the results store scales, for both backends: SQLite (a file) and PostgreSQL (the
session's private cluster, ``pg_cluster`` of tests/conftest.py, on a loopback port, default
durability settings).

- Ingest: measurements/s written the way a session writes them, one committed transaction
  per measurement (a crash loses nothing): one writer, then four writer processes at once
  (four orchestrators of a lab; SQLite serialises them on its file lock, PostgreSQL does not).
- Report query at 100,000 stored measurements: 100 nightly runs of 1,000 measurements each
  (10 targets x 50 variants x latency + memory; latency rows carry 100 raw samples), bulk
  loaded. Timed: `runs(label)`, `measurements(run)` of one run, `build_run_report_data` of
  that run (what `harness report` does before rendering: mostly matplotlib), and the trend
  of one target/variant's p50 across all 100 runs, two ways: reading every run's
  measurements (all 100k rows) and `store.history()` (one query).

Figures go to extra_info and are printed; no timing is asserted (this machine is shared).
The numbers quoted in docs/lab-scale.md come from this file.
"""

from __future__ import annotations

import dataclasses
import statistics
import subprocess
import sys
import textwrap
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from harness.records import MeasurementRecord, RunInfo
from harness.report.build import build_run_report_data
from harness.store import Store, open_store

REPO = Path(__file__).resolve().parents[2]
INGEST_RECORDS = 1000  # one writer
INGEST_PER_WRITER = 300  # x 4 writer processes
INGEST_SAMPLES = 200
RUNS = 100
TARGETS = 10
VARIANTS = 50  # x 2 metrics x TARGETS = 1,000 measurements a run
QUERY_SAMPLES = 100
QUERY_ROUNDS = 5


def _latency(run_id: str, target: str, variant: int, samples: int, seed: int) -> MeasurementRecord:
    base = 2_000_000 + 10_000 * variant + 997 * (seed % 13)
    values = tuple(base + (i * 7919 + seed) % 50_000 for i in range(samples))
    ms = sorted(v / 1e6 for v in values)
    p = lambda q: ms[min(len(ms) - 1, int(q * len(ms)))]  # noqa: E731
    summary = {"n": samples, "mean": statistics.fmean(ms), "std": statistics.pstdev(ms), "min": ms[0], "max": ms[-1],
               "p50": p(0.5), "p50_ci": [p(0.45), p(0.55)], "p90": p(0.9), "p90_ci": [p(0.85), p(0.95)],
               "p95": p(0.95), "p95_ci": [p(0.9), p(0.97)], "p99": p(0.99), "p99_ci": [p(0.97), ms[-1]],
               "iqr": p(0.75) - p(0.25), "cv": 0.01, "robust_cv": 0.008, "outliers": 0,
               "throughput": 1000 / p(0.5), "drift": 1.0, "warnings": [], "load_ms": 12.5,
               "first_inference_ms": 4.1, "import_ms": 310.2, "peak_rss_bytes": 150_000_000 + variant}
    return MeasurementRecord(run_id=run_id, target=target, model=f"model{variant // 5}", variant=f"v{variant % 5}",
                             metric="latency", unit="ms", status="ok", summary=summary, meta=_meta(variant),
                             samples=values, samples_unit="ns", recorded_at="2026-01-01T00:00:00.000+00:00")


def _memory(run_id: str, target: str, variant: int) -> MeasurementRecord:
    summary = {"peak_rss_bytes": 150_000_000 + variant, "import_peak_bytes": 90_000_000,
               "load_delta_bytes": 40_000_000, "inference_delta_bytes": 2_000_000, "model_file_bytes": 9_000_000,
               "memory_limit_bytes": None}
    return MeasurementRecord(run_id=run_id, target=target, model=f"model{variant // 5}", variant=f"v{variant % 5}",
                             metric="memory", unit="bytes", status="ok", summary=summary, meta=_meta(variant),
                             recorded_at="2026-01-01T00:00:00.000+00:00")


def _meta(variant: int) -> dict:
    return {"record_version": 1, "kind": "fp32" if variant % 5 == 0 else "int8-ptq", "format": "paddle",
            "runtime": "paddle-inference", "runtime_options": {"threads": 1},
            "baseline": None if variant % 5 == 0 else "v0",
            "input": {"name": "x", "shape": [1, 3, 224, 224], "dtype": "float32"},
            "budget": {"target_latency_s": 0.05, "max_memory_bytes": 2**31, "max_power_w": None, "statistic": "p90",
                       "source": "suites/models.yaml: models.m.budgets.lab"},
            "orchestrator": {"pid": 4242, "worker": "gw0"}, "files": {"model": "0" * 64, "params": "1" * 64},
            "runtime_info": {"precision": "fp32", "name": "paddle-inference", "version": "3.3.1"},
            "agent": {"version": "0.1.0", "python": "3.11.7", "clock": "perf_counter_ns"},
            "iterations": QUERY_SAMPLES, "warmup_iterations": 10, "stopped_by": "min-reached"}


def _run(run_id: str, day: int) -> RunInfo:
    started = datetime(2026, 1, 1, 2, 0, tzinfo=UTC) + timedelta(days=day)
    return RunInfo(id=run_id, label="nightly", started_at=started.isoformat(timespec="milliseconds"),
                   host="runner", harness_version="0.1.0", options={"target_spec": "all"})


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'bench.sqlite'}"
    return request.getfixturevalue("pg_cluster").create_database(f"bench_{uuid.uuid4().hex[:10]}")


def _backend(url: str) -> str:
    return "sqlite" if url.startswith("sqlite") else "postgresql"


# --- ingest ------------------------------------------------------------------------------------

WRITER = textwrap.dedent("""
    import sys, time
    sys.path.insert(0, {bench!r})
    from test_store_scale import _latency
    from harness.records import RunInfo
    from harness.store import open_store
    url, writer, count, samples = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
    store = open_store(url)
    run_id = f"ingest-{{writer}}"
    store.create_run(RunInfo(id=run_id, label="ingest", started_at="2026-03-01T00:00:00+00:00", host="h",
                             harness_version="0.1.0"))
    records = [_latency(run_id, f"t{{i % 10}}", i % 50, samples, i) for i in range(count)]
    print("ready", flush=True)
    sys.stdin.readline()
    for record in records:
        store.record_measurement(record)
    store.close()
""")


def test_ingest_rate(benchmark, store_url: str) -> None:
    backend = _backend(store_url)
    store = open_store(store_url)
    run = RunInfo(id="ingest", label="ingest", started_at="2026-03-01T00:00:00+00:00", host="h",
                  harness_version="0.1.0")
    store.create_run(run)
    records = [_latency(run.id, f"t{i % 10}", i % 50, INGEST_SAMPLES, i) for i in range(INGEST_RECORDS)]

    def ingest() -> float:
        started = time.perf_counter()
        for record in records:
            store.record_measurement(record)
        return time.perf_counter() - started

    try:
        elapsed = benchmark.pedantic(ingest, rounds=1, iterations=1)
        assert len(store.measurements(run.id)) == INGEST_RECORDS
    finally:
        store.close()
    single_rate = INGEST_RECORDS / elapsed

    writers = [subprocess.Popen([sys.executable, "-c", WRITER.format(bench=str(Path(__file__).parent)), store_url,
                                 str(i), str(INGEST_PER_WRITER), str(INGEST_SAMPLES)], cwd=REPO, text=True,
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
               for i in range(4)]
    try:
        for writer in writers:
            assert writer.stdout.readline().strip() == "ready", writer.stderr.read()
        started = time.perf_counter()
        for writer in writers:
            writer.stdin.write("go\n")
            writer.stdin.flush()
        errors = [writer.communicate(timeout=600)[1] for writer in writers]
        parallel_elapsed = time.perf_counter() - started
    finally:
        for writer in writers:
            if writer.poll() is None:
                writer.kill()
                writer.wait()
    assert [w.returncode for w in writers] == [0] * 4, errors
    parallel_rate = 4 * INGEST_PER_WRITER / parallel_elapsed
    check = open_store(store_url)
    try:
        assert check.info()["measurements"] == INGEST_RECORDS + 4 * INGEST_PER_WRITER
    finally:
        check.close()

    benchmark.extra_info.update({
        "backend": backend, "samples_per_measurement": INGEST_SAMPLES,
        "one_writer_measurements_per_s": round(single_rate, 1),
        "one_writer_ms_per_measurement": round(1e3 / single_rate, 3),
        "four_writers_measurements_per_s": round(parallel_rate, 1),
    })
    print(f"\n{backend}: ingest {single_rate:.0f} measurements/s with one writer "
          f"({1e3 / single_rate:.2f} ms each, {INGEST_SAMPLES} samples), {parallel_rate:.0f}/s with 4 writer processes")


# --- report queries at 100,000 stored measurements ----------------------------------------------

def _populate(store: Store) -> list[str]:
    """RUNS runs x 1,000 measurements, one transaction per run."""
    run_ids = []
    template = []
    for t in range(TARGETS):
        for v in range(VARIANTS):
            template.append(_latency("X", f"board-{t:02d}", v, QUERY_SAMPLES, t * 100 + v))
            template.append(_memory("X", f"board-{t:02d}", v))
    for day in range(RUNS):
        run = _run(f"nightly-{day:03d}", day + 1)
        store.create_run(run)
        store.record_environment(run.id, "board-00", {"declared": {"kind": "x86-cpu"}, "device": {"python": "3.11"}})
        store.record_measurements([dataclasses.replace(r, run_id=run.id) for r in template])
        run_ids.append(run.id)
    return run_ids


def _median_s(fn, rounds: int = QUERY_ROUNDS) -> float:
    times = []
    for _ in range(rounds):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def _size_mb(url: str) -> float:
    """What the store takes on disk (file + WAL, or the database)."""
    if url.startswith("sqlite:///"):
        path = Path(url[len("sqlite:///"):])
        return sum(p.stat().st_size for p in (path, Path(f"{path}-wal")) if p.exists()) / 2**20
    import psycopg

    with psycopg.connect(url) as db:
        return db.execute("SELECT pg_database_size(current_database())").fetchone()[0] / 2**20


def test_report_query_at_100k_measurements(benchmark, store_url: str) -> None:
    backend = _backend(store_url)
    store = open_store(store_url)
    try:
        started = time.perf_counter()
        run_ids = _populate(store)
        load_s = time.perf_counter() - started
        assert store.info()["measurements"] == RUNS * TARGETS * VARIANTS * 2 == 100_000
        newest = run_ids[-1]

        runs_s = _median_s(lambda: store.runs(label="nightly", limit=RUNS))
        measurements_s = _median_s(lambda: store.measurements(newest))
        assert len(store.measurements(newest)) == 1000

        timed: dict[str, float] = {}

        def report():
            started = time.perf_counter()
            data = build_run_report_data(store, newest)
            timed["report_s"] = time.perf_counter() - started
            return data

        data = benchmark.pedantic(report, rounds=1, iterations=1, warmup_rounds=0)
        assert len(data["targets"]) == TARGETS
        report_s = timed["report_s"]

        def trend():
            return [next(r.summary["p50"] for r in store.measurements(run.id)
                         if r.target == "board-03" and r.variant_id == "model2-v1" and r.metric == "latency")
                    for run in store.runs(label="nightly", limit=RUNS)]

        def trend_by_history():
            return [r.summary["p50"] for r in store.history("board-03", "model2", "v1", "latency", label="nightly",
                                                            limit=RUNS)]

        trend_s = _median_s(trend, rounds=1)
        history_s = _median_s(trend_by_history)
        assert trend_by_history() == trend()
    finally:
        store.close()

    benchmark.extra_info.update({
        "backend": backend, "stored_measurements": 100_000, "runs": RUNS, "measurements_per_run": 1000,
        "raw_samples_per_latency_row": QUERY_SAMPLES,
        "size_mb": round(_size_mb(store_url), 1),
        "bulk_load_s": round(load_s, 2), "bulk_load_measurements_per_s": round(100_000 / load_s),
        "runs_by_label_ms": round(runs_s * 1e3, 2),
        "measurements_of_one_run_ms": round(measurements_s * 1e3, 1),
        "build_run_report_data_s": round(report_s, 2),
        "trend_over_100_runs_s": round(trend_s, 2),
        "trend_by_history_ms": round(history_s * 1e3, 1),
    })
    print(f"\n{backend} @100k measurements ({benchmark.extra_info['size_mb']:.0f} MB): bulk load {load_s:.1f}s ({100_000 / load_s:.0f}/s); runs(label) "
          f"{runs_s * 1e3:.1f} ms; measurements(one run of 1000) {measurements_s * 1e3:.0f} ms; "
          f"build_run_report_data {report_s:.2f} s; trend of one variant over {RUNS} runs: reading every run "
          f"(all 100k rows) {trend_s:.2f} s, store.history() {history_s * 1e3:.0f} ms")
