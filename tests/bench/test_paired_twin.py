"""Pairing across the Python 3.6 twin: two ONNX Runtime arms (onnxruntime 1.10, one Python 3.6
process each, driven by the agent's conductor) of the same model on the lab's jetson-nano
twin, half a core, over SSH, with a CPU-bound process busy on the host the whole time.

Each trial is ONE paired job through the harness's own path (measure_paired_latency on a
Device opened from the lab's generated target file). Figures in `benchmark.extra_info`: the
A/A bias (median ratio, goal within 1% of 1.0), the range, and false alarms at the default
3% threshold. `make bench` runs TRIALS trials per model; with --benchmark-disable (`make
test`) one trial of tiny_cnn, and only load-proof facts are asserted (paired, process per
arm, on Python 3.6, an interval around the ratio).
"""

from __future__ import annotations

import dataclasses
import os
import statistics
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from helpers.paths import REPO
from helpers.temporary_lab import temporary_lab

from harness import lab
from harness.analysis.paired import PairedRatio, paired_verdict
from harness.analysis.regression import DEFAULT_THRESHOLD
from harness.config.manifest import load_manifest
from harness.config.target_files import load_inventory
from harness.lab.devices import DEFAULT_LAB, LabSpec
from harness.records import RunInfo
from harness.run.device import Device
from harness.run.paired_latency import PairingSettings, measure_paired_latency
from harness.store import open_store

TRIALS = 25  # per model
MODELS = ("tiny_cnn-onnx", "mobilenet_v3_small-onnx")
TWIN_SPEC = LabSpec(devices=tuple(d for d in DEFAULT_LAB.devices if d.name == "jetson-nano"), prefix="hlabb",
                    subnet="10.200.1.0/26", cgroup_parent="harness-lab-bench")

pytestmark = [
    pytest.mark.skipif(os.geteuid() != 0, reason="the lab needs root (users, cgroups, mounts, namespaces)"),
    pytest.mark.skipif(not os.path.exists("/usr/sbin/sshd"), reason="needs OpenSSH server"),
]


@pytest.fixture(scope="module")
def twin() -> Iterator[lab.LabState]:
    with temporary_lab(TWIN_SPEC) as state:
        yield state


@pytest.fixture(scope="module")
def cpu_hog() -> Iterator[None]:
    hog = subprocess.Popen([sys.executable, "-c", "while True: pass"], stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL)
    try:
        yield
    finally:
        hog.kill()
        hog.wait()


def test_two_onnx_arms_on_the_python36_twin_a_a_bias(benchmark, twin, cpu_hog, demo_zoo,
                                                     tmp_path: Path) -> None:
    manifest = load_manifest(REPO / "suites" / "models.yaml")
    device = Device(load_inventory(twin.targets_dir).targets["jetson-nano"])
    store = open_store(tmp_path / "bench.sqlite")
    store.create_run(RunInfo(id="bench", label=None, started_at="", host="", harness_version=""))
    models = MODELS[:1] if benchmark.disabled else MODELS
    trials = 1 if benchmark.disabled else TRIALS
    found: dict[str, list[dict[str, Any]]] = {model: [] for model in models}

    def run() -> None:
        for model in models:
            variant = manifest.get(model)
            again = dataclasses.replace(variant, name=variant.name + "_again", baseline=variant.name)
            for seed in range(trials):
                record = measure_paired_latency(device, again, variant, store, "bench", PairingSettings(seed=seed))
                paired = record.meta["paired"]
                assert paired["paired"] and paired["mode"] == "process-per-arm", paired
                assert record.meta["agent"]["python"].startswith("3.6."), record.meta["agent"]
                (ratio,) = paired["ratios"]
                assert ratio["ci95"][0] <= ratio["ratio"] <= ratio["ci95"][1]
                found[model].append({"ratio": ratio, "stopped_by": paired["stopped_by"], "rounds": paired["rounds"],
                                     "conductor_us": [a["conductor_us_per_turn"] for a in paired["arms"]]})

    try:
        benchmark.pedantic(run, rounds=1, iterations=1)
    finally:
        device.close()
    for model, rows in found.items():
        ratios = [r["ratio"]["ratio"] for r in rows]
        verdicts = [paired_verdict(PairedRatio("a", "b", "median", r["ratio"]["ratio"], tuple(r["ratio"]["ci95"]),
                                               r["rounds"], 1), DEFAULT_THRESHOLD,
                                   settled=r["stopped_by"] in ("precision", "rounds"))[0] for r in rows]
        benchmark.extra_info[model] = {
            "trials": len(rows), "median_ratio": statistics.median(ratios), "min_ratio": min(ratios),
            "max_ratio": max(ratios), "false_alarm_rate": verdicts.count("regression") / len(verdicts),
            "inconclusive_rate": verdicts.count("inconclusive") / len(verdicts),
            "median_halfwidth": statistics.median(r["ratio"]["halfwidth"] for r in rows),
            "median_rounds": statistics.median(r["rounds"] for r in rows),
            "median_conductor_us_per_turn": statistics.median(us for r in rows for us in r["conductor_us"] if us)}
