"""Targets on labgrid: a real labgrid coordinator and exporter on loopback (started as
labgrid's own tests/conftest.py starts them), real sshds as the boards, the real
`labgrid-client` both inside the harness and in these tests' checks.

Every place here exports a NetworkService of a loopback sshd; each test uses places of its own
so the tests never see each other's reservations."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from helpers.labgrid_lab import LabgridLab
from helpers.loopback_sshd import LoopbackSshd
from helpers.project import NOOP_INPUT, QUICK_LATENCY, noop_manifest, noop_variant, write_manifest
from helpers.results import ok_rows, records
from helpers.suites import run_suites, shown, start_suites

from harness.lab.sshd import free_port
from harness.transport.labgrid import labgrid_owner

PLACES = {"orin-1": "board-1", "orin-2": "board-2", "orin-3": "board-3", "solo-1": "solo", "queue-1": "queue",
          "kick-1": "kick", "stale-1": "stale", "int-1": "interrupt"}


@pytest.fixture(scope="module")
def boards(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[LoopbackSshd]]:
    """Three sshds that accept one client key (the first one's)."""
    root = tmp_path_factory.mktemp("labgrid-boards")
    made = [LoopbackSshd(root / f"board-{i}") for i in range(1, 4)]
    for other in made[1:]:
        other.authorized.write_text(Path(f"{made[0].key}.pub").read_text())
    yield made
    for sshd in made:
        sshd.stop()


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory, boards: list[LoopbackSshd]) -> Iterator[LabgridLab]:
    made = LabgridLab(tmp_path_factory.mktemp("labgrid"))
    groups = {group: boards[int(group[-1]) - 1] if group.startswith("board-") else boards[0]
              for group in PLACES.values()}
    made.export(groups)
    for place, group in PLACES.items():
        made.add_place(place, group, board="orin" if place.startswith("orin-") else place.split("-")[0])
    yield made
    made.stop()


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    """The suites' environment: this test's own record of what it acquired."""
    return {**os.environ, "HARNESS_LABGRID_STATE": str(tmp_path / "labgrid-state")}


def _project(lab: LabgridLab, boards: list[LoopbackSshd], tmp_path: Path, variants: int = 1,
             warmup: str = "0s", **labgrid: object) -> list[str]:
    targets = tmp_path / "targets"
    lab.target_file(targets, "orin", boards[0].key, tmp_path / "device-work", **labgrid)
    manifest = noop_manifest(tmp_path / "models.yaml", variants, warmup=warmup)
    return ["suites/test_latency.py", f"--targets-dir={targets}", "--target=orin", f"--manifest={manifest}"]


def _until(condition: Callable[[], object], what: str, timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.2)


def _waiting(lab: LabgridLab) -> int:
    return lab.client("reservations").stdout.count("state: waiting")


def test_a_run_acquires_its_place_shown_by_labgrid_client_and_releases_it_after(
        lab: LabgridLab, boards: list[LoopbackSshd], tmp_path: Path, env: dict[str, str]) -> None:
    args = _project(lab, boards, tmp_path, warmup="3s", place="solo-1")
    run = start_suites(args, tmp_path / "out", env=env)
    _until(lambda: lab.acquired_by("solo-1") is not None or run.poll() is not None, "the run to acquire solo-1")
    during = lab.client("-p", "solo-1", "show").stdout
    stdout, stderr = run.communicate(timeout=300)
    assert run.returncode == 0, f"{stdout[-3000:]}\n{stderr[-2000:]}"
    assert f"acquired: {labgrid_owner()}" in during, during  # the real client saw the harness hold it
    assert "rack-1/solo/NetworkService" in during
    assert lab.acquired_by("solo-1") is None  # released at the end of the session
    assert "solo-1" not in lab.client("reservations").stdout  # and its reservation cancelled
    _, _, measured = records(tmp_path / "out")
    assert [r.status for r in measured] == ["ok"]
    assert measured[0].target == "orin"  # a named place: the target's own name
    assert measured[0].meta["board"]["place"] == "solo-1" and measured[0].meta["board"]["exporter"] == "rack-1"
    assert "acquired labgrid place solo-1 (exporter rack-1" in stdout + stderr
    assert not (tmp_path / "device-work" / "device.lock").exists()  # labgrid's lock only: no flock on the board


def test_a_place_the_coordinator_does_not_have_is_one_line_at_once(
        lab: LabgridLab, boards: list[LoopbackSshd], tmp_path: Path, env: dict[str, str]) -> None:
    args = _project(lab, boards, tmp_path, place="jetson-99")
    done = run_suites([*args, "--lock-timeout=10min"], tmp_path / "out", env=env, report=False, timeout=120)
    assert done.returncode == 1, shown(done)
    assert f"has no place jetson-99 (its places: {', '.join(sorted(PLACES))})" in done.stdout, shown(done)
    assert "Traceback" not in done.stdout + done.stderr


def test_an_unreachable_coordinator_is_one_line_naming_the_address(
        lab: LabgridLab, boards: list[LoopbackSshd], tmp_path: Path, env: dict[str, str]) -> None:
    address = f"127.0.0.1:{free_port()}"
    args = _project(lab, boards, tmp_path, place="solo-1", coordinator=address)
    done = run_suites(args, tmp_path / "out", env=env, report=False, timeout=300)
    assert done.returncode == 1, shown(done)
    expected = f"labgrid coordinator {address} (from {tmp_path / 'targets' / 'orin.yaml'} connection.coordinator)"
    assert expected in done.stdout and "is not reachable" in done.stdout, shown(done)
    assert "Traceback" not in done.stdout + done.stderr, shown(done)
    # --lg-coordinator wins over the file, and says so
    done = run_suites([*args, f"--lg-coordinator={address}"], tmp_path / "out2", env=env, report=False, timeout=300)
    assert f"labgrid coordinator {address} (from --lg-coordinator) is not reachable" in done.stdout, shown(done)


def test_the_second_orchestrator_waits_in_labgrids_queue_and_a_higher_priority_goes_first(
        lab: LabgridLab, boards: list[LoopbackSshd], tmp_path: Path, env: dict[str, str]) -> None:
    first = start_suites(_project(lab, boards, tmp_path / "a", warmup="15s", place="queue-1"), tmp_path / "a" / "out",
                         env=env)
    _until(lambda: lab.acquired_by("queue-1") is not None or first.poll() is not None, "the first run to acquire")
    assert first.poll() is None, "the first run ended before the others queued"
    low = start_suites([*_project(lab, boards, tmp_path / "low", place="queue-1"), "--lg-priority=0"],
                       tmp_path / "low" / "out", env=env)
    _until(lambda: _waiting(lab) >= 1, "the low-priority run to queue")
    high = start_suites([*_project(lab, boards, tmp_path / "high", place="queue-1"), "--lg-priority=10"],
                        tmp_path / "high" / "out", env=env)
    _until(lambda: _waiting(lab) >= 2, "the high-priority run to queue")
    assert first.poll() is None, "the first run ended before both others were queued: make its job longer"
    outputs = {}
    for name, run in (("first", first), ("low", low), ("high", high)):
        outputs[name] = run.communicate(timeout=300)
        assert run.returncode == 0, f"{name}: {outputs[name][0][-3000:]}\n{(outputs[name][0] + outputs[name][1])[-2000:]}"
    times = {}
    for name in ("a", "low", "high"):
        _, _, measured = records(tmp_path / name / "out")
        times[name] = min(r.recorded_at or "" for r in measured), max(r.recorded_at or "" for r in measured)
    assert times["a"][1] < times["high"][0] < times["low"][0], times  # priority 10 went before priority 0
    assert times["high"][1] < times["low"][0], times  # and held the board until it was done
    for name in ("low", "high"):
        assert "waiting in labgrid's queue for place queue-1" in (outputs[name][0] + outputs[name][1]), (outputs[name][0] + outputs[name][1])[-2000:]
    assert "queue-1 acquired by" in outputs["low"][0] + outputs["low"][1]  # the progress line says who holds it
    assert lab.acquired_by("queue-1") is None


def test_a_match_with_n3_uses_three_distinct_boards_and_the_report_names_them(
        lab: LabgridLab, boards: list[LoopbackSshd], tmp_path: Path, env: dict[str, str]) -> None:
    targets = tmp_path / "targets"
    lab.target_file(targets, "orin", boards[0].key, tmp_path / "device-work", match={"board": "orin"})
    models = {f"m{i}": {"input": NOOP_INPUT, "variants": {"fp32": noop_variant()}} for i in range(3)}
    manifest = write_manifest(tmp_path / "models.yaml", models, latency={**QUICK_LATENCY, "warmup_duration": "2s"})
    done = run_suites(["suites/test_latency.py", f"--targets-dir={targets}", "--target=orin",
                       f"--manifest={manifest}", "-n", "3"], tmp_path / "out", env=env, timeout=400)
    assert done.returncode == 0, shown(done)
    _, _, measured = records(tmp_path / "out")
    assert len(measured) == 3
    places = {r.meta["board"]["place"] for r in measured}
    assert places == {"orin-1", "orin-2", "orin-3"}, [(r.variant_id, r.meta["board"]) for r in measured]
    assert {r.target for r in measured} == {f"orin@{p}" for p in places}  # a history per board
    ports = {r.meta["board"]["port"] for r in measured}
    assert ports == {b.server.port for b in boards}  # each reached at its own NetworkService
    report = next((tmp_path / "out" / "reports").rglob("index.html")).read_text()
    for place in places:
        assert f"Target orin@{place}" in report and f"labgrid place <strong>{place}</strong> (exporter rack-1" in report
    assert all(lab.acquired_by(p) is None for p in places)


def test_a_place_kicked_mid_run_fails_the_remaining_tests_and_keeps_what_was_measured(
        lab: LabgridLab, boards: list[LoopbackSshd], tmp_path: Path, env: dict[str, str]) -> None:
    out = tmp_path / "out"
    run = start_suites([*_project(lab, boards, tmp_path, variants=4, warmup="2s", place="kick-1")], out, env=env)
    _until(lambda: ok_rows(out / "results.sqlite") or run.poll() is not None, "a first measurement")
    lab.client("-p", "kick-1", "release", "--kick", env={"LG_USERNAME": "another-user"})
    stdout, stderr = run.communicate(timeout=300)
    assert run.returncode == 1, f"{stdout[-3000:]}\n{stderr[-2000:]}"
    _, _, measured = records(out)
    statuses = [r.status for r in sorted(measured, key=lambda r: r.id or 0)]
    assert statuses[0] == "ok" and statuses[-1] == "error", statuses  # measured before the kick: kept
    first_error = statuses.index("error")
    assert set(statuses[first_error:]) == {"error"}, statuses  # every job after it failed, none re-acquired
    errors = [r.meta["error"] for r in measured if r.status == "error"]
    assert all("labgrid place kick-1 was taken away during the run" in e for e in errors), errors
    assert "taken away during the run" in stdout and "Traceback" not in stdout, stdout[-3000:]
    assert "kick-1" not in lab.client("reservations").stdout  # its reservation was still cancelled


def test_after_a_crash_the_next_run_names_the_stale_acquisition_and_how_to_release_it(
        lab: LabgridLab, boards: list[LoopbackSshd], tmp_path: Path, env: dict[str, str]) -> None:
    args = _project(lab, boards, tmp_path, warmup="30s", place="stale-1")
    crashed = start_suites(args, tmp_path / "out", env=env)
    _until(lambda: lab.acquired_by("stale-1") is not None or crashed.poll() is not None, "the run to acquire")
    crashed.kill()  # SIGKILL: nothing of the harness runs after it
    crashed.communicate(timeout=60)
    assert lab.acquired_by("stale-1") == labgrid_owner()  # labgrid still holds it for this user
    done = run_suites(args, tmp_path / "again", env=env, report=False, timeout=300)
    assert done.returncode == 1, shown(done)
    line = next(x for x in done.stdout.splitlines() if "is still acquired by" in x)
    assert f"pid {crashed.pid}" in line and "no longer running" in line, line
    assert "-p stale-1 release" in line and "cancel-reservation" in line, line
    # the commands it names do release it, and the next run goes through
    token = line.split("cancel-reservation ")[1].split("`")[0]
    lab.client("-p", "stale-1", "release")
    lab.client("cancel-reservation", token)
    assert lab.acquired_by("stale-1") is None
    args[args.index(next(a for a in args if a.startswith("--manifest")))] = (
        f"--manifest={noop_manifest(tmp_path / 'quick.yaml', 1)}")
    done = run_suites(args, tmp_path / "third", env=env, report=False, timeout=300)
    assert done.returncode == 0, shown(done)
    assert lab.acquired_by("stale-1") is None


def test_ctrl_c_releases_the_place(lab: LabgridLab, boards: list[LoopbackSshd], tmp_path: Path,
                                   env: dict[str, str]) -> None:
    run = start_suites(_project(lab, boards, tmp_path, warmup="30s", place="int-1"), tmp_path / "out", env=env)
    _until(lambda: lab.acquired_by("int-1") is not None or run.poll() is not None, "the run to acquire")
    time.sleep(1.0)  # inside the job
    run.send_signal(signal.SIGINT)
    stdout, stderr = run.communicate(timeout=120)
    assert run.returncode == 2, f"{stdout[-2000:]}\n{stderr[-2000:]}"  # interrupted
    assert lab.acquired_by("int-1") is None
    assert "int-1" not in lab.client("reservations").stdout


def test_targets_check_reaches_a_labgrid_target_through_its_place(
        lab: LabgridLab, boards: list[LoopbackSshd], tmp_path: Path, env: dict[str, str]) -> None:
    _project(lab, boards, tmp_path, place="solo-1")
    done = subprocess.run([sys.executable, "-m", "harness", "targets", "check", "orin",
                           "--targets-dir", str(tmp_path / "targets")], capture_output=True, text=True, timeout=120,
                          env=env)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "acquired labgrid place solo-1" in done.stdout and "orin: ok" in done.stdout, done.stdout
    assert lab.acquired_by("solo-1") is None


def test_a_coordinator_that_goes_away_mid_run_is_said_and_the_board_measures_on(
        boards: list[LoopbackSshd], tmp_path: Path, env: dict[str, str]) -> None:
    own = LabgridLab(tmp_path / "own-lab")  # this test stops its coordinator
    try:
        own.export({"gone": boards[0]})
        own.add_place("gone-1", "gone", board="gone")
        out = tmp_path / "out"
        run = start_suites(_project(own, boards, tmp_path, variants=3, warmup="2s", place="gone-1"), out, env=env)
        _until(lambda: ok_rows(out / "results.sqlite") or run.poll() is not None, "a first measurement")
        for daemon in (*own.exporters, own.coordinator):
            daemon.stop()
        stdout, stderr = run.communicate(timeout=300)
    finally:
        own.stop()
    assert run.returncode == 0, f"{stdout[-3000:]}\n{stderr[-2000:]}"  # every variant measured
    _, _, measured = records(out)
    assert [r.status for r in measured] == ["ok"] * 3
    assert "the labgrid place cannot be checked before this job" in stdout + stderr
    assert "is not reachable" in stdout + stderr and "carrying on with it" in stdout + stderr
    # the release could not reach it either: the acquisition stays recorded for the next run to name
    assert list((tmp_path / "labgrid-state").rglob("gone-1.json"))
