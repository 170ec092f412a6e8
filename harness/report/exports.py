"""The run report's other files, from the same data: summary.md (a pull-request comment),
benchmark.json (pytest-benchmark's JSON, for `pytest-benchmark compare` and its tooling) and
junit.xml from the store (for a run whose pytest JUnit XML is not at hand)."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from harness.analysis.record_verdict import record_verdict
from harness.records import MeasurementRecord
from harness.report.pages import format_change, format_value

SUITE_FILES = {"latency": "suites/test_latency.py", "memory": "suites/test_memory.py",
               "power": "suites/test_power.py", "fidelity": "suites/test_fidelity.py"}
STATUS_MARK = {"regression": "🔴 regression", "improvement": "🟢 improvement", "no change": "no change",
               "inconclusive": "⚪ inconclusive", "missing": "missing"}


# --------------------------------------------------------------------------- summary.md

MD_SPECIAL = re.compile(r"([\\`*_\[\]<>|&#~!])")


def md(value: Any) -> str:
    """Text shown as itself in a Markdown table cell of a PR comment: Markdown's own escapes
    (a backslash before each character Markdown or HTML would act on: `<` cannot open a tag,
    `&` cannot start an entity, `|` cannot end the cell), no line breaks. HTML entities would
    be printed as typed ("&lt; 99.0%") where a renderer leaves them be."""
    text = "" if value is None else str(value)
    return MD_SPECIAL.sub(r"\\\1", text).replace("\r", " ").replace("\n", " ")


def md_code(value: Any) -> str:
    """`value` as a Markdown code span: shown verbatim (no escapes apply inside one), so only
    a backtick, which would end it, is replaced."""
    return "`" + ("" if value is None else str(value)).replace("`", "'").replace("\r", " ").replace("\n", " ") + "`"


def summary_markdown(data: Mapping[str, Any]) -> str:
    """A short Markdown summary of a run report's data (build.build_run_report_data)."""
    run = data["run"]
    lines = [f"### Benchmark run {md_code(run['id'])}" + (f" ({md(run['label'])})" if run.get("label") else ""),
             ""]
    commit = (run["git_sha"][:12] if run.get("git_sha") else "not a git checkout") + \
        (" (uncommitted changes)" if run.get("git_dirty") else "")
    lines.append(f"commit {md(commit)} · started {md(run.get('started_at'))} · {md(run.get('status'))} · "
                 f"host {md(run.get('host'))}")
    counts = {status: n for status, n in (data.get("counts") or {}).items() if status != "not measured"}
    failing = counts.get("fail", 0) + counts.get("error", 0)
    lines.append("")
    lines.append(f"**Budgets:** {'❌ ' if failing else '✅ '}" +
                 (", ".join(f"{n} {md(s)}" for s, n in sorted(counts.items())) or "nothing measured"))
    reference_run = data.get("baseline_run")
    if reference_run:
        if reference_run.get("compared"):
            regressed = (reference_run.get("counts") or {}).get("regression", 0)
            lines.append(f"**vs baseline run {md_code(reference_run['run']['id'])}** ({md(reference_run['note'])}): "
                         f"{'❌ ' if regressed else ''}{md(reference_run['summary'])}")
        else:
            lines.append(f"**Baseline:** {md(reference_run['note'])}")
    lines += ["", "| target | variant | p50 | vs its baseline model | vs baseline run (p50) | verdict |",
              "|---|---|---:|---:|---|---|"]
    problems: list[str] = []
    regressions: list[str] = []
    for target in data["targets"]:
        latency = {v["variant_id"]: v for v in target.get("vs_baseline_run", []) if v["metric"] == "latency"}
        for row in target["rows"]:
            delta = row.get("delta_pct")
            vs_model = (f"{delta:+.1f}%" if delta is not None and row.get("baseline") else
                        ("(baseline)" if not row.get("baseline") else "–"))
            if delta is not None and row.get("baseline"):  # every ratio says whether it was measured paired
                ci = row.get("speedup_ci95")
                vs_model += (f" paired, speed-up x{row['speedup']:.3f} [{ci[0]:.3f}-{ci[1]:.3f}]"
                             if row.get("paired") and ci else " unpaired")
            if row.get("comparison_note") and row.get("baseline"):
                vs_model += f" ({md(row['comparison_note'])})"
            verdict = latency.get(row["variant_id"])
            vs_run = "–"
            if verdict is not None:
                vs_run = STATUS_MARK.get(verdict["status"], verdict["status"])
                if verdict.get("ratio") is not None:
                    vs_run += f" {format_change(verdict['ratio'])}"
            p50 = format_value(row.get("p50"), "ms")
            lines.append(f"| {md(row['target'])} | {md(row['variant_id'])} | {p50} | {vs_model} | "
                         f"{vs_run} | {md(row['verdict'])} |")
            if row["verdict"] in ("fail", "error"):  # what failed, not the passing checks beside it
                problems += list(row.get("failures") or []) or [row.get("error") or row.get("verdict_message") or ""]
        for verdict in target.get("vs_baseline_run", []):
            if verdict["status"] == "regression":
                regressions.append(f"{verdict['target']}: {verdict['variant_id']} {verdict['metric']}: "
                                   f"{verdict['reason']}")
    if regressions:
        lines += ["", "#### Regressions against the baseline run", ""] + [f"- {md(r)}" for r in regressions]
    if reference_run and reference_run.get("missing"):
        lines += ["", "#### Not compared (missing pairs)", ""]
        lines += [f"- {md(m['target'])}: {md(m['variant_id'])} {md(m['metric'])}: {md(m['reason'])}"
                  for m in reference_run["missing"]]
    if problems:
        lines += ["", "#### Budget failures and errors", ""] + [f"- {md(p)}" for p in problems if p]
    lines += ["", f"_harness {md(data.get('harness_version'))}; full report: index.html next to this file_", ""]
    return "\n".join(lines)


# --------------------------------------------------------------------------- benchmark.json

def benchmark_stats(seconds: Sequence[float] | np.ndarray) -> dict[str, Any]:
    """pytest-benchmark's `Stats.as_dict()` fields (its definitions: quartiles by its
    methods 2/3, Tukey fences, sample stddev), computed with numpy."""
    data = np.sort(np.asarray(seconds, dtype=float))
    n = int(data.size)
    mean = float(data.mean())
    stddev = float(data.std(ddof=1)) if n > 1 else 0.0
    median = float(np.median(data))
    if n == 1:
        q1 = q3 = float(data[0])
    elif n % 2:
        k, r = n // 4, n % 4
        if r == 1:
            q1 = 0.25 * data[k - 1] + 0.75 * data[k]
            q3 = 0.75 * data[3 * k] + 0.25 * data[3 * k + 1]
        else:
            q1 = 0.75 * data[k] + 0.25 * data[k + 1]
            q3 = 0.25 * data[3 * k + 1] + 0.75 * data[3 * k + 2]
    else:
        q1 = float(np.median(data[: n // 2]))
        q3 = float(np.median(data[n // 2:]))
    q1, q3 = float(q1), float(q3)
    iqr = q3 - q1
    low_fence, high_fence = q1 - 1.5 * iqr, q3 + 1.5 * iqr
    if n == 1:
        ld15iqr = hd15iqr = float(data[0])
    else:
        ld15iqr = float(data[np.searchsorted(data, low_fence, side="left")])
        hd15iqr = float(data[np.searchsorted(data, high_fence, side="right") - 1])
    stddev_outliers = int(np.count_nonzero((data < mean - stddev) | (data > mean + stddev)))
    iqr_outliers = int(np.count_nonzero((data < low_fence) | (data > high_fence)))
    total = float(data.sum())
    return {"min": float(data[0]), "max": float(data[-1]), "mean": mean, "stddev": stddev, "rounds": n,
            "median": median, "iqr": iqr, "q1": q1, "q3": q3, "iqr_outliers": iqr_outliers,
            "stddev_outliers": stddev_outliers, "outliers": f"{stddev_outliers};{iqr_outliers}",
            "ld15iqr": ld15iqr, "hd15iqr": hd15iqr, "ops": n / total if total else 0, "total": total,
            "iterations": 1}


def pytest_benchmark_json(run: Mapping[str, Any], records: Sequence[MeasurementRecord],
                          environments: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """The run's latency measurements as a pytest-benchmark JSON file: one benchmark per
    (target, variant), named like the suite's test, stats in seconds per inference from the
    raw samples; the device, runtime and harness percentiles in `extra_info`."""
    try:
        from pytest_benchmark import __version__ as benchmark_version
    except ImportError:  # pragma: no cover - a dependency of the harness
        benchmark_version = "5.0.0"
    benchmarks = []
    for record in records:
        if record.metric != "latency" or record.status != "ok" or not record.samples:
            continue
        scale = {"ns": 1e-9, "us": 1e-6, "ms": 1e-3, "s": 1.0}.get(record.samples_unit or "ns", 1e-9)
        param = f"{record.target}-{record.variant_id}"
        device = (environments.get(record.target) or {}).get("device") or {}
        runtime = record.meta.get("runtime_info") or {}
        summary = record.summary
        benchmarks.append({
            "group": f"{record.target}: {record.model}",
            "name": f"test_latency[{param}]",
            "fullname": f"{SUITE_FILES['latency']}::test_latency[{param}]",
            "params": {"target": record.target, "variant": record.variant_id},
            "param": param,
            "extra_info": {
                "target": record.target, "model": record.model, "variant": record.variant,
                "runtime": record.meta.get("runtime"), "runtime_version": runtime.get("version"),
                "precision": runtime.get("precision"), "device_machine": device.get("machine"),
                "device_cpu": device.get("cpu_model"), "harness_run": run.get("id"),
                **{f"{k}_s": (summary[k] / 1e3 if summary.get(k) is not None else None)
                   for k in ("p50", "p90", "p95", "p99")},
                "warnings": list(summary.get("warnings") or []),
            },
            "options": {"disable_gc": False, "timer": "perf_counter_ns (on the device, by the harness agent)",
                        "min_rounds": record.meta.get("iterations") or len(record.samples),
                        "max_time": None, "min_time": 0, "warmup": record.meta.get("warmup_iterations")},
            "stats": benchmark_stats(np.asarray(record.samples, dtype=float) * scale),
        })
    first = next(iter(environments.values()), {}).get("device", {}) if environments else {}
    return {
        "machine_info": {
            "node": run.get("host"), "processor": first.get("machine", ""), "machine": first.get("machine", ""),
            "python_compiler": "", "python_implementation": "CPython",
            "python_implementation_version": first.get("python", ""), "python_version": first.get("python", ""),
            "python_build": [], "release": first.get("kernel", ""), "system": "Linux",
            "cpu": {"brand_raw": first.get("cpu_model", ""), "count": first.get("cpu_count")},
            "harness_targets": {name: {"machine": (env.get("device") or {}).get("machine"),
                                       "cpu": (env.get("device") or {}).get("cpu_model"),
                                       "kind": (env.get("declared") or {}).get("kind")}
                                for name, env in environments.items()},
        },
        "commit_info": {"id": run.get("git_sha"), "time": run.get("started_at"),
                        "author_time": run.get("started_at"), "dirty": bool(run.get("git_dirty")),
                        "project": "edge-harness", "branch": None},
        "benchmarks": benchmarks,
        "datetime": run.get("started_at"),
        "version": benchmark_version,
    }


# --------------------------------------------------------------------------- junit.xml

def junit_from_store(run: Mapping[str, Any], records: Sequence[MeasurementRecord],
                     vs_reference_run: Sequence[Mapping[str, Any]] = ()) -> str:
    """JUnit XML of a stored run: one test case per measurement (its budget verdict) and,
    with a comparison against a reference run, one per regression check. Written when pytest's own JUnit
    XML is not at hand (a re-render, or a run whose --junitxml went elsewhere)."""
    suite = ET.Element("testsuite", name="harness", timestamp=str(run.get("started_at") or ""),
                       hostname=str(run.get("host") or ""))
    counts = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}
    properties = ET.SubElement(suite, "properties")
    for name in ("id", "label", "git_sha", "status"):
        ET.SubElement(properties, "property", name=f"harness_run_{name}", value=str(run.get(name) or ""))
    for record in records:
        verdict = record_verdict(record)
        case = ET.SubElement(suite, "testcase", classname=SUITE_FILES.get(record.metric, "suites").replace("/", ".")
                             .removesuffix(".py"),
                             name=f"test_{record.metric}[{record.target}-{record.variant_id}]", time="0")
        counts["tests"] += 1
        if verdict.status == "fail":
            ET.SubElement(case, "failure", message=verdict.message).text = verdict.message
            counts["failures"] += 1
        elif verdict.status == "error":
            ET.SubElement(case, "error", message=verdict.message).text = verdict.message
            counts["errors"] += 1
        elif verdict.status == "unavailable":
            ET.SubElement(case, "skipped", message=verdict.message)
            counts["skipped"] += 1
        else:
            ET.SubElement(case, "system-out").text = verdict.message
    for item in vs_reference_run:
        case = ET.SubElement(suite, "testcase", classname="harness.analysis.run_comparison",
                             name=f"regression[{item['target']}-{item['variant_id']}-{item['metric']}]", time="0")
        counts["tests"] += 1
        if item["status"] == "regression":
            ET.SubElement(case, "failure", message=item["reason"]).text = item["reason"]
            counts["failures"] += 1
        elif item["status"] == "missing":
            ET.SubElement(case, "skipped", message=item["reason"])
            counts["skipped"] += 1
        else:
            ET.SubElement(case, "system-out").text = f"{item['status']}: {item['reason']}"
    for key, value in counts.items():
        suite.set(key, str(value))
    suites = ET.Element("testsuites", name="harness")
    suites.append(suite)
    ET.indent(suites)
    return '<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(suites, encoding="unicode") + "\n"
