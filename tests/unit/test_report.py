"""The reports render from the store alone and escape everything that came from a device: the run
report (with a baseline run), summary.md, benchmark.json, junit.xml, the trend and the sign-off."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest
from helpers.records import measurement, run_info

from harness.cli import main as harness_main
from harness.errors import HarnessError
from harness.report.build import render_run_report
from harness.report.exports import benchmark_stats, summary_markdown
from harness.report.signoff import render_signoff_report
from harness.report.trend import build_trend_data, render_trend_report
from harness.store import open_store

HOSTILE = '<script>alert("device")</script>'


def _store_with_run(tmp_path: Path):
    store = open_store(tmp_path / "r.sqlite")
    store.create_run(run_info("run-1", started_at="2026-11-22T00:00:00+00:00"))
    store.record_environment("run-1", "local", {"declared": {"kind": "local"},
                                                "device": {"os": HOSTILE, "cpu_model": HOSTILE}})
    samples = tuple(range(1_000_000, 1_100_000, 1000))  # 1.0 .. 1.099 ms
    store.record_measurement(measurement(
        "run-1", summary={"n": len(samples), "p50": 1.05, "p90": 1.09, "mean": 1.05, "warnings": [HOSTILE]},
        meta={"baseline": None, "budget": {"target_latency_s": 0.002, "statistic": "p90", "source": "m.yaml"},
              "runtime_info": {"version": HOSTILE}}, samples=samples))
    store.record_measurement(measurement(
        "run-1", variant="int8", status="error", meta={"baseline": "fp32", "error": f"local: model-load: {HOSTILE}"}))
    return store


def test_device_strings_are_escaped(tmp_path: Path) -> None:
    store = _store_with_run(tmp_path)
    html = render_run_report(store, "run-1", tmp_path / "reports").read_text()
    assert html.count("<script") == 1 and "<script>// The run page's table" in html  # only the page's own
    assert "&lt;script&gt;alert(" in html
    assert html.count("&lt;script&gt;") >= 4  # os, cpu model, warning, runtime version, error


def test_report_reads_only_the_store_and_marks_incomplete_runs(tmp_path: Path) -> None:
    store = _store_with_run(tmp_path)  # never finished: status is still "running"
    path = render_run_report(store, "run-1", tmp_path / "reports")
    html = path.read_text()
    assert 'id="incomplete"' in html and "running" in html
    data = json.loads((path.parent / "report.json").read_text())
    assert data["complete"] is False
    rows = {row["variant_id"]: row for row in data["targets"][0]["rows"]}
    assert rows["m-fp32"]["verdict"] == "pass" and rows["m-fp32"]["budget_ms"] == 2.0
    assert rows["m-int8"]["verdict"] == "error" and "model-load" in rows["m-int8"]["error"]
    assert rows["m-int8"]["comparison_note"] == "variant failed"
    store.finish_run("run-1", "2026-11-22T00:01:00+00:00", "complete")
    html = render_run_report(store, "run-1", tmp_path / "reports").read_text()
    assert 'id="incomplete"' not in html


# --- comparison with a baseline run, exports, trend and sign-off ---------------------------------

FILES = {"model": {"name": "m.pdmodel", "bytes": 3 * 2**20, "sha256": "x"}}


def _night(store, run_id: str, day: int, p50s: dict[str, float], *, seed: int = 0, label: str = "nightly",
           budget_s: float = 0.01, env: dict | None = None) -> None:
    rng = np.random.default_rng(seed + day)
    store.create_run(run_info(run_id, label=label, started_at=f"2026-11-{day:02d}T02:00:00.000+00:00",
                              git_sha=f"{day:040x}", status="complete",
                              ended_at=f"2026-11-{day:02d}T02:30:00.000+00:00"))
    store.record_environment(run_id, "local", env or {"declared": {"kind": "local"}, "device": {"os": "Linux"}})
    for variant, p50 in p50s.items():
        samples = tuple(int(x) for x in p50 * 1e6 * rng.lognormal(0, 0.01, 300))
        ordered = sorted(samples)
        store.record_measurement(measurement(
            run_id, variant=variant,
            summary={"n": 300, "p50": float(np.median(ordered)) / 1e6, "p90": ordered[270] / 1e6, "warnings": []},
            meta={"baseline": None if variant == "fp32" else "fp32", "runtime": "paddle-inference",
                  "runtime_info": {"version": "3.3.1", "precision": "fp32"}, "files": FILES,
                  "budget": {"target_latency_s": budget_s, "statistic": "p90", "source": "m.yaml"}},
            samples=samples))


def test_run_report_compares_with_a_baseline_run_and_lists_missing_pairs(tmp_path: Path) -> None:
    store = open_store(tmp_path / "r.sqlite")
    _night(store, "n1", 1, {"fp32": 1.0, "int8": 0.5, "gone": 1.0})
    _night(store, "n2", 2, {"fp32": 1.0, "int8": 0.7})
    path = render_run_report(store, "n2", tmp_path / "reports", reference_spec="latest:nightly")
    html = path.read_text()
    assert 'id="baseline-run"' in html and "latest:nightly = run n1" in html
    assert 'data-pair="m-int8" data-metric="latency" data-status="regression"' in html
    assert 'id="missing-pairs"' in html and "m-gone latency" in html and "not measured in the candidate run" in html
    assert html.count('class="figure ecdf"') == 1  # the model's latency distributions, one figure
    assert 'class="figure tradeoff"' not in html  # no accuracy measured: nothing to trade latency against
    data = json.loads((path.parent / "report.json").read_text())
    assert data["baseline_run"]["run"]["id"] == "n1" and data["baseline_run"]["counts"]["regression"] == 1
    (target,) = data["targets"]
    assert {v["variant_id"]: v["status"] for v in target["vs_baseline_run"]}["m-int8"] == "regression"
    summary = (path.parent / "summary.md").read_text()
    assert "vs baseline run `n1`" in summary and "🔴 regression +" in summary
    assert "m-gone latency: not measured in the candidate run" in summary
    junit = ET.parse(path.parent / "junit.xml").getroot()
    failures = [case.get("name") for case in junit.iter("testcase") if case.find("failure") is not None]
    assert failures == ["regression[local-m-int8-latency]"]


def test_a_run_made_with_baseline_shows_it_without_being_told(tmp_path: Path) -> None:
    store = open_store(tmp_path / "r.sqlite")
    _night(store, "n1", 1, {"fp32": 1.0})
    _night(store, "n2", 2, {"fp32": 1.0})
    store.create_run(run_info("n3", started_at="2026-11-03T02:00:00.000+00:00",
                              options={"baseline": "latest:nightly", "baseline_run_id": "n1"}))
    html = render_run_report(store, "n3", tmp_path / "reports").read_text()
    assert "Compared with baseline run <code>n1</code>" in html  # the run id resolved when it ran, not n2
    store.create_run(run_info("first", label="other", started_at="2026-11-04T02:00:00.000+00:00",
                              options={"baseline": "latest:other", "baseline_run_id": None}))
    html = render_run_report(store, "first", tmp_path / "reports").read_text()
    assert "there was no earlier run to compare with" in html


def test_summary_markdown_escapes_device_strings(tmp_path: Path) -> None:
    store = _store_with_run(tmp_path)
    path = render_run_report(store, "run-1", tmp_path / "reports")
    text = (path.parent / "summary.md").read_text()
    assert "\\<script\\>alert" in text and re.search(r"(?<!\\)<", text) is None  # Markdown escapes, no tag
    assert summary_markdown(json.loads((path.parent / "report.json").read_text())).startswith("### Benchmark run")


def test_benchmark_json_matches_pytest_benchmark_stats_and_its_compare_reads_it(tmp_path: Path) -> None:
    from pytest_benchmark.stats import Stats

    rng = np.random.default_rng(0)
    for n in (1, 2, 5, 6, 7, 8, 101, 400):
        data = list(rng.lognormal(0, 0.2, n) * 1e-3)
        reference = Stats()
        for value in data:
            reference.update(value)
        mine = benchmark_stats(data)
        for field in reference.fields:
            assert mine[field] == pytest.approx(getattr(reference, field), rel=1e-12), (n, field)
    store = open_store(tmp_path / "r.sqlite")
    _night(store, "n1", 1, {"fp32": 1.0, "int8": 0.5})
    _night(store, "n2", 2, {"fp32": 1.0, "int8": 0.6})
    files = [render_run_report(store, run, tmp_path / "reports").parent / "benchmark.json" for run in ("n1", "n2")]
    exported = json.loads(files[1].read_text())
    assert [b["name"] for b in exported["benchmarks"]] == ["test_latency[local-m-fp32]", "test_latency[local-m-int8]"]
    assert exported["benchmarks"][0]["stats"]["median"] == pytest.approx(1e-3, rel=0.01)
    done = subprocess.run([str(Path(sys.executable).parent / "pytest-benchmark"), "compare", *map(str, files),
                           "--columns", "median,rounds"], capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "test_latency[local-m-int8]" in done.stdout and done.stdout.count("300") >= 4


def test_junit_from_the_store_fails_missed_budgets(tmp_path: Path) -> None:
    store = open_store(tmp_path / "r.sqlite")
    _night(store, "n1", 1, {"fp32": 1.0, "int8": 0.5}, budget_s=0.0008)
    path = render_run_report(store, "n1", tmp_path / "reports")
    suite = ET.parse(path.parent / "junit.xml").getroot().find("testsuite")
    assert suite.get("tests") == "2" and suite.get("failures") == "1"
    failed = [c for c in suite.iter("testcase") if c.find("failure") is not None]
    assert [c.get("name") for c in failed] == ["test_latency[local-m-fp32]"]
    assert "exceeds the budget" in failed[0].find("failure").get("message")


def test_trend_marks_a_step_at_the_run_where_it_appeared(tmp_path: Path) -> None:
    store = open_store(tmp_path / "r.sqlite")
    for day in range(1, 9):
        _night(store, f"n{day}", day, {"fp32": 1.0, "int8": 0.5 if day < 5 else 0.6})
    data = build_trend_data(store, "nightly", 30)
    assert [r["id"] for r in data["runs"]] == [f"n{d}" for d in range(1, 9)]
    (event,) = data["regressions"]
    assert (event["variant_id"], event["run"], event["run_index"], event["shape"]) == ("m-int8", "n5", 4, "step")
    assert event["change_pct"] == pytest.approx(20, abs=2)
    assert data["unconfirmed"] == []
    path = render_trend_report(store, "nightly", 30, tmp_path / "reports")
    html = path.read_text()
    assert path.parent.name == "trend-nightly" and 'data-run="n5" data-variant="m-int8"' in html
    assert 'class="worse" data-run-index="4"' in html and "<img " in html
    assert build_trend_data(store, "nightly", 3)["runs"][0]["id"] == "n6"  # --last


def test_trend_shows_a_change_in_the_newest_run_as_unconfirmed(tmp_path: Path) -> None:
    store = open_store(tmp_path / "r.sqlite")
    for day in range(1, 6):
        _night(store, f"n{day}", day, {"fp32": 1.0 if day < 5 else 1.3})
    data = build_trend_data(store, "nightly", 30)
    assert data["regressions"] == []
    (event,) = data["unconfirmed"]
    assert event["run"] == "n5" and event["change_pct"] == pytest.approx(30, abs=3)


def test_trend_without_runs_is_a_clear_error(tmp_path: Path) -> None:
    store = open_store(tmp_path / "r.sqlite")
    with pytest.raises(HarnessError, match="no runs with label 'nightly'"):
        build_trend_data(store, "nightly", 30)


def test_signoff_passes_a_clean_candidate_and_fails_with_reasons(tmp_path: Path) -> None:
    store = open_store(tmp_path / "r.sqlite")
    env = {"declared": {"kind": "jetson", "arch": "aarch64", "power_sensor": "tegrastats"},
           "device": {"os": HOSTILE, "l4t_release": "# R32 (release), REVISION: 7.1", "cpu_max_freq_khz": "1479000",
                      "cpu_governors": {"cpu0": "schedutil"}, "thermal": {"temperatures_c": {"cpu-thermal": 41.5}},
                      "commands": {"uname -a": HOSTILE}}}
    _night(store, "rel", 1, {"fp32": 1.0, "int8": 0.5}, label="release-1.4", env=env)
    _night(store, "good", 2, {"fp32": 1.0, "int8": 0.5}, label="rc", env=env)
    path, data = render_signoff_report(store, "good", "latest:release-1.4", tmp_path / "reports")
    assert data["verdict"] == "PASS" and data["reasons"] == [], data["reasons"]
    assert "latency: 0 of 2 comparison(s) paired" in " ".join(data["notes"]), data["notes"]  # stored apart: unpaired
    html = path.read_text()
    assert 'data-verdict="PASS"' in html and "# R32 (release), REVISION: 7.1" in html and "1479 MHz" in html
    assert "cpu-thermal 41.5 °C" in html and "paddle-inference 3.3.1" in html and f"{2:040x}" in html
    assert "<script" not in html and "&lt;script&gt;" in html
    _night(store, "bad", 3, {"fp32": 1.0, "int8": 0.8}, label="rc", budget_s=0.00095, env=env)
    path, data = render_signoff_report(store, "latest:rc", "rel", tmp_path / "reports")
    assert data["verdict"] == "FAIL"
    assert any("regression(s) against rel" in r for r in data["reasons"])
    assert any("budget(s) missed" in r for r in data["reasons"])
    assert 'data-verdict="FAIL"' in path.read_text()
    assert harness_main(["report", "signoff", "--candidate", "bad", "--baseline", "rel", "--store",
                         str(tmp_path / "r.sqlite"), "--report-dir", str(tmp_path / "cli")]) == 1
    assert harness_main(["report", "signoff", "--candidate", "good", "--baseline", "rel", "--store",
                         str(tmp_path / "r.sqlite"), "--report-dir", str(tmp_path / "cli")]) == 0
    assert harness_main(["report", "trend", "--label", "rc", "--last", "5", "--store",
                         str(tmp_path / "r.sqlite"), "--report-dir", str(tmp_path / "cli")]) == 0
    assert (tmp_path / "cli" / "trend-rc" / "index.html").is_file()


def test_trend_reads_thirty_runs_in_one_store_query(tmp_path: Path) -> None:
    store = open_store(tmp_path / "r.sqlite")
    for day in range(1, 31):
        _night(store, f"n{day:02d}", day, {"fp32": 1.0, "int8": 0.5 if day < 20 else 0.6})
    statements: list[str] = []
    store._db.set_trace_callback(statements.append)  # the real connection's own log of what it ran
    data = build_trend_data(store, "nightly", 30)
    store._db.set_trace_callback(None)
    assert len(data["runs"]) == 30 and [e["run"] for e in data["regressions"]] == ["n20"]
    reads = [s for s in statements if "FROM measurements" in s]
    assert len(reads) == 1 and "NULL" in reads[0], reads  # one query, and the raw samples left in the store
