"""A single arm timed until its percentiles are precise (agent/precise.py): the MLPerf floor,
the order-statistic interval, and the stop rules, on real agent processes and in-process."""

from __future__ import annotations

import random

from helpers.agent_jobs import run_agent_job

from harness.agent import PROTOCOL_VERSION
from harness.agent.precise import minimum_count, percentile_halfwidth, timed_until_precise


def test_the_floor_is_mlperfs_minimum_count_for_each_percentile() -> None:
    assert minimum_count(90) == 64 and minimum_count(99) == 662
    assert minimum_count(50) == 1 and 64 < minimum_count(95) < 662


def test_the_interval_narrows_with_more_samples_and_is_relative_to_the_percentile() -> None:
    rng = random.Random(1)
    few = sorted(int(1e6 * rng.lognormvariate(0, 0.1)) for _ in range(100))
    many = sorted(int(1e6 * rng.lognormvariate(0, 0.1)) for _ in range(10000))
    assert percentile_halfwidth(many, 50) < percentile_halfwidth(few, 50) / 5
    assert percentile_halfwidth(many, 99) > percentile_halfwidth(many, 50)
    scaled = [10 * x for x in many]
    assert abs(percentile_halfwidth(scaled, 50) - percentile_halfwidth(many, 50)) < 1e-9


def test_constant_work_stops_at_the_precision_once_the_floor_is_timed() -> None:
    settings = {"precision": 0.5, "percentiles": [50, 99], "min_iterations": 10, "min_duration_s": 0.0,
                "max_duration_s": 30.0, "max_iterations": 10**6}
    out = timed_until_precise(lambda: None, settings)
    assert out["stopped_by"] == "precision" and len(out["latency_ns"]) >= 662
    assert set(out["halfwidths"]) == {"p50", "p99"} and max(out["halfwidths"].values()) <= 0.5


def test_an_unreachable_precision_stops_at_max_iterations_or_max_duration() -> None:
    settings = {"precision": 1e-12, "percentiles": [50], "min_iterations": 10, "min_duration_s": 0.0,
                "max_duration_s": 30.0, "max_iterations": 5000}
    rng = random.Random(2)
    out = timed_until_precise(lambda: sum(range(rng.randrange(1, 500))), settings)
    assert out["stopped_by"] == "max-iterations" and len(out["latency_ns"]) == 5000
    settings.update(max_iterations=10**9, max_duration_s=0.3)
    out = timed_until_precise(lambda: sum(range(rng.randrange(1, 500))), settings)
    assert out["stopped_by"] == "max-duration"


def test_a_latency_job_with_precision_says_what_stopped_it() -> None:
    job = {"protocol": PROTOCOL_VERSION, "job_id": "p", "runtime": {"name": "noop", "options": {"spin_us": 50.0}},
           "model": {"files": {}}, "input": {"shape": [1]},
           "latency": {"warmup_iterations": 2, "warmup_duration_s": 0, "min_iterations": 20, "min_duration_s": 0,
                       "max_duration_s": 20, "precision": 0.2, "percentiles": [50, 90]}}
    code, events, stderr = run_agent_job(job)
    assert code == 0, stderr
    result = next(e for e in events if e["event"] == "result")
    assert result["stopped_by"] in ("precision", "max-duration") and result["precision"] == 0.2
    assert result["iterations"] >= 64, "p90 needs MLPerf's 64 at least"
