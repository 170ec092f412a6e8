"""Diagnosis rules: each with a record set that triggers it and one that does not, and the
int8 hint on this machine's real records (the suites run through a subprocess)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
from helpers.suites import run_suites

from harness.analysis.diagnosis import (
    RULES,
    diagnose,
    hints_for,
    rule_fidelity_after_quantization,
    rule_import_dominates,
    rule_int8_slower,
    rule_latency_variance,
    rule_memory_budget,
    rule_optimisation_off,
    rule_unsupported_operator,
    unsupported_operator,
)
from harness.analysis.provenance import file_provenance, provenance_index
from harness.records import MeasurementRecord

REPO = Path(__file__).resolve().parents[2]
MIB = 2**20
NO_VNNI = {"device": {"cpu_model": "Intel Xeon (AVX2)", "cpu_flags": {
    "source": "/proc/cpuinfo", "present": ["avx", "avx2", "fma"], "int8_dot_product": []}}}
VNNI = {"device": {"cpu_flags": {"source": "/proc/cpuinfo", "present": ["avx2", "avx512_vnni"],
                                 "int8_dot_product": ["avx512_vnni"]}}}
BUDGET = {"target_latency_s": 0.05, "max_memory_bytes": 500 * MIB, "max_power_w": None, "statistic": "p90",
          "source": "models.yaml"}
FIDELITY_SETTINGS = {"inputs": 16, "min_top1_agreement": 0.99, "min_top5_agreement": None, "max_relative_error": 0.1,
                     "min_cosine": None}


def record(variant: str, metric: str, summary: dict[str, Any], *, kind: str = "fp32", baseline: str | None = None,
           runtime: str = "paddle-inference", info: dict[str, Any] | None = None, status: str = "ok",
           error: str = "", options: dict[str, Any] | None = None, shape: list[int] | None = None,
           files: dict[str, Any] | None = None, target: str = "local") -> MeasurementRecord:
    meta: dict[str, Any] = {"kind": kind, "baseline": baseline, "runtime": runtime, "runtime_options": options or {},
                            "runtime_info": info or {}, "budget": BUDGET, "input": {"shape": shape or [1, 3, 224, 224]},
                            "fidelity_settings": FIDELITY_SETTINGS, "files": files or {}}
    if error:
        meta["error"] = error
    return MeasurementRecord(run_id="r", target=target, model="m", variant=variant, metric=metric, unit="ms",
                             status=status, summary=summary, meta=meta)


def latency(p50: float, ci: float = 0.1, robust_cv: float = 0.02, best: float | None = None, **more: Any):
    return {"p50": p50, "p50_ci": [p50 - ci, p50 + ci], "p90": p50 * 1.05, "p99": p50 * 1.2, "min": best or p50 * 0.95,
            "robust_cv": robust_cv, "cv": robust_cv, "warnings": [], **more}


def rules_fired(hints: list[dict[str, Any]]) -> list[str]:
    return [h["rule"] for h in hints]


# --------------------------------------------------------------------------- int8 slower than fp32


INT8_INFO = {"precision": "int8", "precision_executed": "int8", "int8_kernels": True, "int8_ops": {"fused_conv2d": 30}}


def test_int8_slower_on_a_cpu_without_int8_instructions() -> None:
    records = [record("fp32", "latency", latency(5.2)),
               record("int8", "latency", latency(6.5), kind="int8-ptq", baseline="fp32", info=INT8_INFO)]
    [hint] = rule_int8_slower(records, {"local": NO_VNNI}, None)
    assert hint["rule"] == "int8-slower-no-int8-isa" and hint["severity"] == "warning"
    assert hint["message"].startswith("int8 slower than fp32 (no int8 acceleration on this CPU)")
    assert hint["applies_to"] == "m-int8" and hint["target"] == "local" and hint["metric"] == "latency"
    assert hint["evidence"]["ratio"] == pytest.approx(6.5 / 5.2) and hint["evidence"]["int8_dot_product"] == []
    assert hint["evidence"]["baseline"] == "m-fp32" and hint["evidence"]["slower_at"] == "p50"


def test_int8_slower_in_the_best_case_on_a_loaded_machine() -> None:
    # p50s overlap (other load), but the fastest iterations show the int8 cost
    records = [record("fp32", "latency", latency(12.0, ci=2.0, best=7.5)),
               record("int8", "latency", latency(12.5, ci=2.0, best=8.1), kind="int8-ptq", baseline="fp32")]
    [hint] = rule_int8_slower(records, {"local": NO_VNNI}, None)
    assert hint["evidence"]["slower_at"] == "best case (min)" and "best case 8.10 ms vs 7.50 ms" in hint["message"]


def test_int8_faster_or_within_noise_gives_no_hint() -> None:
    faster = [record("fp32", "latency", latency(41.0)),
              record("int8", "latency", latency(21.0), kind="int8-ptq", baseline="fp32", info=INT8_INFO)]
    assert rule_int8_slower(faster, {"local": NO_VNNI}, None) == []
    noise = [record("fp32", "latency", latency(5.2, ci=0.5)),
             record("int8", "latency", latency(5.3, ci=0.5), kind="int8-ptq", baseline="fp32")]
    assert rule_int8_slower(noise, {"local": NO_VNNI}, None) == []
    clearly_faster_p50 = [record("fp32", "latency", latency(20.0, best=5.0)),
                          record("int8", "latency", latency(10.0, best=6.0), kind="int8-ptq", baseline="fp32")]
    assert rule_int8_slower(clearly_faster_p50, {"local": NO_VNNI}, None) == []
    fp32_pair = [record("fp32", "latency", latency(5.0)), record("pruned", "latency", latency(6.0), baseline="fp32")]
    assert rule_int8_slower(fp32_pair, {"local": NO_VNNI}, None) == []


def test_int8_slower_on_a_vnni_cpu_blames_fake_quant_instead() -> None:
    info = {"precision": "int8", "precision_executed": "fp32-fake-quant", "int8_kernels": False,
            "precision_note": "quantized model run as fp32 with fake-quant ops"}
    records = [record("fp32", "latency", latency(5.0)),
               record("int8", "latency", latency(7.0), kind="int8-ptq", baseline="fp32", info=info)]
    [hint] = rule_int8_slower(records, {"local": VNNI}, None)
    assert hint["rule"] == "int8-slower" and "the CPU has avx512_vnni" in hint["message"]
    assert "fake-quant" in hint["message"]
    [unknown] = rule_int8_slower(records, {}, None)
    assert unknown["rule"] == "int8-slower" and "int8 support is unknown" in unknown["message"]


# --------------------------------------------------------------------------- optimisation off


def test_ir_optim_or_mkldnn_off_is_flagged() -> None:
    off = record("fp32", "latency", latency(20.0), options={"threads": 1, "mkldnn": False, "ir_optim": False},
                 info={"ir_optim": False, "mkldnn": False, "device": "cpu",
                       "precision_note": "ir_optim=false on a legacy model: MKLDNN is not applied"})
    [hint] = rule_optimisation_off([off], None, None)
    assert hint["rule"] == "paddle-optimisation-off"
    assert "IR optimisation (ir_optim: false) and MKLDNN/oneDNN kernels (mkldnn: false) off" in hint["message"]
    assert "not applied to a legacy .pdmodel" in hint["message"]
    ort = record("onnx", "latency", latency(9.0), runtime="onnxruntime", info={"graph_optimization": "disable"})
    assert rules_fired(rule_optimisation_off([ort], None, None)) == ["ort-optimisation-off"]


def test_default_optimisations_give_no_hint() -> None:
    on = record("fp32", "latency", latency(5.0), options={"threads": 1, "mkldnn": True},
                info={"ir_optim": True, "mkldnn": True, "device": "cpu"})
    ort = record("onnx", "latency", latency(5.0), runtime="onnxruntime", info={"graph_optimization": "all"})
    assert rule_optimisation_off([on, ort], None, None) == []


# --------------------------------------------------------------------------- memory budget


def memory(peak: int, imported: int, load: int, inference: int) -> dict[str, Any]:
    return {"peak_rss_bytes": peak, "import_peak_bytes": imported, "load_delta_bytes": load,
            "inference_delta_bytes": inference, "model_file_bytes": 10 * MIB}


def test_memory_budget_missed_at_load_vs_at_inference() -> None:
    at_load = record("fp32", "memory", memory(700 * MIB, 300 * MIB, 350 * MIB, 50 * MIB))
    [hint] = rule_memory_budget([at_load], None, None)
    assert hint["evidence"]["phase"] == "load" and hint["severity"] == "error"
    assert hint["message"].startswith("memory budget missed at model load") and "batch size will not" in hint["message"]
    at_inference = record("fp32@batch=16", "memory", memory(700 * MIB, 300 * MIB, 50 * MIB, 350 * MIB),
                          shape=[16, 3, 224, 224])
    [hint] = rule_memory_budget([at_inference], None, None)
    assert hint["evidence"]["phase"] == "inference" and hint["evidence"]["batch"] == 16
    assert "missed at inference" in hint["message"] and "batch 16" in hint["message"]


def test_memory_within_budget_gives_no_hint() -> None:
    assert rule_memory_budget([record("fp32", "memory", memory(400 * MIB, 300 * MIB, 50 * MIB, 50 * MIB))],
                              None, None) == []


# --------------------------------------------------------------------------- fidelity after quantization


def fidelity(top1: float, error: float) -> dict[str, Any]:
    return {"comparable": True, "inputs": 16, "top1_agreement": top1, "relative_error_mean": error,
            "cosine_min": 0.9, "baseline": {"meaningful": True, "inputs": 16, "distinct_top1": 12}}


PROVENANCE = {"abc": {"tool": "paddle static PTQ", "calibration": {"size": 8, "inputs": "structured_input"},
                      "options": {"algo": "avg"}},
              "def": {"tool": "onnxruntime quantize_static", "calibration": {"size": 512, "inputs": "images"},
                      "options": {"per_channel": True}}}


def test_fidelity_drop_after_quantization_reads_the_calibration() -> None:
    small = record("int8", "fidelity", fidelity(0.75, 0.35), kind="int8-ptq", baseline="fp32",
                   files={"model": {"name": "m.pdmodel", "sha256": "abc"}})
    [hint] = rule_fidelity_after_quantization([small], None, PROVENANCE)
    assert hint["rule"] == "fidelity-drop-after-quantization" and hint["metric"] == "fidelity"
    assert "calibration too small: 8 inputs" in hint["message"] and hint["evidence"]["calibration_size"] == 8
    assert "top-1 agreement 75.0% < 99.0%" in hint["message"]
    large = record("int8", "fidelity", fidelity(0.75, 0.35), kind="int8-ptq", baseline="fp32",
                   files={"model": {"sha256": "def"}})
    [hint] = rule_fidelity_after_quantization([large], None, PROVENANCE)
    assert "sensitive layers" in hint["message"] and "(512 inputs)" in hint["message"]


def test_fidelity_pass_or_an_fp32_variant_gives_no_hint() -> None:
    good = record("int8", "fidelity", fidelity(1.0, 0.02), kind="int8-ptq", baseline="fp32")
    pruned = record("pruned", "fidelity", fidelity(0.5, 0.5), kind="pruned", baseline="fp32")
    assert rule_fidelity_after_quantization([good, pruned], None, PROVENANCE) == []


def test_provenance_index_maps_files_of_the_real_zoo() -> None:
    info = REPO / ".zoo" / "mobilenet_v3_small" / "build-info.json"
    if not info.is_file():
        pytest.skip("zoo not built")
    index = provenance_index(REPO / ".zoo")
    built = json.loads(info.read_text())
    sha = built["files"]["int8/inference.pdmodel"]["sha256"]
    assert index[sha]["calibration"]["size"] == built["variants"]["int8"]["calibration"]["size"]
    assert index[sha]["model"] == "mobilenet_v3_small" and index[sha]["variant_dir"] == "int8"
    assert file_provenance(record("int8", "fidelity", {}, files={"model": {"sha256": sha}}), index) is index[sha]


# --------------------------------------------------------------------------- unsupported operator


@pytest.mark.parametrize("message, op", [
    ("local: model-load: litert could not load /w/m.tflite: Didn't find op for builtin opcode 'STABLEHLO_COMPOSITE' "
     "version '1'", "STABLEHLO_COMPOSITE"),
    ("local: model-load: litert could not load x: Encountered unresolved custom op: Convolution2DTransposeBias.",
     "Convolution2DTransposeBias"),
    ("local: model-load: onnxruntime could not load m.onnx: Could not find an implementation for GridSample(20) node "
     "with name 'g'", "GridSample"),
    ("local: model-load: paddle-inference could not load m: (NotFound) Operator (deformable_conv) is not registered.",
     "deformable_conv"),
])
def test_unsupported_operator_from_a_load_error(message: str, op: str) -> None:
    assert unsupported_operator(message) == op
    failed = record("fp32", "latency", {}, status="error", error=message, runtime="litert")
    [hint] = rule_unsupported_operator([failed, failed], None, None)  # once per variant and op
    assert hint["rule"] == "unsupported-operator" and hint["severity"] == "error"
    assert hint["message"].startswith(f"unsupported operator {op}") and hint["evidence"]["load_failed"]


def test_other_errors_are_not_called_unsupported_operators() -> None:
    other = record("fp32", "latency", {}, status="error",
                   error="local: model-missing: model file not found on device: /w/m.onnx")
    assert rule_unsupported_operator([other, record("fp32", "latency", latency(5.0))], None, None) == []


# --------------------------------------------------------------------------- latency variance


def test_high_variance_names_the_governor_and_throttling() -> None:
    env = {"local": {"device": {"cpu_governors": {"cpu0": "powersave", "cpu1": "powersave"}, "loadavg": [0.2],
                                "cpu_count": 4, "thermal": {"throttle_count": 3}}}}
    noisy = record("fp32", "latency", latency(5.0, robust_cv=0.3))
    noisy.meta["thermal_after"] = {"throttle_count": 9}
    [hint] = rule_latency_variance([noisy], env, None)
    assert hint["rule"] == "high-latency-variance"
    assert 'DVFS governor powersave, not "performance"' in hint["message"]
    assert "thermal throttling" in hint["message"] and hint["evidence"]["throttled"] is True
    loaded = {"local": {"device": {"cpu_governors": {"cpu0": "performance"}, "loadavg": [3.8], "cpu_count": 2}}}
    [hint] = rule_latency_variance([record("fp32", "latency", latency(5.0, robust_cv=0.3))], loaded, None)
    assert "background load (load average 3.8 on 2 CPUs)" in hint["message"] and "governor" not in hint["message"]


def test_steady_latency_gives_no_variance_hint() -> None:
    env = {"local": {"device": {"cpu_governors": {"cpu0": "powersave"}}}}
    assert rule_latency_variance([record("fp32", "latency", latency(5.0, robust_cv=0.03))], env, None) == []


# --------------------------------------------------------------------------- runtime import share


def test_runtime_import_dominating_peak_memory() -> None:
    paddle = record("fp32", "memory", memory(350 * MIB, 290 * MIB, 30 * MIB, 30 * MIB))
    [hint] = rule_import_dominates([paddle], None, None)
    assert hint["rule"] == "runtime-import-dominates-memory" and hint["severity"] == "info"
    assert "importing paddle-inference takes 290 MiB of the 350 MiB peak (83%)" in hint["message"]
    over = record("fp32", "memory", memory(600 * MIB, 560 * MIB, 20 * MIB, 20 * MIB))
    assert rule_import_dominates([over], None, None)[0]["severity"] == "warning"


def test_model_dominated_memory_gives_no_import_hint() -> None:
    ort = record("onnx", "memory", memory(120 * MIB, 40 * MIB, 50 * MIB, 30 * MIB), runtime="onnxruntime")
    assert rule_import_dominates([ort], None, None) == []


# --------------------------------------------------------------------------- all rules together


def test_diagnose_runs_every_rule_and_orders_by_severity() -> None:
    records = [record("fp32", "latency", latency(5.2)),
               record("int8", "latency", latency(6.5), kind="int8-ptq", baseline="fp32"),
               record("int8", "memory", memory(700 * MIB, 300 * MIB, 350 * MIB, 50 * MIB), kind="int8-ptq"),
               record("bad", "latency", {}, status="error", error="Didn't find op for builtin opcode 'FOO'")]
    hints = diagnose(records, {"local": NO_VNNI})
    assert [h["severity"] for h in hints] == sorted((h["severity"] for h in hints),
                                                    key={"error": 0, "warning": 1, "info": 2}.get)
    assert {"int8-slower-no-int8-isa", "memory-budget-missed", "unsupported-operator"} <= set(rules_fired(hints))
    assert [h["rule"] for h in hints_for(hints, "local", "m-int8", "latency")] == ["int8-slower-no-int8-isa"]
    assert all(json.dumps(h) for h in hints)  # plain values, ready for report.json
    assert len(RULES) == 7


# --------------------------------------------------------------------------- this machine's real records


def _int8_hint_from_a_real_run(tmp_path: Path, attempt: int) -> tuple[list[dict[str, Any]], str]:
    from harness.store import open_store

    store = tmp_path / f"results-{attempt}.sqlite"
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    done = run_suites(["suites/test_latency.py", "suites/test_fidelity.py", "--target", "local",
                       "-k", "mobilenet_v3_small-fp32] or mobilenet_v3_small-int8]", "--store", str(store),
                       "--no-report"], env=env, quiet=("-q",), timeout=900)
    opened = open_store(store)
    try:
        [run] = opened.runs()
        records = list(opened.measurements(run.id))
        environments = opened.environments(run.id)
    finally:
        opened.close()
    latency_records = [r for r in records if r.metric == "latency" and r.status == "ok"]
    assert {r.variant_id for r in latency_records} == {"mobilenet_v3_small-fp32", "mobilenet_v3_small-int8"}, \
        done.stdout[-3000:]
    return diagnose(records, environments, provenance_index(REPO / ".zoo")), done.stdout


@pytest.mark.slow
def test_int8_hint_fires_on_this_machines_real_records(demo_zoo, tmp_path: Path) -> None:
    """This CPU (AVX2, no VNNI) runs mobilenet_v3_small int8 slower than fp32 (notes: 5.2 -> 6.5 ms).

    Each variant is measured in its own agent process, one after the other; on a shared,
    loaded machine the load can change between the two runs and invert them, so a run pair
    that shows no difference is repeated (up to three times)."""
    from harness.agent.env import capture

    flags = capture()["cpu_flags"]
    if flags["int8_dot_product"]:
        pytest.skip(f"this CPU has int8 dot-product instructions ({flags['int8_dot_product']}): the hint is not true here")
    seen = []
    for attempt in range(3):
        hints, output = _int8_hint_from_a_real_run(tmp_path, attempt)
        fired = [h for h in hints if h["rule"] == "int8-slower-no-int8-isa"]
        seen.append([(h["rule"], h["message"][:160]) for h in hints])
        if fired:
            [hint] = fired
            assert hint["applies_to"] == "mobilenet_v3_small-int8" and hint["target"] == "local"
            assert hint["message"].startswith("int8 slower than fp32 (no int8 acceleration on this CPU)")
            assert hint["evidence"]["cpu_flags_source"] == "/proc/cpuinfo"
            assert hint["evidence"]["baseline"] == "mobilenet_v3_small-fp32"
            return
    pytest.fail(f"the int8 hint did not fire in 3 runs; hints seen: {seen}")
