"""The demo's latency suite on the local target: how wide is the speed-up column's 95%
interval, unpaired (each variant and its baseline in their own jobs, as before pairing)
against paired; and how many device-seconds adaptive pairing spends against fixed counts
for the same interval width.

Three runs of `pytest suites/test_latency.py --target=local` on suites/models.yaml:
  unpaired  latency.pairing false: the interval of base/variant p50s is the bootstrap of the
            two jobs' samples (within-run noise) widened by the run-to-run noise the
            regression rule assumes (2% per run, docs/regression.md), since two jobs a
            minute apart differ by that much and more here;
  adaptive  the default: each pair runs until its interval is within +-1%;
  fixed     every pair runs the largest round count the adaptive run needed (fixed counts
            must be sized for the worst variant to reach the same width everywhere).
Device-seconds are the agent's timed windows. `make bench` runs the whole suite; with
--benchmark-disable only tiny_cnn's fp32 and onnx run, and only what cannot depend on load is
asserted (every variant with a baseline is paired in the paired runs, none in the unpaired).
"""

from __future__ import annotations

import math
import shutil
import statistics
from pathlib import Path
from typing import Any

import yaml
from helpers.paths import REPO
from helpers.results import records
from helpers.suites import run_suites, shown

from harness.analysis.regression import DEFAULT_RUN_SD, bootstrap_ratio_ci


def _manifest(tmp: Path, **latency: Any) -> Path:
    if not (tmp / "deployments").exists():  # the manifest names its deployment configs relative to itself
        shutil.copytree(REPO / "suites" / "deployments", tmp / "deployments")
    document = yaml.safe_load((REPO / "suites" / "models.yaml").read_text())
    document["zoo_dir"] = str(REPO / ".zoo")
    document.setdefault("defaults", {}).setdefault("latency", {}).update(latency)
    path = tmp / f"models-{len(list(tmp.glob('models-*')))}.yaml"
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    return path


def _run(tmp: Path, name: str, manifest: Path, subset: list[str]) -> list:
    done = run_suites(["suites/test_latency.py", "--target=local", f"--manifest={manifest}", *subset],
                      tmp / name, junit=False, report=False, timeout=3600)
    assert done.returncode in (0, 1), shown(done)  # a missed budget is a finding, not a bench failure
    _, _, measured = records(tmp / name)
    return [m for m in measured if m.metric == "latency" and m.status == "ok"]


def _unpaired_width(variant, base) -> float:
    low, high = bootstrap_ratio_ci(variant.samples, base.samples, resamples=1000)  # base/variant: the speed-up
    within = (math.log(high) - math.log(low)) / 2 / 1.96
    total = math.sqrt(within ** 2 + 2 * DEFAULT_RUN_SD ** 2)
    return math.exp(1.96 * total) - 1  # +- relative half-width


def test_speed_up_interval_unpaired_vs_paired_and_adaptive_vs_fixed(benchmark, demo_zoo, tmp_path) -> None:
    subset = ["-k", "tiny_cnn and (fp32 or onnx) and not lite"] if benchmark.disabled else []
    figures: dict[str, Any] = {}

    def runs() -> None:
        unpaired = _run(tmp_path, "unpaired", _manifest(tmp_path, pairing=False), subset)
        adaptive = _run(tmp_path, "adaptive", _manifest(tmp_path), subset)
        by_key = {(r.model, r.variant): r for r in unpaired}
        widths = {}
        for record in adaptive:
            paired = record.meta.get("paired")
            if not paired or not paired.get("paired") or not paired.get("ratios"):
                continue
            base = by_key.get((record.model, record.meta["baseline"]))
            mine = by_key.get((record.model, record.variant))
            widths[record.variant_id] = {
                "paired_halfwidth": paired["ratios"][0]["halfwidth"], "rounds": paired["rounds"],
                "stopped_by": paired["stopped_by"], "window_s": record.meta["window_ns"] / 1e9,
                "unpaired_halfwidth": _unpaired_width(mine, base) if base and mine else None}
        assert widths, "no variant was paired"
        assert all(not (r.meta.get("paired") or {}).get("paired") for r in unpaired)
        worst_rounds = max(w["rounds"] for w in widths.values())
        fixed = _run(tmp_path, "fixed", _manifest(tmp_path, paired_rounds=worst_rounds), subset)
        fixed_paired = {r.variant_id: r for r in fixed if (r.meta.get("paired") or {}).get("paired")}
        figures.update({
            "per_variant": widths,
            "median_unpaired_halfwidth": statistics.median(w["unpaired_halfwidth"] for w in widths.values()
                                                           if w["unpaired_halfwidth"] is not None),
            "median_paired_halfwidth": statistics.median(w["paired_halfwidth"] for w in widths.values()),
            "max_paired_halfwidth": max(w["paired_halfwidth"] for w in widths.values()),
            "adaptive_device_s": sum(w["window_s"] for w in widths.values()),
            "fixed_rounds": worst_rounds,
            "fixed_device_s": sum(r.meta["window_ns"] / 1e9 for r in fixed_paired.values()),
            "fixed_max_halfwidth": max(r.meta["paired"]["ratios"][0]["halfwidth"] for r in fixed_paired.values()),
        })

    benchmark.pedantic(runs, rounds=1, iterations=1)
    benchmark.extra_info.update(figures)
