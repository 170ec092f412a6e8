"""Paired latency through the suites on the local target, with real runtimes.

- a variant and its baseline on two interpreters (Paddle Lite 3.10, Paddle Inference 3.11)
  run as one process per arm, in lockstep; same-interpreter arms share one process;
- a resolution sweep point, whose input differs from its baseline's, is measured alone and
  says why it is unpaired;
- with --baseline RUN, the candidate is timed against the reference run's own artifacts in
  the same job (the verdict says "paired"); when those files are gone from the device and
  the zoo, the verdict says it is unpaired and why.
Assertions are about what ran and what was recorded, never about timing."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from helpers.paths import REPO
from helpers.project import TINY_CNN_INPUT, local_target, tiny_cnn_paddle, write_manifest, write_target
from helpers.suites import run_suites, shown

from harness.store import open_store

LATENCY = {"warmup_iterations": 5, "warmup_duration": "0.1s", "min_iterations": 20, "min_duration": "0.2s",
           "max_duration": "8s"}


def _project(tmp_path: Path, zoo: Path, variants: dict[str, Any], **model: Any) -> tuple[Path, Path]:
    targets = tmp_path / "targets"
    write_target(targets, local_target("box", workdir=tmp_path / "work", python=REPO / ".venv" / "bin" / "python",
                                       runtimes={"paddle-inference": REPO / ".venv" / "bin" / "python",
                                                 "onnxruntime": REPO / ".venv" / "bin" / "python",
                                                 "paddle-lite": REPO / ".venv-lite" / "bin" / "python"}))
    manifest = write_manifest(tmp_path / "models.yaml", {"tiny_cnn": {"input": TINY_CNN_INPUT, "variants": variants,
                                                                      **model}}, latency=LATENCY, zoo=zoo)
    return targets, manifest


def _latency(out: Path, label: str) -> dict[str, Any]:
    store = open_store(out / "results.sqlite")
    (run,) = store.runs(label=label)
    return {r.variant: r for r in store.measurements(run.id) if r.metric == "latency"}


def _suites(targets: Path, manifest: Path, out: Path, *extra: str):
    return run_suites(["suites/test_latency.py", "--target=box", f"--targets-dir={targets}",
                       f"--manifest={manifest}", *extra], out, junit=False, report=False)


def _latency_verdicts(report_json: Path) -> list[dict[str, Any]]:
    """The latency verdicts against the baseline run, as report.json has them."""
    return [v for target in json.loads(report_json.read_text())["targets"] for v in target.get("vs_baseline_run", [])
            if v["metric"] == "latency"]


def _onnx(**extra: Any) -> dict[str, Any]:
    return {"kind": "fp32", "format": "onnx", "runtime": "onnxruntime",
            "files": {"model": "{zoo}/tiny_cnn/onnx/model.onnx"}, "runtime_options": {"threads": 1}, **extra}


def test_arms_on_two_interpreters_and_a_sweep_point_that_cannot_pair(tmp_path: Path, demo_zoo: Path) -> None:
    lite = {"kind": "fp32", "format": "paddle-lite", "runtime": "paddle-lite", "arch": "x86_64", "baseline": "fp32",
            "files": {"model": "{zoo}/tiny_cnn/lite-x86/model.nb"}}
    variants = {"fp32": tiny_cnn_paddle(), "lite": lite, "onnx": _onnx(baseline="fp32"),
                "int8": tiny_cnn_paddle("int8", baseline="fp32", sweeps={"batch": [2]})}
    targets, manifest = _project(tmp_path, demo_zoo, variants)
    done = _suites(targets, manifest, tmp_path / "run", "--run-label=pair")
    assert done.returncode == 0, shown(done)
    records = _latency(tmp_path / "run", "pair")
    lite_paired = records["lite"].meta["paired"]
    assert lite_paired["paired"] and lite_paired["mode"] == "process-per-arm", lite_paired
    assert [a["name"] for a in records["lite"].meta["arms"]] == ["lite", "fp32"]
    assert records["onnx"].meta["paired"]["mode"] == "process-per-arm"  # one interpreter, still a process per arm
    for name in ("lite", "onnx"):
        (ratio,) = records[name].meta["paired"]["ratios"]
        assert ratio["against"] == "fp32" and ratio["ci95"][0] <= ratio["ratio"] <= ratio["ci95"][1]
    point = records["int8@batch=2"]  # its baseline fp32 has no batch=2 point
    assert point.status == "ok" and point.meta["paired"]["paired"] is False
    assert point.meta["paired"]["reason"].startswith("input [2, 3, 64, 64] float32 differs from baseline fp32's "
                                                     "[1, 3, 64, 64]"), point.meta["paired"]
    assert records["int8"].meta["paired"]["paired"], "the variant itself pairs"


def test_against_a_stored_run_the_reference_artifacts_run_in_the_same_job(tmp_path: Path, demo_zoo: Path) -> None:
    zoo = tmp_path / "zoo"
    shutil.copytree(demo_zoo / "tiny_cnn" / "onnx", zoo / "tiny_cnn" / "onnx")
    targets, manifest = _project(tmp_path, zoo, {"onnx": _onnx()})
    first = _suites(targets, manifest, tmp_path / "night", "--run-label=nightly")
    assert first.returncode == 0, shown(first)
    night = tmp_path / "night" / "results.sqlite"

    def next_night(name: str) -> tuple[dict[str, Any], dict[str, Any]]:
        done = run_suites(["suites/test_latency.py", "--target=box", f"--targets-dir={targets}",
                           f"--manifest={manifest}", f"--store={night}", "--run-label=nightly",
                           "--baseline=latest:nightly", f"--report-dir={tmp_path / name}"], None)
        assert done.returncode == 0, shown(done)
        store = open_store(night)
        latest, reference = store.runs(label="nightly")[:2]
        (record,) = [r for r in store.measurements(latest.id) if r.metric == "latency"]
        assert record.meta["paired"]["reference_run"] in (reference.id, None)
        (report_json,) = (tmp_path / name).glob("*/report.json")
        (verdict,) = _latency_verdicts(report_json)
        return record.meta, verdict

    # 1. the same files: the reference arm runs the variant's own (unchanged) files
    meta, verdict = next_night("same")
    assert [r["against"] for r in meta["paired"]["ratios"]] == ["reference-run"]
    assert verdict["method"] == "paired" and verdict["reason"].startswith("paired: "), verdict
    assert "against the baseline run's artifacts" in verdict["reason"]
    # 2. the model file changed, the previous night's is still in the device's cache: that one runs
    shutil.copy(demo_zoo / "tiny_cnn" / "onnx-int8" / "model.onnx", zoo / "tiny_cnn" / "onnx" / "model.onnx")
    meta, verdict = next_night("changed")
    assert verdict["method"] == "paired", verdict
    reference_files = meta["arms"][1]
    assert reference_files["name"] == "reference-run"
    # 3. and gone from the cache too: unpaired, saying why
    shutil.copy(demo_zoo / "tiny_cnn" / "onnx" / "model.onnx", zoo / "tiny_cnn" / "onnx" / "model.onnx")
    night_two = open_store(night).runs(label="nightly")[0]
    shutil.rmtree(tmp_path / "work" / "cache")
    meta, verdict = next_night("gone")
    assert open_store(night).runs(label="nightly")[1].id == night_two.id
    assert verdict["method"] == "samples", verdict
    assert verdict["reason"].startswith("unpaired (baseline model ") and "is no longer on box or in the zoo" in \
        verdict["reason"], verdict
