"""Per-job orchestration overhead over SSH, against the same job over LocalTransport.

A job is a noop job (min_iterations=1, no warm-up, no minimum duration), timed as the whole
`AgentClient.run_job` call: start a fresh agent process on the device, send the Job, read
its events until it exits. The connection is open and the agent already pushed (cached on
the device), as in every job of a run after the first. Figures go to extra_info; no timing
is asserted (this machine is shared).

What an exec costs over SSH is mostly the device's login shell: sshd runs every command
through it, and bash reads ~/.bashrc for commands sent over SSH, so a heavy one is paid by
every job. Root's ~/.bashrc on this machine runs `pyenv init` (~90 ms or more), so the SSH
benchmark runs twice: `lean-shell` (the sshd sets HOME to an empty directory: no rc file,
the transport's own cost) and `root-bashrc` (root's real ~/.bashrc, what a device with such
a login shell costs). `exec_true_ms` (a bare `true` through the transport) shows that floor.
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

import pytest

from harness.agent import PROTOCOL_VERSION
from harness.config.target_files import load_target
from harness.lab.sshd import SshdServer, free_port, generate_key
from harness.run.agent_client import AgentClient
from harness.transport.base import ContentCache
from harness.transport.local import LocalTransport
from harness.transport.ssh import SSHTransport

PYTHON = sys.executable
ROUNDS = 15
JOB = {"protocol": PROTOCOL_VERSION, "job_id": "overhead", "runtime": {"name": "noop"}, "model": {"files": {}},
       "input": {"shape": [1]},
       "latency": {"warmup_iterations": 0, "warmup_duration_s": 0, "min_iterations": 1, "min_duration_s": 0}}


@pytest.fixture(scope="module", params=["lean-shell", "root-bashrc"])
def ssh_transport(request, tmp_path_factory) -> SSHTransport:
    root = tmp_path_factory.mktemp("ssh-bench")
    key = generate_key(root / "client_key")
    authorized = root / "authorized_keys"
    authorized.write_text(Path(f"{key}.pub").read_text())
    extra = {}
    if request.param == "lean-shell":
        (root / "empty-home").mkdir()
        extra["SetEnv"] = f"HOME={root / 'empty-home'}"  # bash finds no ~/.bashrc to read
    server = SshdServer(directory=root / "sshd", port=free_port(), authorized_keys=str(authorized),
                        extra_config=extra).start()
    known_hosts = root / "known_hosts"
    known_hosts.write_text(server.known_hosts_line())
    (root / "ssh_config").write_text("")
    target_file = root / "bench-board.yaml"
    target_file.write_text(
        f"name: bench-board\nkind: x86-cpu\narch: x86_64\nconnection:\n  transport: ssh\n  host: 127.0.0.1\n"
        f"  port: {server.port}\n  user: root\n  key_file: {key}\nworkdir: {root / 'device-work'}\npython: {PYTHON}\n")
    transport = SSHTransport(load_target(target_file), known_hosts_path=known_hosts,
                             ssh_config_path=root / "ssh_config")
    transport.login_shell = request.param
    yield transport
    transport.close()
    server.stop()


def _timed_jobs(client: AgentClient, durations: list[float]):
    def one_job():
        started = time.perf_counter()
        run = client.run_job(JOB, PYTHON, timeout_s=120)
        durations.append(time.perf_counter() - started)
        return run

    return one_job


def _report(benchmark, durations: list[float], prefix: str) -> None:
    benchmark.extra_info[f"{prefix}_job_median_ms"] = round(statistics.median(durations) * 1e3, 2)
    benchmark.extra_info[f"{prefix}_job_min_ms"] = round(min(durations) * 1e3, 2)
    benchmark.extra_info[f"{prefix}_job_max_ms"] = round(max(durations) * 1e3, 2)


def test_job_overhead_over_ssh(benchmark, ssh_transport: SSHTransport) -> None:
    client = AgentClient(ssh_transport, ContentCache(ssh_transport))
    client.run_job(JOB, PYTHON, timeout_s=120)  # connect and push the agent once, outside the timing
    pushed = ssh_transport.bytes_sent
    durations: list[float] = []
    run = benchmark.pedantic(_timed_jobs(client, durations), rounds=ROUNDS, iterations=1, warmup_rounds=1)
    assert run.latency_ns
    assert ssh_transport.connects == 1  # one connection, reused by every job
    assert ssh_transport.bytes_sent == pushed  # the agent was not pushed again
    _report(benchmark, durations, "ssh")

    exec_times = []
    for _ in range(10):
        started = time.perf_counter()
        ssh_transport.run(["true"])
        exec_times.append(time.perf_counter() - started)
    benchmark.extra_info["exec_true_ms"] = round(statistics.median(exec_times) * 1e3, 2)
    benchmark.extra_info["login_shell"] = ssh_transport.login_shell
    print(f"\nSSH ({ssh_transport.login_shell}): noop job median {benchmark.extra_info['ssh_job_median_ms']} ms "
          f"(min {benchmark.extra_info['ssh_job_min_ms']}); bare exec of `true` "
          f"{benchmark.extra_info['exec_true_ms']} ms")


def test_job_overhead_over_local(benchmark, tmp_path: Path) -> None:
    transport = LocalTransport("bench-local", str(tmp_path / "device-work"))
    client = AgentClient(transport, ContentCache(transport))
    client.run_job(JOB, PYTHON, timeout_s=120)
    durations: list[float] = []
    run = benchmark.pedantic(_timed_jobs(client, durations), rounds=ROUNDS, iterations=1, warmup_rounds=1)
    assert run.latency_ns
    _report(benchmark, durations, "local")
    print(f"\nlocal: noop job median {benchmark.extra_info['local_job_median_ms']} ms "
          f"(min {benchmark.extra_info['local_job_min_ms']})")
