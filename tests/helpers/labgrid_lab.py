"""A real labgrid coordinator and exporter on loopback ports, as labgrid's own tests/conftest.py
starts them, and places for "boards" (loopback sshds): the lab of the labgrid tests.

    lab = LabgridLab(tmp_path)                       # coordinator up ("Coordinator ready")
    lab.export({"board-a": sshd_a, "board-b": sshd_b})   # exporter up ("connected to coordinator")
    lab.add_place("orin-1", "board-a", board="orin")
    lab.client("-p", "orin-1", "show")
    lab.stop()
"""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path
from typing import Any

import yaml

from harness.lab.sshd import free_port
from harness.transport.labgrid.client import find_labgrid_client
from helpers.loopback_sshd import PYTHON, LoopbackSshd

START_TIMEOUT_S = 60.0


def _tool(name: str) -> str:
    return str(Path(find_labgrid_client()).with_name(name))


class _Daemon:
    """A labgrid daemon whose output goes to a file; started once ``ready`` appears in it."""

    def __init__(self, argv: list[str], cwd: Path, log: Path, ready: str) -> None:
        cwd.mkdir(parents=True, exist_ok=True)
        self.log = log
        self.handle = open(log, "w")  # noqa: SIM115 (closed in stop)
        self.process = subprocess.Popen(argv, cwd=cwd, stdout=self.handle, stderr=subprocess.STDOUT,
                                        stdin=subprocess.DEVNULL, env={**os.environ, "PYTHONUNBUFFERED": "1"})
        deadline = time.monotonic() + START_TIMEOUT_S
        while ready not in log.read_text():
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"{argv[0]} did not start ({ready!r} not seen): {log.read_text()[-2000:]}")
            time.sleep(0.1)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.handle.close()


class LabgridLab:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.address = f"127.0.0.1:{free_port()}"
        self.coordinator = _Daemon([_tool("labgrid-coordinator"), "-l", self.address], root / "coordinator",
                                   root / "coordinator.log", "Coordinator ready")
        self.exporters: list[_Daemon] = []
        self.known_hosts = root / "known_hosts"
        self.known_hosts.write_text("")
        self.keys: list[Path] = []

    def export(self, boards: dict[str, LoopbackSshd], name: str = "rack-1") -> None:
        """One exporter ``name`` with a NetworkService group per board (its sshd's address and port)."""
        groups = {group: {"NetworkService": {"address": sshd.server.listen_address, "username": "root",
                                             "port": sshd.server.port}} for group, sshd in boards.items()}
        exports = self.root / f"{name}.yaml"
        exports.write_text(yaml.safe_dump(groups))
        for sshd in boards.values():
            with self.known_hosts.open("a") as handle:
                handle.write(sshd.server.known_hosts_line())
        self.exporters.append(_Daemon([_tool("labgrid-exporter"), "-c", self.address, "-n", name, str(exports)],
                                      self.root / name, self.root / f"{name}.log", "connected to coordinator"))

    def add_place(self, place: str, group: str, exporter: str = "rack-1", **tags: str) -> None:
        self.client("-p", place, "create")
        self.client("-p", place, "add-match", f"{exporter}/{group}/*")
        if tags:
            self.client("-p", place, "set-tags", *(f"{k}={v}" for k, v in tags.items()))

    def client(self, *args: str, check: bool = True, env: dict[str, str] | None = None
               ) -> subprocess.CompletedProcess[str]:
        done = subprocess.run([find_labgrid_client(), "-x", self.address, *args], capture_output=True, text=True,
                              timeout=60, env={**os.environ, **(env or {})})
        if check and done.returncode != 0:
            raise RuntimeError(f"labgrid-client {' '.join(args)}: exit {done.returncode}: {done.stdout}{done.stderr}")
        return done

    def acquired_by(self, place: str) -> str | None:
        for line in self.client("-p", place, "show").stdout.splitlines():
            if line.startswith("  acquired: "):
                value = line.split(": ", 1)[1].strip()
                return None if value == "None" else value
        return None

    def target_file(self, folder: Path, name: str, key: Path, workdir: Path | str, **labgrid: Any) -> Path:
        """A ``transport: labgrid`` target file for this coordinator (``place=`` or ``match=``)."""
        document = {"name": name, "kind": "x86-cpu", "arch": "x86_64",
                    "connection": {"transport": "labgrid", "coordinator": self.address, **labgrid,
                                   "key_file": str(key), "known_hosts_file": str(self.known_hosts)},
                    "workdir": str(workdir), "python": PYTHON}
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{name}.yaml"
        path.write_text(yaml.safe_dump(document, sort_keys=False))
        return path

    def stop(self) -> None:
        for daemon in (*self.exporters, self.coordinator):
            daemon.stop()
