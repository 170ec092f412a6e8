"""A latency job's summary: the statistics of its samples, its phases' times, and warnings
(heating, throttling, frequency drops, a stop before the minimum, a precision not reached)."""

from __future__ import annotations

from typing import Any

from harness.analysis.stats import summarize_latency
from harness.run.agent_client import AgentRun


def latency_summary(run: AgentRun) -> dict[str, Any]:
    result = run.result
    summary = summarize_latency(run.latency_ns, result.get("window_ns"))
    summary["load_ms"] = result["load_ns"] / 1e6
    summary["first_inference_ms"] = result["first_inference_ns"] / 1e6
    summary["import_ms"] = result["import_ns"] / 1e6
    peak = (result.get("memory") or {}).get("end", {}).get("peak_rss")
    summary["peak_rss_bytes"] = peak
    thermal_before = (run.hello.get("env") or {}).get("thermal")
    summary["warnings"].extend(thermal_warnings(thermal_before, result.get("thermal_after")))
    if result.get("halfwidths"):
        summary["precision"] = {"asked": run.result.get("precision") or None, "halfwidths": result["halfwidths"],
                                "stopped_by": result.get("stopped_by")}
    if result.get("precision") and result.get("stopped_by") != "precision":
        summary["warnings"].append(
            f"latency.precision ±{result['precision']:.1%} not reached ({result.get('stopped_by')}; intervals "
            + ", ".join(f"{k} ±{v:.1%}" for k, v in (result.get("halfwidths") or {}).items()) + ")")
    elif result.get("stopped_by") not in ("min-reached", "precision"):
        summary["warnings"].append(
            f"stopped by {result.get('stopped_by')} after {result.get('iterations')} iterations: "
            "fewer than the minimum; raise latency.max_duration or lower min_iterations")
    return summary


TEMPERATURE_RISE_C = 5.0
FREQUENCY_DROP = 0.10


def thermal_warnings(before: dict[str, Any] | None, after: dict[str, Any] | None) -> list[str]:
    """Heating, throttling and frequency drops between the start and the end of a job."""
    if not before or not after:
        return []
    warnings = []
    rises = {zone: after["temperatures_c"][zone] - t for zone, t in before.get("temperatures_c", {}).items()
             if zone in after.get("temperatures_c", {})}
    if rises and max(rises.values()) > TEMPERATURE_RISE_C:
        zone = max(rises, key=lambda name: rises[name])
        warnings.append(f"temperature rose {rises[zone]:.1f} °C ({zone}) during the job: later iterations may be "
                        "throttled; add cooling or a longer warm-up")
    if before.get("throttle_count") is not None and after.get("throttle_count") is not None \
            and after["throttle_count"] > before["throttle_count"]:
        warnings.append(f"CPU thermal throttling: {after['throttle_count'] - before['throttle_count']} throttle "
                        "event(s) during the job")
    for cpu, start in before.get("cpu_freq_khz", {}).items():
        end = after.get("cpu_freq_khz", {}).get(cpu)
        if end is not None and start > 0 and end < start * (1 - FREQUENCY_DROP):
            warnings.append(f"{cpu} frequency dropped {start / 1000:.0f} -> {end / 1000:.0f} MHz during the job "
                            "(governor or throttling)")
            break
    return warnings
