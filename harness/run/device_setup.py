"""`harness targets setup NAME`: install a target's runtimes on the device, from the host.

Devices in a lab (and many boards in the field) have no internet, and a minimal root
filesystem has no pip; Python 3.6's pip (JetPack 4) is too old for manylinux2014 wheels
anyway. So the wheels are resolved on the host, for the device:

1. probe the device's Python (version, ABI, machine, C library) over the target's transport;
2. ``pip install --target STAGE --only-binary=:all: --platform <device tags> --python-version
   X.Y --implementation cp --abi cpXY <requirements>`` on the host, for every requirement the
   target file lists under ``setup.<runtime>`` (cached per requirements and platform in
   ``~/.cache/harness/device-envs``), packed into one tar.gz;
3. push it by content hash (the push checks the hash on the device), unpack it there into
   ``<workdir>/envs/<runtime>`` as a virtual environment made by hand (``pyvenv.cfg`` and a
   ``bin/python3`` link to the device's interpreter: no venv module needed), and record the
   key, so a second setup with the same requirements does nothing;
4. import the runtime there with the agent's own probe, and report its version.

The inventory gives every ``setup`` runtime the interpreter ``<workdir>/envs/<runtime>/bin/
python3`` (`harness.config.targets.RuntimeDecl.setup_env`).
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import posixpath
import shutil
import sys
import tarfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from harness.errors import HarnessError, TransportError
from harness.run.device import Device
from harness.run.labgrid_device import open_device
from harness.streamed import run_streamed

Progress = Callable[[str], None]
ENV_MARKER = ".harness-env.json"
PROBE_CODE = (
    "import json, platform, sys\n"
    "libc = platform.libc_ver()\n"
    "print(json.dumps({'version': list(sys.version_info[:3]), 'implementation': sys.implementation.name,\n"
    "                  'machine': platform.machine(), 'libc': [libc[0], libc[1]],\n"
    "                  'executable': sys.executable}))\n"
)
# Runs on the device (Python 3.6+, stdlib): unpack a pushed tarball into a hand-made venv.
INSTALL_CODE = r"""
import json, os, shutil, sys, tarfile
tarball, destination, marker = sys.argv[1], sys.argv[2], sys.argv[3]
partial = destination + '.partial'
shutil.rmtree(partial, ignore_errors=True)
site = os.path.join(partial, 'lib', 'python%d.%d' % sys.version_info[:2], 'site-packages')
os.makedirs(site)
try:
    with tarfile.open(tarball) as archive:
        for member in archive.getmembers():
            name = member.name
            if name.startswith('/') or '..' in name.split('/') or not (member.isfile() or member.isdir()):
                raise SystemExit('refusing archive member %r' % name)
        archive.extractall(site)
    os.makedirs(os.path.join(partial, 'bin'))
    base = sys.executable
    for name in ('python3', 'python'):
        os.symlink(base, os.path.join(partial, 'bin', name))
    with open(os.path.join(partial, 'pyvenv.cfg'), 'w') as cfg:
        cfg.write('home = %s\ninclude-system-site-packages = false\nversion = %d.%d.%d\n'
                  % ((os.path.dirname(base),) + tuple(sys.version_info[:3])))
    with open(os.path.join(partial, marker), 'w') as handle:
        handle.write(sys.stdin.read())
    if os.path.lexists(destination):
        shutil.rmtree(destination)
    os.rename(partial, destination)
except OSError as exc:
    shutil.rmtree(partial, ignore_errors=True)
    raise SystemExit('cannot install into %s: %s' % (destination, exc))
print(json.dumps({'installed': destination}))
"""


@dataclass(frozen=True)
class DevicePython:
    """What the device's interpreter is, as pip's platform options need it."""

    version: tuple[int, int, int]
    implementation: str
    machine: str
    libc: tuple[str, str]
    executable: str

    @property
    def short(self) -> str:
        return f"{self.version[0]}.{self.version[1]}"

    @property
    def abi(self) -> str:
        tag = f"cp{self.version[0]}{self.version[1]}"
        return tag + ("m" if self.version[:2] < (3, 8) else "")

    def platform_tags(self) -> list[str]:
        """manylinux tags the device's C library accepts, newest first (PEP 600, plus the
        legacy manylinux2014/2010/1 aliases)."""
        name, version = self.libc
        if name != "glibc" or not version:
            raise HarnessError(f"the device's C library is {name or 'unknown'} {version}: only glibc (manylinux) "
                               "wheels can be resolved for it")
        major, minor = (int(part) for part in version.split(".")[:2])
        tags = [f"manylinux_{major}_{m}_{self.machine}" for m in range(minor, 16, -1)] if major == 2 else []
        if major == 2 and minor >= 17:
            tags.append(f"manylinux2014_{self.machine}")
        if self.machine in ("x86_64", "i686") and major == 2:
            tags += [f"manylinux2010_{self.machine}"] if minor >= 12 else []
            tags += [f"manylinux1_{self.machine}"] if minor >= 5 else []
        if not tags:
            raise HarnessError(f"glibc {version} on {self.machine} is older than any manylinux wheel accepts")
        return tags


@dataclass(frozen=True)
class SetupOutcome:
    runtime: str
    interpreter: str
    version: str
    import_s: float
    installed: bool  # False: it was already set up with the same requirements


def probe_python(device: Device) -> DevicePython:
    target = device.target
    done = device.transport.run([target.python, "-c", PROBE_CODE], timeout=300)
    if done.returncode != 0:
        raise HarnessError(f"{target.name}: {target.python} does not run on the device (exit {done.returncode}: "
                           f"{done.stderr.decode('utf-8', 'replace').strip()[-200:]}): fix python in {target.source}")
    try:
        facts = json.loads(done.stdout.decode("utf-8", "replace").strip().splitlines()[-1])
    except (ValueError, IndexError):
        raise HarnessError(f"{target.name}: {target.python} printed no interpreter facts") from None
    if facts["implementation"] != "cpython":
        raise HarnessError(f"{target.name}: {target.python} is {facts['implementation']}, not CPython: "
                           "binary wheels need CPython")
    return DevicePython(tuple(facts["version"]), facts["implementation"], facts["machine"],
                        tuple(facts["libc"]), facts["executable"])


def default_cache_dir() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "harness" / "device-envs"


def env_key(packages: Sequence[str], python: DevicePython) -> str:
    data = json.dumps({"packages": list(packages), "python": python.short, "abi": python.abi,
                       "platforms": python.platform_tags()}, sort_keys=True)
    return hashlib.sha256(data.encode()).hexdigest()[:16]


def resolve_wheels(runtime: str, packages: Sequence[str], python: DevicePython, cache_dir: Path,
                   progress: Progress) -> Path:
    """A tar.gz of ``packages`` installed for the device's platform (cached); raises HarnessError."""
    key = env_key(packages, python)
    stage = Path(cache_dir) / f"{runtime}-{python.machine}-py{python.short}-{key}"
    tarball = stage / "site-packages.tar.gz"
    if (stage / ".complete").is_file() and tarball.is_file():
        progress(f"setup:   wheels for {python.machine} / Python {python.short} cached: {stage}")
        return tarball
    shutil.rmtree(stage, ignore_errors=True)
    site = stage / "site-packages"
    site.mkdir(parents=True)
    argv = [sys.executable, "-m", "pip", "install", "--disable-pip-version-check", "--no-input",
            "--target", str(site), "--only-binary=:all:", "--python-version", python.short,
            "--implementation", "cp", "--abi", python.abi, "--no-warn-script-location"]
    for tag in python.platform_tags():
        argv += ["--platform", tag]
    argv += ["--", *packages]  # "--": a requirement is never read as an option
    progress(f"setup:   resolving {', '.join(packages)} for {python.machine} / CPython {python.short} "
             f"({python.libc[0]} {python.libc[1]}) on this host with pip")
    _run_pip(argv, progress)
    shutil.rmtree(site / "bin", ignore_errors=True)  # console scripts carry this host's shebang
    _pack(site, tarball)
    (stage / ".complete").write_text(json.dumps({"packages": list(packages), "key": key}) + "\n")
    shutil.rmtree(site)
    progress(f"setup:   packed {tarball.stat().st_size / 2**20:.1f} MiB: {tarball}")
    return tarball


def _run_pip(argv: list[str], progress: Progress) -> None:
    def on_line(line: str) -> None:
        if line.lstrip().startswith(("Collecting", "Downloading", "Successfully", "ERROR", "Using cached")):
            progress(f"setup:     pip: {line.strip()}")

    finished = run_streamed(argv, on_line, keep=5)
    if finished.returncode != 0:
        tail = finished.lines
        hint = next((line.strip() for line in reversed(tail) if "ERROR" in line), tail[-1].strip() if tail else "")
        raise HarnessError(f"pip could not resolve the wheels for the device: {hint} (is there a wheel for this "
                           "platform and Python? see setup in docs/targets.md)")


def _pack(site: Path, tarball: Path) -> None:
    """Deterministic tar.gz of ``site`` (sorted, no owners, fixed mtime: same content, same hash)."""
    def clean(info: tarfile.TarInfo) -> tarfile.TarInfo:
        info.uid = info.gid = 0
        info.uname = info.gname = ""
        info.mtime = 0
        return info

    partial = tarball.with_suffix(".partial")
    with open(partial, "wb") as raw, gzip.GzipFile(filename="", mode="wb", fileobj=raw, compresslevel=6,
                                                   mtime=0) as zipped:  # no name or time in the gzip header
        with tarfile.open(fileobj=zipped, mode="w", format=tarfile.PAX_FORMAT) as archive:
            for path in sorted(site.rglob("*")):
                if path.is_symlink():
                    continue
                archive.add(str(path), arcname=path.relative_to(site).as_posix(), recursive=False, filter=clean)
    os.replace(partial, tarball)


def _installed_key(device: Device, env_dir: str) -> str | None:
    marker = posixpath.join(env_dir, ENV_MARKER)
    if not device.transport.exists(marker):
        return None
    done = device.transport.run(["cat", marker], timeout=60)
    try:
        return json.loads(done.stdout.decode("utf-8", "replace"))["key"]
    except (ValueError, KeyError, TypeError):
        return None


def install_env(device: Device, runtime: str, tarball: Path, key: str, packages: Sequence[str],
                progress: Progress) -> str:
    """Push ``tarball`` and unpack it into the runtime's environment on the device."""
    target = device.target
    env_dir = device.setup_env_dir(runtime)
    size = tarball.stat().st_size
    started = time.monotonic()
    progress(f"setup:   pushing {size / 2**20:.1f} MiB to {target.name} (content-addressed, hash checked there)")
    remote = device.cache.push_file(tarball)
    progress(f"setup:   pushed in {time.monotonic() - started:.1f}s; unpacking into {env_dir} "
             "(slow under emulation)")
    device.transport.makedirs(posixpath.dirname(env_dir))
    process = device.transport.start([target.python, "-c", INSTALL_CODE, remote, env_dir, ENV_MARKER])
    process.send_stdin(json.dumps({"key": key, "packages": list(packages), "runtime": runtime}).encode())
    code = _wait_with_heartbeat(process, f"{target.name}: unpacking {runtime}", progress, timeout_s=1800)
    if code != 0:
        raise HarnessError(f"{target.name}: installing {runtime} into {env_dir} failed (exit {code}): "
                           f"{process.stderr_tail().strip()[-300:]}")
    try:
        device.transport.remove(remote)  # the environment is what stays; the tarball only takes disk
    except TransportError:
        pass
    return env_dir


def _wait_with_heartbeat(process, what: str, progress: Progress, timeout_s: float) -> int:
    started = time.monotonic()
    while True:
        try:
            return process.wait(timeout=10.0)
        except TimeoutError:
            pass
        waited = time.monotonic() - started
        if waited > timeout_s:
            process.kill()
            raise HarnessError(f"{what}: no result after {timeout_s:.0f}s")
        progress(f"setup:   ... {what}: {waited:.0f}s")


def setup_target(target, progress: Progress = print, cache_dir: Path | None = None,
                 runtimes: Sequence[str] | None = None) -> list[SetupOutcome]:
    """Install every runtime in the target file's ``setup`` (or the named ones) on the device."""
    if not target.setup:
        raise HarnessError(f"{target.name}: {target.source} has no setup section: add e.g. "
                           "setup: {onnxruntime: [onnxruntime==1.31.1, numpy]} (see docs/targets.md)")
    wanted = list(runtimes or target.setup)
    for name in wanted:
        if name not in target.setup:
            raise HarnessError(f"{target.name}: runtime {name!r} is not in the setup section of {target.source} "
                               f"(there: {', '.join(target.setup)})")
    cache_dir = Path(cache_dir) if cache_dir else default_cache_dir()
    device = open_device(target, progress, purpose="harness targets setup")
    outcomes: list[SetupOutcome] = []
    try:
        started = time.monotonic()
        progress(f"setup: {target.name}: connecting ({target.connection.transport})")
        python = probe_python(device)
        progress(f"setup: {target.name}: CPython {'.'.join(map(str, python.version))} on {python.machine} "
                 f"({python.libc[0]} {python.libc[1]}) at {python.executable}; workdir {device.transport.workdir} "
                 f"({time.monotonic() - started:.1f}s)")
        if python.machine != target.arch:
            progress(f"setup: {target.name}: NOTE: the device reports {python.machine}, the target file says "
                     f"{target.arch}: wheels are resolved for {python.machine}")
        for runtime in wanted:
            packages = target.setup[runtime]
            key = env_key(packages, python)
            env_dir = device.setup_env_dir(runtime)
            installed = _installed_key(device, env_dir) != key
            progress(f"setup: {target.name}: {runtime}: " + (f"installing {', '.join(packages)}" if installed
                                                             else f"already set up in {env_dir} (same requirements)"))
            if installed:
                tarball = resolve_wheels(runtime, packages, python, cache_dir, progress)
                install_env(device, runtime, tarball, key, packages, progress)
            interpreter = device.interpreter_for(runtime)
            progress(f"setup: {target.name}: {runtime}: importing it on the device to check")
            found = device.agent.probe(interpreter, runtime, timeout_s=600)
            outcome = SetupOutcome(runtime, interpreter, str(found["version"]), found["import_ns"] / 1e9, installed)
            progress(f"setup: {target.name}: {runtime} {outcome.version} ready on Python {found['python']}: "
                     f"{interpreter} (import {outcome.import_s:.1f}s)")
            outcomes.append(outcome)
        progress(f"setup: {target.name}: done in {time.monotonic() - started:.0f}s")
    finally:
        device.close()
    return outcomes


__all__ = ["DevicePython", "SetupOutcome", "default_cache_dir", "env_key", "probe_python", "resolve_wheels",
           "setup_target"]
