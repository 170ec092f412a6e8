"""CPU shaping of a simulated device, calibrated when the lab brings it up.

What "half a core" means here: CPU-bound work takes ``1 / cores`` times as long on the device
as on an unshaped host core, per inference (p50 and p90), not only on average. CFS bandwidth
control (cgroup v1 ``cpu.cfs_quota_us`` of ``cpu.cfs_period_us``) rations CPU time per
period: over the kernel's default 100 ms period a half-core device runs every inference
shorter than ~50 ms at full host speed and stalls between them (its p50 is the host's, its
mean and tail carry the stalls: a bimodal distribution). Only a period close to the length of
one inference spreads the stalls evenly over it. The kernel's floor is a 1 ms quota, so the
shortest period for ``cores`` is ``1 ms / cores`` (2 ms for half a core); how short a period
the kernel really enforces depends on its tick and version, so it is measured, not assumed.

At `lab up` each device with less than one core is calibrated before its sshd starts (its
groups are empty then): the agent's own latency loop runs the built-in ``noop`` runtime with
``spin_us`` (a fixed amount of CPU time per inference, so its length does not depend on the
host's speed) for each length in `CALIBRATION_WORK_MS`, once unshaped and once inside the
device's groups under each candidate period, interleaved. The period whose p50, p90 and
throughput ratios come closest to ``1 / cores`` wins; the figures measured under it are
recorded in the lab state, the target file (``shaping:``), `harness lab status` and every
report of a run on the device. Work lengths whose p50 or p90 ratio misses ``1 / cores`` by
more than `TOLERANCE` are named as not shaped per inference (only their throughput is).

A device of one core or more is not calibrated: a quota of whole cores caps how many
threads run at once, and one thread runs at the host's speed (`whole_core_document`).
"""

from __future__ import annotations

import datetime
import json
import math
import os
import shlex
import subprocess
import sys
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from harness.analysis.stats import percentile
from harness.lab.cgroups import DeviceCgroups, attach_commands
from harness.lab.sshd import LabError

REPO = Path(__file__).resolve().parents[2]
KERNEL_MIN_QUOTA_US = 1000
"""The smallest CFS quota (and period) cgroup v1 accepts."""
CALIBRATION_WORK_MS = (1.5, 2.5, 20.0)
"""CPU time per calibration inference: short models (1.5 and 2.5 ms) and a longer one (20 ms).
Not whole milliseconds on purpose: CPU time is handed out in quota slices (1 ms for half a
core over 2 ms), and work that is a whole number of slices is stretched exactly 2x, which
flatters the shaping; other lengths show the rounding to a slice."""
CALIBRATION_WINDOW_S = 0.3
"""The shortest timed window per (length, period) run."""
CALIBRATION_DEVICE_INFERENCES = 30
"""Each run is long enough for this many inferences on the device (1.2 s for 20 ms of work on
half a core): a p90 of the 7 inferences a 0.3 s window held was their second largest, and
one stall read as p90 x2.54 where runs of 30 and more read x2.0-2.3."""
PERIOD_MULTIPLES = (1, 2, 5)
"""Candidate periods, as multiples of the shortest one the kernel allows for the quota."""
TOLERANCE = 0.25
"""A work length counts as shaped per inference when its p50 and p90 ratios are within 25% of
``1 / cores``. Measured on this machine kind (docs/lab.md) under the chosen 2 ms period, half
a core, over six runs (three idle, three with a CPU hog on one core): p50 x1.99-2.32, p90
x1.76-2.34, throughput x0.50-0.52 for 1.5 and 20 ms of work; the worst is 17% off, from
rounding to a 1 ms slice (1.5 ms of work takes ~3.5 ms) and, under the hog, the host's own
p90. Under a 10 ms period the p50 of 1-2 ms of work is the host's (x1.0) and its p90 x3.5-6."""
DISTURBED_SHARE = 0.85
"""Unshaped calibration work that gets less than 85% of a host core (its p50 over 1.18x its CPU
time) means other load on this machine: the device cannot show its quota when the host cannot
give it even that much, so such a calibration is retried, and said to be disturbed if it stays so."""
CALIBRATION_PASSES = 3
AGENT_TIMEOUT_S = 60.0
Progress = Callable[[str], None]


@dataclass(frozen=True)
class Figures:
    """One calibration run: per-inference p50, mean and p90 (ms) and inferences per second."""

    p50_ms: float
    mean_ms: float
    p90_ms: float
    per_s: float


@dataclass(frozen=True)
class CalibrationPoint:
    """One work length, unshaped (``host``) and on the device under the chosen period."""

    work_ms: float
    host: Figures
    device: Figures

    def ratios(self) -> dict[str, float]:
        """device / host for each figure (throughput: device / host too, so ~``cores``)."""
        return {"p50": self.device.p50_ms / self.host.p50_ms, "mean": self.device.mean_ms / self.host.mean_ms,
                "p90": self.device.p90_ms / self.host.p90_ms, "throughput": self.device.per_s / self.host.per_s}

    def shaped(self, cores: float) -> bool:
        ratios = self.ratios()
        return all(abs(ratios[k] * cores - 1) <= TOLERANCE for k in ("p50", "p90"))


@dataclass(frozen=True)
class CpuShaping:
    """How a device's CPU is shaped and what that was measured to do."""

    cores: float
    period_us: int
    quota_us: int
    points: tuple[CalibrationPoint, ...]
    periods_tried: tuple[tuple[int, float], ...]  # (period_us, error): the largest |log ratio - log(1/cores)|
    calibrated_at: str
    load_average: float = 0.0  # the host's 1-minute load average when the calibration ended
    rounds: int = 1  # measuring rounds: the device run per period and length nearest 1 / cores counts

    @property
    def host_share(self) -> float:
        """The smallest share of a host core the unshaped calibration work got (1.0: a free core)."""
        return min(min(1.0, p.work_ms / p.host.p50_ms) for p in self.points)

    @property
    def disturbed(self) -> bool:
        return self.host_share < DISTURBED_SHARE

    @property
    def mechanism(self) -> str:
        return (f"{self.cores:g} core: CFS bandwidth (cgroup v1), {self.quota_us / 1000:g} ms of CPU time per "
                f"{self.period_us / 1000:g} ms period")

    def shaped_from_ms(self) -> float | None:
        """The shortest calibrated work length from which every longer one is shaped per inference."""
        shortest = None
        for point in sorted(self.points, key=lambda p: -p.work_ms):
            if not point.shaped(self.cores):
                break
            shortest = point.work_ms
        return shortest

    def statement(self) -> str:
        """One line for a reader of the device's numbers: what is shaped and by how much."""
        factor = 1 / self.cores
        ratios = [p.ratios() for p in self.points]
        throughput = " to ".join(dict.fromkeys(f"x{r['throughput']:.2f}" for r in (min(ratios, key=_tp),
                                                                                   max(ratios, key=_tp))))
        shaped_from = self.shaped_from_ms()
        shaped = [p for p in self.points if shaped_from is not None and p.work_ms >= shaped_from]
        unshaped = [p for p in self.points if p not in shaped]
        parts = []
        if self.disturbed:
            parts.append(f"calibration DISTURBED: unshaped work got only {self.host_share:.2f} of a host core at lab "
                         f"up (load average {self.load_average:.1f}), so these figures do not show the shaping; run "
                         "`harness lab up` again when the machine is quieter")
        if shaped:
            p50 = _range(p.ratios()["p50"] for p in shaped)
            p90 = _range(p.ratios()["p90"] for p in shaped)
            parts.append(f"CPU-bound work of {shaped_from:g} ms and more takes {factor:g}x the host's time per "
                         f"inference, give or take one {self.quota_us / 1000:g} ms slice of CPU time "
                         f"(measured p50 {p50}, p90 {p90})")
        if unshaped:
            lengths = "/".join(f"{p.work_ms:g}" for p in unshaped)
            p50 = _range(p.ratios()["p50"] for p in unshaped)
            p90 = _range(p.ratios()["p90"] for p in unshaped)
            parts.append(f"NOT shaped per inference for {lengths} ms of work (p50 {p50}, p90 {p90}): "
                         "its percentiles are the host's plus stalls; only throughput is shaped there")
        parts.append(f"throughput {throughput} of the host's")
        return "; ".join(parts)

    def calibration_note(self) -> str:
        tried = ", ".join(f"{period / 1000:g} ms (error {error:.2f})" for period, error in self.periods_tried)
        lengths = "/".join(f"{w:g}" for w in CALIBRATION_WORK_MS)
        return (f"measured at lab up {self.calibrated_at} (load average {self.load_average:.1f}): the agent's noop "
                f"runtime computing {lengths} ms of CPU time per inference, on the device vs unshaped"
                + (f", best of {self.rounds} rounds" if self.rounds > 1 else "") + f"; periods tried: {tried}")

    def target_document(self) -> dict[str, Any]:
        """The target file's ``shaping:`` (see harness.config.targets)."""
        return {
            "cpu": self.mechanism,
            "statement": self.statement(),
            "calibrated": self.calibration_note(),
            "calibration": [{"work_ms": p.work_ms, **{k: round(v, 3) for k, v in p.ratios().items()},
                             "host_p50_ms": round(p.host.p50_ms, 3), "device_p50_ms": round(p.device.p50_ms, 3)}
                            for p in self.points],
        }

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CpuShaping:
        points = tuple(CalibrationPoint(work_ms=p["work_ms"], host=Figures(**p["host"]), device=Figures(**p["device"]))
                       for p in data["points"])
        return cls(cores=data["cores"], period_us=data["period_us"], quota_us=data["quota_us"], points=points,
                   periods_tried=tuple((int(a), float(b)) for a, b in data["periods_tried"]),
                   calibrated_at=data["calibrated_at"], load_average=float(data.get("load_average", 0.0)),
                   rounds=int(data.get("rounds", 1)))


def whole_core_document(cores: float, period_us: int) -> dict[str, Any]:
    """The target file's ``shaping:`` for a device of one core or more (nothing to calibrate)."""
    amount = f"{cores:g} core" + ("" if cores == 1 else "s")
    return {"cpu": f"{amount}: CFS bandwidth (cgroup v1) over a {period_us / 1000:g} ms period",
            "statement": f"one thread runs at the host's speed; more threads than that share {amount} of CPU time "
                         "(not calibrated: nothing is slowed per thread)"}


def _tp(ratios: dict[str, float]) -> float:
    return ratios["throughput"]


def _range(values: Any) -> str:
    ordered = sorted(values)
    low, high = f"x{ordered[0]:.2f}", f"x{ordered[-1]:.2f}"
    return low if low == high else f"{low}-{high}"


def quota_for(cores: float, period_us: int) -> int:
    return max(KERNEL_MIN_QUOTA_US, int(round(cores * period_us)))


def candidate_periods(cores: float) -> tuple[int, ...]:
    """Periods to try for a quota of ``cores`` (< 1): the shortest the kernel allows, and longer."""
    shortest = max(KERNEL_MIN_QUOTA_US, int(math.ceil(KERNEL_MIN_QUOTA_US / cores / 1000.0)) * 1000)
    return tuple(shortest * m for m in PERIOD_MULTIPLES)


def set_cpu_period(groups: DeviceCgroups, cores: float | None, period_us: int) -> None:
    """Enforce ``cores`` (None: unlimited) over ``period_us``; the quota keeps the ratio. A
    device already up with the same figures is left alone, so it never runs a moment unlimited."""
    directory = groups.cpu
    writes: tuple[tuple[str, int], ...] = (("cpu.cfs_quota_us", -1),)
    if cores is not None:
        period_us = max(KERNEL_MIN_QUOTA_US, int(period_us))
        quota_us = quota_for(cores, period_us)
        try:
            if (int(Path(directory, "cpu.cfs_period_us").read_text()),
                    int(Path(directory, "cpu.cfs_quota_us").read_text())) == (period_us, quota_us):
                return
        except (OSError, ValueError):
            pass
        writes += (("cpu.cfs_period_us", period_us), ("cpu.cfs_quota_us", quota_us))
    for name, value in writes:
        try:
            Path(directory, name).write_text(str(value))
        except OSError as exc:
            raise LabError(f"cannot write {value} to {directory}/{name}: {exc.strerror}") from exc


def calibration_window_s(work_ms: float, cores: float) -> float:
    """The timed window of one calibration run of ``work_ms`` (host and device alike)."""
    return max(CALIBRATION_WINDOW_S, CALIBRATION_DEVICE_INFERENCES * work_ms / cores / 1000.0)


def spin_job(work_ms: float, window_s: float = CALIBRATION_WINDOW_S) -> dict[str, Any]:
    """A latency Job (agent protocol 1) computing ``work_ms`` of CPU time per inference."""
    return {"protocol": 1, "job_id": f"lab-calibration-{work_ms:g}ms", "kind": "latency",
            "runtime": {"name": "noop", "options": {"spin_us": work_ms * 1000}}, "model": {"files": {}},
            "input": {"name": "x", "shape": [1]},
            "latency": {"warmup_iterations": 2, "warmup_duration_s": 0.0, "min_iterations": 10,
                        "min_duration_s": window_s, "max_duration_s": 30.0}}


def figures_of(latency_ns: Sequence[int], window_ns: int) -> Figures:
    ordered = sorted(latency_ns)
    return Figures(p50_ms=percentile(ordered, 50) / 1e6, mean_ms=sum(ordered) / len(ordered) / 1e6,
                   p90_ms=percentile(ordered, 90) / 1e6, per_s=len(ordered) / (window_ns / 1e9))


def run_spin(work_ms: float, groups: DeviceCgroups | None, python: str = sys.executable,
             window_s: float = CALIBRATION_WINDOW_S) -> Figures:
    """Run one calibration job in a fresh agent process, in ``groups`` (None: unshaped, here)."""
    agent = f"exec {shlex.quote(python)} -m harness.agent"
    lines = [*(attach_commands(groups) if groups is not None else []), agent]
    env = {**os.environ, "PYTHONPATH": str(REPO), "PYTHONDONTWRITEBYTECODE": "1"}
    where = groups.cpu if groups is not None else "the host"
    try:
        job = json.dumps(spin_job(work_ms, window_s)).encode()
        done = subprocess.run(["/bin/sh", "-c", "; ".join(lines)], input=job, capture_output=True, env=env,
                              timeout=AGENT_TIMEOUT_S, cwd=str(REPO))
    except subprocess.TimeoutExpired:
        raise LabError(f"CPU calibration in {where} did not finish within {AGENT_TIMEOUT_S:g}s") from None
    events = {}
    for line in done.stdout.decode("utf-8", "replace").splitlines():
        try:
            event = json.loads(line)
        except ValueError:
            continue  # not protocol: the error below says what stderr had
        if isinstance(event, dict):
            events[event.get("event")] = event
    if "error" in events or "samples" not in events or "result" not in events:
        reason = events.get("error", {}).get("message") or done.stderr.decode("utf-8", "replace").strip()[-300:]
        raise LabError(f"CPU calibration in {where} failed (exit {done.returncode}): {reason}")
    return figures_of(events["samples"]["latency_ns"], events["result"]["window_ns"])


def _median_figures(runs: Sequence[Figures]) -> Figures:
    def median(values: list[float]) -> float:
        return percentile(sorted(values), 50)

    return Figures(p50_ms=median([f.p50_ms for f in runs]), mean_ms=median([f.mean_ms for f in runs]),
                   p90_ms=median([f.p90_ms for f in runs]), per_s=median([f.per_s for f in runs]))


def _error(cores: float, points: Sequence[CalibrationPoint]) -> float:
    """How far a period is from "1 / cores per inference": the largest |log(ratio x cores)|
    over every length's p50, p90 and (inverted) throughput."""
    worst = 0.0
    for point in points:
        ratios = point.ratios()
        for value in (ratios["p50"] * cores, ratios["p90"] * cores, cores / ratios["throughput"]):
            worst = max(worst, abs(math.log(value)))
    return worst


def calibrate(groups: DeviceCgroups, cores: float, progress: Progress, python: str = sys.executable) -> CpuShaping:
    """Pick the CFS period for ``cores`` by measurement and leave the device's groups set to it.

    Must run while the groups are empty (before the device's sshd starts). It measures in
    rounds, up to `CALIBRATION_PASSES`: one is enough when it shows every length shaped and
    the host undisturbed (`DISTURBED_SHARE`). Otherwise another round runs, and per period and
    length the device run closest to ``1 / cores`` counts (other load on the host only adds
    stalls to a run, never removes the kernel's), the host's figures being the median over
    all its runs. Measured here under a neighbour's test run: one round in three let a single
    stalled run turn the 2 ms period's error from 0.15 to 0.92 and choose the 4 ms period. A
    calibration still disturbed after the last round says so."""
    periods = candidate_periods(cores)
    seconds = sum(2 * len(periods) * (calibration_window_s(w, cores) + 0.2) for w in CALIBRATION_WORK_MS)
    progress(f"calibrating {cores:g} core: {len(CALIBRATION_WORK_MS)} work lengths x {len(periods)} CFS periods "
             f"({', '.join(f'{p / 1000:g} ms' for p in periods)}), about {seconds:.0f}s a round")
    host: dict[float, list[Figures]] = {w: [] for w in CALIBRATION_WORK_MS}
    device: dict[int, dict[float, list[Figures]]] = {p: {w: [] for w in CALIBRATION_WORK_MS} for p in periods}
    shaping: CpuShaping | None = None
    for rounds in range(1, CALIBRATION_PASSES + 1):
        _measure_round(groups, cores, periods, python, host, device)
        shaping = _shaping_of(cores, periods, host, device, rounds)
        if not shaping.disturbed and shaping.shaped_from_ms() == min(CALIBRATION_WORK_MS):
            break
        if rounds < CALIBRATION_PASSES:
            why = (f"the host is busy (unshaped work got {shaping.host_share:.2f} of a core, load average "
                   f"{shaping.load_average:.1f})" if shaping.disturbed else
                   f"not every length is shaped under the best period yet ({shaping.statement()[:60]}...)")
            progress(f"{why}: measuring another round ({rounds + 1}/{CALIBRATION_PASSES})")
    assert shaping is not None
    set_cpu_period(groups, cores, shaping.period_us)
    progress(f"{shaping.mechanism} (chosen): {shaping.statement()}")
    return shaping


def _measure_round(groups: DeviceCgroups, cores: float, periods: Sequence[int], python: str,
                   host: dict[float, list[Figures]], device: dict[int, dict[float, list[Figures]]]) -> None:
    """One run of each length unshaped and under each period, interleaved (a change of the
    host's load hits both), appended to ``host`` and ``device``."""
    for work_ms in CALIBRATION_WORK_MS:
        window_s = calibration_window_s(work_ms, cores)
        for period in periods:
            host[work_ms].append(run_spin(work_ms, None, python, window_s))
            set_cpu_period(groups, cores, period)
            device[period][work_ms].append(run_spin(work_ms, groups, python, window_s))


def _shaping_of(cores: float, periods: Sequence[int], host: dict[float, list[Figures]],
                device: dict[int, dict[float, list[Figures]]], rounds: int) -> CpuShaping:
    host_median = {w: _median_figures(runs) for w, runs in host.items()}
    tried = []
    for period in periods:
        points = tuple(min((CalibrationPoint(w, host_median[w], run) for run in device[period][w]),
                           key=lambda point: _error(cores, (point,)))
                       for w in CALIBRATION_WORK_MS)
        tried.append((period, _error(cores, points), points))
    best_period, _, best_points = min(tried, key=lambda t: (round(t[1], 2), t[0]))
    return CpuShaping(cores=cores, period_us=best_period, quota_us=quota_for(cores, best_period), points=best_points,
                      periods_tried=tuple((p, round(e, 3)) for p, e, _ in tried),
                      calibrated_at=datetime.datetime.now().isoformat(timespec="seconds"),
                      load_average=os.getloadavg()[0], rounds=rounds)


__all__ = [
    "CALIBRATION_WORK_MS",
    "CalibrationPoint",
    "CpuShaping",
    "Figures",
    "calibrate",
    "calibration_window_s",
    "candidate_periods",
    "figures_of",
    "run_spin",
    "set_cpu_period",
    "spin_job",
    "whole_core_document",
]
