"""DeviceLock: one orchestrator at a time per device, over a real sshd and locally.

The lock helper (harness/agent/lock.py) runs on the "device" (this machine) under the
target's Python, started through the transport; holders are real processes that are really
SIGKILLed.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
import time
from pathlib import Path

import pytest
from helpers.interpreters import pyenv_python_or_skip
from helpers.loopback_sshd import PYTHON, LoopbackSshd, sshd_fixture
from helpers.processes import alive

from harness.errors import TransportError
from harness.run.agent_client import AGENT_PACKAGE, AGENT_SOURCE
from harness.transport.base import ContentCache, agent_files
from harness.transport.local import LocalTransport
from harness.transport.lock import DeviceLock

REPO = Path(__file__).resolve().parents[2]

# A second orchestrator in its own process: takes the lock, says so, then sleeps until killed.
HOLDER = """
import sys, time
from pathlib import Path
sys.path.insert(0, {repo!r})
from harness.config.target_files import load_target
from harness.transport.local import LocalTransport
from harness.transport.lock import DeviceLock
from harness.transport.ssh import SSHTransport
kind, where, known_hosts, config, python, agent_dir = sys.argv[1:7]
if kind == "ssh":
    transport = SSHTransport(load_target(where), known_hosts_path=Path(known_hosts), ssh_config_path=Path(config))
else:
    transport = LocalTransport("board", where)
DeviceLock(transport, python, agent_dir, run_id="doomed-run", wait_s=30).acquire()
print("locked", flush=True)
time.sleep(600)
"""


lab = sshd_fixture("lab", "lock-lab")  # this module's sshd


@pytest.fixture(scope="module")
def ssh_agent_dir(lab: LoopbackSshd) -> str:
    transport = lab.transport()
    pushed = ContentCache(transport).push_tree(agent_files(AGENT_SOURCE, AGENT_PACKAGE), kind="agent")
    transport.close()
    return pushed


def _transports(lab: LoopbackSshd, tmp_path: Path, kind: str):
    """Two independent transports to one device (as two orchestrators would have)."""
    if kind == "ssh":
        return lab.transport(), lab.transport()
    workdir = str(tmp_path / "local-device")
    return LocalTransport("board", workdir), LocalTransport("board", workdir)


def _agent_dir(kind: str, transport, ssh_agent_dir: str) -> str:
    if kind == "ssh":
        return ssh_agent_dir
    return ContentCache(transport).push_tree(agent_files(AGENT_SOURCE, AGENT_PACKAGE), kind="agent")


@pytest.mark.parametrize("kind", ["ssh", "local"])
def test_second_holder_waits_then_gives_up_naming_the_holder(lab: LoopbackSshd, ssh_agent_dir: str, tmp_path: Path,
                                                            kind: str) -> None:
    mine, theirs = _transports(lab, tmp_path, kind)
    agent_dir = _agent_dir(kind, mine, ssh_agent_dir)
    with DeviceLock(mine, PYTHON, agent_dir, run_id="run-A", wait_s=5) as first:
        assert first.held
        assert first.path == f"{mine.workdir}/device.lock"
        info = json.loads(Path(f"{first.path}.info").read_text())  # the device is this machine
        assert (info["pid"], info["run"]) == (os.getpid(), "run-A")
        holder = f"{info['host']} pid {info['pid']} run run-A since {info['since']}"

        messages: list[str] = []
        started = time.monotonic()
        with pytest.raises(TransportError) as caught:
            with DeviceLock(theirs, PYTHON, agent_dir, run_id="run-B", wait_s=2, on_wait=messages.append):
                pytest.fail("a second holder got the lock")
        waited = time.monotonic() - started
        assert 2 <= waited < 15
        assert str(caught.value) == f"board: device busy: lock held by {holder}; gave up after 2s " \
                                    "(raise the lock wait, or check that run is still alive)"
        assert messages == [f"board: waiting for the device lock held by {holder}"]  # once, not every second

    # released: the next holder gets it at once, and a released lock leaves no holder info
    assert not Path(f"{first.path}.info").exists()
    with DeviceLock(theirs, PYTHON, agent_dir, run_id="run-B", wait_s=0) as second:
        assert second.waited_s < 10
        assert json.loads(Path(f"{second.path}.info").read_text())["run"] == "run-B"
    mine.close()
    theirs.close()


@pytest.mark.parametrize("kind", ["ssh", "local"])
def test_a_sigkilled_holder_releases_the_device(lab: LoopbackSshd, ssh_agent_dir: str, tmp_path: Path,
                                                kind: str) -> None:
    mine, _ = _transports(lab, tmp_path, kind)
    agent_dir = _agent_dir(kind, mine, ssh_agent_dir)
    where = str(lab.target_file()) if kind == "ssh" else mine.workdir
    holder = subprocess.Popen(
        [PYTHON, "-c", HOLDER.format(repo=str(REPO)), kind, where, str(lab.known_hosts), str(lab.ssh_config),
         PYTHON, agent_dir], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked", holder.stderr.read()
        lock_file = f"{mine.workdir}/device.lock"
        helper_pid = json.loads(Path(f"{lock_file}.info").read_text())["lock_pid"]
        assert alive(helper_pid)

        waiting = threading.Event()
        messages: list[str] = []

        def on_wait(message: str) -> None:
            messages.append(message)
            waiting.set()

        outcome: dict[str, object] = {}

        def acquire() -> None:
            try:
                outcome["lock"] = DeviceLock(mine, PYTHON, agent_dir, run_id="survivor", wait_s=30,
                                             on_wait=on_wait).acquire()
                outcome["at"] = time.monotonic()
            except Exception as exc:  # reported by the asserts below
                outcome["error"] = exc

        waiter = threading.Thread(target=acquire)
        waiter.start()
        assert waiting.wait(20), outcome
        assert f"pid {holder.pid} run doomed-run since " in messages[0]

        killed_at = time.monotonic()
        os.kill(holder.pid, signal.SIGKILL)  # no cleanup runs in the holder
        holder.wait()
        waiter.join(30)
        assert "error" not in outcome, outcome.get("error")
        assert "lock" in outcome
        released_after = outcome["at"] - killed_at
        assert released_after < 10, f"the lock came free only {released_after:.1f}s after the holder died"
        assert not alive(helper_pid), "the dead holder's lock helper is still running on the device"
        outcome["lock"].release()
    finally:
        if holder.poll() is None:
            holder.kill()
        holder.wait()
        mine.close()


def test_stale_or_garbage_holder_info_does_not_block(tmp_path: Path) -> None:
    transport = LocalTransport("board", str(tmp_path / "device"))
    agent_dir = _agent_dir("local", transport, "")
    Path(f"{transport.workdir}/device.lock.info").write_text("{not json")  # a holder died mid-write
    with DeviceLock(transport, PYTHON, agent_dir, run_id="fresh", wait_s=0) as lock:
        assert json.loads(Path(f"{lock.path}.info").read_text())["run"] == "fresh"


def test_a_lock_whose_helper_died_is_no_longer_held(tmp_path: Path) -> None:
    transport = LocalTransport("board", str(tmp_path / "device"))
    agent_dir = _agent_dir("local", transport, "")
    with DeviceLock(transport, PYTHON, agent_dir, run_id="r", wait_s=0) as lock:
        assert lock.still_held()
        helper = json.loads(Path(f"{lock.path}.info").read_text())["lock_pid"]
        os.kill(helper, signal.SIGKILL)
        deadline = time.monotonic() + 5
        while lock.still_held() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not lock.still_held()
    assert not lock.still_held()


def test_the_lock_helper_runs_on_python36(tmp_path: Path) -> None:
    python36 = pyenv_python_or_skip("3.6.15")
    first, second = LocalTransport("jetson", str(tmp_path / "d")), LocalTransport("jetson", str(tmp_path / "d"))
    agent_dir = _agent_dir("local", first, "")
    messages: list[str] = []
    with DeviceLock(first, python36, agent_dir, run_id="py36", wait_s=0):
        with pytest.raises(TransportError, match=r"^jetson: device busy: lock held by .* run py36 since "):
            DeviceLock(second, python36, agent_dir, run_id="other", wait_s=1.5, on_wait=messages.append).acquire()
    assert messages and "run py36" in messages[0]
    with DeviceLock(second, python36, agent_dir, run_id="other", wait_s=0):
        pass


def test_a_missing_interpreter_is_a_clear_error(tmp_path: Path) -> None:
    transport = LocalTransport("board", str(tmp_path / "device"))
    agent_dir = _agent_dir("local", transport, "")
    with pytest.raises(TransportError, match="cannot start"):
        DeviceLock(transport, "/nonexistent/python3", agent_dir, run_id="r", wait_s=0).acquire()


def test_a_missing_interpreter_over_ssh_is_a_clear_error(lab: LoopbackSshd, ssh_agent_dir: str) -> None:
    transport = lab.transport()
    with pytest.raises(TransportError) as caught:
        DeviceLock(transport, "/nonexistent/python3", ssh_agent_dir, run_id="r", wait_s=0).acquire()
    message = str(caught.value)
    assert message.startswith("board: device lock on ")
    assert "exit 127" in message and "/nonexistent/python3" in message
    transport.close()
