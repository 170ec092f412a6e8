"""The lab on labgrid (`harness lab up --labgrid`): a real labgrid coordinator on loopback, one
exporter whose groups are the lab's devices (a NetworkService each: the device's address, user
and sshd port), and one place per device, tagged ``kind=<kind>`` and ``device=<name>``.

The coordinator keeps its places in ``<state dir>/labgrid/`` (its working directory), so a
second `up` finds them; the exporter is restarted by every `up` (the devices may have changed).
Both are recorded in the state file and stopped by `down`.
"""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path
from typing import Any

import yaml

from harness.lab.processes import cmdline, terminate
from harness.lab.progress import Progress
from harness.lab.sshd import LabError, free_port
from harness.lab.state import LabState
from harness.transport.labgrid.client import LabgridClient, LabgridError, find_labgrid_client

START_TIMEOUT_S = 60.0
EXPORTER_SUFFIX = "lab"


def labgrid_dir(state: LabState) -> Path:
    return Path(state.state_dir) / "labgrid"


def exporter_name(state: LabState) -> str:
    return f"{state.prefix}-{EXPORTER_SUFFIX}"


def _tool(name: str) -> str:
    return str(Path(find_labgrid_client()).with_name(name))


def _alive(pid: int | None, program: str) -> bool:
    return bool(pid) and any(program in part for part in cmdline(pid or 0)[:3])


def _start(argv: list[str], log: Path, ready: str, what: str) -> int:
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "ab") as handle:
        start = handle.tell()
        process = subprocess.Popen(argv, stdout=handle, stderr=handle, stdin=subprocess.DEVNULL, cwd=str(log.parent),
                                   env={**os.environ, "PYTHONUNBUFFERED": "1"}, start_new_session=True)
    deadline = time.monotonic() + START_TIMEOUT_S
    while ready not in log.read_bytes()[start:].decode(errors="replace"):
        if process.poll() is not None or time.monotonic() > deadline:
            if process.poll() is None:
                terminate(process.pid)
            tail = " | ".join(log.read_bytes()[start:].decode(errors="replace").strip().splitlines()[-3:])
            raise LabError(f"labgrid: the {what} did not start ({' '.join(argv)}): {tail}")
        time.sleep(0.1)
    return process.pid


def ensure_labgrid(state: LabState, progress: Progress) -> None:
    """Coordinator (kept if it runs), exporter (restarted) and one place per device."""
    try:
        _tool("labgrid-coordinator")
    except LabgridError as exc:
        raise LabError(f"labgrid: {exc}") from None
    folder = labgrid_dir(state)
    folder.mkdir(parents=True, exist_ok=True)
    info: dict[str, Any] = dict(state.labgrid or {})
    if _alive(info.get("coordinator_pid"), "labgrid-coordinator"):
        progress(f"lab: labgrid: coordinator kept on {info['coordinator']} (pid {info['coordinator_pid']})")
    else:
        info["coordinator"] = info.get("coordinator") or f"127.0.0.1:{free_port()}"
        info["coordinator_pid"] = _start([_tool("labgrid-coordinator"), "-l", info["coordinator"]],
                                         folder / "coordinator.log", "Coordinator ready", "coordinator")
        progress(f"lab: labgrid: coordinator on {info['coordinator']} (pid {info['coordinator_pid']}, "
                 f"places kept in {folder})")
    state.labgrid = info
    state.save()  # recorded at once: down() stops it even if the rest fails
    if info.get("exporter_pid"):
        terminate(int(info["exporter_pid"]))
    exports = folder / "exports.yaml"
    exports.write_text(yaml.safe_dump({name: {"NetworkService": {"address": d.address, "username": d.user,
                                                                 "port": d.port}}
                                       for name, d in sorted(state.devices.items())}, sort_keys=False))
    info["exporter"] = exporter_name(state)
    info["exporter_pid"] = _start([_tool("labgrid-exporter"), "-c", info["coordinator"], "-n", info["exporter"],
                                   str(exports)], folder / "exporter.log", "connected to coordinator", "exporter")
    state.labgrid = info
    state.save()
    client = LabgridClient(info["coordinator"], "the lab's coordinator")
    existing = {place.name for place in client.places()}
    for name, device in sorted(state.devices.items()):
        if name not in existing:
            client.run("-p", name, "create")
            client.run("-p", name, "add-match", f"{info['exporter']}/{name}/*")
        client.run("-p", name, "set-tags", f"kind={device.kind}", f"device={name}")
    progress(f"lab: labgrid: exporter {info['exporter']} (pid {info['exporter_pid']}) exports "
             f"{len(state.devices)} NetworkService(s); places {', '.join(sorted(state.devices))} tagged kind=, "
             f"device= (labgrid-client -x {info['coordinator']} -v places)")


def stop_labgrid(state: LabState) -> None:
    info = state.labgrid or {}
    for key, program in (("exporter_pid", "labgrid-exporter"), ("coordinator_pid", "labgrid-coordinator")):
        if _alive(info.get(key), program):
            terminate(int(info[key]))
    state.labgrid = None


def labgrid_connection(state: LabState, place: str | None = None, match: dict[str, str] | None = None
                       ) -> dict[str, Any]:
    """A target file's ``connection`` for a place (or a match) of the lab's coordinator."""
    info = state.labgrid or {}
    chosen: dict[str, Any] = {"place": place} if place is not None else {"match": dict(match or {})}
    return {"transport": "labgrid", **chosen, "coordinator": info.get("coordinator"),
            "key_file": state.client_key, "known_hosts": "strict", "known_hosts_file": state.known_hosts,
            "connect_timeout": "10s"}


__all__ = ["ensure_labgrid", "exporter_name", "labgrid_connection", "labgrid_dir", "stop_labgrid"]
