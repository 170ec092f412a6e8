"""--baseline against a real SQLite store: resolving the spec, pairing every key, the verdict
per metric (ratio, ci, p-value), thresholds from the manifest, run-to-run noise from history."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from helpers.records import measurement, run_info

from harness.analysis.metric_rules import threshold_for
from harness.analysis.run_comparison import Comparer, compare_runs
from harness.analysis.run_spec import check_run_spec, resolve_complete_run
from harness.errors import HarnessError
from harness.records import MeasurementRecord, RunInfo
from harness.store import open_store

N = 400


def latency(rng: np.random.Generator, p50_ms: float, sigma: float = 0.03) -> tuple[int, ...]:
    """Device-like samples: lognormal jitter around p50 (ns, time order)."""
    return tuple(int(x) for x in p50_ms * 1e6 * rng.lognormal(0.0, sigma, N))


def add_run(store, run_id: str, day: int, *, label: str = "nightly", status: str = "complete") -> RunInfo:
    run = run_info(run_id, label=label, started_at=f"2026-11-{day:02d}T02:00:00.000+00:00", git_sha=f"{day:040d}",
                   status=status, ended_at=f"2026-11-{day:02d}T02:10:00.000+00:00")
    store.create_run(run)
    return run


def add_latency(store, run_id: str, variant: str, samples, *, target: str = "local", meta=None,
                status: str = "ok") -> None:
    ordered = sorted(samples) if samples else []
    summary = {"n": len(ordered), "p50": float(np.median(ordered)) / 1e6, "warnings": []} if ordered else {}
    store.record_measurement(measurement(
        run_id, target=target, variant=variant, status=status, summary=summary,
        meta={"baseline": None, **(meta or {})}, samples=tuple(samples) if samples else None, samples_unit="ns"))


@pytest.fixture
def store(tmp_path: Path):
    store = open_store(tmp_path / "results.sqlite")
    yield store
    store.close()


# --- the spec ------------------------------------------------------------------------------

@pytest.mark.parametrize("spec", ["latest", "latest:nightly", "latest:release-1.4", "20261122-101500-1a2b3c"])
def test_valid_specs(spec: str) -> None:
    assert check_run_spec(spec) == spec


@pytest.mark.parametrize("spec", ["", "latest:", "latest:night ly", "run id", "../etc"])
def test_invalid_specs_say_what_is_accepted(spec: str) -> None:
    with pytest.raises(ValueError, match="latest:LABEL"):
        check_run_spec(spec)


def test_latest_label_is_the_newest_complete_earlier_run(store) -> None:
    add_run(store, "n1", 1)
    add_run(store, "n2", 2)
    add_run(store, "n3", 3, status="interrupted")
    add_run(store, "r1", 4, label="release-1.4")
    add_run(store, "n5", 5)  # the candidate itself
    run, note = resolve_complete_run(store, "latest:nightly", before="2026-11-05T02:00:00.000+00:00", exclude=("n5",))
    assert run.id == "n2" and "latest:nightly = run n2" in note  # n3 was interrupted, n5 is the candidate
    run, _ = resolve_complete_run(store, "latest", exclude=("n5",))
    assert run.id == "r1"
    run, _ = resolve_complete_run(store, "latest:release-1.4")
    assert run.id == "r1"


def test_first_night_has_nothing_to_compare_with(store) -> None:
    run, note = resolve_complete_run(store, "latest:nightly")
    assert run is None and "no complete run with label 'nightly'" in note


def test_unknown_run_id_is_an_error_naming_it(store) -> None:
    with pytest.raises(HarnessError, match="no run 'nope'.*harness runs"):
        resolve_complete_run(store, "nope")


# --- verdicts --------------------------------------------------------------------------------

def test_planted_regression_is_called_with_ratio_ci_and_p(store) -> None:
    rng = np.random.default_rng(1)
    add_run(store, "base", 1)
    add_run(store, "cand", 2)
    add_latency(store, "base", "fp32", latency(rng, 1.0))
    add_latency(store, "cand", "fp32", latency(rng, 1.20))
    comparison = compare_runs(store, "cand", "latest:nightly")
    (verdict,) = comparison.verdicts
    assert verdict.status == "regression", verdict.reason
    assert verdict.ratio == pytest.approx(1.20, rel=0.02)
    assert verdict.ci[0] > 1.03 and verdict.ci[0] < verdict.ratio < verdict.ci[1]
    assert verdict.p_value < 0.01 and verdict.method == "samples"
    # measured alone (not against the reference run's artifacts): the unpaired rule, and it says so
    assert "beyond threshold 3%" in verdict.reason and verdict.reason.startswith("unpaired (measured alone): p50 latency +")
    assert comparison.regressions == [verdict]
    assert comparison.reference_run.id == "base" and "latest:nightly = run base" in comparison.note


def test_identical_runs_are_not_a_regression(store) -> None:
    rng = np.random.default_rng(2)
    add_run(store, "base", 1)
    add_run(store, "cand", 2)
    add_latency(store, "base", "fp32", latency(rng, 1.0))
    add_latency(store, "cand", "fp32", latency(rng, 1.0))
    (verdict,) = compare_runs(store, "cand", "base").verdicts
    assert verdict.status in ("no change", "inconclusive"), verdict.reason
    assert verdict.ratio == pytest.approx(1.0, abs=0.02)
    assert "default 2%" in verdict.run_sd_source  # no history yet: the default, and it says so


def test_history_gives_the_run_to_run_noise(store) -> None:
    """Six quiet nights: run_sd comes from their p50s, and an A/A pair is a confident "no change"."""
    rng = np.random.default_rng(3)
    for day in range(1, 8):
        add_run(store, f"n{day}", day)
        add_latency(store, f"n{day}", "fp32", latency(rng, 1.0 * (1 + 0.003 * rng.standard_normal()), sigma=0.01))
    comparison = compare_runs(store, "n7", "latest:nightly")
    (verdict,) = comparison.verdicts
    assert comparison.reference_run.id == "n6"
    assert "runs of label nightly" in verdict.run_sd_source and verdict.run_sd < 0.01
    assert verdict.status == "no change", verdict.reason


def test_every_key_is_paired_or_listed_missing_with_side_and_reason(store) -> None:
    rng = np.random.default_rng(4)
    add_run(store, "base", 1)
    add_run(store, "cand", 2)
    add_latency(store, "base", "fp32", latency(rng, 1.0))
    add_latency(store, "cand", "fp32", latency(rng, 1.0))
    add_latency(store, "base", "gone", latency(rng, 1.0))  # not measured in the candidate
    add_latency(store, "cand", "new", latency(rng, 1.0))  # new since the baseline
    add_latency(store, "base", "broken", latency(rng, 1.0))
    add_latency(store, "cand", "broken", None, status="error", meta={"error": "local: model-load: bad file"})
    add_latency(store, "base", "fp32", latency(rng, 1.0), target="jetson")  # a target absent tonight
    comparison = compare_runs(store, "cand", "base")
    missing = {(v.target, v.variant): v for v in comparison.missing}
    assert set(missing) == {("local", "gone"), ("local", "new"), ("local", "broken"), ("jetson", "fp32")}
    assert missing["local", "gone"].side == "candidate" and "not measured in the candidate run" in missing["local", "gone"].reason
    assert missing["local", "new"].side == "baseline"
    assert "model-load: bad file" in missing["local", "broken"].reason
    assert len(comparison.verdicts) == 5 and comparison.counts()["missing"] == 4
    assert "4 missing pair(s)" in comparison.summary_line()


def test_manifest_threshold_from_the_record_meta(store) -> None:
    rng = np.random.default_rng(5)
    add_run(store, "base", 1)
    add_run(store, "cand", 2)
    lenient = {"regression_threshold": {"latency": 0.5}}
    add_latency(store, "base", "fp32", latency(rng, 1.0), meta=lenient)
    add_latency(store, "cand", "fp32", latency(rng, 1.2), meta=lenient)
    (verdict,) = compare_runs(store, "cand", "base").verdicts
    assert verdict.threshold == 0.5 and verdict.status != "regression", verdict.reason
    record = store.measurements("cand")[0]
    assert threshold_for(record) == 0.5
    assert threshold_for(MeasurementRecord(**{**record.__dict__, "meta": {"regression_threshold": {"*": 0.07}}})) == 0.07
    assert threshold_for(MeasurementRecord(**{**record.__dict__, "meta": {}})) == 0.03


def test_single_value_metrics_and_unavailable_power(store) -> None:
    add_run(store, "base", 1)
    add_run(store, "cand", 2)
    for run_id, peak, agreement in (("base", 100 * 2**20, 0.99), ("cand", 120 * 2**20, 0.90)):
        common = dict(run_id=run_id, target="local", model="m", variant="int8", status="ok", meta={"baseline": "fp32"})
        store.record_measurement(MeasurementRecord(metric="memory", unit="bytes", summary={"peak_rss_bytes": peak},
                                                   **common))
        store.record_measurement(MeasurementRecord(metric="fidelity", unit="ratio", summary={
            "top1_agreement": agreement, "relative_error_mean": 0.01, "comparable": True}, **common))
        store.record_measurement(MeasurementRecord(metric="power", unit="W", summary={
            "status": "unavailable: no sensor on this target"}, **common))
        store.record_measurement(MeasurementRecord(  # a baseline's own fidelity record: nothing to compare
            metric="fidelity", unit="ratio", summary={"baseline_only": True},
            **{**common, "variant": "fp32", "meta": {"baseline": None}}))
    verdicts = {v.metric: v for v in compare_runs(store, "cand", "base").verdicts}
    assert set(verdicts) == {"memory", "fidelity", "power"}
    assert verdicts["memory"].status == "regression" and verdicts["memory"].ratio == pytest.approx(1.2)
    assert verdicts["memory"].method == "single value" and verdicts["memory"].p_value is None
    assert "called on the threshold alone" in verdicts["memory"].reason
    assert verdicts["fidelity"].status == "regression" and not verdicts["fidelity"].higher_is_worse
    assert verdicts["power"].status == "missing" and "power unavailable: no sensor" in verdicts["power"].reason


def test_power_is_decided_on_the_load_window_samples(store) -> None:
    rng = np.random.default_rng(6)
    add_run(store, "base", 1)
    add_run(store, "cand", 2)
    for run_id, load in (("base", 6.0), ("cand", 7.0)):
        timeline = [[i * 100, (load if 10 <= i < 60 else 5.0) + 0.02 * rng.standard_normal()] for i in range(70)]
        store.record_measurement(measurement(
            run_id, target="jetson", metric="power", unit="W", summary={"status": "ok", "load_mean_w": load},
            meta={"power_timeline": timeline, "power_markers": {"load_begin": 1000, "load_end": 5900}}))
    (verdict,) = compare_runs(store, "cand", "base").verdicts
    assert verdict.metric == "power" and verdict.method == "samples"
    assert verdict.ratio == pytest.approx(7 / 6, rel=0.01)  # the idle window is not in it
    assert verdict.status == "regression" and verdict.reason.startswith("mean power under load +")


def test_comparer_decides_one_fresh_record(store) -> None:
    rng = np.random.default_rng(7)
    base = add_run(store, "base", 1)
    add_run(store, "cand", 2, status="running")
    add_latency(store, "base", "fp32", latency(rng, 1.0))
    add_latency(store, "base", "int8", latency(rng, 1.0))
    add_latency(store, "cand", "fp32", latency(rng, 1.5))
    comparer = Comparer(store, base, candidate_run_id="cand")
    verdict = comparer.verdict(store.measurements("cand")[0])
    assert verdict.variant == "fp32" and verdict.status == "regression"
    assert "local: m-fp32 latency regression: unpaired (measured alone): p50 latency +" in verdict.line()


# --- the manifest's regression_threshold ---------------------------------------------------------

MANIFEST = """\
version: 1
models:
  m:
    input: {{name: x, shape: [1], dtype: float32}}
    regression_threshold: {model}
    variants:
      a: {{kind: fp32, format: none, runtime: noop, files: {{}}}}
      b: {{kind: other, format: none, runtime: noop, files: {{}}, baseline: a, regression_threshold: {variant}}}
"""


def _manifest(tmp_path: Path, model: str, variant: str):
    from harness.config.manifest import load_manifest

    path = tmp_path / "models.yaml"
    path.write_text(MANIFEST.format(model=model, variant=variant))
    return load_manifest(path)


def test_manifest_thresholds_per_model_variant_and_metric(tmp_path: Path) -> None:
    from harness.run.measure import variant_meta

    manifest = _manifest(tmp_path, "5%", "{latency: 0.02}")
    a, b = manifest.variants
    assert a.regression_threshold_for("latency") == 0.05 and a.regression_threshold_for("memory") == 0.05
    assert b.regression_threshold_for("latency") == 0.02 and b.regression_threshold_for("power") == 0.05
    assert variant_meta(b, "local")["regression_threshold"] == {"*": 0.05, "latency": 0.02}
    record = measurement(variant="b", meta=variant_meta(b, "local"))
    assert threshold_for(record) == 0.02
    assert threshold_for(MeasurementRecord(**{**record.__dict__, "metric": "memory"})) == 0.05


@pytest.mark.parametrize("model_value, variant_value, key, message", [
    ("0%", "1%", "models.m.regression_threshold", "more than zero"),
    ("5%", "{latncy: 2%}", "models.m.variants.b.regression_threshold.latncy", "did you mean 'latency'"),
    ("5%", "{memory: lots}", "models.m.variants.b.regression_threshold.memory", "as a fraction"),
])
def test_bad_manifest_thresholds_name_the_key(tmp_path: Path, model_value: str, variant_value: str, key: str,
                                              message: str) -> None:
    from harness.errors import ConfigError

    with pytest.raises(ConfigError) as caught:
        _manifest(tmp_path, model_value, variant_value)
    assert key in str(caught.value) and message in str(caught.value)
