"""A real sshd on a loopback port that accepts a test key, and ssh target files for it: the
"device" of the SSH transport, device lock and disk-full tests (this machine, reached over
SSH as root, running the agent with this venv's interpreter)."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from harness.config.target_files import load_target
from harness.config.targets import Target
from harness.lab.sshd import SshdServer, free_port, generate_key
from harness.transport.ssh import SSHTransport

PYTHON = sys.executable
"""The interpreter the "device" runs the agent with."""


class LoopbackSshd:
    """A client key, an sshd that accepts it, and the files a client needs (known_hosts, an
    empty ssh_config). Stop it with `stop`."""

    def __init__(self, root: Path, listen: str = "127.0.0.1", extra_config: dict[str, str] | None = None) -> None:
        self.root = root
        self.key = generate_key(root / "client_key")
        self.authorized = root / "authorized_keys"
        self.authorized.write_text(Path(f"{self.key}.pub").read_text())
        self.server = SshdServer(directory=root / "sshd", port=free_port(listen), listen_address=listen,
                                 authorized_keys=str(self.authorized), extra_config=extra_config or {}).start()
        self.known_hosts = root / "known_hosts"
        self.known_hosts.write_text(self.server.known_hosts_line())
        self.ssh_config = root / "ssh_config"
        self.ssh_config.write_text("")
        self.workdir = root / "device-work"

    def target_file(self, name: str = "board", connection: dict[str, object] | None = None,
                    workdir: str | None = None) -> Path:
        """Write targets/<name>.yaml for this sshd: ``connection`` adds or replaces connection
        keys (None removes one), ``workdir`` replaces the device's workdir."""
        fields: dict[str, object] = {"transport": "ssh", "host": self.server.listen_address,
                                     "port": self.server.port, "user": "root", "key_file": str(self.key)}
        fields.update(connection or {})
        lines = "".join(f"  {key}: {value}\n" for key, value in fields.items() if value is not None)
        folder = self.root / "targets"
        folder.mkdir(exist_ok=True)
        path = folder / f"{name}.yaml"
        path.write_text(f"name: {name}\nkind: x86-cpu\narch: x86_64\nconnection:\n{lines}"
                        f"workdir: {workdir or self.workdir}\npython: {PYTHON}\n")
        return path

    def target(self, name: str = "board", connection: dict[str, object] | None = None,
               workdir: str | None = None) -> Target:
        """`target_file`, loaded by the real target file loader."""
        return load_target(self.target_file(name, connection, workdir))

    def transport(self, target: Target | None = None, cls: type[SSHTransport] = SSHTransport,
                  **kwargs: object) -> SSHTransport:
        kwargs.setdefault("known_hosts_path", self.known_hosts)
        kwargs.setdefault("ssh_config_path", self.ssh_config)
        return cls(target or self.target(), **kwargs)  # type: ignore[arg-type]

    def stop(self) -> None:
        self.server.stop()


def sshd_fixture(name: str, folder: str) -> Any:
    """A module-scoped fixture called ``name``: a LoopbackSshd under a fresh temp ``folder``,
    stopped after the module's last test. Assign it in the test module (``lab =
    sshd_fixture("lab", "ssh-lab")``): each module gets an sshd of its own."""

    @pytest.fixture(scope="module", name=name)
    def running_sshd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LoopbackSshd]:
        made = LoopbackSshd(tmp_path_factory.mktemp(folder))
        yield made
        made.stop()

    return running_sshd
