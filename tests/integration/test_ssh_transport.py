"""SSHTransport against a real OpenSSH server on loopback (the "device" is this machine).

Every test talks to a private sshd (harness.lab.sshd) with its own host key, a client key
made for the test, and known_hosts / ssh_config files under tmp: ~/.ssh is never read or
written. Faults are real: the sshd is SIGKILLed, host keys are swapped, ports are closed.
"""

from __future__ import annotations

import base64
import hashlib
import os
import re
import shutil
import signal
import socket
import subprocess
import threading
import time
import uuid
from pathlib import Path

import pytest
from helpers.faulty_transports import CorruptingSSHTransport
from helpers.interpreters import pyenv_python_or_skip
from helpers.loopback_sshd import PYTHON, LoopbackSshd, sshd_fixture
from helpers.processes import alive

from harness.agent import PROTOCOL_VERSION
from harness.errors import TransportError
from harness.lab.sshd import SshdServer, free_port, generate_key
from harness.run.agent_client import AgentClient
from harness.transport import open_transport
from harness.transport.base import ContentCache, sha256_file
from harness.transport.ssh import SSHProcess, SSHTransport
from harness.transport.ssh.files import PY_SHA256

pytestmark = pytest.mark.skipif(not os.path.exists("/usr/sbin/sshd"), reason="needs OpenSSH's sshd")


# --- the lab ----------------------------------------------------------------------------

lab = sshd_fixture("lab", "ssh-lab")  # this module's sshd


@pytest.fixture(scope="module")
def ssh(lab: LoopbackSshd) -> SSHTransport:
    transport = lab.transport()
    yield transport
    transport.close()


@pytest.fixture
def fresh_lab(tmp_path: Path) -> LoopbackSshd:
    """An sshd of this test's own, for tests that kill it."""
    made = LoopbackSshd(tmp_path / "lab")
    yield made
    made.stop()


def kill_sshd(server: SshdServer) -> None:
    """SIGKILL the listener (kill_hard) and the per-connection sshd processes it forked:
    every connection to it breaks, as when the device's sshd dies. The commands those
    connections run are left alone (they become orphans, as they would on a device)."""
    listener = server.process.pid
    doomed = [pid for pid in _descendants(listener) if _comm(pid) == "sshd"]
    server.kill_hard()
    for pid in doomed:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def _descendants(root: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                ppid = int(Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry))
    found, todo = [], [root]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def _comm(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return ""


def _gone_within(pids: list[int], seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if not any(alive(pid) for pid in pids):
            return True
        time.sleep(0.05)
    return False


def _pids_with_cmdline(*argv: str) -> list[int]:
    wanted = "\0".join(argv).encode() + b"\0"
    pids = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                if Path(f"/proc/{entry}/cmdline").read_bytes() == wanted:
                    pids.append(int(entry))
            except OSError:
                pass
    return pids


def _fingerprint(line: str) -> str:
    """SHA256 fingerprint of the key in a known_hosts line or a .pub file's line."""
    blob = base64.b64decode(next(word for word in line.split() if word.startswith("AAAA")))
    return "SHA256:" + base64.b64encode(hashlib.sha256(blob).digest()).decode().rstrip("=")


def _tcp_peers_of_this_process() -> set[tuple[str, int]]:
    """(ip, port) of every established IPv4 TCP connection this process holds."""
    inodes = set()
    for fd in os.listdir("/proc/self/fd"):
        try:
            link = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue
        if link.startswith("socket:["):
            inodes.add(link[8:-1])
    peers = set()
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if fields[9] in inodes and fields[3] == "01":  # 01 = ESTABLISHED
            address, port = fields[2].split(":")
            ip = socket.inet_ntoa(bytes.fromhex(address)[::-1])
            peers.add((ip, int(port, 16)))
    return peers


# --- commands -----------------------------------------------------------------------------

ECHO_ARGV = "import sys; sys.stdout.buffer.write(b'\\0'.join(a.encode('utf-8', 'surrogateescape') for a in sys.argv[1:]))"


def test_hostile_argv_comes_back_byte_exact_and_runs_nothing(ssh: SSHTransport, tmp_path: Path) -> None:
    canary = tmp_path / "pwned"
    hostile = [
        "two words", "it's", 'say "hi"', f"; touch {canary}", f"$(touch {canary})", f"`touch {canary}`",
        f"line one\nline two; touch {canary}", "$HOME", "*", "\\", "-n", "", "a\tb", f"|| touch {canary}",
        f"& touch {canary} &", f"> {canary}", "ünïcødé ✓", "'\"'\"'", "${IFS}", "%s%n",
    ]
    done = ssh.run([PYTHON, "-c", ECHO_ARGV, *hostile])
    assert done.returncode == 0, done.stderr
    assert done.stdout == "\0".join(hostile).encode("utf-8")
    assert done.stderr == b""
    assert not canary.exists()


def test_cwd_and_env_reach_the_command_verbatim(ssh: SSHTransport, tmp_path: Path) -> None:
    odd_dir = tmp_path / "a dir with 'quotes' and $(x)"
    odd_dir.mkdir()
    value = "v a l'u\"e $(touch /tmp/never) `x` ;\n2nd line"
    script = "import os, sys; sys.stdout.write(os.getcwd() + '\\0' + os.environ['HARNESS_ODD'])"
    done = ssh.run([PYTHON, "-c", script], cwd=str(odd_dir), env={"HARNESS_ODD": value})
    assert done.returncode == 0, done.stderr
    assert done.stdout.decode() == f"{odd_dir}\0{value}"
    with pytest.raises(TransportError, match="environment variable name"):
        ssh.run(["true"], env={"A;touch /tmp/x": "1"})


def test_exit_codes_missing_programs_and_signals(ssh: SSHTransport) -> None:
    assert ssh.run(["true"]).returncode == 0
    assert ssh.run(["sh", "-c", "exit 7"]).returncode == 7
    missing = ssh.run(["/nonexistent/interpreter", "-V"])
    assert missing.returncode == 127
    assert b"/nonexistent/interpreter" in missing.stderr
    process = ssh.start(["sh", "-c", "kill -TERM $$"])
    assert process.read_line(timeout=10) is None
    assert process.wait(timeout=10) == -signal.SIGTERM


def test_run_timeout_kills_the_remote_command(ssh: SSHTransport) -> None:
    marker = f"{time.time() % 1000:.6f}"  # an argument no other process has
    with pytest.raises(TransportError, match="timed out"):
        ssh.run(["sleep", f"3{marker}"], timeout=1.0)
    assert _gone_within(_pids_with_cmdline("sleep", f"3{marker}"), 5)
    assert not _pids_with_cmdline("sleep", f"3{marker}")


def test_start_reads_lines_stderr_tail_and_times_out(ssh: SSHTransport) -> None:
    process = ssh.start(["sh", "-c", "echo one; echo oops >&2; read x; echo \"got $x\"; echo tail"])
    assert isinstance(process, SSHProcess)
    assert process.read_line(timeout=10) == b"one"
    with pytest.raises(TimeoutError):
        process.read_line(timeout=0.3)
    process.send_stdin(b"hello\n")
    assert process.read_line(timeout=10) == b"got hello"
    assert process.read_line(timeout=10) == b"tail"
    assert process.read_line(timeout=10) is None
    assert process.wait(timeout=10) == 0
    assert process.stderr_tail() == "oops\n"  # the wrapper's pid line is not part of it
    assert process.remote_pid and process.remote_pid > 1


def test_a_line_over_the_limit_is_refused_and_the_stream_goes_on(ssh: SSHTransport) -> None:
    from harness.transport.local import MAX_LINE_BYTES

    script = (f"import sys; o = sys.stdout.buffer; o.write(b'x' * {MAX_LINE_BYTES + 10} + b'\\n'); "
              "o.write(b'next\\n'); o.flush()")
    process = ssh.start([PYTHON, "-c", script])
    with pytest.raises(TransportError, match="exceeded 64 MiB"):
        process.read_line(timeout=60)
    assert process.read_line(timeout=60) == b"next"
    assert process.read_line(timeout=10) is None
    assert process.wait(timeout=10) == 0


def test_kill_leaves_no_process_on_the_device(ssh: SSHTransport) -> None:
    tag = str(uuid.uuid4().int % 100)  # sleep wants a number: make the durations unique
    process = ssh.start(["sh", "-c", f"sleep 1000{tag}1 & sleep 1000{tag}2 & echo started; wait"])
    assert process.read_line(timeout=10) == b"started"
    pid = process.remote_pid
    assert pid is not None and alive(pid)
    deadline = time.monotonic() + 5
    while True:  # the background sleeps may still be starting
        children = _pids_with_cmdline("sleep", f"1000{tag}1") + _pids_with_cmdline("sleep", f"1000{tag}2")
        if len(children) == 2 or time.monotonic() > deadline:
            break
        time.sleep(0.02)
    assert len(children) == 2
    process.kill()
    assert _gone_within([pid, *children], 5), "a process survived kill() on the device"
    assert process.wait(timeout=5) == -signal.SIGKILL


def test_one_connection_is_reused_with_nodelay(lab: LoopbackSshd) -> None:
    transport = lab.transport()
    for _ in range(3):
        assert transport.run(["true"]).returncode == 0
    transport.exists(transport.workdir)
    assert transport.connects == 1
    sock = transport._link._connection.transport.sock
    assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) == 1
    transport.close()


def test_large_stdout_and_stderr_together_do_not_stall(ssh: SSHTransport) -> None:
    script = ("import sys\nfor i in range(80):\n    sys.stdout.buffer.write(b'o' * 65536)\n"
              "    sys.stderr.buffer.write(b'e' * 16384)\n")
    done = ssh.run([PYTHON, "-c", script], timeout=60)
    assert done.returncode == 0
    assert (len(done.stdout), len(done.stderr)) == (80 * 65536, 80 * 16384)


def test_relative_workdir_is_resolved_against_the_login_directory(lab: LoopbackSshd) -> None:
    name = f".harness-test-{uuid.uuid4().hex[:8]}"
    transport = lab.transport(lab.target("relative", workdir=f"{name}/work"))
    try:
        home = os.path.expanduser("~root")
        assert transport.workdir == f"{home}/{name}/work"
        assert os.path.isdir(transport.workdir)
    finally:
        transport.close()
        shutil.rmtree(os.path.join(os.path.expanduser("~root"), name), ignore_errors=True)


def test_open_transport_gives_ssh_for_an_ssh_target(lab: LoopbackSshd) -> None:
    transport = open_transport(lab.target())
    assert isinstance(transport, SSHTransport)
    transport.close()


# --- files ----------------------------------------------------------------------------------

def test_file_primitives(ssh: SSHTransport, lab: LoopbackSshd, tmp_path: Path) -> None:
    base = f"{ssh.workdir}/prims-{uuid.uuid4().hex[:8]}"
    ssh.makedirs(f"{base}/a/b")
    ssh.makedirs(f"{base}/a/b")  # idempotent
    assert ssh.exists(f"{base}/a/b") and not ssh.exists(f"{base}/nope")
    ssh.write_bytes(f"{base}/a/b/f", b"first")
    ssh.write_bytes(f"{base}/a/g", b"second")
    ssh.rename(f"{base}/a/g", f"{base}/a/b/f")  # replaces atomically, like os.rename
    assert Path(f"{base}/a/b/f").read_bytes() == b"second"
    assert ssh.remote_sha256(f"{base}/a/b/f") == hashlib.sha256(b"second").hexdigest()
    local = tmp_path / "blob.bin"
    local.write_bytes(os.urandom(300_000))
    before = ssh.bytes_sent
    assert ssh.upload(local, f"{base}/blob") == 300_000
    assert ssh.bytes_sent - before == 300_000
    with pytest.raises(TransportError, match=r"^board: cannot copy .* to .*/missing-dir/blob: "):
        ssh.upload(local, f"{base}/missing-dir/blob")
    with pytest.raises(TransportError, match="cannot rename"):
        ssh.rename(f"{base}/absent", f"{base}/other")
    with pytest.raises(TransportError, match="sha256"):
        ssh.remote_sha256(f"{base}/absent")
    ssh.remove(f"{base}/blob")
    assert not ssh.exists(f"{base}/blob")
    ssh.remove(base)
    ssh.remove(base)  # absent: nothing to do
    assert not os.path.exists(base)


def test_sha256_falls_back_to_python_without_sha256sum(tmp_path: Path) -> None:
    """A device without coreutils' sha256sum: sshd gives the session a PATH that has sh and
    the few tools the transport needs, but no sha256sum."""
    tools = tmp_path / "bin"
    tools.mkdir()
    for tool in ("sh", "env", "setsid", "kill", "rm"):
        os.symlink(shutil.which(tool), tools / tool)
    lab = LoopbackSshd(tmp_path / "lab", extra_config={"SetEnv": f"PATH={tools}"})
    try:
        transport = lab.transport()
        assert transport.run(["sha256sum", "/dev/null"]).returncode == 127
        data = tmp_path / "data.bin"
        data.write_bytes(b"\x00\x01" * 5000)
        assert transport.remote_sha256(str(data)) == sha256_file(data)
        assert transport.remote_sha256(str(data)) == sha256_file(data)
        other = tmp_path / "other.bin"
        other.write_bytes(b"other")
        assert transport.remote_sha256_many([str(data), str(other)]) == {
            str(data): sha256_file(data), str(other): sha256_file(other)}  # one exec for many files
        transport.close()
    finally:
        lab.stop()


def test_the_sha256_fallback_snippet_runs_under_python36(tmp_path: Path) -> None:
    """The fallback above, run by the device's Python 3.6 (JetPack 4): skipped, saying so,
    where pyenv's 3.6.15 is not installed."""
    py36 = pyenv_python_or_skip("3.6.15")
    data = tmp_path / "data.bin"
    data.write_bytes(b"\x00\x01" * 5000)
    out = subprocess.run([py36, "-c", PY_SHA256, str(data)], capture_output=True, text=True, check=True)
    assert out.stdout.split() == [sha256_file(data), str(data)]  # sha256sum's own format


def test_push_then_cache_hit_on_the_device(lab: LoopbackSshd, tmp_path: Path) -> None:
    model = tmp_path / "model.onnx"
    model.write_bytes(os.urandom(1_000_003))
    first_transport = lab.transport()
    first = ContentCache(first_transport)
    remote = first.push_file(model)
    assert first.stats.bytes_sent == model.stat().st_size
    assert first.stats.files_sent == 1
    assert remote == f"{first_transport.workdir}/cache/{sha256_file(model)}/model.onnx"
    assert Path(remote).read_bytes() == model.read_bytes()
    first_transport.close()

    # a new session (fresh transport and cache) finds it on the device: nothing is sent
    second_transport = lab.transport()
    second = ContentCache(second_transport)
    assert second.push_file(model) == remote
    assert second.stats.bytes_sent == 0
    assert second.stats.cache_hits == 1
    assert second_transport.bytes_sent == 0
    second_transport.close()


def test_corrupted_upload_is_refused_and_nothing_is_cached(lab: LoopbackSshd, tmp_path: Path) -> None:
    model = tmp_path / "weights.bin"
    model.write_bytes(os.urandom(200_000))
    digest = sha256_file(model)
    transport = lab.transport(cls=CorruptingSSHTransport)
    with pytest.raises(TransportError) as caught:
        ContentCache(transport).push_file(model)
    message = str(caught.value)
    assert message.startswith("board: upload of weights.bin corrupted")
    assert digest[:12] in message
    cache_dir = Path(transport.workdir) / "cache" / digest
    assert not cache_dir.exists() or os.listdir(cache_dir) == []
    transport.close()
    good = lab.transport()
    cache = ContentCache(good)
    remote = cache.push_file(model)
    assert cache.stats.files_sent == 1 and Path(remote).read_bytes() == model.read_bytes()
    good.close()


# --- host keys --------------------------------------------------------------------------------

def test_unknown_host_key_is_refused_in_strict_mode(lab: LoopbackSshd, tmp_path: Path) -> None:
    empty = tmp_path / "known_hosts"
    transport = lab.transport(known_hosts_path=empty)
    with pytest.raises(TransportError) as caught:
        transport.run(["true"])
    message = str(caught.value)
    port = lab.server.port
    assert message.startswith(f"board: unknown host key for [127.0.0.1]:{port}")
    assert _fingerprint(lab.server.known_hosts_line()) in message
    assert f"ssh-keyscan -p {port} 127.0.0.1 >> {empty}" in message
    assert "known_hosts: accept-new" in message
    assert not empty.exists()


def test_accept_new_adds_the_key_then_checks_it(lab: LoopbackSshd, tmp_path: Path) -> None:
    known = tmp_path / "sub" / "known_hosts"
    target = lab.target("tofu", {"known_hosts": "accept-new"})
    transport = lab.transport(target, known_hosts_path=known)
    assert transport.run(["true"]).returncode == 0
    transport.close()
    assert known.read_text() == lab.server.known_hosts_line()
    again = lab.transport(target, known_hosts_path=known)  # second time: found, not added again
    assert again.run(["true"]).returncode == 0
    again.close()
    assert known.read_text() == lab.server.known_hosts_line()


@pytest.mark.parametrize("policy", ["strict", "accept-new"])
def test_a_changed_host_key_is_always_refused(lab: LoopbackSshd, tmp_path: Path, policy: str) -> None:
    other = generate_key(tmp_path / "other_host_key")
    other_line = Path(f"{other}.pub").read_text()
    known = tmp_path / "known_hosts"
    name = f"[127.0.0.1]:{lab.server.port}"
    known.write_text(f"# a comment\nexample.org {other_line.split()[0]} {other_line.split()[1]}\n"
                     f"{name} {other_line.split()[0]} {other_line.split()[1]}\n")
    transport = lab.transport(lab.target("changed", {"known_hosts": policy}), known_hosts_path=known)
    with pytest.raises(TransportError) as caught:
        transport.run(["true"])
    message = str(caught.value)
    assert "HOST KEY CHANGED" in message
    assert _fingerprint(lab.server.known_hosts_line()) in message
    assert _fingerprint(other_line) in message
    assert f"{known}:3" in message and "remove line 3" in message
    assert len(known.read_text().splitlines()) == 3  # never rewritten


def test_hashed_known_hosts_entries_are_understood(lab: LoopbackSshd, tmp_path: Path) -> None:
    import paramiko

    key_type, key = lab.server.known_hosts_line().split()[1:3]
    hashed = paramiko.HostKeys.hash_host(f"[127.0.0.1]:{lab.server.port}")
    known = tmp_path / "known_hosts"
    known.write_text(f"{hashed} {key_type} {key}\n")
    transport = lab.transport(known_hosts_path=known)
    assert transport.run(["true"]).returncode == 0
    transport.close()


# --- ssh_config, jump hosts ------------------------------------------------------------------

def test_ssh_config_alias_gives_hostname_port_user_and_identity(lab: LoopbackSshd, tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "ssh_config"
    config.write_text(f"Host lab-board\n  HostName 127.0.0.1\n  Port {lab.server.port}\n  User root\n"
                      f"  IdentityFile {lab.key}\n  IdentitiesOnly yes\n")
    # without the config's User the local login name would be used: make that one wrong
    monkeypatch.setenv("USER", "no-such-user")
    monkeypatch.setenv("LOGNAME", "no-such-user")
    target = lab.target("aliased", {"host": None, "port": None, "user": None, "key_file": None,
                                    "ssh_config_host": "lab-board"})
    transport = lab.transport(target, ssh_config_path=config)
    endpoint = transport.endpoint
    assert (endpoint.hostname, endpoint.port, endpoint.user) == ("127.0.0.1", lab.server.port, "root")
    assert endpoint.key_files == (str(lab.key),)
    assert transport.run(["id", "-un"]).stdout == b"root\n"
    transport.close()


def test_proxycommand_in_ssh_config_is_refused_clearly(lab: LoopbackSshd, tmp_path: Path) -> None:
    config = tmp_path / "ssh_config"
    config.write_text("Host via-command\n  ProxyCommand nc %h %p\n")
    target = lab.target("proxied", {"host": None, "port": None, "ssh_config_host": "via-command"})
    with pytest.raises(TransportError, match="ProxyCommand.*ProxyJump"):
        lab.transport(target, ssh_config_path=config).run(["true"])


@pytest.fixture(scope="module")
def jump_lab(tmp_path_factory) -> LoopbackSshd:
    """A second sshd, the jump host, on 127.0.0.1; the lab's target is reached through it."""
    root = tmp_path_factory.mktemp("jump-lab")
    behind = LoopbackSshd(root / "behind", listen="127.0.0.2")
    jump = SshdServer(directory=root / "sshd", port=free_port(), authorized_keys=str(behind.authorized)).start()
    with open(behind.known_hosts, "a") as handle:
        handle.write(jump.known_hosts_line())
    behind.jump = jump
    yield behind
    behind.stop()
    jump.stop()


def test_jump_host_from_the_target_file(jump_lab: LoopbackSshd) -> None:
    jump = jump_lab.jump
    target = jump_lab.target("behind", {"jump_host": f"root@127.0.0.1:{jump.port}"})
    transport = jump_lab.transport(target)
    done = transport.run(["sh", "-c", "echo $SSH_CONNECTION"])
    assert done.returncode == 0
    assert done.stdout.split()[2:] == [b"127.0.0.2", str(jump_lab.server.port).encode()]
    peers = _tcp_peers_of_this_process()
    assert ("127.0.0.1", jump.port) in peers  # we hold a connection to the jump host...
    assert ("127.0.0.2", jump_lab.server.port) not in peers  # ...and none to the target itself
    transport.close()


def test_proxyjump_from_ssh_config(jump_lab: LoopbackSshd, tmp_path: Path) -> None:
    jump = jump_lab.jump
    config = tmp_path / "ssh_config"
    config.write_text(f"Host bastion\n  HostName 127.0.0.1\n  Port {jump.port}\n  User root\n"
                      f"  IdentityFile {jump_lab.key}\n"
                      f"Host hidden-board\n  HostName 127.0.0.2\n  Port {jump_lab.server.port}\n"
                      "  ProxyJump bastion\n")
    target = jump_lab.target("hidden", {"host": None, "port": None, "ssh_config_host": "hidden-board"})
    transport = jump_lab.transport(target, ssh_config_path=config)
    assert transport.run(["true"]).returncode == 0
    assert ("127.0.0.2", jump_lab.server.port) not in _tcp_peers_of_this_process()
    transport.close()


def test_jump_host_that_cannot_reach_the_target(jump_lab: LoopbackSshd) -> None:
    dead_port = free_port("127.0.0.2")
    target = jump_lab.target("lost", {"port": dead_port, "jump_host": f"root@127.0.0.1:{jump_lab.jump.port}"})
    with pytest.raises(TransportError) as caught:
        jump_lab.transport(target).run(["true"])
    message = str(caught.value)
    assert message.startswith(f"lost: unreachable: 127.0.0.2:{dead_port} via root@127.0.0.1:{jump_lab.jump.port}")
    assert "jump host could not connect" in message


# --- unreachable, auth, reconnects -------------------------------------------------------------

def test_a_closed_port_is_unreachable_quickly(lab: LoopbackSshd) -> None:
    port = free_port()
    transport = lab.transport(lab.target("closed", {"port": port}))
    started = time.monotonic()
    with pytest.raises(TransportError) as caught:
        transport.run(["true"])
    assert time.monotonic() - started < 2
    message = str(caught.value)
    assert message.startswith(f"closed: unreachable: 127.0.0.1:{port} (connection refused")
    assert "sshd" in message and "connection.port" in message


def test_a_server_that_never_speaks_times_out(lab: LoopbackSshd) -> None:
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(1)  # accepts TCP (backlog) but never sends an SSH banner
        port = silent.getsockname()[1]
        transport = lab.transport(lab.target("silent", {"port": port, "connect_timeout": "1s"}))
        started = time.monotonic()
        with pytest.raises(TransportError, match=rf"^silent: unreachable: 127.0.0.1:{port} \(SSH handshake failed"):
            transport.run(["true"])
        assert time.monotonic() - started < 5


def test_an_unknown_host_name_is_unreachable(lab: LoopbackSshd) -> None:
    transport = lab.transport(lab.target("nowhere", {"host": "no-such-device.invalid", "connect_timeout": "3s"}))
    with pytest.raises(TransportError, match=r"^nowhere: unreachable: no-such-device.invalid:\d+ \(cannot resolve"):
        transport.run(["true"])


def test_a_key_the_device_does_not_accept_is_an_auth_failure(lab: LoopbackSshd, tmp_path: Path) -> None:
    stranger = generate_key(tmp_path / "stranger")
    transport = lab.transport(lab.target("stranger", {"key_file": str(stranger)}))
    with pytest.raises(TransportError) as caught:
        transport.run(["true"])
    message = str(caught.value)
    assert message.startswith(f"stranger: unreachable: 127.0.0.1:{lab.server.port} (authentication failed for user root")
    assert f"{stranger} (refused)" in message
    assert "authorized_keys" in message and "passwords are never used" in message


def test_a_passphrase_protected_key_says_to_use_the_agent(lab: LoopbackSshd, tmp_path: Path) -> None:
    locked = tmp_path / "locked_key"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "secret", "-f", str(locked)], check=True)
    transport = lab.transport(lab.target("locked", {"key_file": str(locked)}))
    with pytest.raises(TransportError, match=rf"{locked} \(passphrase-protected: load it into ssh-agent\)"):
        transport.run(["true"])


def test_reconnects_after_the_sshd_was_killed_and_restarted(fresh_lab: LoopbackSshd) -> None:
    told: list[str] = []
    transport = fresh_lab.transport(progress=told.append)
    assert transport.run(["true"]).returncode == 0
    assert transport.connects == 1
    kill_sshd(fresh_lab.server)
    fresh_lab.server.start()  # same port, same host key
    assert transport.run(["echo", "back"]).stdout == b"back\n"
    assert transport.connects == 2
    assert told == ["board: connection lost; reconnecting in 0.5s (attempt 1/3)", "board: reconnected (attempt 1/3)"]
    assert transport.exists(transport.workdir)
    transport.close()


def test_reconnect_backs_off_then_gives_up_in_one_line_and_later_calls_fail_fast(fresh_lab: LoopbackSshd) -> None:
    told: list[str] = []
    transport = fresh_lab.transport(progress=told.append)
    assert transport.run(["true"]).returncode == 0
    kill_sshd(fresh_lab.server)  # and it stays down
    started = time.monotonic()
    with pytest.raises(TransportError) as caught:
        transport.run(["true"])
    elapsed = time.monotonic() - started
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith(f"board: unreachable: 127.0.0.1:{fresh_lab.server.port} (connection refused"), message
    assert re.search(r"; gave up after 3 reconnect attempts in \d+\.\ds$", message), message
    assert told == [f"board: connection lost; reconnecting in {delay}s (attempt {n}/3)"
                    for n, delay in ((1, "0.5"), (2, "1"), (3, "2"))]
    assert 3.5 <= elapsed < 6, f"backoff 0.5 + 1 + 2 s, each refused at once: took {elapsed:.1f}s"
    started = time.monotonic()
    with pytest.raises(TransportError, match="unreachable: .*connection refused") as again:
        transport.run(["true"])  # the series is spent: one attempt, refused at once
    assert time.monotonic() - started < 1 and "reconnect attempts" not in str(again.value)
    transport.close()


def test_sshd_killed_while_reading_is_connection_lost(fresh_lab: LoopbackSshd) -> None:
    transport = fresh_lab.transport()
    process = transport.start(["sh", "-c", f"echo ready; exec sleep 2000{uuid.uuid4().int % 100}"])
    assert process.read_line(timeout=10) == b"ready"
    orphan = process.remote_pid
    try:
        killer = threading.Timer(0.3, kill_sshd, args=(fresh_lab.server,))
        killer.start()
        started = time.monotonic()
        with pytest.raises(TransportError, match=r"^connection lost to board during `sh -c"):
            process.read_line(timeout=30)  # blocked in here when the sshd dies
        killer.join()
        assert time.monotonic() - started < 10
        with pytest.raises(TransportError, match="^connection lost to board during"):
            process.wait(timeout=5)
        # the next call cannot reconnect (no sshd): a clear unreachable error after the retries
        with pytest.raises(TransportError, match="unreachable: .*connection refused.*gave up after 3 reconnect"):
            transport.run(["true"])
    finally:
        if orphan and alive(orphan):
            os.kill(orphan, signal.SIGKILL)
        transport.close()


# --- the agent over SSH -----------------------------------------------------------------------

def test_agent_client_runs_a_noop_job_over_ssh(lab: LoopbackSshd) -> None:
    transport = lab.transport()
    client = AgentClient(transport, ContentCache(transport))
    job = {"protocol": PROTOCOL_VERSION, "job_id": "ssh-1", "runtime": {"name": "noop"},
           "model": {"files": {}}, "input": {"shape": [1]},
           "latency": {"warmup_iterations": 2, "warmup_duration_s": 0, "min_iterations": 25,
                       "min_duration_s": 0.01}}
    run = client.run_job(job, PYTHON, timeout_s=120)
    assert len(run.latency_ns) >= 25
    assert run.result["job_id"] == "ssh-1"
    assert run.hello["event"] == "hello"
    assert client.agent_dir().startswith(f"{transport.workdir}/agent/")
    transport.close()
