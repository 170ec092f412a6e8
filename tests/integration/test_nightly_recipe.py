"""The nightly recipe, exactly as README.md documents it, over five nights on a local target
in a throw-away project, with a regression planted on night 4.

The model is the built-in noop runtime sleeping `sleep_us` per inference (a stand-in with a
known cost): `tiny-slow` sleeps 200 µs on nights 1-3 and 350 µs from night 4 on. Expected:
night 1 has nothing to compare with; nights 2-3 compare with the night before and pass;
night 4 fails `test_latency[local-tiny-slow]` with the verdict's reason (--fail-on-regression)
and its trend shows the change as unconfirmed; night 5 passes (same as night 4), and its
trend marks the step at night 4, where it appeared, and nothing on `tiny-ref`.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from helpers.paths import REPO
from helpers.project import NOOP_INPUT, copy_suites, local_target, noop_variant, write_manifest, write_target
from helpers.suites import run_suites

NIGHTLY_RECIPE = ("pytest suites/ --target=all --run-label nightly --baseline latest:nightly --fail-on-regression; "
                  "s=$?; harness report trend --label nightly --last 30 && exit $s")

LATENCY = {"warmup_iterations": 20, "warmup_duration": "0.05s", "min_iterations": 300, "min_duration": "0.4s",
           "max_duration": "10s"}


def make_project(root: Path) -> Path:
    """A user's project: a local target, the latency suite, a pytest.ini; the manifest is the night's."""
    write_target(root / "targets", local_target(
        "local", kind="local", description="this machine, for the nightly recipe test", workdir=root / "work",
        python=sys.executable, runtimes={}, power={"sensor": "none"}, tags=["cpu"], limits={"job_timeout": "60s"}))
    return copy_suites(root, ini="[pytest]\naddopts = -p no:cacheprovider\n")


def write_models(root: Path, slow_us: int) -> Path:
    """tiny-ref sleeps 200 us per inference, tiny-slow ``slow_us``; a regression is a 15% change."""
    variants = {"ref": noop_variant(files={}, runtime_options={"sleep_us": 200}),
                "slow": noop_variant(kind="other", files={}, baseline="ref", runtime_options={"sleep_us": slow_us})}
    return write_manifest(root / "suites" / "models.yaml", {"tiny": {
        "input": NOOP_INPUT,
        "regression_threshold": "15%",  # a shared 2-core machine: only a large change is called
        "budgets": {"local": {"target_latency": "50ms"}}, "variants": variants}}, latency=LATENCY)


def night(root: Path, slow_us: int) -> subprocess.CompletedProcess:
    write_models(root, slow_us)
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    env.pop("HARNESS_ZOO_DIR", None)
    return subprocess.run(["bash", "-c", NIGHTLY_RECIPE], cwd=root, env=env, capture_output=True, text=True,
                          timeout=300)


def test_the_readme_documents_this_recipe() -> None:
    assert NIGHTLY_RECIPE in (REPO / "README.md").read_text(encoding="utf-8")
    assert NIGHTLY_RECIPE in (REPO / "docs" / "reports.md").read_text(encoding="utf-8")


def test_nightly_recipe_marks_a_planted_regression_at_the_right_night(tmp_path: Path) -> None:
    root = make_project(tmp_path / "project")
    outputs = []
    for number, slow_us in enumerate((200, 200, 200, 350, 350), start=1):
        done = night(root, slow_us)
        outputs.append(done)
        log = f"night {number}: rc {done.returncode}\n{done.stdout[-4000:]}\n{done.stderr[-2000:]}"
        if number == 4:
            assert done.returncode == 1, log  # the planted regression fails its test...
        else:
            assert done.returncode == 0, log
        assert "trend of nightly:" in done.stdout and "Traceback" not in done.stdout + done.stderr, log

    first, _, _, fourth, fifth = outputs
    assert "baseline: latest:nightly: no complete run with label 'nightly'" in first.stdout
    failed = [line for line in fourth.stdout.splitlines() if line.startswith("FAILED")]
    assert len(failed) == 1 and "test_latency[local-tiny-slow]" in failed[0], fourth.stdout[-3000:]
    # ...with the verdict's reason: timed against night 3's own artifacts (sleep 200 us) in the same job
    assert "local: tiny-slow latency regression: paired: p50 latency +" in fourth.stdout
    assert "beyond threshold 15%" in fourth.stdout and "against the baseline run's artifacts" in fourth.stdout
    assert "UNCONFIRMED local: tiny-slow" in fourth.stdout  # one night at the new level: not yet a step
    # ...with that night's paired evidence against night 3's own artifacts
    unconfirmed = next(line for line in fourth.stdout.splitlines() if "UNCONFIRMED local: tiny-slow" in line)
    assert "; paired against run " in unconfirmed, unconfirmed

    from harness.store import open_store

    store = open_store(root / ".harness" / "results.sqlite")
    try:
        runs = list(reversed(store.runs(label="nightly")))
        assert [r.status for r in runs] == ["complete"] * 5
        assert runs[3].options["baseline_run_id"] == runs[2].id  # night 4 compared with night 3
    finally:
        store.close()

    trend = json.loads((root / "reports" / "trend-nightly" / "trend.json").read_text())
    assert [r["id"] for r in trend["runs"]] == [r.id for r in runs]
    (event,) = trend["regressions"]
    assert (event["variant_id"], event["metric"], event["run"], event["run_index"]) == \
        ("tiny-slow", "latency", runs[3].id, 3)
    assert event["change_pct"] > 30
    assert "REGRESSION local: tiny-slow p50 latency" in fifth.stdout and f"at run {runs[3].id}" in fifth.stdout
    assert f"; paired that night against run {runs[2].id}: +" in fifth.stdout, fifth.stdout[-2000:]
    html = (root / "reports" / "trend-nightly" / "index.html").read_text()
    assert f'data-run="{runs[3].id}" data-variant="tiny-slow"' in html

    night4 = root / "reports" / runs[3].id
    junit = (night4 / "junit.xml").read_text()
    assert 'name="test_latency[local-tiny-slow]"' in junit and "<failure" in junit
    assert "regression" in (night4 / "summary.md").read_text()
    assert json.loads((night4 / "benchmark.json").read_text())["benchmarks"]
    report = (night4 / "index.html").read_text()
    assert f"Compared with baseline run <code>{runs[2].id}</code>" in report


@pytest.mark.parametrize("args, message", [
    (["--fail-on-regression"], "--fail-on-regression needs --baseline"),
    (["--baseline", "no-such-run"], "no run 'no-such-run'"),
    (["--baseline", "latest:"], "--baseline"),
])
def test_bad_baseline_options_are_usage_errors(tmp_path: Path, args: list[str], message: str) -> None:
    root = make_project(tmp_path / "project")
    write_models(root, 200)
    done = run_suites(["suites/", "--target=local", *args], cwd=root, quiet=(), timeout=120)
    assert done.returncode == pytest.ExitCode.USAGE_ERROR, done.stdout + done.stderr
    assert message in done.stderr and "Traceback" not in done.stderr
