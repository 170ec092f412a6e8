"""Whose /proc/cpuinfo the agent read: under qemu-user (an emulated device) it is the host's,
and the environment record and the report must say so instead of passing it off as the device's."""

from __future__ import annotations

from pathlib import Path

from helpers.records import measurement, run_info

from harness.agent.env import cpuinfo_is_the_hosts
from harness.report.build import render_run_report
from harness.report.signoff import render_signoff_report
from harness.store import open_store

X86 = "processor\t: 0\nvendor_id\t: GenuineIntel\nmodel name\t: Intel(R) Xeon(R)\nflags\t\t: fpu sse4_2 avx2\n"
ARM = "processor\t: 0\nBogoMIPS\t: 50.00\nFeatures\t: fp asimd asimddp\nCPU implementer\t: 0x41\n"


def test_an_x86_cpuinfo_seen_by_an_aarch64_interpreter_is_the_hosts() -> None:
    assert cpuinfo_is_the_hosts("aarch64", X86)
    assert cpuinfo_is_the_hosts("x86_64", ARM)


def test_a_cpuinfo_of_the_interpreters_own_architecture_is_the_devices() -> None:
    assert not cpuinfo_is_the_hosts("x86_64", X86)
    assert not cpuinfo_is_the_hosts("aarch64", ARM)
    assert not cpuinfo_is_the_hosts("armv7l", ARM)
    assert not cpuinfo_is_the_hosts("aarch64", "")  # nothing to tell by: not claimed either way


def test_this_machines_own_cpuinfo_is_its_own() -> None:
    import platform

    assert not cpuinfo_is_the_hosts(platform.machine(), Path("/proc/cpuinfo").read_text())


def test_the_run_report_and_the_signoff_mark_the_hosts_cpu_model(tmp_path: Path) -> None:
    store = open_store(tmp_path / "r.sqlite")
    for run_id, started in (("rc", "2026-12-02T00:00:00+00:00"), ("base", "2026-12-01T00:00:00+00:00")):
        store.create_run(run_info(run_id, started_at=started))
        store.record_environment(run_id, "arm", {
            "declared": {"kind": "arm-cortex", "arch": "aarch64", "emulated": True},
            "device": {"machine": "aarch64", "cpu_model": "Intel(R) Xeon(R)", "cpu_info_is_host": True}})
        store.record_measurement(measurement(
            run_id, target="arm", summary={"n": 3, "p50": 1.0, "p90": 1.1, "mean": 1.0, "warnings": []},
            meta={"baseline": None}, samples=(1_000_000, 1_000_000, 1_100_000)))
        store.finish_run(run_id, started, "complete")
    run_page = render_run_report(store, "rc", tmp_path / "reports").read_text()
    assert "Intel(R) Xeon(R) <strong class=\"host-cpu\">(the host's CPU model and flags" in run_page
    signoff, _ = render_signoff_report(store, "rc", "base", tmp_path / "reports")
    assert "(the host's: qemu-user passes the host's /proc/cpuinfo through)" in signoff.read_text()
