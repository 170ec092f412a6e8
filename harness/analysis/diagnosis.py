"""Diagnosis hints: rules over stored measurements that point at the likely cause (pure).

`diagnose(records, environments, provenance)` runs every rule in RULES over one run's records
and returns hints, plain dicts ready for report.json and the HTML report:

    {"rule": "int8-slower-no-int8-isa", "severity": "warning" | "error" | "info",
     "message": one line, "applies_to": variant id, "target": target name,
     "metric": the metric the hint explains (the report shows it next to that number),
     "evidence": {the numbers and settings the rule used}}

Inputs:
- records: harness.records.MeasurementRecord of one run (latency / memory / fidelity / power;
  meta has runtime_info, runtime_options, budget, memory phases, input, files);
- environments: {target: environment} as the store keeps it ({"declared", "device": the agent's
  env capture, with cpu_flags, cpu_governors, thermal, loadavg}) or the bare device dict;
- provenance: how each model file was made, keyed by sha256
  (`harness.analysis.provenance.provenance_index(zoo_dir)` reads the zoo's build-info.json
  files): calibration size, tool, options.

The rules (each tested with a record set that triggers it and one that does not):
    int8-slower-no-int8-isa    int8 slower than its fp32 baseline, and the CPU lacks int8
                               dot-product instructions (VNNI, AMX, ARM dotprod/i8mm)
    int8-slower                int8 slower than fp32 on a CPU that has them (or unknown):
                               fake-quant execution, quantize/dequantize overhead
    paddle-optimisation-off    Paddle Inference with IR optimisation or MKLDNN off (or ORT
                               with graph optimisation off)
    memory-budget-missed       peak memory over budget: missed already at runtime import +
                               model load, or only at inference (activations: batch, resolution)
    fidelity-drop-after-quantization   a quantized variant fails fidelity: calibration too small,
                               or sensitive layers
    unsupported-operator       a model-load / runtime error naming an operator the runtime lacks
    high-latency-variance      noisy timings: DVFS governor not "performance", thermal
                               throttling, or background load
    runtime-import-dominates-memory    importing the runtime is most of the peak memory
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from harness.analysis.provenance import file_provenance
from harness.analysis.record_verdict import record_verdict
from harness.analysis.stats import HIGH_CV, is_noisy
from harness.records import MeasurementRecord

INT8_SLOWER_MARGIN = 0.05  # int8 must be this much slower (p50) before a hint is given
SMALL_CALIBRATION = 100  # calibration sets below this many inputs are called small
IMPORT_SHARE = 0.60  # runtime import above this share of peak RSS "dominates"
INT8_ISA_NAMES = "VNNI (avx512_vnni / avx_vnni), AMX (amx_int8) or ARM dotprod (asimddp) / i8mm"

Hint = dict


def _hint(rule: str, severity: str, message: str, record: MeasurementRecord, evidence: Mapping[str, Any],
          metric: str | None = None) -> Hint:
    return {"rule": rule, "severity": severity, "message": message, "applies_to": record.variant_id,
            "target": record.target, "metric": metric or record.metric, "evidence": dict(evidence)}


def _device_env(environments: Mapping[str, Any] | None, target: str) -> Mapping[str, Any]:
    env = (environments or {}).get(target) or {}
    return env.get("device", env) if isinstance(env, Mapping) else {}


def _ok(records: Iterable[MeasurementRecord], metric: str) -> list[MeasurementRecord]:
    return [r for r in records if r.metric == metric and r.status == "ok"]


def _is_int8(record: MeasurementRecord) -> bool:
    info = record.meta.get("runtime_info") or {}
    return str(record.meta.get("kind", "")).startswith("int8") or info.get("precision") == "int8" \
        or info.get("precision_requested") == "int8"


def _by_variant(records: Iterable[MeasurementRecord]) -> dict[tuple[str, str, str], MeasurementRecord]:
    return {(r.target, r.model, r.variant): r for r in records}


# --------------------------------------------------------------------------- rules


def rule_int8_slower(records: Sequence[MeasurementRecord], environments: Mapping[str, Any] | None,
                     provenance: Mapping[str, Any] | None) -> list[Hint]:
    """int8 slower than its fp32 baseline (p50, beyond the margin and the CIs)."""
    latency = _ok(records, "latency")
    by_key = _by_variant(latency)
    hints = []
    for record in latency:
        baseline_name = record.meta.get("baseline")
        if not baseline_name or not _is_int8(record):
            continue
        base = by_key.get((record.target, record.model, baseline_name))
        if base is None or _is_int8(base):
            continue
        value, reference = record.summary.get("p50"), base.summary.get("p50")
        best, reference_best = record.summary.get("min"), base.summary.get("min")
        if not value or not reference:
            continue
        ci, reference_ci = record.summary.get("p50_ci") or [value, value], base.summary.get("p50_ci") or [reference] * 2
        # typical: p50 slower beyond the margin, with the 95% intervals apart
        typical = value > reference * (1 + INT8_SLOWER_MARGIN) and ci[0] > reference_ci[-1]
        # best case: the fastest iteration, the least disturbed by other load on a shared machine,
        # slower beyond the margin, while the p50 is not clearly faster
        best_case = bool(best and reference_best and best > reference_best * (1 + INT8_SLOWER_MARGIN)
                         and not ci[-1] < reference_ci[0])
        if not (typical or best_case):
            continue
        info = record.meta.get("runtime_info") or {}
        flags = _device_env(environments, record.target).get("cpu_flags") or {}
        min_ratio = best / reference_best if best and reference_best else None
        evidence = {
            "p50_ms": value, "baseline_p50_ms": reference, "ratio": value / reference, "baseline": base.variant_id,
            "min_ms": best, "baseline_min_ms": reference_best, "min_ratio": min_ratio,
            "slower_at": "p50" if typical else "best case (min)",
            "precision_executed": info.get("precision_executed", info.get("precision")),
            "int8_kernels": info.get("int8_kernels"), "int8_ops": info.get("int8_ops"),
            "cpu_model": _device_env(environments, record.target).get("cpu_model"),
            "cpu_flags": list(flags.get("present") or []),
            "int8_dot_product": list(flags.get("int8_dot_product") or []),
            "cpu_flags_source": ("the host's /proc/cpuinfo (qemu-user): not this device's"
                                 if _device_env(environments, record.target).get("cpu_info_is_host")
                                 else flags.get("source")),
        }
        if typical:
            slower = f"p50 {value:.2f} ms vs {reference:.2f} ms for {base.variant_id} ({value / reference:.2f}x)"
        else:  # best_case: both minimums are there
            slower = (f"best case {best:.2f} ms vs {reference_best:.2f} ms for {base.variant_id} "
                      f"({min_ratio:.2f}x; p50 {value:.2f} vs {reference:.2f} ms on a loaded machine)")
        if flags.get("source") and not flags.get("int8_dot_product"):
            hints.append(_hint(
                "int8-slower-no-int8-isa", "warning",
                f"int8 slower than fp32 (no int8 acceleration on this CPU): {slower}; the CPU has none of "
                f"{INT8_ISA_NAMES}, so int8 kernels only add quantize/dequantize work; deploy fp32 here, or "
                "measure int8 on a CPU with VNNI/dotprod", record, evidence, "latency"))
            continue
        cause = ("it ran fake-quant ops in fp32 (" + str(info.get("precision_note") or "no int8 kernels") + ")"
                 if info.get("precision_executed") == "fp32-fake-quant" or info.get("int8_kernels") is False
                 else "quantize/dequantize and layout reorders cost more than the int8 kernels save on this model")
        known = ("the CPU has " + ", ".join(flags["int8_dot_product"])) if flags.get("int8_dot_product") else \
            "the CPU's int8 support is unknown (no cpu_flags captured)"
        hints.append(_hint("int8-slower", "warning", f"int8 slower than fp32: {slower}; {known}; likely {cause}",
                           record, evidence, "latency"))
    return hints


def rule_optimisation_off(records: Sequence[MeasurementRecord], environments: Mapping[str, Any] | None,
                          provenance: Mapping[str, Any] | None) -> list[Hint]:
    """Paddle Inference with ir_optim or mkldnn off; ORT with graph optimisation disabled."""
    hints = []
    seen = set()
    for record in _ok(records, "latency") + _ok(records, "memory"):
        if (record.target, record.variant_id) in seen:
            continue
        info = record.meta.get("runtime_info") or {}
        options = record.meta.get("runtime_options") or {}
        runtime = record.meta.get("runtime") or info.get("name")
        off = []
        if runtime == "paddle-inference" and info.get("device", options.get("device", "cpu")) == "cpu":
            if info.get("ir_optim", options.get("ir_optim", True)) is False:
                off.append("IR optimisation (ir_optim: false)")
            if info.get("mkldnn", options.get("mkldnn", True)) is False:
                off.append("MKLDNN/oneDNN kernels (mkldnn: false)")
        elif (runtime == "onnxruntime"
              and info.get("graph_optimization", options.get("graph_optimization")) == "disable"):
            off.append("graph optimisation (graph_optimization: disable)")
        if not off:
            continue
        seen.add((record.target, record.variant_id))
        note = str(info.get("precision_note") or "")
        legacy = "ir_optim=false on a legacy model: MKLDNN is not applied" in note
        message = (f"{' and '.join(off)} off for {record.variant_id}: expect several times slower CPU inference "
                   "(Paddle Inference measured here: mobilenet_v3_small 5 ms with MKLDNN vs 20 ms without)"
                   if runtime == "paddle-inference" else
                   f"{off[0]} off for {record.variant_id}: fusions (and int8 kernels of QDQ models) are not applied")
        if legacy:
            message += "; with IR optimisation off MKLDNN is not applied to a legacy .pdmodel at all"
        hints.append(_hint("paddle-optimisation-off" if runtime == "paddle-inference" else "ort-optimisation-off",
                           "warning", message, record,
                           {"runtime": runtime, "off": off, "runtime_options": dict(options),
                            "ir_optim": info.get("ir_optim"), "mkldnn": info.get("mkldnn"),
                            "graph_optimization": info.get("graph_optimization")}, "latency"))
    return hints


def rule_memory_budget(records: Sequence[MeasurementRecord], environments: Mapping[str, Any] | None,
                       provenance: Mapping[str, Any] | None) -> list[Hint]:
    """Over the memory budget: at model load (runtime + weights) or at inference (activations)."""
    hints = []
    for record in _ok(records, "memory"):
        limit = (record.meta.get("budget") or {}).get("max_memory_bytes")
        summary = record.summary
        peak = summary.get("peak_rss_bytes")
        if not limit or not peak or peak <= limit:
            continue
        imported = summary.get("import_peak_bytes") or 0
        load = summary.get("load_delta_bytes") or 0
        inference = summary.get("inference_delta_bytes") or 0
        batch = ((record.meta.get("input") or {}).get("shape") or [1])[0]
        evidence = {"peak_rss_bytes": peak, "limit_bytes": limit, "import_peak_bytes": imported,
                    "load_delta_bytes": load, "inference_delta_bytes": inference, "batch": batch,
                    "input_shape": (record.meta.get("input") or {}).get("shape"),
                    "model_file_bytes": summary.get("model_file_bytes")}
        mib = 2 ** 20
        if imported + load > limit:
            evidence["phase"] = "load"
            message = (f"memory budget missed at model load: runtime import {imported / mib:.0f} MiB + model load "
                       f"{load / mib:.0f} MiB already exceed {limit / mib:.0f} MiB before any inference; a smaller "
                       "or int8-weight model, a lighter runtime, or memory_optim will help, batch size will not")
        else:
            evidence["phase"] = "inference"
            message = (f"memory budget missed at inference: peak {peak / mib:.0f} MiB > {limit / mib:.0f} MiB, "
                       f"{inference / mib:.0f} MiB of it allocated while running (activations, batch {batch}); "
                       "lower the batch size or input resolution, or enable memory_optim")
        hints.append(_hint("memory-budget-missed", "error", message, record, evidence, "memory"))
    return hints


def rule_fidelity_after_quantization(records: Sequence[MeasurementRecord], environments: Mapping[str, Any] | None,
                                     provenance: Mapping[str, Any] | None) -> list[Hint]:
    """A quantized variant fails fidelity: calibration size and recipe from its provenance."""
    hints = []
    for record in _ok(records, "fidelity"):
        if not _is_int8(record) or record.summary.get("baseline_only"):
            continue
        verdict = record_verdict(record)
        if verdict.status != "fail":
            continue
        made = file_provenance(record, provenance)
        calibration = made.get("calibration") or {}
        size = calibration.get("size")
        options = made.get("options") or {}
        summary = record.summary
        evidence = {"top1_agreement": summary.get("top1_agreement"),
                    "relative_error_mean": summary.get("relative_error_mean"),
                    "calibration_size": size, "calibration_inputs": calibration.get("inputs"),
                    "tool": made.get("tool"), "options": options, "verdict": verdict.message}
        if size is not None and size < SMALL_CALIBRATION:
            cause = (f"calibration too small: {size} inputs ({calibration.get('inputs') or 'unknown data'}); "
                     f"calibrate on >= {SMALL_CALIBRATION} representative inputs")
        elif made:
            cause = ("calibration looks adequate"
                     + (f" ({size} inputs)" if size else "")
                     + ": sensitive layers are the likely cause; keep the first/last layers (and depthwise or "
                       "squeeze-excite blocks) in fp32, use per-channel weights, or try QAT")
        else:
            cause = ("no provenance for this model file: check the calibration set size and data, then sensitive "
                     "layers (keep first/last layers in fp32, per-channel weights)")
        hints.append(_hint("fidelity-drop-after-quantization", "error",
                           f"fidelity drop after quantization: {verdict.message.split(': ', 1)[-1]}; {cause}",
                           record, evidence, "fidelity"))
    return hints


# Runtime messages that name an operator the runtime (or its op set) does not implement.
_UNSUPPORTED = (
    re.compile(r"[Dd]idn't find op for builtin opcode '?(?P<op>[A-Z0-9_]+)'?"),
    re.compile(r"[Ee]ncountered unresolved custom op:? ?'?(?P<op>[\w.]+)'?"),
    re.compile(r"[Cc]ould not find an implementation for (?P<op>\w+)\(\d+\)"),
    re.compile(r"[Nn]o (?:Op|op|kernel)s? registered for (?P<op>\w+)"),
    re.compile(r"Operator \(?(?P<op>\w+)\)? is not registered"),
    re.compile(r"[Oo]p(?:erator)? (?:type )?'?(?P<op>[\w.]+)'? (?:is )?not (?:supported|registered|implemented)"),
    re.compile(r"[Uu]nsupported (?:op|operator|node)(?: type)?:? '?(?P<op>[\w.]+)'?"),
)


def unsupported_operator(message: str) -> str | None:
    """The operator an error message says is unsupported, or None."""
    for pattern in _UNSUPPORTED:
        match = pattern.search(message or "")
        if match:
            return match.group("op").strip(".")
    return None


def rule_unsupported_operator(records: Sequence[MeasurementRecord], environments: Mapping[str, Any] | None,
                              provenance: Mapping[str, Any] | None) -> list[Hint]:
    hints = []
    seen = set()
    for record in records:
        if record.status == "ok":
            continue
        error = str(record.meta.get("error") or "")
        op = unsupported_operator(error)
        if op is None or (record.target, record.variant_id, op) in seen:
            continue
        seen.add((record.target, record.variant_id, op))
        runtime = record.meta.get("runtime") or "the runtime"
        hints.append(_hint(
            "unsupported-operator", "error",
            f"unsupported operator {op}: {runtime} on {record.target} cannot run it; export with an opset/op set "
            f"{runtime} supports, replace the op, or use a runtime build that includes it", record,
            {"operator": op, "runtime": runtime, "error": error[:500],
             "load_failed": "model-load" in error or "could not load" in error}))
    return hints


def rule_latency_variance(records: Sequence[MeasurementRecord], environments: Mapping[str, Any] | None,
                          provenance: Mapping[str, Any] | None) -> list[Hint]:
    """High variance, attributed to the governor, throttling or background load when the environment says so."""
    hints = []
    for record in _ok(records, "latency"):
        summary = record.summary
        robust_cv = summary.get("robust_cv")
        if not is_noisy(robust_cv):
            continue
        env = _device_env(environments, record.target)
        governors = dict(env.get("cpu_governors") or {})
        lazy = sorted(set(g for g in governors.values() if g != "performance"))
        warnings = [w for w in summary.get("warnings") or [] if "throttl" in w or "frequency dropped" in w
                    or "temperature rose" in w]
        thermal = (env.get("thermal") or {}).get("throttle_count")
        after = (record.meta.get("thermal_after") or {}).get("throttle_count")
        throttled = bool(warnings) or (thermal is not None and after is not None and after > thermal)
        loadavg = env.get("loadavg") or []
        cpus = env.get("cpu_affinity") or env.get("cpu_count") or 0
        causes = []
        if lazy:
            causes.append(f"DVFS governor {'/'.join(lazy)}, not \"performance\" (set it: cpupower frequency-set "
                          "-g performance)")
        if throttled:
            causes.append("thermal throttling during the run" + (f" ({warnings[0]})" if warnings else ""))
        if loadavg and cpus and loadavg[0] >= cpus * 0.75:
            causes.append(f"background load (load average {loadavg[0]:.1f} on {cpus} CPUs)")
        if not causes:
            causes.append("no governor, thermal or load cause was captured: check other processes and pin the "
                          "benchmark to idle cores")
        hints.append(_hint(
            "high-latency-variance", "warning",
            f"high latency variance for {record.variant_id}: robust CV {robust_cv:.0%} (> {HIGH_CV:.0%}), "
            f"p99/p50 {summary.get('p99', 0) / summary['p50']:.1f}x; likely {'; '.join(causes)}" if summary.get("p50")
            else f"high latency variance for {record.variant_id}: robust CV {robust_cv:.0%}; {'; '.join(causes)}",
            record, {"robust_cv": robust_cv, "cv": summary.get("cv"), "p50_ms": summary.get("p50"),
                     "p99_ms": summary.get("p99"), "drift": summary.get("drift"), "governors": governors,
                     "throttled": throttled, "loadavg": loadavg, "cpus": cpus}, "latency"))
    return hints


def rule_import_dominates(records: Sequence[MeasurementRecord], environments: Mapping[str, Any] | None,
                          provenance: Mapping[str, Any] | None) -> list[Hint]:
    hints = []
    for record in _ok(records, "memory"):
        summary = record.summary
        peak, imported = summary.get("peak_rss_bytes"), summary.get("import_peak_bytes")
        if not peak or not imported or imported / peak <= IMPORT_SHARE:
            continue
        mib = 2 ** 20
        runtime = record.meta.get("runtime") or "the runtime"
        limit = (record.meta.get("budget") or {}).get("max_memory_bytes")
        over = bool(limit and peak > limit)
        hints.append(_hint(
            "runtime-import-dominates-memory", "warning" if over else "info",
            f"runtime import dominates peak memory: importing {runtime} takes {imported / mib:.0f} MiB of the "
            f"{peak / mib:.0f} MiB peak ({imported / peak:.0%}); the model itself adds "
            f"{((summary.get('load_delta_bytes') or 0) + (summary.get('inference_delta_bytes') or 0)) / mib:.0f} MiB. "
            "A lighter runtime (Paddle Lite, ONNX Runtime, LiteRT) shrinks it more than compressing the model",
            record, {"import_peak_bytes": imported, "peak_rss_bytes": peak, "share": imported / peak,
                     "runtime": runtime, "over_budget": over}, "memory"))
    return hints


Rule = Callable[[Sequence[MeasurementRecord], Mapping[str, Any] | None, Mapping[str, Any] | None], list[Hint]]
RULES: tuple[tuple[str, Rule], ...] = (
    ("int8-slower", rule_int8_slower),
    ("optimisation-off", rule_optimisation_off),
    ("memory-budget-missed", rule_memory_budget),
    ("fidelity-drop-after-quantization", rule_fidelity_after_quantization),
    ("unsupported-operator", rule_unsupported_operator),
    ("high-latency-variance", rule_latency_variance),
    ("runtime-import-dominates-memory", rule_import_dominates),
)
SEVERITY_ORDER = {"error": 0, "warning": 1, "info": 2}


def diagnose(records: Sequence[MeasurementRecord], environments: Mapping[str, Any] | None = None,
             provenance: Mapping[str, Any] | None = None) -> list[Hint]:
    """Every rule's hints for one run's records, most severe first (stable within a severity)."""
    hints: list[Hint] = []
    for _name, rule in RULES:
        hints.extend(rule(records, environments, provenance))
    return sorted(hints, key=lambda h: SEVERITY_ORDER.get(h["severity"], 3))


def hints_for(hints: Sequence[Hint], target: str, variant_id: str, metric: str | None = None) -> list[Hint]:
    """The hints the report shows next to one number (target, variant, and optionally metric)."""
    return [h for h in hints if h["target"] == target and h["applies_to"] == variant_id
            and (metric is None or h["metric"] == metric)]
