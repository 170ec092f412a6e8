"""The three reports (run, trend, sign-off) opened in a real headless Chromium (Debian's
/usr/bin/chromium, driven by Playwright): no console errors, the verdict and the tables are
there, every figure decodes (naturalWidth > 0), device-provided strings holding `<script>`
show as text and never run. A screenshot of each page is kept as a test artifact (under the
test's tmp dir, and in $HARNESS_ARTIFACTS when set); the sign-off page is also printed to
PDF the way a browser prints it, and its first page turned into a PNG with pdftoppm."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from harness.records import MeasurementRecord, RunInfo
from harness.report.build import render_run_report
from harness.report.signoff import render_signoff_report
from harness.report.trend import render_trend_report
from harness.store import open_store

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--no-first-run"]
HOSTILE = '<script>alert("device")</script>'
HOSTILE_IMG = '<img src=x onerror="alert(1)">'

pytestmark = pytest.mark.skipif(not Path(CHROMIUM).exists(), reason=f"{CHROMIUM} not installed (make system-deps)")


def _environment() -> dict:
    return {"declared": {"kind": "jetson", "arch": "aarch64", "power_sensor": "tegrastats",
                         "description": "Jetson Nano in the lab", "source": "targets/nano.yaml"},
            "device": {"hostname": HOSTILE, "os": HOSTILE, "cpu_model": HOSTILE_IMG, "kernel": "4.9.253-tegra",
                       "cpu_count": 4, "cpu_affinity": 4, "machine": "aarch64", "python": "3.6.9",
                       "l4t_release": f"# R32 (release), REVISION: 7.1 {HOSTILE}", "cpu_max_freq_khz": "1479000",
                       "cpu_governors": {"cpu0": "schedutil"},
                       "thermal": {"temperatures_c": {"CPU-therm": 38.5}, "cpu_freq_khz": {"cpu0": 1479000}},
                       "files": {"/proc/device-tree/model": HOSTILE}, "commands": {"uname -a": HOSTILE}}}


def _night(store, run_id: str, day: int, int8_ms: float, label: str = "nightly") -> None:
    rng = np.random.default_rng(day)
    store.create_run(RunInfo(id=run_id, label=label, started_at=f"2026-11-{day:02d}T02:00:00.000+00:00",
                             host="ci", harness_version="0.1.0", git_sha=f"{day:040x}", git_dirty=False,
                             status="complete", ended_at=f"2026-11-{day:02d}T02:20:00.000+00:00",
                             options={"target_spec": "all", "manifest_path": "suites/models.yaml"}))
    store.record_environment(run_id, "nano", _environment())
    for variant, p50, agreement, size in (("fp32", 2.0, None, 9), ("int8", int8_ms, 0.985, 3), ("broken", 1.0, 0.4, 2)):
        samples = tuple(int(x) for x in p50 * 1e6 * rng.lognormal(0, 0.01, 300))
        ordered = sorted(samples)
        meta = {"baseline": None if variant == "fp32" else "fp32", "runtime": "paddle-lite",
                "runtime_info": {"version": f"2.13 {HOSTILE}", "precision": "int8" if variant != "fp32" else "fp32"},
                "files": {"model": {"name": "model.nb", "bytes": size * 2**20, "sha256": "0"}},
                "budget": {"target_latency_s": 0.01, "max_memory_bytes": 2**30, "statistic": "p90", "source": "m.yaml"},
                "fidelity_settings": {"min_top1_agreement": 0.95}}
        common = dict(run_id=run_id, target="nano", model="mobilenet", variant=variant, status="ok", meta=meta)
        store.record_measurement(MeasurementRecord(
            metric="latency", unit="ms", samples=samples, samples_unit="ns",
            summary={"n": 300, "p50": float(np.median(ordered)) / 1e6, "p90": ordered[270] / 1e6,
                     "p99": ordered[297] / 1e6, "throughput": 1e9 / float(np.mean(ordered)),
                     "warnings": [f"thermal: {HOSTILE}"] if variant == "int8" else []}, **common))
        store.record_measurement(MeasurementRecord(
            metric="memory", unit="bytes", summary={"peak_rss_bytes": (100 + size) * 2**20,
                                                    "import_peak_bytes": 80 * 2**20, "load_delta_bytes": size * 2**20,
                                                    "inference_delta_bytes": 2**20}, **common))
        diversity = {"meaningful": True, "inputs": 16, "distinct_top1": 11}
        store.record_measurement(MeasurementRecord(
            metric="fidelity", unit="ratio",
            summary={"baseline_only": True, "baseline": diversity} if agreement is None else
            {"comparable": True, "baseline": diversity, "top1_agreement": agreement, "relative_error_mean": 0.02,
             "inputs": 16}, **common))
        timeline = [[i * 100, (4.0 if 15 <= i < 45 else 2.0) + 0.05 * rng.standard_normal()] for i in range(50)]
        store.record_measurement(MeasurementRecord(
            metric="power", unit="W", summary={"status": "ok", "load_mean_w": 4.0, "idle_mean_w": 2.0,
                                               "energy_per_inference_mj": 4.0, "sensor": "tegrastats"},
            **{**common, "meta": {**meta, "power_timeline": timeline,
                                  "power_markers": {"load_begin": 1500, "load_end": 4400}}}))
    store.record_measurement(MeasurementRecord(
        run_id=run_id, target="nano", model="mobilenet", variant="crashy", metric="latency", unit="ms",
        status="error", summary={}, meta={"baseline": "fp32", "error": f"nano: crashed: {HOSTILE}"}))


@pytest.fixture(scope="module")
def reports(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("browser")
    store = open_store(root / "results.sqlite")
    for day in range(1, 7):  # int8 slows down from night 4 on: a regression for trend and sign-off
        _night(store, f"night{day}", day, 1.0 if day < 4 else 1.25)
    _night(store, "release", 9, 1.0, label="release-1.4")
    _night(store, "candidate", 10, 1.3, label="rc")
    out = root / "reports"
    paths = {
        "run": render_run_report(store, "night6", out, reference_spec="latest:nightly"),
        "trend": render_trend_report(store, "nightly", 30, out),
        "signoff": render_signoff_report(store, "candidate", "latest:release-1.4", out)[0],
    }
    store.close()
    return paths


@pytest.fixture(scope="module")
def browser():
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


def _artifact(path: Path) -> None:
    target = os.environ.get("HARNESS_ARTIFACTS")
    if target:
        Path(target).mkdir(parents=True, exist_ok=True)
        shutil.copy(path, Path(target) / path.name)


def _open(browser, path: Path, screenshot: Path):
    page = browser.new_page(viewport={"width": 1360, "height": 1000})
    problems: list[str] = []
    page.on("console", lambda message: problems.append(f"console {message.type}: {message.text}")
            if message.type in ("error", "warning") else None)
    page.on("pageerror", lambda error: problems.append(f"page error: {error}"))
    page.on("dialog", lambda dialog: (problems.append(f"dialog: {dialog.message}"), dialog.dismiss()))
    page.on("requestfailed", lambda request: problems.append(f"request failed: {request.url}"))
    page.goto(path.as_uri())
    page.wait_for_load_state("load")
    images = page.evaluate("Array.from(document.images).map(i => [i.alt, i.complete, i.naturalWidth])")
    page.screenshot(path=str(screenshot), full_page=True)
    _artifact(screenshot)
    return page, problems, images


def _check_common(page, problems: list[str], images: list, minimum_images: int, shows_device: bool = True) -> None:
    assert problems == [], problems
    assert page.evaluate("document.scripts.length") == 0  # the reports are static: nothing to run
    assert len(images) >= minimum_images, images
    assert all(complete and width > 0 for _, complete, width in images), images
    if shows_device:
        assert HOSTILE in page.inner_text("body")  # shown to the reader as text...
    assert page.evaluate("document.querySelectorAll('img[src=x]').length") == 0  # ...never parsed as markup


def test_run_report_in_chromium(browser, reports, tmp_path: Path) -> None:
    page, problems, images = _open(browser, reports["run"], tmp_path / "run-report.png")
    _check_common(page, problems, images, minimum_images=3)  # latency, trade-off, power
    alts = {alt for alt, _, _ in images}
    assert {"latency distribution on nano", "latency vs size vs accuracy on nano", "power timeline on nano"} <= alts
    assert page.locator("table.comparison tbody tr[data-variant]").count() == 4
    assert page.locator('table.comparison tr[data-variant="mobilenet-broken"]').get_attribute("data-verdict") == "fail"
    assert "Compared with baseline run" in page.inner_text("#baseline-run")
    assert page.locator("table.vs-baseline-run tbody tr").count() >= 9
    assert "missing" in page.inner_text("#baseline-run")  # the crashed variant is listed, not dropped
    page.close()


def test_trend_report_in_chromium(browser, reports, tmp_path: Path) -> None:
    page, problems, images = _open(browser, reports["trend"], tmp_path / "trend-report.png")
    _check_common(page, problems, images, minimum_images=4, shows_device=False)  # one figure per metric
    assert 'crashed: <script>' in page.get_attribute('td.failed', "title")  # the error, as an attribute value
    verdict = page.inner_text("#trend-verdict")
    assert "regression" in verdict and "mobilenet-int8" in verdict and "night4" in verdict
    assert page.locator("#runs tbody tr").count() == 6
    row = page.locator('table.history[data-metric="latency"] tr[data-variant="mobilenet-int8"]')
    assert row.locator("td.worse").get_attribute("data-run-index") == "3"  # night 4, where it appeared
    page.close()


def test_signoff_report_in_chromium_and_printed(browser, reports, tmp_path: Path) -> None:
    page, problems, images = _open(browser, reports["signoff"], tmp_path / "signoff-report.png")
    _check_common(page, problems, images, minimum_images=0)
    assert page.get_attribute("#verdict", "data-verdict") == "FAIL"
    reasons = page.inner_text("#reasons")
    assert "regression(s) against release" in reasons and "budget(s) missed" in reasons
    assert page.locator("table.budgets tbody tr").count() == 4
    assert page.locator('table.regressions tr[data-status="regression"]').count() >= 1
    environment = page.inner_text("table.environment")
    assert "R32 (release), REVISION: 7.1" in environment and "1479 MHz" in environment
    assert "schedutil" in environment and "CPU-therm 38.5 °C" in environment
    pdf = tmp_path / "signoff.pdf"
    page.pdf(path=str(pdf), prefer_css_page_size=True, print_background=True)
    _artifact(pdf)
    assert pdf.read_bytes().startswith(b"%PDF")
    page.close()
    if shutil.which("pdftoppm"):
        subprocess.run(["pdftoppm", "-png", "-r", "70", "-f", "1", "-l", "2", str(pdf), str(tmp_path / "signoff-print")],
                       check=True, timeout=120)
        pages = sorted(tmp_path.glob("signoff-print*.png"))
        assert pages, "pdftoppm wrote no page"
        for png in pages:
            _artifact(png)
    if shutil.which("pdfinfo"):
        info = subprocess.run(["pdfinfo", str(pdf)], capture_output=True, text=True, timeout=60).stdout
        pages = int(next(line.split()[-1] for line in info.splitlines() if line.startswith("Pages:")))
        size = next(line for line in info.splitlines() if line.startswith("Page size:"))
        assert pages <= 2, info  # one target: two pages, not a screen-wide table cut into strips
        assert "(A4)" in size, size  # from the print CSS
