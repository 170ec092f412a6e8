"""The pytest plugin, end to end in throw-away projects (pytester, real subprocess runs).

Each project has targets/local.yaml and targets/other.yaml pointing at this interpreter,
suites/models.yaml with `noop` variants (they measure only the harness itself, so a run
takes a fraction of a second), and a copy of the repository's suites/test_latency.py.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import pytest
from helpers.project import local_target, write_target

import harness
from harness.analysis.budgets import format_latency_ms
from harness.store import open_store

pytest_plugins = ["pytester"]

REPO_ROOT = Path(harness.__file__).resolve().parent.parent
LATENCY_SUITE = (REPO_ROOT / "suites" / "test_latency.py").read_text(encoding="utf-8")

MANIFEST = """\
version: 1
defaults:
  latency:
    warmup_iterations: 2
    warmup_duration: 0s
    min_iterations: 20
    min_duration: 50ms
    max_duration: 5s
models:
  empty:
    input: {{name: x, shape: [1], dtype: float32}}
{budgets}
    variants:
      a:
        kind: fp32
        format: none
        runtime: noop
        files: {{}}
      b:
        kind: other
        format: none
        runtime: noop
        files: {{}}
        baseline: a
{extra}"""


def make_project(pytester: pytest.Pytester, budgets: str = "", extra: str = "",
                 manifest: str | None = None) -> Path:
    root = pytester.path
    pytester.makeini("[pytest]\n")  # rootdir = the project
    for name, kind, tag in (("local", "local", "cpu"), ("other", "x86-cpu", "lab")):
        write_target(root / "targets", local_target(
            name, kind=kind, description=f"test target {name}", workdir=root / "work" / name, python=sys.executable,
            runtimes={"paddle-inference": sys.executable}, power={"sensor": "none"}, tags=[tag],
            limits={"job_timeout": "60s"}))
    (root / "suites").mkdir()
    text = manifest if manifest is not None else MANIFEST.format(budgets=budgets, extra=extra)
    (root / "suites" / "models.yaml").write_text(text)
    (root / "suites" / "test_latency.py").write_text(LATENCY_SUITE)
    return root


BOTH_TARGETS = ["test_latency[local-empty-a]", "test_latency[local-empty-b]",
                "test_latency[other-empty-a]", "test_latency[other-empty-b]"]
"""What --target=local,other and --target=all collect: each variant on each target."""


def collected_ids(result: pytest.RunResult) -> list[str]:
    return sorted(m.group(1) for line in result.outlines
                  if (m := re.match(r"^suites/test_latency\.py::(test_latency\[.*\])$", line)))


def run(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    return pytester.runpytest_subprocess(*args, timeout=120)


# --- selection ---------------------------------------------------------------------------

def test_one_target_parametrizes_over_variants(pytester: pytest.Pytester) -> None:
    make_project(pytester)
    result = run(pytester, "--collect-only", "-q", "--target=local")
    assert result.ret == pytest.ExitCode.OK, result.stdout.str()
    assert collected_ids(result) == ["test_latency[local-empty-a]", "test_latency[local-empty-b]"]


def test_default_target_is_local(pytester: pytest.Pytester) -> None:
    make_project(pytester)
    result = run(pytester, "--collect-only", "-q")
    assert collected_ids(result) == ["test_latency[local-empty-a]", "test_latency[local-empty-b]"]


def test_comma_list_parametrizes_each_target(pytester: pytest.Pytester) -> None:
    make_project(pytester)
    result = run(pytester, "--collect-only", "-q", "--target=local,other")
    assert result.ret == pytest.ExitCode.OK, result.stdout.str()
    assert collected_ids(result) == BOTH_TARGETS


def test_all_selects_every_declared_target(pytester: pytest.Pytester) -> None:
    make_project(pytester)
    result = run(pytester, "--collect-only", "-q", "--target=all")
    assert result.ret == pytest.ExitCode.OK, result.stdout.str()
    assert collected_ids(result) == BOTH_TARGETS


def test_target_tag_narrows_the_selection(pytester: pytest.Pytester) -> None:
    make_project(pytester)
    result = run(pytester, "--collect-only", "-q", "--target=all", "--target-tag=lab")
    assert collected_ids(result) == ["test_latency[other-empty-a]", "test_latency[other-empty-b]"]


def test_unknown_target_is_a_usage_error_listing_known_ones(pytester: pytest.Pytester) -> None:
    make_project(pytester)
    result = run(pytester, "--collect-only", "--target=nope")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    stderr = result.stderr.str()
    assert "'nope'" in stderr
    assert "local" in stderr and "other" in stderr
    assert "Traceback" not in stderr + result.stdout.str()


def test_invalid_target_name_is_a_usage_error(pytester: pytest.Pytester) -> None:
    make_project(pytester)
    result = run(pytester, "--collect-only", "--target=BAD NAME")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert "not a valid target name" in result.stderr.str()
    assert "Traceback" not in result.stderr.str() + result.stdout.str()


def test_malformed_manifest_is_a_one_line_collection_error(pytester: pytest.Pytester) -> None:
    make_project(pytester, manifest=MANIFEST.format(budgets="", extra="").replace("runtime: noop", "runtime: noopp", 1))
    result = run(pytester, "-q", "--target=local", "--no-report")
    assert result.ret == pytest.ExitCode.INTERRUPTED  # collection errors stop the run
    output = result.stdout.str() + result.stderr.str()
    assert "Traceback" not in output
    lines = [line for line in result.outlines if "models.yaml" in line and "models.empty.variants.a.runtime" in line]
    assert lines, output
    assert "noopp" in lines[0]
    assert not (pytester.path / "reports").exists() or not any((pytester.path / "reports").iterdir())


# --- a measuring run ------------------------------------------------------------------------

def _only_run(store_path: Path):
    assert store_path.is_file(), f"no store written at {store_path}"
    store = open_store(store_path)
    runs = store.runs()
    assert len(runs) == 1, runs
    return store, runs[0]


def test_run_writes_store_and_report(pytester: pytest.Pytester) -> None:
    root = make_project(pytester)
    result = run(pytester, "-q", "--target=local", "--store=results.sqlite")
    result.assert_outcomes(passed=2)
    store, run_info = _only_run(root / "results.sqlite")
    try:
        assert run_info.status == "complete" and run_info.ended_at
        assert run_info.label is None
        records = store.measurements(run_info.id)
        assert sorted(r.variant_id for r in records) == ["empty-a", "empty-b"]
        for record in records:
            assert record.status == "ok" and record.target == "local" and record.metric == "latency"
            assert record.samples and len(record.samples) == record.summary["n"] >= 20
            assert record.samples_unit == "ns"
            assert record.summary["p50"] > 0
        environments = store.environments(run_info.id)
        assert set(environments) == {"local"}
        assert environments["local"]["declared"]["kind"] == "local"
        assert environments["local"]["device"]["python_executable"]
    finally:
        store.close()

    report_dir = root / "reports" / run_info.id
    html = (report_dir / "index.html").read_text(encoding="utf-8")
    data = json.loads((report_dir / "report.json").read_text(encoding="utf-8"))
    for variant_id in ("empty-a", "empty-b"):
        assert variant_id in html
    assert data["run"]["id"] == run_info.id
    rows = [row for target in data["targets"] for row in target["rows"]]
    assert sorted(row["variant_id"] for row in rows) == ["empty-a", "empty-b"]
    assert {row["target"] for row in rows} == {"local"}
    assert str(report_dir / "index.html") in result.stdout.str()  # the summary says where


def test_run_label_is_stored(pytester: pytest.Pytester) -> None:
    root = make_project(pytester)
    result = run(pytester, "-q", "--target=local", "--store=results.sqlite", "--run-label", "nightly",
                 "--no-report")
    result.assert_outcomes(passed=2)
    store, run_info = _only_run(root / "results.sqlite")
    try:
        assert run_info.label == "nightly"
        assert [r.id for r in store.runs(label="nightly")] == [run_info.id]
    finally:
        store.close()
    assert "(label nightly)" in result.stdout.str()
    assert not (root / "reports").exists()  # --no-report


def test_invalid_run_label_is_a_usage_error(pytester: pytest.Pytester) -> None:
    make_project(pytester)
    result = run(pytester, "--collect-only", "--run-label", "night ly")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert "--run-label" in result.stderr.str()


def test_two_targets_are_measured_and_stored(pytester: pytest.Pytester) -> None:
    root = make_project(pytester)
    result = run(pytester, "-q", "--target=all", "--store=results.sqlite", "--no-report")
    result.assert_outcomes(passed=4)
    store, run_info = _only_run(root / "results.sqlite")
    try:
        records = store.measurements(run_info.id)
        assert sorted((r.target, r.variant_id) for r in records) == [
            ("local", "empty-a"), ("local", "empty-b"), ("other", "empty-a"), ("other", "empty-b")]
        assert set(store.environments(run_info.id)) == {"local", "other"}
    finally:
        store.close()


UNMEETABLE_BUDGET = "    budgets:\n      local: {target_latency: 1ns}\n"


def _failure_lines(result: pytest.RunResult) -> list[str]:
    return [line for line in result.outlines if "exceeds the budget" in line]


def test_unmet_budget_fails_with_value_budget_and_target(pytester: pytest.Pytester) -> None:
    root = make_project(pytester, budgets=UNMEETABLE_BUDGET)
    result = run(pytester, "-q", "-rf", "--target=local", "--store=results.sqlite", "--no-report")
    result.assert_outcomes(failed=2)
    output = result.stdout.str() + result.stderr.str()
    assert "Traceback" not in output
    assert "harness/plugin/fixtures.py" not in output and "def test_latency" not in output
    store, run_info = _only_run(root / "results.sqlite")
    try:
        measured = {r.variant_id: r.summary["p90"] for r in store.measurements(run_info.id)}
    finally:
        store.close()
    lines = _failure_lines(result)
    for variant_id, p90 in measured.items():
        line = next((l for l in lines if f"local: {variant_id} p90 latency" in l), None)
        assert line is not None, output
        assert f"latency {format_latency_ms(p90)} exceeds" in line  # the measured value
        assert "models.yaml: models.empty.budgets.local" in line  # where the budget is written


def _seconds(number: str, unit: str) -> float:
    return float(number) * {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0}[unit]


def test_unmet_budget_message_shows_the_values_that_were_compared(pytester: pytest.Pytester) -> None:
    """A noop measures well under a microsecond and the budget is 1 ns: the failure line must
    still show a measured value above a non-zero budget, not "0.000 ms exceeds 0.000 ms"."""
    make_project(pytester, budgets=UNMEETABLE_BUDGET)
    result = run(pytester, "-q", "-rf", "--target=local", "--no-report")
    result.assert_outcomes(failed=2)
    lines = _failure_lines(result)
    assert lines, result.stdout.str()
    quantity = r"([0-9.]+(?:e-?\d+)?)\s*(ns|us|µs|ms|s)\b"
    for line in lines:
        found = re.search(rf"latency {quantity} exceeds the budget {quantity}", line)
        assert found, line
        value = _seconds(found.group(1), found.group(2))
        budget = _seconds(found.group(3), found.group(4))
        assert budget == pytest.approx(1e-9, rel=0.01), f"budget shown as {found.group(3)} {found.group(4)}: {line}"
        assert value > budget, f"the line says a value exceeds the budget but shows {value} <= {budget}: {line}"


def test_met_budget_passes(pytester: pytest.Pytester) -> None:
    make_project(pytester, budgets="    budgets:\n      local: {target_latency: 10s, statistic: p99}\n")
    result = run(pytester, "-q", "--target=all", "--no-report")
    result.assert_outcomes(passed=4)  # `other` has no budget: measured, not failed


SKIPPED_VARIANT = """\
  lite_model:
    input: {name: x, shape: [1, 3, 8, 8], dtype: float32}
    variants:
      fp32:
        kind: fp32
        format: paddle-lite
        runtime: paddle-lite
        files: {model: models/lite.nb}
"""


def test_variant_with_undeclared_runtime_is_skipped_naming_it(pytester: pytest.Pytester) -> None:
    make_project(pytester, extra=SKIPPED_VARIANT)
    result = run(pytester, "-q", "-rs", "--target=local", "--no-report")
    result.assert_outcomes(passed=2, skipped=1)
    skip_lines = [line for line in result.outlines if line.startswith("SKIPPED")]
    assert len(skip_lines) == 1, result.stdout.str()
    assert "paddle-lite" in skip_lines[0]
    assert "local" in skip_lines[0]


def test_failed_measurement_is_recorded_and_fails_in_one_line(pytester: pytest.Pytester) -> None:
    """A paddle variant whose files are not built: the test fails naming the file, and the
    error row is in the store so the report shows it."""
    extra = """\
  unbuilt:
    input: {name: x, shape: [1, 3, 8, 8], dtype: float32}
    variants:
      fp32:
        kind: fp32
        format: paddle
        runtime: paddle-inference
        files: {model: zoo/unbuilt.pdmodel, params: zoo/unbuilt.pdiparams}
"""
    root = make_project(pytester, extra=extra)
    result = run(pytester, "-q", "-rf", "--target=local", "--store=results.sqlite", "--no-report")
    result.assert_outcomes(passed=2, failed=1)
    output = result.stdout.str()
    assert "Traceback" not in output
    assert any("unbuilt-fp32" in line and "unbuilt.pdmodel" in line for line in result.outlines), output
    store, run_info = _only_run(root / "results.sqlite")
    try:
        errors = [r for r in store.measurements(run_info.id) if r.status == "error"]
        assert [r.variant_id for r in errors] == ["unbuilt-fp32"]
        assert "unbuilt.pdmodel" in errors[0].meta["error"]
    finally:
        store.close()


# --- fleet runs with pytest-xdist ------------------------------------------------------------

def test_xdist_workers_share_one_run_and_each_target_stays_on_one_worker(pytester: pytest.Pytester) -> None:
    root = make_project(pytester)
    result = run(pytester, "-n", "2", "--target=local,other", "--store=results.sqlite", "-q")
    result.assert_outcomes(passed=4)
    store, run_info = _only_run(root / "results.sqlite")  # one run, not one per worker
    try:
        records = store.measurements(run_info.id)
        reports = list((root / "reports" / run_info.id).glob("index.html"))
    finally:
        store.close()
    assert run_info.status == "complete" and len(records) == 4
    workers_by_target: dict[str, set[str]] = {}
    for record in records:
        workers_by_target.setdefault(record.target, set()).add(record.meta["orchestrator"]["worker"])
    assert set(workers_by_target) == {"local", "other"}
    assert all(len(workers) == 1 and None not in workers for workers in workers_by_target.values()), workers_by_target
    assert reports, "the controller renders the run's report"
    assert f"run {run_info.id}: 4 measurement(s)" in result.stdout.str()
