"""Run a private OpenSSH server (`/usr/sbin/sshd`) with its own host key and config.

Nothing here touches the system's sshd: every file lives under `directory`. The config must
be an absolute path (a relative `-f` dies on SIGHUP) and `/run/sshd` must exist (privilege
separation directory). Optionally the server runs inside a network namespace.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from harness.errors import HarnessError

SSHD = "/usr/sbin/sshd"
START_TIMEOUT_S = 10.0


class LabError(HarnessError):
    """The lab (or one of its servers) could not be brought up or down."""


def require_sshd() -> str:
    if not os.path.exists(SSHD):
        raise LabError(f"{SSHD} not found: install OpenSSH's server (apt-get install -y openssh-server)")
    return SSHD


def generate_key(path: Path, comment: str = "harness-lab") -> Path:
    """An ed25519 key pair at `path` / `path`.pub (kept if it already exists)."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        done = subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", str(path)],
                              capture_output=True, text=True)
        if done.returncode != 0:
            raise LabError(f"ssh-keygen failed for {path}: {done.stderr.strip()}")
    return path


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as probe:
        probe.bind((host, 0))
        return probe.getsockname()[1]


def wait_for_port(host: str, port: int, timeout_s: float, netns: str | None = None) -> bool:
    """True once something accepts TCP connections on host:port (inside `netns` if given)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if netns is None:
            try:
                with socket.create_connection((host, port), timeout=0.5):
                    return True
            except OSError:
                pass
        else:
            probe = subprocess.run(["ip", "netns", "exec", netns, "bash", "-c", f"exec 3<>/dev/tcp/{host}/{port}"],
                                   capture_output=True)
            if probe.returncode == 0:
                return True
        time.sleep(0.05)
    return False


@dataclass
class SshdServer:
    """One sshd. `authorized_keys` is an absolute path or a pattern such as `%h/.ssh/authorized_keys`."""

    directory: Path
    port: int
    listen_address: str = "127.0.0.1"
    authorized_keys: str = "%h/.ssh/authorized_keys"
    netns: str | None = None
    extra_config: dict[str, str] = field(default_factory=dict)
    process: subprocess.Popen | None = None
    wrapper: tuple[str, ...] = ()
    """argv placed before sshd's (inside the namespace): a program that prepares the server's
    process (joins cgroups, adjusts its mount view) and then execs the rest of its argv."""

    @property
    def host_key(self) -> Path:
        return self.directory / "ssh_host_ed25519_key"

    @property
    def config_path(self) -> Path:
        return self.directory / "sshd_config"

    @property
    def log_path(self) -> Path:
        return self.directory / "sshd.log"

    def write_config(self) -> None:
        self.directory = self.directory.resolve()
        self.directory.mkdir(parents=True, exist_ok=True)
        generate_key(self.host_key, comment=f"lab-host-{self.port}")
        lines = {
            "ListenAddress": self.listen_address,
            "HostKey": str(self.host_key),
            "PidFile": str(self.directory / "sshd.pid"),
            "AuthorizedKeysFile": self.authorized_keys,
            "PasswordAuthentication": "no",
            "KbdInteractiveAuthentication": "no",
            "UsePAM": "no",
            "StrictModes": "no",
            "PermitRootLogin": "prohibit-password",
            "Subsystem": "sftp internal-sftp",
            "MaxStartups": "100:30:200",
            "MaxSessions": "100",
            "LogLevel": "INFO",
            **self.extra_config,
        }
        self.config_path.write_text("".join(f"{key} {value}\n" for key, value in lines.items()))

    def start(self) -> SshdServer:
        require_sshd()
        Path("/run/sshd").mkdir(parents=True, exist_ok=True)
        self.write_config()
        argv = [*self.wrapper, SSHD, "-D", "-e", "-f", str(self.config_path), "-p", str(self.port)]
        if self.netns:
            argv = ["ip", "netns", "exec", self.netns, *argv]
        log = open(self.log_path, "ab")
        self.process = subprocess.Popen(argv, stdout=log, stderr=log, stdin=subprocess.DEVNULL,
                                        start_new_session=True)
        log.close()
        if not wait_for_port(self.listen_address, self.port, START_TIMEOUT_S, self.netns):
            self.stop()
            tail = self.log_path.read_text(errors="replace").strip().splitlines()[-3:]
            raise LabError(f"sshd on {self.listen_address}:{self.port} did not start: {' | '.join(tail)}")
        return self

    def known_hosts_line(self, host: str | None = None) -> str:
        """The known_hosts entry for this server as a client addresses it."""
        name = host or self.listen_address
        key_type, key = (self.directory / "ssh_host_ed25519_key.pub").read_text().split()[:2]
        entry = name if self.port == 22 else f"[{name}]:{self.port}"
        return f"{entry} {key_type} {key}\n"

    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def stop(self) -> None:
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None

    def kill_hard(self) -> None:
        """SIGKILL the listener (fault injection: a device whose sshd dies)."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()


def install_authorized_key(home: Path, public_key: Path, owner: str | None = None) -> Path:
    """Append a public key to `home`/.ssh/authorized_keys (created 0700/0600, owned by `owner`)."""
    ssh_dir = home / ".ssh"
    ssh_dir.mkdir(parents=True, exist_ok=True)
    keys = ssh_dir / "authorized_keys"
    line = public_key.read_text().strip() + "\n"
    if not keys.exists() or line not in keys.read_text():
        with open(keys, "a") as handle:
            handle.write(line)
    os.chmod(ssh_dir, 0o700)
    os.chmod(keys, 0o600)
    if owner:
        shutil.chown(ssh_dir, owner, owner)
        shutil.chown(keys, owner, owner)
    return keys
