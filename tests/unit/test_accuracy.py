"""Task accuracy figures and budgets (harness.analysis.accuracy), and how the manifest and a
deployment config declare them."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from harness.analysis.accuracy import accuracy_figures, accuracy_verdict, combine, wilson_interval
from harness.analysis.verdict import Verdict
from harness.config.deployment_config import load_deployment_config
from harness.config.manifest import load_manifest
from harness.errors import ConfigError

REPO = Path(__file__).resolve().parents[2]


def test_wilson_interval_matches_the_textbook_values() -> None:
    # Newcombe (1998), "Two-sided confidence intervals for the single proportion", 81/263: 0.2553-0.3662
    low, high = wilson_interval(81, 263)
    assert low == pytest.approx(0.2553, abs=5e-4) and high == pytest.approx(0.3662, abs=5e-4)
    assert wilson_interval(360, 360)[1] == pytest.approx(1.0) and wilson_interval(360, 360)[0] < 0.995
    assert wilson_interval(0, 0) == (0.0, 1.0)


def test_figures_give_the_change_in_points_against_the_baseline() -> None:
    figures = accuracy_figures({"correct": 331, "count": 360}, {"correct": 351, "count": 360}, "test images")
    assert figures["top1"] == pytest.approx(331 / 360)
    assert figures["change_points"] == pytest.approx((331 - 351) / 360 * 100)
    assert figures["ci95"][0] < figures["top1"] < figures["ci95"][1]


def test_below_min_accuracy_fails_and_says_the_numbers() -> None:
    figures = accuracy_figures({"correct": 300, "count": 360}, None, "held-out digits")
    verdict = accuracy_verdict("box", "m-int8", figures, {"min_accuracy": 0.9, "source": "models.yaml"})
    assert verdict.status == "fail"
    assert "300/360 held-out digits" in verdict.message and "below min_accuracy 90.0%" in verdict.message
    assert accuracy_verdict("box", "m-int8", figures, {"min_accuracy": 0.8}).status == "pass"


def test_max_accuracy_drop_is_in_points_against_the_baseline() -> None:
    figures = accuracy_figures({"correct": 340, "count": 360}, {"correct": 351, "count": 360})  # -3.06 points
    assert accuracy_verdict("box", "m-pruned", figures, {"max_accuracy_drop": 0.03}).status == "fail"
    assert accuracy_verdict("box", "m-pruned", figures, {"max_accuracy_drop": 0.04}).status == "pass"
    baseline = accuracy_figures({"correct": 351, "count": 360})  # a baseline has nothing to drop against
    assert accuracy_verdict("box", "m-fp32", baseline, {"max_accuracy_drop": 0.01}).status == "pass"


def test_no_accuracy_budget_leaves_the_fidelity_verdict_alone() -> None:
    fidelity = Verdict("pass", "agrees")
    assert combine(fidelity, accuracy_verdict("box", "m", None, {"target_latency_s": 0.01})) is fidelity
    failed = combine(fidelity, Verdict("fail", "too few right"))
    assert failed.status == "fail" and "agrees" in failed.message and "too few right" in failed.message
    assert accuracy_verdict("box", "m", None, {"min_accuracy": 0.5}).status == "error"  # declared, not measured


def _manifest(tmp_path: Path, budget: dict[str, object], dataset: str = "{zoo}/m/data/test.npz") -> Path:
    path = tmp_path / "models.yaml"
    variant = {"kind": "fp32", "format": "onnx", "runtime": "onnxruntime", "files": {"model": "{zoo}/m/model.onnx"}}
    path.write_text(yaml.safe_dump({"version": 1, "zoo_dir": "zoo", "models": {"m": {
        "input": {"name": "x", "shape": [1, 3, 8, 8], "dtype": "float32"}, "dataset": dataset,
        "budgets": {"box": budget}, "variants": {"fp32": variant}}}}))
    return path


def test_manifest_reads_dataset_and_accuracy_budgets(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HARNESS_ZOO_DIR", raising=False)
    manifest = load_manifest(_manifest(tmp_path, {"min_accuracy": "90%", "max_accuracy_drop": 0.02}))
    (variant,) = manifest.variants
    assert variant.dataset == str(tmp_path / "zoo" / "m" / "data" / "test.npz")
    budget = variant.budget_for("box")
    assert budget is not None and budget.min_accuracy == pytest.approx(0.9) and budget.max_accuracy_drop == 0.02
    with pytest.raises(ConfigError, match="image set .npz"):
        load_manifest(_manifest(tmp_path, {"min_accuracy": 0.9}, dataset="{zoo}/m/data/test.csv"))
    with pytest.raises(ConfigError, match="between 0 and 1"):
        load_manifest(_manifest(tmp_path, {"min_accuracy": 90}))


def test_deployment_config_performance_takes_accuracy_limits(tmp_path: Path) -> None:
    path = tmp_path / "deploy.yaml"
    path.write_text("performance:\n  min_accuracy: 95%\n  max_accuracy_drop: 1%\n")
    budget = load_deployment_config(path)
    assert budget.min_accuracy == pytest.approx(0.95) and budget.max_accuracy_drop == pytest.approx(0.01)
    assert budget.target_latency_s is None
    shipped = load_deployment_config(REPO / "suites" / "deployments" / "jetson-nano-mobilenet.yaml")
    assert shipped.min_accuracy == pytest.approx(0.9) and shipped.max_accuracy_drop == pytest.approx(0.03)
