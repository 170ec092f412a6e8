"""The run page's parts, from real records in a real SQLite store: the answer block (failures
first, speed-up with its CI, paired or not), hints grouped by cause, the per-model figures
(Pareto front, log scales labelled, labels apart by their text extents), the power panels
(an estimate marked as one) and summary.md (Markdown escapes, only what failed)."""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
from helpers.records import measurement, run_info

from harness.report import svg
from harness.report.build import render_run_report
from harness.report.hint_groups import group_hints
from harness.report.model_figures import TradeoffPoint, pareto_front, tradeoff
from harness.report.overview import model_blocks, speedup_text
from harness.report.power_figures import PowerSeries, panels
from harness.store import open_store

MIB = 2**20


def _variant(store, variant: str, model: str = "m", *, p50_ms: float = 1.0, import_mib: int = 80,
             peak_mib: int = 100, agreement: float | None = None, budget_s: float = 0.01, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    samples = tuple(int(x) for x in p50_ms * 1e6 * rng.lognormal(0, 0.01, 200))
    meta = {"baseline": None if variant == "fp32" else "fp32", "runtime": "paddle-lite",
            "files": {"model": {"name": "m.nb", "bytes": int(peak_mib / 10 * MIB), "sha256": "0"}},
            "budget": {"target_latency_s": budget_s, "max_memory_bytes": 2**30, "statistic": "p90", "source": "m.yaml"}}
    common = dict(model=model, variant=variant, meta=meta)
    store.record_measurement(measurement("run", **common, samples=samples, summary={
        "n": 200, "p50": float(np.median(samples)) / 1e6, "p90": float(np.percentile(samples, 90)) / 1e6,
        "p99": float(np.percentile(samples, 99)) / 1e6, "warnings": []}))
    store.record_measurement(measurement("run", **common, metric="memory", unit="bytes", summary={
        "peak_rss_bytes": peak_mib * MIB, "import_peak_bytes": import_mib * MIB, "load_delta_bytes": 10 * MIB,
        "inference_delta_bytes": 2 * MIB}))
    if agreement is not None or variant == "fp32":
        diversity = {"meaningful": True, "inputs": 16, "distinct_top1": 11}
        store.record_measurement(measurement(
            "run", **{**common, "meta": {**meta, "fidelity_settings": {"min_top1_agreement": 0.99}}},
            metric="fidelity", unit="ratio",
            summary={"baseline_only": True, "baseline": diversity} if agreement is None else
            {"comparable": True, "baseline": diversity, "top1_agreement": agreement, "relative_error_mean": 0.01,
             "inputs": 16}))


def _store(tmp_path: Path):
    store = open_store(tmp_path / "r.sqlite")
    store.create_run(run_info("run", status="complete", ended_at="2026-11-01T03:00:00.000+00:00"))
    store.record_environment("run", "local", {"declared": {"kind": "local"}, "device": {"os": "Linux"}})
    return store


class _Hints(HTMLParser):
    """The text of each top-level item of the diagnosis list (li.hint-group), without its details."""

    def __init__(self) -> None:
        super().__init__()
        self.groups: list[str] = []
        self._depth = 0  # inside a group: 1, inside its <details>: 2+
        self._in_details = 0

    def handle_starttag(self, tag, attrs):
        classes = (dict(attrs).get("class") or "").split()
        if tag == "li" and "hint-group" in classes:
            self.groups.append("")
            self._depth = 1
        elif tag == "details" and self._depth:
            self._in_details += 1

    def handle_endtag(self, tag):
        if tag == "details" and self._in_details:
            self._in_details -= 1
        elif tag == "ul" and self._depth and not self._in_details:
            self._depth = 0

    def handle_data(self, data):
        if self._depth and not self._in_details:
            self.groups[-1] += data


def test_repeated_hints_are_grouped_into_one(tmp_path: Path) -> None:
    store = _store(tmp_path)
    for i in range(24):  # the runtime import is most of every variant's peak memory
        _variant(store, "fp32" if i == 0 else f"v{i:02d}", peak_mib=100 + i, seed=i)
    path = render_run_report(store, "run", tmp_path / "reports")
    data = json.loads((path.parent / "report.json").read_text())
    (target,) = data["targets"]
    assert len([h for h in target["hints"] if h["rule"] == "runtime-import-dominates-memory"]) == 24
    (group,) = [g for g in target["hint_groups"] if g["rule"] == "runtime-import-dominates-memory"]
    assert group["count"] == 24 and len(group["variants"]) == 24 and group["variants"][0] == "m-fp32"
    ranges = {r["name"]: r["range"] for r in group["ranges"]}
    assert ranges["peak rss"] == "100 MiB–123 MiB" and ranges["import peak"] == "80 MiB"  # the numbers' range
    assert ranges["share"] == "65%–80%"
    parser = _Hints()
    parser.feed(path.read_text())
    said = [g for g in parser.groups if "runtime import dominates peak memory" in g]
    assert len(said) == 1 and "24 variants: m-fp32, m-v01" in said[0] and "and 12 more" in said[0], parser.groups


def test_group_hints_keeps_targets_and_rules_apart() -> None:
    hint = {"rule": "high-latency-variance", "severity": "warning", "message": "noisy", "metric": "latency",
            "evidence": {"robust_cv": 0.2, "throttled": False}}
    hints = [{**hint, "target": "a", "applies_to": "m-x"}, {**hint, "target": "b", "applies_to": "m-x"},
             {**hint, "target": "a", "applies_to": "m-y", "evidence": {"robust_cv": 0.4, "throttled": True}},
             {**hint, "rule": "int8-slower", "severity": "error", "target": "a", "applies_to": "m-y"}]
    groups = group_hints(hints)
    assert [(g["rule"], g["target"], g["count"]) for g in groups] == [
        ("int8-slower", "a", 1), ("high-latency-variance", "a", 2), ("high-latency-variance", "b", 1)]
    assert groups[1]["ranges"] == [{"name": "robust cv", "range": "20%–40%"}]  # booleans are not a range
    assert groups[0]["message"] == "noisy" and groups[1]["message"] == ""


def test_answer_lists_failures_first_and_says_how_a_speedup_was_measured(tmp_path: Path) -> None:
    store = _store(tmp_path)
    for model in ("alpha", "beta"):  # beta's int8 disagrees with its baseline and its slow misses the budget
        _variant(store, "fp32", model, p50_ms=2.0)
        _variant(store, "int8", model, p50_ms=1.0, peak_mib=90, agreement=0.999 if model == "alpha" else 0.5)
        _variant(store, "slow", model, p50_ms=1.5, peak_mib=95, agreement=1.0,
                 budget_s=0.01 if model == "alpha" else 0.001)
    path = render_run_report(store, "run", tmp_path / "reports")
    (target,) = json.loads((path.parent / "report.json").read_text())["targets"]
    blocks = model_blocks(target["rows"])
    assert [b["model"] for b in blocks] == ["beta", "alpha"]
    assert [(r["variant"], r["verdict"], r["mark"]) for r in blocks[0]["rows"]] == [
        ("int8", "fail", "✗"), ("slow", "fail", "✗"), ("fp32", "pass", "✓")]
    assert blocks[0]["rows"][0]["speedup"] == "wrong outputs"  # never a speed-up for wrong outputs
    slow = next(r for r in blocks[1]["rows"] if r["variant"] == "slow")
    assert slow["speedup"] == "×1.33 unpaired" and slow["size"] == "×0.95" and slow["accuracy"] == "100.0% agree"
    html = path.read_text()
    assert html.index('data-model="beta"') < html.index('data-model="alpha"')
    row = {"baseline": "fp32", "speedup": 1.4213, "speedup_ci95": [1.401, 1.443], "paired": True}
    assert speedup_text(row)[0] == "×1.42 [1.40–1.44] paired"
    text, tip, css = speedup_text({**row, "paired": False, "speedup_ci95": None,
                                   "unpaired_reason": "measured in separate jobs (an old run)"})
    assert (text, tip, css) == ("×1.42 unpaired", "measured in separate jobs (an old run)", "unpaired")


def _label_boxes(figure: str, size: float) -> list[tuple[str, svg.Box]]:
    """Each point label's box from its position and estimated extent (svg.text_width)."""
    out = []
    for x, y, text in re.findall(r'<text class="point-label" x="([\d.-]+)" y="([\d.-]+)"[^>]*>([^<]*)</text>', figure):
        width = svg.text_width(text, size)
        out.append((text, svg.Box(float(x), float(y) - size, float(x) + width, float(y) + 0.25 * size)))
    return out


def test_tradeoff_labels_never_overlap_and_a_log_scale_says_so() -> None:
    rng = np.random.default_rng(1)  # 30 variants crowded into one corner: most labels cannot fit
    points = [TradeoffPoint(f"variant-{i:02d}", float(1 + rng.random() * 0.2), float(95 + rng.random() * 2), i == 0)
              for i in range(30)] + [TradeoffPoint("far-away", 300.0, 80.0, False)]
    figure = tradeoff("m on local", points, "top-1 agreement (%)")
    boxes = _label_boxes(figure, 10)
    assert 2 <= len(boxes) < len(points)  # some written, the rest left to their tooltips
    for i, (a, box) in enumerate(boxes):
        assert all(not box.overlaps(other, gap=0) for _, other in boxes[i + 1:]), a
    assert figure.count("<title>") == len(points) + 1  # every point has its name on hover
    assert "p50 latency (ms) (log scale)" in figure  # 1 ms to 300 ms: logarithmic, and labelled
    assert "(log scale)" not in tradeoff("m", points[:5], "top-1 agreement (%)")  # 1.0-1.2 ms: linear


def test_pareto_front_is_the_variants_nothing_beats() -> None:
    points = [TradeoffPoint("fp32", 2.0, 100.0, True), TradeoffPoint("int8", 1.0, 98.0, False),
              TradeoffPoint("worse", 1.5, 97.0, False), TradeoffPoint("fastest", 0.5, 60.0, False)]
    assert [p.label for p in pareto_front(points)] == ["fastest", "int8", "fp32"]
    figure = tradeoff("m", points, "top-1 agreement (%)")
    assert figure.count("data-pareto") == 3 and 'class="pareto"' in figure


def test_an_estimated_power_panel_looks_like_an_estimate() -> None:
    timeline = [[i * 100, 2.0 + (1.0 if 10 <= i < 30 else 0.0)] for i in range(40)]
    measured, estimated = panels([PowerSeries("m-fp32", timeline, {"load_begin": 1000, "load_end": 3000}, False),
                                  PowerSeries("m-int8", timeline, {}, True)])
    assert not measured["estimated"] and "estimated" not in str(measured["svg"])
    assert estimated["estimated"] and "· estimated" in str(estimated["svg"]) and 'stroke="#777"' in str(estimated["svg"])
    assert "not measured" in str(estimated["svg"])  # in its accessible title too


def test_summary_markdown_escapes_markdown_and_lists_only_what_failed(tmp_path: Path) -> None:
    store = _store(tmp_path)
    _variant(store, "fp32")
    _variant(store, "int8_broken", p50_ms=0.5, agreement=0.5)  # fails fidelity only; latency and memory pass
    path = render_run_report(store, "run", tmp_path / "reports")
    text = (path.parent / "summary.md").read_text()
    assert "&lt;" not in text and "&amp;" not in text and "<sub>" not in text  # no HTML entities, no HTML
    assert re.search(r"(?<!\\)<", text) is None  # every < escaped the Markdown way
    assert "m-int8\\_broken" in text and "\\< 99.0%" in text
    failures = [line for line in text.split("#### Budget failures and errors", 1)[1].splitlines()
                if line.startswith("- ")]
    assert len(failures) == 1 and "agreement" in failures[0] and "meets the budget" not in failures[0], failures
