"""The lab's CPU shaping statement and period choice (harness.lab.shaping), on given figures.

The calibration itself runs real agents in real cgroups: tests/integration/test_lab.py and
test_fleet_lab.py check it end to end."""

from __future__ import annotations

import json

import pytest

from harness.config.target_files import load_target
from harness.errors import ConfigError
from harness.lab.shaping import (
    CalibrationPoint,
    CpuShaping,
    Figures,
    _error,
    candidate_periods,
    figures_of,
    whole_core_document,
)


def _point(work_ms: float, p50: float, p90: float, throughput: float = 0.5) -> CalibrationPoint:
    host = Figures(p50_ms=work_ms, mean_ms=work_ms, p90_ms=work_ms, per_s=1000 / work_ms)
    device = Figures(p50_ms=work_ms * p50, mean_ms=work_ms * 2, p90_ms=work_ms * p90,
                     per_s=1000 / work_ms * throughput)
    return CalibrationPoint(work_ms, host, device)


def _shaping(points: tuple[CalibrationPoint, ...]) -> CpuShaping:
    return CpuShaping(cores=0.5, period_us=2000, quota_us=1000, points=points,
                      periods_tried=((2000, 0.16), (4000, 0.26), (10000, 0.77)), calibrated_at="2026-12-03T12:00:00")


def test_the_shortest_period_is_the_kernels_1_ms_quota_over_the_share_of_a_core() -> None:
    assert candidate_periods(0.5) == (2000, 4000, 10000)
    assert candidate_periods(0.25) == (4000, 8000, 20000)
    assert candidate_periods(0.3)[0] == 4000  # 1 ms / 0.3 = 3.33 ms, rounded up to whole ms


def test_a_device_shaped_at_every_length_says_so_with_the_measured_ranges() -> None:
    shaping = _shaping((_point(1.5, 2.25, 2.34), _point(2.5, 2.1, 2.2), _point(20, 2.0, 2.0)))
    assert shaping.shaped_from_ms() == 1.5
    assert shaping.statement() == (
        "CPU-bound work of 1.5 ms and more takes 2x the host's time per inference, give or take one 1 ms slice "
        "of CPU time (measured p50 x2.00-x2.25, p90 x2.00-x2.34); throughput x0.50 of the host's")
    assert shaping.mechanism == "0.5 core: CFS bandwidth (cgroup v1), 1 ms of CPU time per 2 ms period"


def test_short_work_left_unshaped_is_named_as_such() -> None:
    """The old 10 ms period: the p50 of short work is the host's, its p90 a stall."""
    shaping = _shaping((_point(1.5, 1.0, 4.33), _point(2.5, 1.0, 3.5), _point(20, 2.0, 2.0)))
    assert shaping.shaped_from_ms() == 20
    statement = shaping.statement()
    assert statement.startswith("CPU-bound work of 20 ms and more takes 2x the host's time per inference")
    assert ("NOT shaped per inference for 1.5/2.5 ms of work (p50 x1.00, p90 x3.50-x4.33): its percentiles are "
            "the host's plus stalls; only throughput is shaped there") in statement


def test_a_length_between_two_shaped_ones_breaks_the_claim_from_there_down() -> None:
    shaping = _shaping((_point(1.5, 2.2, 2.3), _point(2.5, 1.0, 5.0), _point(20, 2.0, 2.0)))
    assert shaping.shaped_from_ms() == 20
    assert "NOT shaped per inference for 1.5/2.5 ms" in shaping.statement()


def test_the_period_error_is_the_worst_log_distance_from_the_promised_factor() -> None:
    exact = (_point(1.5, 2.0, 2.0), _point(20, 2.0, 2.0))
    assert _error(0.5, exact) == pytest.approx(0.0)
    bimodal = (_point(1.5, 1.0, 4.0), _point(20, 2.0, 2.0))
    assert _error(0.5, bimodal) == pytest.approx(0.6931, abs=1e-3)  # |log(1.0 x 0.5)| = |log(4 x 0.5)|
    slow_throughput = (_point(1.5, 2.0, 2.0, throughput=0.25),)
    assert _error(0.5, slow_throughput) == pytest.approx(0.6931, abs=1e-3)


def test_a_calibration_survives_the_state_file() -> None:
    shaping = _shaping((_point(1.5, 2.25, 2.34), _point(20, 2.0, 2.0)))
    assert CpuShaping.from_dict(shaping.to_dict()) == shaping


def test_figures_are_per_inference_percentiles_and_throughput_over_the_window() -> None:
    figures = figures_of([1_000_000, 2_000_000, 3_000_000, 4_000_000, 10_000_000], window_ns=20_000_000)
    assert figures.p50_ms == 3.0 and figures.mean_ms == 4.0 and figures.per_s == 250.0
    assert figures.p90_ms == pytest.approx(7.6)


def test_a_whole_core_device_says_one_thread_runs_at_the_hosts_speed() -> None:
    document = whole_core_document(1.0, 10_000)
    assert document["cpu"] == "1 core: CFS bandwidth (cgroup v1) over a 10 ms period"
    assert document["statement"].startswith("one thread runs at the host's speed")


TARGET = """
name: twin
kind: jetson
arch: x86_64
emulated: true
connection: {{transport: ssh, host: 10.0.0.2, user: u}}
workdir: /tmp/w
python: /usr/bin/python3
shaping: {shaping}
"""


def test_a_target_files_shaping_is_read_and_kept_for_the_report(tmp_path) -> None:
    document = _shaping((_point(1.5, 2.25, 2.34),)).target_document()
    path = tmp_path / "twin.yaml"
    path.write_text(TARGET.format(shaping=json.dumps(document)))
    target = load_target(path)
    assert target.shaping["statement"] == document["statement"]
    assert target.shaping["calibration"][0]["p50"] == 2.25


@pytest.mark.parametrize("shaping, key", [
    ('{statement: "x"}', "shaping.cpu"),
    ('{cpu: "0.5 core", statement: "x", speed: 2}', "shaping.speed"),
    ('{cpu: "0.5 core", statement: "x", calibration: "fast"}', "shaping.calibration"),
])
def test_a_malformed_shaping_names_its_key(tmp_path, shaping: str, key: str) -> None:
    path = tmp_path / "twin.yaml"
    path.write_text(TARGET.format(shaping=shaping))
    with pytest.raises(ConfigError) as caught:
        load_target(path)
    assert key in str(caught.value), caught.value


def test_a_calibration_on_a_busy_host_says_it_is_disturbed() -> None:
    """Unshaped 20 ms of work took 40 ms: the host gave it half a core, so the device's quota
    could not show; the statement must not claim the device is shaped (or unshaped)."""
    busy = _point(20, 1.0, 1.0, throughput=1.0)
    busy = CalibrationPoint(20, Figures(p50_ms=40.0, mean_ms=40.0, p90_ms=41.0, per_s=25.0), busy.device)
    shaping = CpuShaping(cores=0.5, period_us=2000, quota_us=1000, points=(_point(1.5, 2.2, 2.3), busy),
                         periods_tried=((2000, 0.7),), calibrated_at="2026-12-03T12:00:00", load_average=4.2)
    assert shaping.disturbed and shaping.host_share == 0.5
    assert shaping.statement().startswith("calibration DISTURBED: unshaped work got only 0.50 of a host core at lab "
                                          "up (load average 4.2)")
    assert not _shaping((_point(1.5, 2.2, 2.3),)).disturbed


def _figures(work_ms: float, p50: float, p90: float, throughput: float) -> Figures:
    return Figures(p50_ms=work_ms * p50, mean_ms=work_ms * p50, p90_ms=work_ms * p90, per_s=1000 / work_ms * throughput)


def test_of_two_rounds_the_run_nearest_the_share_counts_so_one_stalled_run_does_not_choose_the_period() -> None:
    """The calibration seen once here: one stalled run under the 2 ms period (p90 x3.7) made
    the 4 ms period look better. With a second round its undisturbed run counts."""
    from harness.lab.shaping import CALIBRATION_WORK_MS, _shaping_of

    periods = (2000, 4000)
    host = {w: [_figures(w, 1.0, 1.0, 1.0)] * 2 for w in CALIBRATION_WORK_MS}
    device = {
        2000: {w: [_figures(w, 2.0, 3.7 if w == 1.5 else 2.1, 0.45), _figures(w, 2.0, 2.3, 0.5)]
               for w in CALIBRATION_WORK_MS},
        4000: {w: [_figures(w, 2.0, 2.45, 0.5)] * 2 for w in CALIBRATION_WORK_MS},
    }
    first_round = _shaping_of(0.5, periods, host, {p: {w: runs[:1] for w, runs in d.items()}
                                                    for p, d in device.items()}, rounds=1)
    assert first_round.period_us == 4000  # the stall chose the longer period
    both = _shaping_of(0.5, periods, host, device, rounds=2)
    assert both.period_us == 2000 and both.shaped_from_ms() == 1.5
    assert {p.work_ms: round(p.ratios()["p90"], 2) for p in both.points} == {1.5: 2.3, 2.5: 2.1, 20.0: 2.1}
    assert "best of 2 rounds" in both.calibration_note()
