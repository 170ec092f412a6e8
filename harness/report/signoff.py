"""The release sign-off page: one printable page that says PASS or FAIL and why.

    harness report signoff --candidate X --baseline Y  ->  reports/signoff-X-vs-Y/index.html

From the store only. FAIL when any of:
- the candidate run did not complete;
- a budget is missed or a measurement failed (latency, memory, power, fidelity verdicts, as
  stored and recomputed by harness.analysis.budgets);
- a (target, variant, metric) regressed against the reference run (the --baseline run,
  harness.analysis.run_comparison);
- something measured in the reference run has no result in the candidate (a gap in the
  evidence).
Inconclusive comparisons, variants new since the reference run and unavailable sensors do
not fail it; they are listed as notes. signoff.json keeps its keys ("baseline", ...).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from harness import __version__
from harness.analysis.record_verdict import record_verdict
from harness.analysis.regression import CANDIDATE_SIDE, REFERENCE_SIDE
from harness.analysis.run_comparison import compare_runs
from harness.analysis.run_spec import resolve_complete_run
from harness.errors import HarnessError
from harness.records import RunInfo
from harness.report.pages import environment, json_safe, write_page
from harness.report.rows import latency_rows
from harness.store import Store

SIGNOFF_VERSION = 1
METRICS = ("latency", "memory", "power", "fidelity")


def _resolve_candidate(store: Store, spec: str) -> RunInfo:
    run, note = resolve_complete_run(store, spec)
    if run is None:
        raise HarnessError(f"--candidate {note}")
    return run


def _device(env: dict[str, Any], runtimes: dict[str, set[str]]) -> dict[str, Any]:
    device = env.get("device") or {}
    declared = env.get("declared") or {}
    thermal = device.get("thermal") or {}
    governors = sorted(set((device.get("cpu_governors") or {}).values()))
    freq = device.get("cpu_max_freq_khz")
    try:
        freq_text = f"{int(str(freq).strip()) / 1000:.0f} MHz" if freq else "not exposed"
    except ValueError:
        freq_text = str(freq)
    current = thermal.get("cpu_freq_khz") or {}
    return {
        "kind": declared.get("kind"), "arch": declared.get("arch") or device.get("machine"),
        "description": declared.get("description"), "emulated": declared.get("emulated"),
        "shaping": declared.get("shaping") or {}, "power_sensor": declared.get("power_sensor"),
        "source": declared.get("source"),
        "hostname": device.get("hostname"), "os": device.get("os"), "kernel": device.get("kernel"),
        "firmware": device.get("l4t_release") or "–", "cpu_model": device.get("cpu_model"),
        "cpu_info_is_host": bool(device.get("cpu_info_is_host")),
        "cpu_count": device.get("cpu_count"), "cpu_affinity": device.get("cpu_affinity"),
        "max_freq": freq_text, "governors": ", ".join(governors) or "not exposed",
        "freq_at_start": ", ".join(f"{cpu} {khz / 1000:.0f} MHz" for cpu, khz in sorted(current.items())[:8]
                                   if isinstance(khz, (int, float))) or "not exposed",
        "temperatures": ", ".join(f"{zone} {c} °C" for zone, c in (thermal.get("temperatures_c") or {}).items())
        or "not exposed",
        "python": device.get("python"),
        "runtimes": [f"{name} {', '.join(sorted(versions))}" for name, versions in sorted(runtimes.items())],
        "files": device.get("files") or {}, "commands": device.get("commands") or {},
    }


def build_signoff_data(store: Store, candidate_spec: str, reference_spec: str) -> dict[str, Any]:
    candidate = _resolve_candidate(store, candidate_spec)
    reference, note = resolve_complete_run(store, reference_spec, before=candidate.started_at,
                                           exclude=(candidate.id,))
    if reference is None:
        raise HarnessError(f"--baseline {note}")
    comparison = compare_runs(store, candidate.id, reference)
    records = store.measurements(candidate.id)
    environments = store.environments(candidate.id)
    frame = latency_rows(records)
    reasons: list[str] = []
    notes: list[str] = []
    if candidate.status != "complete":
        reasons.append(f"the candidate run is {candidate.status}, not complete: its evidence is partial")
    budget_problems = []
    runtimes: dict[str, dict[str, set[str]]] = {}
    for record in records:
        verdict = record_verdict(record)
        if verdict.status in ("fail", "error"):
            budget_problems.append(verdict.message)
        elif verdict.status == "unavailable":
            notes.append(verdict.message)
        info = record.meta.get("runtime_info") or {}
        if record.meta.get("runtime"):
            runtimes.setdefault(record.target, {}).setdefault(record.meta["runtime"], set()).add(
                str(info.get("version") or "?"))
    if budget_problems:
        reasons.append(f"{len(budget_problems)} budget(s) missed or measurement(s) failed")
    regressions = comparison.regressions if comparison else []
    if regressions:
        reasons.append(f"{len(regressions)} regression(s) against {reference.id}")
    gaps = [v for v in (comparison.missing if comparison else []) if v.side in (CANDIDATE_SIDE, "both")]
    new = [v for v in (comparison.missing if comparison else []) if v.side == REFERENCE_SIDE]
    if gaps:
        reasons.append(f"{len(gaps)} result(s) of the baseline run have no counterpart in the candidate")
    if new:
        notes.append(f"{len(new)} (target, variant, metric) new since the baseline run: no comparison, budgets only")
    verdicts_now = comparison.verdicts if comparison else ()
    latency = [v for v in verdicts_now if v.metric == "latency" and v.status != "missing"]
    if latency:
        paired = sum(v.method == "paired" for v in latency)
        notes.append(f"latency: {paired} of {len(latency)} comparison(s) paired (timed against the baseline run's "
                     "own artifacts in the same job); the others are unpaired, each saying why")
    inconclusive = [v for v in (comparison.verdicts if comparison else []) if v.status == "inconclusive"]
    if inconclusive:
        notes.append(f"{len(inconclusive)} comparison(s) inconclusive (too noisy to call either way): "
                     "listed per target")
    targets = []
    for target in sorted(set(frame["target"])) if not frame.empty else []:
        rows = [json_safe(row) for row in frame[frame["target"] == target].to_dict(orient="records")]
        verdicts = [json_safe(v.as_dict()) for v in comparison.for_target(target)] if comparison else []
        failing = [row for row in rows if set((row.get("verdicts") or {}).values()) & {"fail", "error"}]
        targets.append({"name": target, "rows": rows, "vs_baseline": verdicts,
                        "device": _device(dict(environments.get(target) or {}), runtimes.get(target, {})),
                        "verdict": "FAIL" if failing or any(v["status"] == "regression" for v in verdicts)
                        or any(v["status"] == "missing" and v["side"] in (CANDIDATE_SIDE, "both") for v in verdicts)
                        else "PASS"})
    return {
        "signoff_version": SIGNOFF_VERSION, "harness_version": __version__,
        "verdict": "FAIL" if reasons else "PASS", "reasons": reasons, "notes": notes,
        "budget_problems": budget_problems, "regressions": [json_safe(v.as_dict()) for v in regressions],
        "gaps": [json_safe(v.as_dict()) for v in gaps],
        "candidate": json_safe(candidate.__dict__ | {"options": dict(candidate.options)}),
        "baseline": json_safe(reference.__dict__ | {"options": dict(reference.options)}),
        "baseline_note": note, "counts": comparison.counts() if comparison else {},
        "history_label": comparison.history_label if comparison else None,
        "targets": targets,
    }


def signoff_dir_name(candidate: str, reference: str) -> str:
    return "signoff-" + re.sub(r"[^A-Za-z0-9._-]", "_", f"{candidate}-vs-{reference}")


def render_signoff_report(store: Store, candidate_spec: str, reference_spec: str, report_dir: Path
                          ) -> tuple[Path, dict[str, Any]]:
    """Write index.html and signoff.json under report_dir/signoff-<candidate>-vs-<reference>/."""
    data = build_signoff_data(store, candidate_spec, reference_spec)
    out = Path(report_dir) / signoff_dir_name(data["candidate"]["id"], data["baseline"]["id"])
    write_page(out, "sign-off report", {
        "index.html": environment().get_template("signoff.html.j2").render(**data),
        "signoff.json": json.dumps(data, indent=2, default=str),
    })
    return out / "index.html", data
