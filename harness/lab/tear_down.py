"""`down`: remove everything the lab made, and `leftovers`: what of a lab's names still exists.

`down` removes every process, namespace, veth, bridge, cgroup, mount, user and nft table the
lab made, plus the target files and the state file; keys, host keys and the image cache stay.
"""

from __future__ import annotations

import os
import pwd
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

from harness.lab import cgroups, network
from harness.lab.chroot import remove_mount_point
from harness.lab.device_sshd import stop_device_sshd
from harness.lab.devices import DEFAULT_LAB, SIMULATED_SENSORS, WITH_ARM_LAB, LabSpec
from harness.lab.labgrid_places import stop_labgrid
from harness.lab.plan import new_state, plan_device
from harness.lab.power_daemon import power_pids, stop_power
from harness.lab.progress import Progress
from harness.lab.sshd import LabError
from harness.lab.state import DEFAULT_STATE_DIR, DeviceState, LabState
from harness.lab.users import is_mounted, kill_user_processes, remove_user, unmount_home


def down(state_dir: Path | str = DEFAULT_STATE_DIR, progress: Progress = print, *, spec: LabSpec | None = None) -> None:
    """Take the lab in ``state_dir`` down; idempotent.

    Without a state file (lost, or never written) the names ``spec`` (default: the default
    lab) would have used are swept instead. Raises LabError listing what could not be removed.
    """
    started = time.monotonic()
    state_dir = Path(state_dir).resolve()
    state = LabState.load(state_dir)
    errors: list[str] = []
    if state is None:
        spec = spec or WITH_ARM_LAB
        mode = "netns"
        state = new_state(state_dir, spec, mode, "sweep")
        for device_spec in spec.devices:
            planned = plan_device(state, spec, device_spec, None)
            if _exists_any(planned):
                state.devices[device_spec.name] = planned
        if not state.devices and not network.leftovers(spec.prefix) and not cgroups.leftovers(spec.cgroup_parent):
            progress(f"lab: nothing is up in {state_dir}")
            return
        progress(f"lab: no state file in {state_dir}: sweeping what the lab's names would be")
    for name in list(state.devices):
        device = state.devices[name]
        sensor = " and the simulated power sensor" if device.simulated_power else ""
        progress(f"lab: {name}: stopping sshd{sensor} and sessions, removing network, mount, user, cgroups")
        failed = _tear_down(device)
        errors += failed
        if not failed:  # a device that could not be removed stays listed, so `down` can retry
            del state.devices[name]
        if state.state_file.exists():
            state.save()
    if state.labgrid and not state.devices:
        progress(f"lab: labgrid: stopping the exporter and the coordinator on {state.labgrid.get('coordinator')}")
        for path in state.labgrid.get("match_targets", []):
            Path(path).unlink(missing_ok=True)
        stop_labgrid(state)
        state.save()
    if state.bridge and not state.devices:
        try:
            network.remove_bridge(state.bridge)
        except LabError as exc:
            errors.append(str(exc))
    if errors:
        state.save()
        raise LabError("lab down left things behind (run it again, or remove them by hand): " + "; ".join(errors))
    for path in (Path(state.known_hosts), Path(state.ssh_config), state.state_file):
        path.unlink(missing_ok=True)
    progress(f"lab: down in {time.monotonic() - started:.1f}s (keys, host keys and the image cache are kept)")


def _exists_any(device: DeviceState) -> bool:
    """Anything of the planned ``device`` exists (a sweep without a state file)."""
    try:
        pwd.getpwnam(device.user)
        return True
    except KeyError:
        pass
    return (bool(device.netns and device.netns in network.netns_list()) or is_mounted(device.home)
            or any(os.path.isdir(d) for d in device.cgroups.dirs()) or bool(power_pids(device)))


def _tear_down(device: DeviceState) -> list[str]:
    """Remove one device, trying every step even after one fails; the failures, described."""
    errors: list[str] = []

    def attempt(what: str, action: Callable[[], object]) -> None:
        try:
            action()
        except (LabError, OSError, subprocess.SubprocessError) as exc:
            errors.append(f"{device.name}: {what}: {exc}")

    attempt("stopping the simulated power sensor", lambda: stop_power(device))
    attempt("stopping sshd", lambda: stop_device_sshd(device))
    attempt("killing sessions", lambda: cgroups.kill_all(device.cgroups) if os.path.isdir(device.cgroups.memory) else 0)
    attempt("killing the user's processes", lambda: kill_user_processes(device.user))
    attempt("removing the network", lambda: network.remove_link(device.link))
    attempt("unmounting the home", lambda: unmount_home(device.home))
    attempt("removing the user", lambda: remove_user(device.user, device.home))
    attempt("removing the cgroups", lambda: cgroups.remove(device.cgroups))
    chroot = device.chroot
    if chroot:
        attempt("removing the chroot mount point", lambda: remove_mount_point(chroot))
    Path(device.target_file).unlink(missing_ok=True)
    return errors


def leftovers(spec: LabSpec = DEFAULT_LAB, state_dir: Path | str | None = None) -> list[str]:
    """Everything of a lab with ``spec``'s names that exists now (empty after a clean down)."""
    found = network.leftovers(spec.prefix) + [f"cgroup {p}" for p in cgroups.leftovers(spec.cgroup_parent)]
    for device in spec.devices:
        user = f"{spec.prefix}-{device.name}"
        try:
            pwd.getpwnam(user)
            found.append(f"user {user}")
        except KeyError:
            pass
        if is_mounted(f"/home/{user}"):
            found.append(f"mount /home/{user}")
        if os.path.exists(f"/home/{user}"):
            found.append(f"dir /home/{user}")
    if state_dir is not None:
        marker = str(Path(state_dir).resolve()) + "/"
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            try:
                cmdline = Path(f"/proc/{entry}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            except OSError:
                continue
            if ("sshd" in cmdline or any(m in cmdline for m in SIMULATED_SENSORS.values())) and marker in cmdline:
                found.append(f"process {entry} {cmdline.strip()[:100]}")
    return found


__all__ = ["down", "leftovers"]
