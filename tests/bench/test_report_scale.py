"""Rendering scales: a run of 10,000 measurements (synthetic records in a temp SQLite store)
renders its report, figures included, in a few seconds (goals: 2 s, and 4 s with the
comparison against a baseline run; the figures are recorded, not asserted: this machine is
shared, and `make test` runs each bench once with --benchmark-disable).

10 targets x 50 models x 5 variants = 2,500 (target, variant) rows, each with latency (500
raw samples), memory, fidelity and power records: 10,000 measurements. Measured twice: the
run report alone, and with the comparison against a baseline run of the same shape (2,500
latency and 2,500 power `decide` calls, 5,000 single-value ones).
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest

from harness.records import MeasurementRecord, RunInfo
from harness.report.build import render_run_report
from harness.store import open_store

TARGETS, MODELS, VARIANTS, SAMPLES = 10, 50, ("fp32", "int8", "pruned", "onnx", "lite"), 500
MEASUREMENTS = TARGETS * MODELS * len(VARIANTS) * 4
DIVERSITY = {"meaningful": True, "inputs": 16, "distinct_top1": 12}


def write_run(store, run_id: str, seed: int, started: str) -> None:
    rng = np.random.default_rng(seed)
    store.create_run(RunInfo(id=run_id, label="scale", started_at=started, host="bench", harness_version="0.1.0",
                             git_sha="0" * 40, git_dirty=False, status="complete", ended_at=started))
    records = []  # written in one transaction (record_measurements), not 10,000
    for t in range(TARGETS):
        target = f"board{t:02d}"
        store.record_environment(run_id, target, {"declared": {"kind": "arm-cortex"}, "device": {"os": "Linux"}})
        for m in range(MODELS):
            for v, variant in enumerate(VARIANTS):
                p50 = 1e6 * (1 + m * 0.1) * (1 - 0.1 * v)
                samples = tuple(int(x) for x in p50 * rng.lognormal(0, 0.03, SAMPLES))
                meta = {"baseline": None if variant == "fp32" else "fp32", "runtime": "paddle-lite",
                        "budget": {"target_latency_s": 0.01, "max_memory_bytes": 2**30, "statistic": "p90",
                                   "source": "bench"},
                        "files": {"model": {"name": "m.nb", "bytes": int(4e6 / (v + 1)), "sha256": "x"}}}
                base = dict(run_id=run_id, target=target, model=f"model{m:02d}", variant=variant, status="ok")
                ordered = sorted(samples)
                records.append(MeasurementRecord(
                    **base, metric="latency", unit="ms", meta=meta, samples=samples, samples_unit="ns",
                    summary={"n": SAMPLES, "p50": ordered[SAMPLES // 2] / 1e6, "p90": ordered[int(SAMPLES * .9)] / 1e6,
                             "p99": ordered[int(SAMPLES * .99)] / 1e6, "mean": float(np.mean(samples)) / 1e6,
                             "throughput": 1e9 / float(np.mean(samples)), "warnings": []}))
                records.append(MeasurementRecord(
                    **base, metric="memory", unit="bytes", meta=meta,
                    summary={"peak_rss_bytes": int(2e8 + m * 1e6), "import_peak_bytes": int(1e8),
                             "load_delta_bytes": int(5e7), "inference_delta_bytes": int(5e7)}))
                records.append(MeasurementRecord(
                    **base, metric="fidelity", unit="ratio", meta=meta,
                    summary={"baseline_only": True, "baseline": DIVERSITY} if variant == "fp32" else
                    {"comparable": True, "baseline": DIVERSITY, "top1_agreement": 1.0 - 0.01 * v,
                     "relative_error_mean": 0.01 * v, "inputs": 16}))
                timeline = [[i * 100, 5.0 + (1.0 if 15 <= i < 45 else 0.0) + 0.05 * rng.standard_normal()]
                            for i in range(50)]
                records.append(MeasurementRecord(
                    **base, metric="power", unit="W",
                    meta={**meta, "power_timeline": timeline, "power_markers": {"load_begin": 1500, "load_end": 4400}},
                    summary={"status": "ok", "load_mean_w": 6.0, "idle_mean_w": 5.0, "energy_per_inference_mj": 1.0}))
    store.record_measurements(records)


@pytest.fixture(scope="module")
def big_store(tmp_path_factory):
    path = tmp_path_factory.mktemp("scale") / "results.sqlite"
    store = open_store(path)
    write_run(store, "base", 1, "2026-11-21T00:00:00+00:00")
    write_run(store, "cand", 2, "2026-11-22T00:00:00+00:00")
    assert len(store.measurements("cand")) == MEASUREMENTS == 10_000
    yield store
    store.close()


def test_render_10k_measurements(benchmark, big_store, tmp_path: Path) -> None:
    started = time.perf_counter()
    path = benchmark.pedantic(render_run_report, args=(big_store, "cand", tmp_path), rounds=1, iterations=1)
    elapsed = time.perf_counter() - started
    html = path.read_text(encoding="utf-8")
    assert html.count('<tr data-variant="') == TARGETS * MODELS * len(VARIANTS)  # the detail table: every row
    assert html.count('class="answer-row') == TARGETS * MODELS * len(VARIANTS)  # and the answer at the top
    assert html.count('class="figure tradeoff"') == html.count('class="figure ecdf"') == TARGETS * MODELS
    assert html.count('<figure class="panel"') == 24 * TARGETS  # power: the first 24 variants per target
    assert "<img " not in html  # every figure inline SVG: nothing rasterised
    print(f"\n10,000 measurements: run report rendered in {elapsed:.2f} s ({len(html) / 1e6:.1f} MB of HTML)")
    assert elapsed < 60


def test_render_10k_measurements_with_baseline_comparison(benchmark, big_store, tmp_path: Path) -> None:
    started = time.perf_counter()
    path = benchmark.pedantic(render_run_report, args=(big_store, "cand", tmp_path), kwargs={"reference_spec": "base"},
                              rounds=1, iterations=1)
    elapsed = time.perf_counter() - started
    html = path.read_text(encoding="utf-8")
    assert html.count('class="vs-baseline-run"') == TARGETS
    assert html.count('data-metric="latency" data-status=') == TARGETS * MODELS * len(VARIANTS)
    print(f"\n10,000 measurements vs a 10,000-measurement baseline run: rendered in {elapsed:.2f} s")
    assert elapsed < 120
