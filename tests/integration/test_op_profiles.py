"""Operator-level profiles from each runtime's own profiler, through the real agent.

ONNX Runtime (SessionOptions.enable_profiling, JSON trace), Paddle Inference
(Config.enable_profile, its Event Summary) and LiteRT (the CompiledModel profiler of
libLiteRt.so) on real zoo models; Paddle Lite and noop say "not supported by <runtime>".
The profile runs after the timed loop, outside the timed window, and measure_latency stores
it in meta["op_profile"].
"""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from harness.agent import PROTOCOL_VERSION

REPO = Path(__file__).resolve().parents[2]
FAST = {"warmup_iterations": 3, "warmup_duration_s": 0, "min_iterations": 20, "min_duration_s": 0.05}
MOBILENET = [1, 3, 96, 96]


def run_agent(runtime: str, files: dict[str, Path], shape: list[int], options: dict[str, Any] | None = None,
              python: str = sys.executable, **extra: Any) -> tuple[int, list[dict[str, Any]], str]:
    job = {"protocol": PROTOCOL_VERSION, "job_id": "prof", "kind": "latency", "profile_ops": True,
           "runtime": {"name": runtime, "options": options or {}},
           "model": {"files": {role: str(path) for role, path in files.items()}},
           "input": {"name": "x", "shape": shape, "dtype": "float32", "seed": 0}, "latency": FAST}
    job.update(extra)
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    env.update(PYTHONPATH=str(REPO), PYTHONDONTWRITEBYTECODE="1")
    done = subprocess.run([python, "-m", "harness.agent"], input=json.dumps(job).encode(), capture_output=True,
                          cwd=str(REPO), env=env, timeout=600)
    events = [json.loads(line) for line in done.stdout.decode().splitlines()]
    return done.returncode, events, done.stderr.decode("utf-8", "replace")


def profile_of(runtime: str, files: dict[str, Path], shape: list[int], options: dict[str, Any] | None = None,
               python: str = sys.executable) -> dict[str, Any]:
    code, events, stderr = run_agent(runtime, files, shape, options, python)
    assert code == 0, (events[-1:], stderr[-3000:])
    names = [e["event"] for e in events]
    assert names[-3:] == ["profile", "samples", "result"], names
    phases = [e.get("phase") for e in events if e["event"] == "progress"]
    assert phases.index("profile") > phases.index("measure")  # after the timed loop
    assert len(events[-2]["latency_ns"]) == events[-1]["iterations"] >= FAST["min_iterations"]
    profile = events[-3]
    assert profile["runtime"] == runtime
    return profile


def check_shares(profile: dict[str, Any]) -> None:
    assert profile["supported"] is True and profile["reason"] == "" and profile["iterations"] >= 5
    ops = profile["ops"]
    assert ops and all({"op", "type", "time_ms", "share", "calls"} <= set(op) for op in ops)
    shares = [op["share"] for op in ops]
    assert shares == sorted(shares, reverse=True)
    assert 0.5 < sum(shares) <= 1.0 + 1e-6, sum(shares)  # most of the time is in operators; never more than all
    assert sum(t["share"] for t in profile["by_type"]) == pytest.approx(profile["coverage"], abs=1e-3)
    if profile["ops_total"] == len(ops):
        assert sum(shares) == pytest.approx(profile["coverage"], abs=1e-3)
    else:  # only the top MAX_PROFILE_OPS nodes are listed
        assert len(ops) == 100 < profile["ops_total"] and sum(shares) <= profile["coverage"] + 1e-6
    assert profile["wall_ms"] > 0 and profile["op_time_ms"] > 0
    assert all(op["time_ms"] >= 0 and op["calls"] >= 1 for op in ops)
    by_type = profile["by_type"]
    assert sum(t["time_ms"] for t in by_type) == pytest.approx(profile["op_time_ms"], rel=1e-3)
    assert [t["share"] for t in by_type] == sorted((t["share"] for t in by_type), reverse=True)


def test_onnxruntime_profile_per_node(demo_zoo: Path) -> None:
    profile = profile_of("onnxruntime", {"model": demo_zoo / "mobilenet_v3_small" / "onnx" / "model.onnx"}, MOBILENET)
    check_shares(profile)
    assert profile["profiler"].startswith("onnxruntime 1.31.1 SessionOptions.enable_profiling")
    assert profile["granularity"] == "node"
    assert profile["by_type"][0]["type"] == "Conv"  # a CNN spends its time in convolutions
    assert all(op["calls"] == profile["iterations"] for op in profile["ops"])  # one call per node per inference
    assert profile["ops"][0]["provider"] == "CPUExecutionProvider"


def test_onnxruntime_int8_profile_shows_the_quantized_kernels(demo_zoo: Path) -> None:
    profile = profile_of("onnxruntime", {"model": demo_zoo / "mobilenet_v3_small" / "onnx-int8" / "model.onnx"},
                         MOBILENET)
    check_shares(profile)
    types = {t["type"] for t in profile["by_type"]}
    assert {"QuantizeLinear", "DequantizeLinear"} & types and any(t.startswith("QLinear") for t in types)


def test_paddle_inference_profile_per_op_type(demo_zoo: Path) -> None:
    model = demo_zoo / "mobilenet_v3_small" / "fp32"
    profile = profile_of("paddle-inference", {"model": model / "inference.pdmodel", "params": model / "inference.pdiparams"},
                         MOBILENET, {"threads": 1, "mkldnn": True})
    check_shares(profile)
    assert profile["profiler"].startswith("paddle-inference Config.enable_profile()")
    assert profile["granularity"] == "op-type" and "note" not in profile  # the profiler was reset after warm-up
    top = profile["ops"][0]
    assert top["op"] == top["type"] and top["type"] in ("fused_conv2d", "conv2d")
    assert all(op["calls"] % profile["iterations"] == 0 for op in profile["ops"])  # n nodes x iterations


def test_litert_profile_per_node_with_and_without_xnnpack(demo_zoo: Path) -> None:
    pytest.importorskip("ai_edge_litert")
    model = {"model": demo_zoo / "mediapipe" / "face_landmark.tflite"}
    delegated = profile_of("litert", model, [1, 192, 192, 3], {"xnnpack": True})
    check_shares(delegated)
    assert delegated["profiler"].startswith("LiteRT CompiledModel profiler (libLiteRt.so C API; XNNPACK kernels")
    assert {op["executor"] for op in delegated["ops"]} == {"XNNPACK"}
    assert any("Convolution" in t["type"] for t in delegated["by_type"][:3])
    builtin = profile_of("litert", model, [1, 192, 192, 3], {"xnnpack": False})
    check_shares(builtin)
    assert {op["executor"] for op in builtin["ops"]} == {"builtin"}
    assert builtin["by_type"][0]["type"] == "CONV_2D" and builtin["ops"][0]["op"].startswith(("CONV_2D#", "DEPTHWISE"))


def test_runtimes_without_a_profiler_say_so(demo_zoo: Path) -> None:
    noop = profile_of("noop", {}, [1])
    assert noop["supported"] is False and noop["reason"] == "not supported by noop" and noop["ops"] == []
    lite_python = REPO / ".venv-lite" / "bin" / "python"
    if not lite_python.exists():
        pytest.skip("no Paddle Lite interpreter (.venv-lite)")
    lite = profile_of("paddle-lite", {"model": demo_zoo / "mobilenet_v3_small" / "lite-x86" / "model.nb"}, MOBILENET,
                      python=str(lite_python))
    assert lite["supported"] is False and lite["reason"] == "not supported by paddle-lite"


def test_profile_ops_is_checked_in_the_job() -> None:
    code, events, _ = run_agent("noop", {}, [1], profile_ops="yes")
    assert code == 1 and events[-1]["kind"] == "protocol" and "profile_ops must be true or false" in events[-1]["message"]
    code, events, _ = run_agent("noop", {}, [1], kind="fidelity", fidelity={"seeds": [1]})
    assert code == 1 and "profile_ops is only for latency and paired jobs" in events[-1]["message"]


def test_measure_latency_stores_the_profile(demo_zoo: Path, tmp_path: Path) -> None:
    from harness.config.manifest import load_manifest
    from harness.config.target_files import load_inventory
    from harness.config.variants import LatencySettings
    from harness.records import RunInfo
    from harness.run.device import Device
    from harness.run.measure import measure_latency
    from harness.store import open_store

    variant = load_manifest(REPO / "suites" / "models.yaml").get("tiny_cnn-onnx")
    variant = dataclasses.replace(variant, latency=LatencySettings(3, 0.0, 20, 0.05, 30.0))
    device = Device(load_inventory(REPO / "targets").targets["local"])
    store = open_store(tmp_path / "results.sqlite")
    try:
        store.create_run(RunInfo(id="prof", label=None, started_at="", host="", harness_version=""))
        record = measure_latency(device, variant, store, "prof", profile_ops=True)
        plain = measure_latency(device, variant, store, "prof")
        stored = {r.id: r for r in store.measurements("prof")}
    finally:
        device.close()
        store.close()
    profile = stored[record.id].meta["op_profile"]
    assert profile["supported"] is True and "event" not in profile and "protocol" not in profile
    assert profile["ops"][0]["type"] == "Conv" and 0.5 < sum(op["share"] for op in profile["ops"]) <= 1.0 + 1e-6
    assert "op_profile" not in stored[plain.id].meta
