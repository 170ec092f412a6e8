"""The three reports (run, trend, sign-off) opened in a real headless Chromium (Debian's
/usr/bin/chromium, driven by Playwright): no console errors, the verdict and the tables are
there, every figure decodes (naturalWidth > 0), device-provided strings holding `<script>`
show as text and never run. A screenshot of each page is kept as a test artifact (under the
test's tmp dir, and in $HARNESS_ARTIFACTS when set): the run page at 1280 px and at 390 px (a
phone); the sign-off page is also printed to PDF the way a browser prints it, and its first
page turned into a PNG with pdftoppm. The run page's table is sorted and filtered by clicking
and typing, as a reader would, and its figures' labels are measured (getBBox) for overlaps."""

from __future__ import annotations

import os
import re
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


def _night(store, run_id: str, day: int, int8_ms: float, label: str = "nightly", passing_model: bool = False) -> None:
    """mobilenet's fp32, int8, broken (wrong outputs) and crashy (an error) on nano; with
    `passing_model`, alexnet too (fp32 and int8, all budgets met): it sorts before mobilenet
    by name, so the answer block putting mobilenet first shows failures come first."""
    rng = np.random.default_rng(day)
    store.create_run(RunInfo(id=run_id, label=label, started_at=f"2026-11-{day:02d}T02:00:00.000+00:00",
                             host="ci", harness_version="0.1.0", git_sha=f"{day:040x}", git_dirty=False,
                             status="complete", ended_at=f"2026-11-{day:02d}T02:20:00.000+00:00",
                             options={"target_spec": "all", "manifest_path": "suites/models.yaml"}))
    store.record_environment(run_id, "nano", _environment())
    variants = [("mobilenet", "fp32", 2.0, None, 9), ("mobilenet", "int8", int8_ms, 0.985, 3),
                ("mobilenet", "broken", 1.0, 0.4, 2)]
    if passing_model:
        variants += [("alexnet", "fp32", 4.0, None, 40), ("alexnet", "int8", 2.5, 0.99, 10)]
    for model, variant, p50, agreement, size in variants:
        samples = tuple(int(x) for x in p50 * 1e6 * rng.lognormal(0, 0.01, 300))
        ordered = sorted(samples)
        meta = {"baseline": None if variant == "fp32" else "fp32", "runtime": "paddle-lite",
                "runtime_info": {"version": f"2.13 {HOSTILE}", "precision": "int8" if variant != "fp32" else "fp32"},
                "files": {"model": {"name": "model.nb", "bytes": size * 2**20, "sha256": "0"}},
                "budget": {"target_latency_s": 0.01, "max_memory_bytes": 2**30, "statistic": "p90", "source": "m.yaml"},
                "fidelity_settings": {"min_top1_agreement": 0.95}}
        common = dict(run_id=run_id, target="nano", model=model, variant=variant, status="ok", meta=meta)
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
        _night(store, f"night{day}", day, 1.0 if day < 4 else 1.25, passing_model=day == 6)
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


def _open(browser, path: Path, screenshot: Path, width: int = 1360, open_details: bool = False):
    page = browser.new_page(viewport={"width": width, "height": 1000})
    problems: list[str] = []
    page.on("console", lambda message: problems.append(f"console {message.type}: {message.text}")
            if message.type in ("error", "warning") else None)
    page.on("pageerror", lambda error: problems.append(f"page error: {error}"))
    page.on("dialog", lambda dialog: (problems.append(f"dialog: {dialog.message}"), dialog.dismiss()))
    page.on("requestfailed", lambda request: problems.append(f"request failed: {request.url}"))
    page.goto(path.as_uri())
    page.wait_for_load_state("load")
    if open_details:  # what a reader sees with every disclosure open: the widest the page gets
        page.evaluate("document.querySelectorAll('details').forEach(d => { d.open = true; })")
    images = page.evaluate("Array.from(document.images).map(i => [i.alt, i.complete, i.naturalWidth])"
                           " .concat(Array.from(document.querySelectorAll('svg.figure')).map(s => "
                           "[s.getAttribute('aria-label'), true, s.getBoundingClientRect().width]))")
    page.screenshot(path=str(screenshot), full_page=True)
    _artifact(screenshot)
    return page, problems, images


def _check_common(page, problems: list[str], images: list, minimum_images: int, shows_device: bool = True,
                  scripts: int = 0) -> None:
    assert problems == [], problems  # a script the page's CSP refused would be a console error here
    assert page.evaluate("document.scripts.length") == scripts  # the run page's own table script at most
    assert page.evaluate("Array.from(document.scripts).filter(s => s.src).length") == 0  # nothing loaded
    assert len(images) >= minimum_images, images
    assert all(complete and width > 0 for _, complete, width in images), images
    if shows_device:
        assert HOSTILE in page.inner_text("body")  # shown to the reader as text...
    assert page.evaluate("document.querySelectorAll('img[src=x]').length") == 0  # ...never parsed as markup


ANSWER_ORDER = """Array.from(document.querySelectorAll('table.answer tbody.model')).map(b =>
    [b.dataset.model, Array.from(b.querySelectorAll('tr.answer-row')).map(r => r.dataset.status)])"""
FITS = "document.documentElement.scrollWidth <= document.documentElement.clientWidth"


def test_run_report_in_chromium(browser, reports, tmp_path: Path) -> None:
    page, problems, images = _open(browser, reports["run"], tmp_path / "run-report-1280.png", width=1280,
                                   open_details=True)
    _check_common(page, problems, images, minimum_images=5, scripts=1)  # 2 models x (trade-off, ECDF) + power
    labels = {alt for alt, _, _ in images}
    assert {"mobilenet on nano: latency vs top-1 agreement (%)", "mobilenet on nano: latency distribution",
            "power of mobilenet-int8"} <= labels, labels
    assert page.evaluate(FITS), page.evaluate("document.documentElement.scrollWidth")  # no horizontal scroll
    assert page.locator("table.comparison tbody tr[data-variant]").count() == 6
    assert page.locator('table.comparison tr[data-variant="mobilenet-broken"]').get_attribute("data-verdict") == "fail"
    # the answer first: the model with failures before the one without, its failures before its passes
    order = page.evaluate(ANSWER_ORDER)
    assert [model for model, _ in order] == ["mobilenet", "alexnet"], order
    assert order[0][1][:2] == ["error", "fail"] and set(order[1][1]) == {"pass"}, order
    speedup = page.locator('table.answer tr[data-answer="mobilenet-int8"] td.speedup')
    assert speedup.inner_text().endswith("unpaired") and speedup.get_attribute("title")  # why, on hover
    assert "Compared with baseline run" in page.inner_text("#baseline-run")
    assert page.locator("table.vs-baseline-run tbody tr").count() >= 9
    assert "missing" in page.inner_text("#baseline-run")  # the crashed variant is listed, not dropped
    # hints by cause: runtime import dominates four variants' memory (not alexnet-fp32's 57%), said once
    group = page.locator('#hints-nano li.hint-group[data-rule="runtime-import-dominates-memory"]')
    assert group.count() == 1 and group.get_attribute("data-count") == "4"
    assert "4 variants" in group.inner_text() and "alexnet-int8" in group.inner_text()
    assert "alexnet-fp32" not in group.inner_text().split(".")[0]
    # a warning is a mark with its text on hover, and in full in the detail
    mark = page.locator('table.comparison tr[data-variant="mobilenet-int8"] a.warn-mark')
    assert "thermal: <script>" in mark.get_attribute("title")
    assert "thermal: <script>" in page.inner_text("#warnings-nano")
    estimated = page.locator("figure.panel.estimated").count()
    assert estimated == 0 and page.locator("figure.panel").count() == 5  # measured by tegrastats: not hatched
    page.close()
    phone, problems, images = _open(browser, reports["run"], tmp_path / "run-report-390.png", width=390)
    _check_common(phone, problems, images, minimum_images=5, scripts=1)
    assert phone.evaluate(FITS)  # wide tables scroll inside their own box, the page does not
    phone.close()
    print(f"\nscreenshots: {tmp_path / 'run-report-1280.png'}, {tmp_path / 'run-report-390.png'}")


def _visible_rows(page) -> list[str]:
    return page.evaluate("Array.from(document.querySelectorAll('table.comparison tbody tr'))"
                         ".filter(r => !r.hidden).map(r => r.dataset.variant)")


def test_run_table_sorts_and_filters_in_the_page(browser, reports, tmp_path: Path) -> None:
    page, problems, _ = _open(browser, reports["run"], tmp_path / "run-table.png", width=1280)
    page.locator("#detail-nano > summary").click()
    heading = page.locator("table.comparison th", has_text="p50 ms")
    heading.click()
    p50 = page.evaluate("Array.from(document.querySelectorAll('table.comparison tbody tr'))"
                        ".map(r => [r.dataset.variant, parseFloat(r.querySelector('td.p50').dataset.value)])")
    measured = [value for _, value in p50 if value == value]  # NaN: the crashed variant, sorted last
    assert measured == sorted(measured) and len(measured) == 5 and p50[-1][0] == "mobilenet-crashy", p50
    assert heading.get_attribute("aria-sort") == "ascending"
    heading.click()
    again = [variant for variant, _ in page.evaluate(
        "Array.from(document.querySelectorAll('table.comparison tbody tr')).map(r => [r.dataset.variant, 0])")]
    assert again[0] == "mobilenet-crashy" and again[1] == "alexnet-fp32"  # descending: the slowest first
    page.locator("#controls-1 input.filter-text").fill("int8")
    assert sorted(_visible_rows(page)) == ["alexnet-int8", "mobilenet-int8"]
    assert page.inner_text("#controls-1 .filter-count") == "2 of 6 rows"
    page.locator("#controls-1 input.filter-text").fill("")
    page.locator("#controls-1 select.filter-verdict").select_option("fail")
    assert _visible_rows(page) == ["mobilenet-broken"]
    hidden = page.locator("table.comparison th", has_text="throughput")
    assert not hidden.is_visible()  # a secondary column, collapsed ...
    page.locator("#controls-1 input.all-columns").check()
    assert hidden.is_visible()  # ... until asked for
    assert problems == [], problems
    page.close()


# every label's box as Chromium laid it out (rotation included), in the figure's own units
LABEL_BOXES = """Array.from(document.querySelectorAll('svg.figure')).map(svg => {
    const view = svg.viewBox.baseVal, frame = svg.getBoundingClientRect(), k = view.width / frame.width;
    const texts = Array.from(svg.querySelectorAll('text.point-label, text.legend, text.figure-title, text.axis-title'));
    return [svg.getAttribute('aria-label'), [view.x, view.y, view.width, view.height],
            texts.map(t => { const b = t.getBoundingClientRect();
                             return [t.textContent, (b.x - frame.x) * k, (b.y - frame.y) * k, b.width * k, b.height * k]; })];
})"""


def test_figure_labels_do_not_overlap_in_chromium(browser, reports, tmp_path: Path) -> None:
    page, problems, _ = _open(browser, reports["run"], tmp_path / "run-figures.png", width=1280, open_details=True)
    figures = page.evaluate(LABEL_BOXES)
    assert len(figures) >= 5 and problems == []
    for name, (vx, vy, vw, vh), texts in figures:
        assert texts, name
        for text, x, y, w, h in texts:
            assert w > 0 and vx <= x and x + w <= vx + vw + 0.5 and vy - 0.5 <= y and y + h <= vy + vh + 0.5, \
                (name, text, x, y, w, h)  # drawn, and inside the figure
        for i, (a, ax, ay, aw, ah) in enumerate(texts):
            for b, bx, by, bw, bh in texts[i + 1:]:
                apart = ax + aw <= bx or bx + bw <= ax or ay + ah <= by or by + bh <= ay
                assert apart, (name, a, b)  # the real text extents, as Chromium laid them out
    page.close()


def test_trend_report_in_chromium(browser, reports, tmp_path: Path) -> None:
    page, problems, images = _open(browser, reports["trend"], tmp_path / "trend-report.png")
    _check_common(page, problems, images, minimum_images=1, shows_device=False)
    # a figure only where a level changed: int8's latency; memory, power and agreement held still
    assert [alt for alt, _, _ in images] == ["p50 latency on nano across runs"], images
    assert page.locator("h3 .stable").count() == 3
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
    printed = pdf.read_bytes()  # Chromium writes each page object uncompressed: "/Type /Page"
    assert len(re.findall(rb"/Type\s*/Page(?!s)", printed)) == 1  # one target: one A4 page
    assert re.search(rb"/MediaBox\s*\[0 0 59[45](\.\d+)? 84[12](\.\d+)?\]", printed)  # A4: 595 x 842 pt
    if shutil.which("pdfinfo"):
        info = subprocess.run(["pdfinfo", str(pdf)], capture_output=True, text=True, timeout=60).stdout
        pages = int(next(line.split()[-1] for line in info.splitlines() if line.startswith("Pages:")))
        size = next(line for line in info.splitlines() if line.startswith("Page size:"))
        assert pages == 1, info  # one target: one page, not a screen-wide table cut into strips
        assert "(A4)" in size, size  # from the print CSS
