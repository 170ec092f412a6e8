"""Fleet scale: how the wall time of a run grows with the number of targets, with pytest-xdist.

The fleet is 16 lightweight devices: local-transport target files in a temp dir, each with
its own work dir (so its own device lock, agent copy and push cache), running the real
latency suite on two noop variants with cheap jobs (no warm-up, 5 iterations). A job then
costs what the harness costs around it (device lock, agent process start, store write), which
is what limits an orchestrator driving many devices; real models add their own run time on
each device, in parallel across devices.

Matrix: targets 1, 4, 8, 16 x pytest without xdist, `-n 1`, `-n 2`, `-n 4` (this machine has
2 cores: `-n 4` shows what over-subscription does). Every run writes to one results database
(the module's private PostgreSQL cluster, as a lab would; SQLite when no PostgreSQL is
installed) and must store 2 measurements per target. The work dirs are warmed first (agent
pushed), as on a lab's devices after their first run; the cold run is reported separately.

A second test runs the 16 devices as slow boards (every process start on a device waits
0.5 s first, as a small board's Python takes to start, while this machine's CPU idles):
serial, `-n 2`, `-n 4`, `-n 8`. There the workers overlap waiting on devices, as they do with
real models on real boards, and the speed-up is not capped by this machine's 2 cores.

Figures go to extra_info and are printed: wall seconds per run (best of $HARNESS_FLEET_ROUNDS
runs per cell, default 1: this machine is shared), the CPU seconds the orchestrator and
everything it started used (xdist workers, agent processes: robust to other load), and the
marginal cost of one more target. docs/lab-scale.md quotes them.

No wall time is asserted against a goal (this machine is shared). Each run must store all
its measurements, and each test asserts only orders that load cannot break: 16 targets cost
the orchestrator more CPU seconds than one does, in every mode; the slow devices' serial run
lasts at least the sleeps it waits through (16 devices x 2 jobs x SLOW_START_S).
"""

from __future__ import annotations

import os
import resource
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from helpers.project import NOOP_INPUT, copy_suites, local_target, noop_variant, write_manifest, write_target
from helpers.suites import suites_argv

from harness.lab.postgres import find_bindir, private_cluster
from harness.lab.sshd import LabError
from harness.store import open_store

FLEET = 16
TARGET_COUNTS = (1, 4, 8, 16)
MODES = ("serial", "-n 1", "-n 2", "-n 4")
VARIANTS = 2
SLOW_START_S = 0.5
SLOW_MODES = ("serial", "-n 2", "-n 4", "-n 8")
ROUNDS_ENV = "HARNESS_FLEET_ROUNDS"  # best of N runs per cell (default 1)

LATENCY = {"warmup_iterations": 0, "warmup_duration": "0s", "min_iterations": 5, "min_duration": "0s",
           "max_duration": "5s"}
VARIANTS_OF_TINY = {"fp32": noop_variant(files={}), "int8": noop_variant(kind="int8-ptq", files={}, baseline="fp32")}


@pytest.fixture(scope="module")
def results_store(tmp_path_factory) -> Iterator[str]:
    """One database for every run of the matrix, as a lab has."""
    try:
        find_bindir()
    except LabError:
        yield f"sqlite:///{tmp_path_factory.mktemp('fleet-store') / 'results.sqlite'}"
        return
    with private_cluster() as cluster:
        yield cluster.create_database("fleet")


@pytest.fixture(scope="module")
def fleet(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("fleet")
    # a slow device: every process started on it (lock helper, agent) waits SLOW_START_S first,
    # as a small board's Python does, without using this machine's CPU meanwhile
    slow_python = root / "slow-python"
    slow_python.write_text(f"#!/bin/sh\nsleep {SLOW_START_S}\nexec {sys.executable} \"$@\"\n")
    slow_python.chmod(0o755)
    for directory, python in (("targets", sys.executable), ("targets-slow", slow_python)):
        for i in range(1, FLEET + 1):
            name = f"dev{i:02d}"
            write_target(root / directory, local_target(
                name, description=f"simulated lab device {name}", workdir=root / "devices" / name, python=python,
                power={"sensor": "none"}, tags=["fleet", f"rack{(i - 1) // 4}"], limits={"job_timeout": "60s"}))
    copy_suites(root)
    write_manifest(root / "suites" / "models.yaml", {"tiny": {"input": NOOP_INPUT, "variants": VARIANTS_OF_TINY}},
                   latency=LATENCY)
    return root


def _orchestrate(fleet: Path, store: str, targets: int, mode: str, label: str,
                 targets_dir: str = "targets") -> tuple[float, float]:
    """One run of the latency suite over the first `targets` devices: (wall s, CPU s of the
    orchestrator and everything it started: xdist workers, agent processes)."""
    names = ",".join(f"dev{i:02d}" for i in range(1, targets + 1))
    argv = suites_argv(["suites/test_latency.py", f"--targets-dir={targets_dir}", f"--target={names}",
                        f"--store={store}", "--no-report", f"--run-label={label}",
                        *(mode.split() if mode != "serial" else ["-p", "no:xdist"])], quiet=("-q",))
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    done = subprocess.run(argv, cwd=fleet, capture_output=True, text=True, timeout=600)
    elapsed = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    store_ = open_store(store)
    try:
        (run,) = store_.runs(label=label)
        records = store_.measurements(run.id)
    finally:
        store_.close()
    assert run.status == "complete"
    assert sorted({r.target for r in records}) == names.split(",") and len(records) == VARIANTS * targets
    return elapsed, cpu


def test_fleet_wall_time_by_number_of_targets(benchmark, fleet: Path, results_store: str) -> None:
    cold, _ = _orchestrate(fleet, results_store, FLEET, "-n 2", "fleet-cold")  # pushes the agent to every device
    # this machine is shared: each cell is the best of ROUNDS runs
    rounds = int(os.environ.get(ROUNDS_ENV, "1"))
    cells = [(mode, n) for mode in MODES for n in TARGET_COUNTS]

    def matrix() -> dict[tuple[str, int], tuple[float, float]]:
        best: dict[tuple[str, int], tuple[float, float]] = {}
        for round_ in range(rounds):
            for mode, n in cells:
                wall, cpu = _orchestrate(fleet, results_store, n, mode, f"fleet-{n}-{mode.replace(' ', '')}-{round_}")
                if (mode, n) not in best or wall < best[(mode, n)][0]:
                    best[(mode, n)] = (wall, cpu)
        return best

    table = benchmark.pedantic(matrix, rounds=1, iterations=1, warmup_rounds=0)

    backend = "postgresql" if results_store.startswith("postgres") else "sqlite"
    info: dict[str, object] = {"store": backend, "variants_per_target": VARIANTS, "rounds_per_cell": rounds,
                               "cold_16_targets_n2_s": round(cold, 2)}
    lines = [f"\nfleet wall time in s (orchestrator CPU s), {VARIANTS} noop jobs per target, store {backend}, "
             f"best of {rounds}; cold run (agent pushed to 16 devices, -n 2): {cold:.1f} s",
             f"{'targets':>8} " + " ".join(f"{mode:>14}" for mode in MODES)]
    for n in TARGET_COUNTS:
        lines.append(f"{n:>8} " + " ".join(f"{table[(mode, n)][0]:>7.1f} ({table[(mode, n)][1]:>4.1f})"
                                          for mode in MODES))
    for mode in MODES:
        key = "serial" if mode == "serial" else mode.replace("-n ", "n")
        for n in TARGET_COUNTS:
            info[f"{key}_{n}_targets_wall_s"] = round(table[(mode, n)][0], 2)
            info[f"{key}_{n}_targets_cpu_s"] = round(table[(mode, n)][1], 2)
        per_target = (table[(mode, 16)][0] - table[(mode, 1)][0]) / 15
        cpu_per_target = (table[(mode, 16)][1] - table[(mode, 1)][1]) / 15
        info[f"{key}_marginal_wall_s_per_target"] = round(per_target, 3)
        info[f"{key}_marginal_cpu_s_per_target"] = round(cpu_per_target, 3)
        lines.append(f"{mode:>8}: +{per_target:.2f} s wall and +{cpu_per_target:.2f} CPU s per additional target; "
                     f"fixed cost {table[(mode, 1)][0] - per_target:.1f} s wall, "
                     f"{table[(mode, 1)][1] - cpu_per_target:.1f} CPU s")
    benchmark.extra_info.update(info)
    print("\n".join(lines))
    assert set(table) == set(cells), "every cell of the matrix was run"
    for mode in MODES:  # 32 jobs (agent starts, store writes) use more CPU than 2, whatever else runs
        assert table[(mode, FLEET)][1] > table[(mode, 1)][1], (mode, table[(mode, FLEET)], table[(mode, 1)])


def test_fleet_of_slow_devices(benchmark, fleet: Path, results_store: str) -> None:
    """16 devices whose every process start takes SLOW_START_S on the device (a small board's
    Python): time goes to waiting on devices, not to this machine's CPU, so workers beyond the
    runner's cores still shorten the run, as they do with real models running on real boards."""
    _orchestrate(fleet, results_store, FLEET, "-n 4", "slow-warm", "targets-slow")

    def modes() -> dict[str, tuple[float, float]]:
        return {mode: _orchestrate(fleet, results_store, FLEET, mode, f"slow-{mode.replace(' ', '')}", "targets-slow")
                for mode in SLOW_MODES}

    table = benchmark.pedantic(modes, rounds=1, iterations=1, warmup_rounds=0)
    serial = table["serial"][0]
    lines = [f"\nfleet of {FLEET} slow devices (+{SLOW_START_S} s per process start on the device), "
             f"{VARIANTS} noop jobs each: wall s (orchestrator CPU s), speed-up over serial"]
    for mode in SLOW_MODES:
        wall, cpu = table[mode]
        key = "serial" if mode == "serial" else mode.replace("-n ", "n")
        benchmark.extra_info[f"slow_{key}_16_targets_wall_s"] = round(wall, 2)
        benchmark.extra_info[f"slow_{key}_16_targets_cpu_s"] = round(cpu, 2)
        lines.append(f"{mode:>8}: {wall:6.1f} s ({cpu:4.1f}) x{serial / wall:.1f}")
    benchmark.extra_info["slow_start_s"] = SLOW_START_S
    print("\n".join(lines))
    assert set(table) == set(SLOW_MODES)
    # serially, every job's agent start waits SLOW_START_S on its device: a floor load cannot lower
    assert serial >= FLEET * VARIANTS * SLOW_START_S, (serial, FLEET * VARIANTS * SLOW_START_S)
