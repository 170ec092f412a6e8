"""`status`: the lab's state file plus live facts per device, and its text for `harness lab status`."""

from __future__ import annotations

import os
import socket
from pathlib import Path

from harness.lab import cgroups, shaping
from harness.lab.device_sshd import sshd_alive
from harness.lab.power_daemon import power_alive, power_file
from harness.lab.progress import format_size
from harness.lab.state import DEFAULT_STATE_DIR, LabState
from harness.lab.users import is_mounted


def reachable(host: str, port: int, timeout_s: float = 2.0) -> bool:
    """An SSH banner comes back from host:port."""
    try:
        with socket.create_connection((host, port), timeout=timeout_s) as conn:
            conn.settimeout(timeout_s)
            return conn.recv(64).startswith(b"SSH-")
    except OSError:
        return False


def status(state_dir: Path | str = DEFAULT_STATE_DIR) -> LabState | None:
    """The lab's state with live facts per device, or None when nothing is up there."""
    state = LabState.load(Path(state_dir).resolve())
    if state is None:
        return None
    for device in state.devices.values():
        device.sshd_alive = sshd_alive(device)
        device.reachable = reachable(device.address, device.port)
        device.usage = cgroups.usage(device.cgroups)
        if device.simulated_power:
            device.power_alive = power_alive(device)
            try:
                device.power_mw = int(power_file(device).read_text().split()[0])
            except (OSError, ValueError, IndexError):
                device.power_mw = None
        if is_mounted(device.home):
            fs = os.statvfs(device.home)
            device.disk_used = (fs.f_blocks - fs.f_bfree) * fs.f_frsize
    return state


def format_status(state: LabState | None, state_dir: Path | str = DEFAULT_STATE_DIR) -> list[str]:
    """`status`'s result as the lines `harness lab status` prints (one table row per device)."""
    if state is None:
        return [f"lab: nothing is up in {Path(state_dir).resolve()}"]
    lines = [f"lab in {state.state_dir}: {state.mode} mode ({state.mode_reason}); "
             f"{len(state.devices)} device(s); targets in {state.targets_dir}"]
    if state.mode != "netns":
        lines.append("  FALLBACK: sshd on 127.0.0.1 ports, no per-device addresses or link rates")
    if state.labgrid:
        info = state.labgrid
        lines.append(f"  labgrid: coordinator {info.get('coordinator')} (pid {info.get('coordinator_pid')}), "
                     f"exporter {info.get('exporter')} (pid {info.get('exporter_pid')}); one place per device, "
                     "named after it")
    lines.append(f"  {'device':<13} {'address':<17} {'sshd':<12} {'reach':<5} {'cpu':<9} {'memory (peak/limit)':<24} "
                 f"{'oom':<4} {'disk':<15} link")
    for name, d in sorted(state.devices.items()):
        u = d.usage
        sshd = f"pid {d.sshd_pid}" if d.sshd_alive else "DOWN"
        cpu = f"{u.cpu_ns / 1e9:.1f}s" if u else "-"
        mem = f"{format_size(u.memory_peak_bytes)}/{format_size(u.memory_limit)}" if u else "-"
        oom = str(u.oom_kills) if u else "-"
        disk = (f"{format_size(d.disk_used or 0)}/{format_size(d.disk_size)}" if d.disk_used is not None
                else "not mounted")
        lines.append(f"  {name:<13} {d.address + ':' + str(d.port):<17} {sshd:<12} {'yes' if d.reachable else 'NO':<5} "
                     f"{cpu:<9} {mem:<24} {oom:<4} {disk:<15} {d.link_rate or '-'}")
        if d.shaping:
            measured = shaping.CpuShaping.from_dict(d.shaping)
            lines.append(f"  {'':<13} cpu: {measured.mechanism}: {measured.statement()}")
            lines.append(f"  {'':<13}      ({measured.calibration_note()})")
        elif d.cpu_quota is not None and d.cpu_period_us:
            whole = shaping.whole_core_document(d.cpu_quota, d.cpu_period_us)
            lines.append(f"  {'':<13} cpu: {whole['cpu']}: {whole['statement']}")
        if not d.images_complete:
            lines.append(f"  {'':<13} note: image packages were skipped; runtimes: {', '.join(d.runtimes) or 'none'}")
        if d.simulated_power:
            if d.power_alive:
                now = f"{d.power_mw} mW now" if d.power_mw is not None else "no reading yet"
                lines.append(f"  {'':<13} power: simulated {d.power_sensor.upper()} pid {d.power_pid}, POM_5V_IN "
                             f"{now} (root {d.power_root})")
            else:
                lines.append(f"  {'':<13} power: simulated {d.power_sensor.upper()} NOT RUNNING: its power "
                             "suite reports the sensor unavailable (run `harness lab up` again)")
    return lines


__all__ = ["format_status", "reachable", "status"]
