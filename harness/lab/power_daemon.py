"""The simulated power sensor of a device (``ina3221``, see `harness.lab.devices.SIMULATED_SENSORS`).

A daemon on the host, ``<host venv python> -m harness.agent.sensors.simulated <power root>
<device cpuacct.usage>`` (PYTHONPATH = the repo), keeps a Jetson Nano INA3221 sysfs tree
(JetPack 4 iio layout) under the device's ``power/`` following its cgroup CPU usage. It runs
outside the device's cgroups (a real sensor costs the board no CPU); its pid is in the state
file, its log in ``devices/<name>/power.log``, and the tree is world-readable so the device
user's agent reads it.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from harness.lab.devices import HOST_VENV_PYTHON, REPO, SIMULATED_SENSORS
from harness.lab.processes import cmdline, terminate
from harness.lab.progress import Progress
from harness.lab.sshd import LabError
from harness.lab.state import DeviceState, LabState

POWER_START_TIMEOUT_S = 10.0


def _power_argv(device: DeviceState) -> list[str]:
    python = HOST_VENV_PYTHON if os.path.exists(HOST_VENV_PYTHON) else sys.executable
    return [python, "-m", SIMULATED_SENSORS[device.power_sensor], device.power_root,
            device.cgroups.cpuacct_usage_path]


def power_file(device: DeviceState) -> Path:
    """The total rail's power file of the simulated tree (channel 0 is POM_5V_IN)."""
    from harness.agent.sensors.simulated import IIO_DEVICE

    return Path(device.power_root, IIO_DEVICE.lstrip("/"), "in_power0_input")


def _is_power_daemon(pid: int, device: DeviceState) -> bool:
    """``pid`` runs the device's simulated sensor on the device's tree (not a recycled pid)."""
    args = cmdline(pid)
    return len(args) >= 4 and args[1:3] == ["-m", SIMULATED_SENSORS.get(device.power_sensor, "")] \
        and args[3] == device.power_root


def power_pids(device: DeviceState) -> list[int]:
    """Every simulated-sensor daemon writing this device's tree (the recorded one, or any a
    lost state file forgot)."""
    module = SIMULATED_SENSORS.get(device.power_sensor)
    if module is None:
        return []
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit() and _is_power_daemon(int(entry), device):
            found.append(int(entry))
    return found


def power_alive(device: DeviceState) -> bool:
    """The recorded daemon runs."""
    if not device.power_pid:
        return False
    return _is_power_daemon(device.power_pid, device)


def ensure_power(state: LabState, device: DeviceState, progress: Progress) -> None:
    """Start the device's simulated sensor unless it already runs; wait for its first values."""
    label = f"simulated {device.power_sensor.upper()}"
    if power_alive(device):
        progress(f"lab: {device.name}       power: {label} kept: its daemon (pid {device.power_pid}) is up")
        return
    for pid in power_pids(device):  # a daemon the state file lost track of
        terminate(pid)
    argv = _power_argv(device)
    log_path = Path(device.device_dir) / "power.log"
    env = {"PATH": os.environ.get("PATH", "/usr/local/bin:/usr/bin:/bin"), "PYTHONPATH": str(REPO),
           "PYTHONDONTWRITEBYTECODE": "1", "LANG": "C.UTF-8"}
    with open(log_path, "ab") as log:
        process = subprocess.Popen(argv, stdout=log, stderr=log, stdin=subprocess.DEVNULL, cwd=str(REPO), env=env,
                                   start_new_session=True, umask=0o022)
    device.power_pid = process.pid
    state.save()  # recorded at once: down() stops it even if the rest of up() fails
    rail = power_file(device)
    deadline = time.monotonic() + POWER_START_TIMEOUT_S
    while not rail.exists():
        if process.poll() is not None or time.monotonic() > deadline:
            if process.poll() is None:
                terminate(process.pid)
            tail = " | ".join(log_path.read_text(errors="replace").strip().splitlines()[-3:])
            raise LabError(f"{device.name}: the {label} daemon did not start ({' '.join(argv)}): {tail}")
        time.sleep(0.05)
    blocked = _unreadable_by_others(rail)
    if blocked:
        terminate(process.pid)
        raise LabError(f"{device.name}: the device user cannot read its power sensor: {blocked}; put the lab's "
                       "state dir under world-traversable directories")
    progress(f"lab: {device.name}       power: {label} (JetPack 4 iio) under {device.power_root}, following "
             f"{device.cgroups.cpuacct_usage_path} (daemon pid {process.pid}, log {log_path})")


def _unreadable_by_others(path: Path) -> str | None:
    """Why a user other than root could not read ``path`` (None when it can)."""
    if not os.stat(path).st_mode & 0o004:
        return f"{path} is not world-readable"
    for parent in Path(path).parents:
        if not os.stat(parent).st_mode & 0o001:
            return f"{parent} is not world-traversable (mode {oct(os.stat(parent).st_mode & 0o777)})"
    return None


def stop_power(device: DeviceState) -> None:
    """Stop every daemon writing the device's tree, the recorded one included."""
    pids = set(power_pids(device))
    if device.power_pid and _is_power_daemon(device.power_pid, device):
        pids.add(device.power_pid)
    for pid in pids:
        terminate(pid)
    device.power_pid = None


__all__ = ["POWER_START_TIMEOUT_S", "ensure_power", "power_alive", "power_file", "power_pids", "stop_power"]
