"""A real Paddle Inference model through the agent on the local target, end to end:
`pytest suites/` in a subprocess, then the store's samples and the rendered report checked."""

from __future__ import annotations

import json
import math
import re
import shutil
import sqlite3
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest
from helpers.paths import REPO
from helpers.project import TINY_CNN_INPUT, tiny_cnn_paddle, write_manifest
from helpers.suites import run_suites

from harness.store import open_store

MIN_ITERATIONS = 40

class TableCells(HTMLParser):
    """Collects the comparison table rows: data-variant -> {css class or index: text}."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: dict[str, list[tuple[str, str]]] = {}
        self._row: str | None = None
        self._cell: list[str] | None = None
        self._cell_class = ""
        self.errors: list[str] = []

    def handle_starttag(self, tag, attrs):
        attributes = dict(attrs)
        if tag == "tr" and "data-variant" in attributes:
            self._row = attributes["data-variant"]
            self.rows[self._row] = []
        elif tag == "td" and self._row is not None:
            self._cell = []
            self._cell_class = attributes.get("class", "")

    def handle_endtag(self, tag):
        if tag == "td" and self._row is not None and self._cell is not None:
            self.rows[self._row].append((self._cell_class, " ".join("".join(self._cell).split())))
            self._cell = None
        elif tag == "tr":
            self._row = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell.append(data)

    def cell(self, variant: str, css_class: str) -> str:
        return next(text for cls, text in self.rows[variant] if css_class in cls.split())


def run_suite(tmp_path: Path, zoo: Path, budget: str = "1s", zoo_override: Path | None = None) -> subprocess.CompletedProcess:
    """The latency suite on the local target: tiny_cnn fp32 and int8 (mkldnn), ``budget`` as
    its target latency there, read from ``zoo_override`` or ``zoo``."""
    latency = {"warmup_iterations": 5, "warmup_duration": "0.1s", "min_iterations": MIN_ITERATIONS,
               "min_duration": "0.3s", "max_duration": "20s"}
    mkldnn = {"threads": 1, "mkldnn": True}
    variants = {"fp32": tiny_cnn_paddle(runtime_options=mkldnn),
                "int8": tiny_cnn_paddle("int8", baseline="fp32", runtime_options={**mkldnn, "precision": "int8"})}
    manifest = write_manifest(tmp_path / "models.yaml", {"tiny_cnn": {
        "input": TINY_CNN_INPUT, "budgets": {"local": {"target_latency": budget}}, "variants": variants}},
        latency=latency, zoo=zoo_override or zoo)
    return run_suites(["suites/test_latency.py", "--target=local", f"--manifest={manifest}", "--run-label=it"],
                      tmp_path, junit=False)


def test_real_model_samples_are_stored_and_reported(tmp_path: Path, demo_zoo: Path) -> None:
    done = run_suite(tmp_path, demo_zoo)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]

    store = open_store(tmp_path / "results.sqlite")
    (run,) = store.runs(label="it")
    assert run.status == "complete"
    records = {r.variant: r for r in store.measurements(run.id)}
    assert set(records) == {"fp32", "int8"}
    for record in records.values():
        assert record.status == "ok" and record.target == "local"
        samples = np.array(record.samples)
        assert len(samples) == record.summary["n"] >= MIN_ITERATIONS
        assert record.samples_unit == "ns" and samples.min() > 0
        # the stored summary is the statistics of the stored samples, nothing else
        assert math.isclose(record.summary["p50"], np.percentile(samples, 50) / 1e6, rel_tol=1e-9)
        assert math.isclose(record.summary["p99"], np.percentile(samples, 99) / 1e6, rel_tol=1e-9)
        assert record.summary["load_ms"] > 0 and record.summary["first_inference_ms"] > 0
        assert record.meta["runtime_info"]["version"].startswith("3.")
    assert records["fp32"].meta["runtime_info"]["precision"] == "fp32"
    int8_info = records["int8"].meta["runtime_info"]
    assert int8_info["int8_kernels"] is True and int8_info["precision"] == "int8", int8_info
    assert sum(int8_info["int8_ops"].values()) > 0

    report_dir = tmp_path / "reports" / run.id
    html = (report_dir / "index.html").read_text()
    assert html.count("<script") == 1 and "<script src" not in html  # self-contained: its own table script only
    table = TableCells()
    table.feed(html)
    assert set(table.rows) == {"tiny_cnn-fp32", "tiny_cnn-int8"}
    for variant, record in records.items():
        row = f"tiny_cnn-{variant}"
        assert table.cell(row, "p50").startswith(f"{record.summary['p50']:.3f}")
        assert table.cell(row, "verdict").startswith("pass") and "not measured" in table.cell(row, "verdict")
    # int8 was timed interleaved with fp32 in one job: the speed-up is the paired ratio, with its interval
    paired = records["int8"].meta["paired"]
    assert paired["paired"] and paired["mode"] == "process-per-arm" and paired["rounds"] >= 10, paired
    assert paired["stopped_by"] in ("precision", "max-duration")
    (ratio,) = paired["ratios"]
    assert ratio["against"] == "fp32" and ratio["ci95"][0] <= ratio["ratio"] <= ratio["ci95"][1]
    fp32_arm = paired["arms"][1]
    assert fp32_arm["name"] == "fp32" and len(fp32_arm["latency_ns"]) == paired["rounds"] * fp32_arm["turn_iterations"]
    assert len(records["int8"].samples) == paired["rounds"] * paired["arms"][0]["turn_iterations"]
    assert "paired" not in records["fp32"].meta, "a baseline is measured alone"
    assert table.cell("tiny_cnn-int8", "delta") == f"{(ratio['ratio'] - 1) * 100:+.1f}%"
    low, high = ratio["speedup_ci95"]
    assert table.cell("tiny_cnn-int8", "speedup") == f"×{ratio['speedup']:.2f} [{low:.2f}–{high:.2f}] paired"
    assert '<svg class="figure ecdf"' in html  # the model's latency distributions, inline

    report = json.loads((report_dir / "report.json").read_text())
    (target,) = report["targets"]
    assert {r["variant_id"]: r["p50"] for r in target["rows"]} == {
        f"tiny_cnn-{v}": r.summary["p50"] for v, r in records.items()}
    assert "report: " in done.stdout and str(report_dir / "index.html") in done.stdout


def test_missed_budget_fails_with_value_budget_and_target(tmp_path: Path, demo_zoo: Path) -> None:
    done = run_suite(tmp_path, demo_zoo, budget="1us")
    assert done.returncode == 1
    failures = [line for line in done.stdout.splitlines() if "exceeds the budget" in line]
    assert failures, done.stdout[-3000:]
    assert any("local: tiny_cnn-int8 p90 latency" in line and "the budget 1.000 µs" in line for line in failures)
    assert "Traceback" not in done.stdout


def test_unloadable_and_missing_models_fail_cleanly_and_are_recorded(tmp_path: Path, demo_zoo: Path) -> None:
    broken_zoo = tmp_path / "zoo"
    shutil.copytree(demo_zoo / "tiny_cnn" / "fp32", broken_zoo / "tiny_cnn" / "fp32")
    (broken_zoo / "tiny_cnn" / "fp32" / "inference.pdmodel").write_bytes(b"this is not a paddle program")
    done = run_suite(tmp_path, demo_zoo, zoo_override=broken_zoo)
    assert done.returncode == 1
    out = done.stdout
    # paddle either refuses the file or segfaults on it: both must come back as one clear line
    assert re.search(r"local: (model-load: paddle-inference could not load|crashed: agent was killed by "
                     r"signal 11 \(SIGSEGV\) during load)", out), out[-3000:]
    assert "During handling" not in out
    assert "tiny_cnn-int8: model file not found:" in out and "harness zoo build" in out
    assert "Traceback" not in out

    db = sqlite3.connect(tmp_path / "results.sqlite")
    rows = db.execute("SELECT variant, status, meta FROM measurements ORDER BY variant").fetchall()
    assert [(v, s) for v, s, _ in rows] == [("fp32", "error"), ("int8", "error")]
    assert re.search("model-load|SIGSEGV", json.loads(rows[0][2])["error"])
    (report,) = (tmp_path / "reports").glob("*/index.html")
    assert report.read_text().count("measurement failed:") == 2


@pytest.mark.parametrize("name", ["local"])
def test_targets_check_probes_declared_runtimes(name: str) -> None:
    done = subprocess.run([sys.executable, "-m", "harness.cli", "targets", "check", name], cwd=REPO,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "paddle-inference 3.3.1" in done.stdout
    assert "paddle-lite 2.13" in done.stdout and "Python 3.10" in done.stdout
