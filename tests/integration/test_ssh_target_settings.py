"""What a target file and ssh_config say about the SSH link, and how the link kills what it left
behind, against a real sshd.

ssh_config's UserKnownHostsFile, GlobalKnownHostsFile and StrictHostKeyChecking are honoured,
as OpenSSH honours them; the target file's own setting wins. And the link's keepalive and
dead-link timeout are the target file's ``connection.keepalive`` / ``connection.link_timeout``.

The case users met: a target naming only ``ssh_config_host: edge-cpu``, with the lab's
generated ssh_config (whose Host block says ``UserKnownHostsFile <lab>/targets/known_hosts``)
as the user's config, failed with "unknown host key ... is not in ~/.ssh/known_hosts" while
plain ``ssh edge-cpu`` worked."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from harness.config.target_files import load_target
from harness.errors import ConfigError, TransportError
from harness.lab.sshd import SshdServer, free_port, generate_key
from harness.transport.ssh import SSHTransport

pytestmark = pytest.mark.skipif(not os.path.exists("/usr/sbin/sshd"), reason="needs OpenSSH's sshd")


class Device:
    """A private sshd, a client key it accepts, and an ssh_config Host block for it."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.key = generate_key(root / "client_key")
        (root / "authorized_keys").write_text(Path(f"{self.key}.pub").read_text())
        self.server = SshdServer(directory=root / "sshd", port=free_port("127.0.0.1"), listen_address="127.0.0.1",
                                 authorized_keys=str(root / "authorized_keys")).start()
        self.known_hosts = root / "lab known_hosts"  # a space, as ssh_config quotes it
        self.known_hosts.write_text(self.server.known_hosts_line())

    def ssh_config(self, known_hosts: Path, strict: str = "yes") -> Path:
        path = self.root / "ssh_config"
        path.write_text(f"Host edge-cpu\n    HostName 127.0.0.1\n    Port {self.server.port}\n    User root\n"
                        f'    IdentityFile "{self.key}"\n    UserKnownHostsFile "{known_hosts}"\n'
                        f"    GlobalKnownHostsFile /dev/null\n    StrictHostKeyChecking {strict}\n")
        return path

    def target(self, **connection: str):
        lines = "".join(f"  {key}: {value}\n" for key, value in {"transport": "ssh", "ssh_config_host": "edge-cpu",
                                                                   **connection}.items())
        path = self.root / "edge-cpu.yaml"
        path.write_text(f"name: edge-cpu\nkind: x86-cpu\narch: x86_64\nconnection:\n{lines}"
                        f"workdir: {self.root / 'work'}\npython: {sys.executable}\n")
        return load_target(path)


@pytest.fixture
def device(tmp_path: Path) -> Device:
    made = Device(tmp_path)
    yield made
    made.server.stop()


def _echo(transport: SSHTransport) -> str:
    try:
        return transport.run(["echo", "hello"]).stdout.decode().strip()
    finally:
        transport.close()


def test_the_ssh_configs_user_known_hosts_file_is_where_the_host_key_is_checked(device: Device) -> None:
    config = device.ssh_config(device.known_hosts)
    assert _echo(SSHTransport(device.target(), ssh_config_path=config)) == "hello"
    if shutil.which("ssh"):  # what OpenSSH itself makes of the same config
        done = subprocess.run(["ssh", "-F", str(config), "-o", "BatchMode=yes", "edge-cpu", "echo", "hello"],
                              capture_output=True, text=True, timeout=30)
        assert done.stdout.strip() == "hello", done.stderr


def test_a_host_key_missing_from_that_file_is_refused_naming_it(device: Device, tmp_path: Path) -> None:
    empty = tmp_path / "empty_known_hosts"
    empty.write_text("")
    with pytest.raises(TransportError) as refused:
        _echo(SSHTransport(device.target(), ssh_config_path=device.ssh_config(empty)))
    assert f"unknown host key for [127.0.0.1]:{device.server.port}" in str(refused.value)
    assert f"is not in {empty}" in str(refused.value), refused.value


def test_strict_host_key_checking_accept_new_records_the_key_in_the_user_known_hosts_file(
        device: Device, tmp_path: Path) -> None:
    fresh = tmp_path / "fresh_known_hosts"
    config = device.ssh_config(fresh, strict="accept-new")
    assert _echo(SSHTransport(device.target(), ssh_config_path=config)) == "hello"
    assert f"[127.0.0.1]:{device.server.port} ssh-ed25519 " in fresh.read_text()


def test_strict_host_key_checking_no_does_not_turn_checking_off(device: Device, tmp_path: Path) -> None:
    empty = tmp_path / "empty_known_hosts"
    empty.write_text("")
    with pytest.raises(TransportError, match="unknown host key"):
        _echo(SSHTransport(device.target(), ssh_config_path=device.ssh_config(empty, strict="no")))
    assert empty.read_text() == ""


def test_the_target_files_own_settings_win_over_ssh_config(device: Device, tmp_path: Path) -> None:
    config = device.ssh_config(device.known_hosts)  # would verify the key
    empty = tmp_path / "named_in_the_target_file"
    empty.write_text("")
    with pytest.raises(TransportError, match=f"is not in {empty}"):
        _echo(SSHTransport(device.target(known_hosts_file=str(empty)), ssh_config_path=config))
    # and its policy: strict in the target file refuses what ssh_config would accept
    fresh = tmp_path / "fresh_known_hosts"
    with pytest.raises(TransportError, match="unknown host key"):
        _echo(SSHTransport(device.target(known_hosts="strict"),
                           ssh_config_path=device.ssh_config(fresh, strict="accept-new")))
    assert not fresh.exists() or fresh.read_text() == ""


def test_keepalive_and_link_timeout_come_from_the_target_file(device: Device) -> None:
    config = device.ssh_config(device.known_hosts)
    transport = SSHTransport(device.target(keepalive="2s", link_timeout="3500ms"), ssh_config_path=config)
    try:
        assert transport.run(["true"]).returncode == 0
        paramiko_transport = transport._link._connection.transport  # the open connection's (no public handle)
        assert paramiko_transport.packetizer._Packetizer__keepalive_interval == 2
        assert paramiko_transport.sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_USER_TIMEOUT) == 3500
    finally:
        transport.close()
    default = SSHTransport(device.target(), ssh_config_path=config)
    try:
        default.run(["true"])
        sock = default._link._connection.transport.sock
        assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_USER_TIMEOUT) == 15_000  # today's value
    finally:
        default.close()


@pytest.mark.parametrize("key, value, needle", [
    ("keepalive", "500ms", "connection.keepalive: 0.5s is too short: use 1s or more"),
    ("link_timeout", "0s", "connection.link_timeout"),
    ("keepalive", "often", "connection.keepalive"),
])
def test_a_bad_link_setting_names_its_key(device: Device, key: str, value: str, needle: str) -> None:
    with pytest.raises(ConfigError) as caught:
        device.target(**{key: value})
    assert needle in str(caught.value), caught.value


def _start_time(pid: int) -> str:
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19]  # field 22


def test_a_processes_start_time_is_known_and_its_kill_checks_it(device: Device) -> None:
    transport = SSHTransport(device.target(), ssh_config_path=device.ssh_config(device.known_hosts))
    try:
        process = transport.start(["sleep", "300"])
        pid = process.remote_pid
        assert pid and process._remote_start == _start_time(pid)  # the device is this machine (loopback)
        process.kill()
        assert not Path(f"/proc/{pid}").exists() or Path(f"/proc/{pid}/stat").read_text().split()[2] == "Z"
    finally:
        transport.close()


def test_an_orphan_whose_pid_now_names_another_process_is_not_killed(device: Device) -> None:
    """What a lost connection left is killed by remote pid on the next connection; by then the
    device may have given that pid to another process. The kill checks the start time."""
    config = device.ssh_config(device.known_hosts)
    bystander = subprocess.Popen(["sleep", "300"])
    try:
        started = _start_time(bystander.pid)
        transport = SSHTransport(device.target(), ssh_config_path=config)
        transport._link.leave_orphan(bystander.pid, False, str(int(started) - 7))  # ours had that pid earlier
        transport.run(["true"])  # the first connection kills what a lost one left
        transport.close()
        assert bystander.poll() is None, "a reused pid was killed"
        transport = SSHTransport(device.target(), ssh_config_path=config)
        transport._link.leave_orphan(bystander.pid, False, started)  # it really is the orphan
        transport.run(["true"])
        transport.close()
        assert bystander.wait(timeout=10) == -9
    finally:
        if bystander.poll() is None:
            bystander.kill()
