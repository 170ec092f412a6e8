"""The lab's devices: what each simulated device is (spec) and what is installed on it (image).

A `DeviceSpec` is plain data: name, kind, honest arch, CPU quota, memory limit, the size of
its home tmpfs ("disk"), an optional link rate, tags, and the Python interpreters its
runtimes run under. `DEFAULT_LAB` is the lab `harness lab up` builds.

Interpreters (`PythonEnv`) are either used as they are (`venv=False`: a path on this machine,
which every device sees because namespaces share the filesystem) or built by the lab on the
host as a virtual environment with pinned wheels: the devices have no internet, so this is
their "vendor image". Built environments are cached under ``<cache_dir>/envs/<name>-<key>/``
(key = base interpreter + packages + platform) and reused across `up`/`down` cycles; a
``.complete`` file written last marks a finished build, so an interrupted one is redone.

Wheels for an interpreter other than the host's are fetched by the host's pip for the
device's Python version / ABI / platform (`pip download --only-binary=:all: --python-version
36 ...`) into ``<cache_dir>/wheels/`` and unpacked into the environment with ``pip install
--target`` (the device interpreter needs no pip of its own; Python 3.6's pip is too old for
manylinux2014 wheels anyway), then byte-compiled by the device interpreter.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType

from harness.streamed import run_streamed
from harness.lab.rootfs import ARM64_BOOKWORM, RootfsSpec
from harness.lab.sshd import LabError

MiB = 1 << 20
GiB = 1 << 30
REPO = Path(__file__).resolve().parents[2]
HOST_VENV_PYTHON = str(REPO / ".venv" / "bin" / "python")

Progress = Callable[[str], None]

SIMULATED_SENSORS = {"ina3221": "harness.agent.sensors.simulated"}
"""Power sensors the lab simulates on the host for a device that declares them: sensor kind ->
module run as ``<host venv python> -m MODULE <device power root> <device cpuacct.usage>``
(a Jetson Nano INA3221, JetPack 4 iio layout, whose power follows the device's CPU usage)."""

ONNXRUNTIME_PY36 = "1.10.0"
"""Newest onnxruntime with cp36 x86_64 wheels on PyPI (1.11.0 dropped 3.6; checked with
`pip download --no-deps --only-binary=:all: --python-version 36 --platform manylinux2014_x86_64`)."""


@dataclass(frozen=True)
class PythonEnv:
    """An interpreter on the device.

    ``base`` is ``pyenv:<version>`` (resolved with ``pyenv prefix``) or an absolute path.
    With ``venv=False`` the base interpreter is used as it is; otherwise the lab builds a
    virtual environment from it holding ``packages`` (pinned requirement strings).
    ``check`` is a statement run by the built interpreter to prove the image works.
    """

    name: str
    base: str
    packages: tuple[str, ...] = ()
    venv: bool = True
    check: str = ""


@dataclass(frozen=True)
class DeviceSpec:
    """One simulated device. Sizes in bytes; ``cpu_quota`` in cores (None: unlimited)."""

    name: str
    kind: str
    arch: str
    description: str
    cpu_quota: float | None
    memory_limit: int
    disk_size: int
    link_rate: str | None
    tags: tuple[str, ...]
    python: PythonEnv
    runtimes: Mapping[str, PythonEnv] = field(default_factory=lambda: MappingProxyType({}), hash=False)
    power_sensor: str = "none"
    workdir: str = "harness-work"
    job_timeout: str = "15min"
    rootfs: RootfsSpec | None = None
    """A foreign-architecture root filesystem the device's sessions are chrooted into (run
    under qemu-user): the device's whole userland, python included, is that architecture's.
    ``python`` then names a path inside it (``venv=False``) and no host image is built."""
    setup: Mapping[str, tuple[str, ...]] = field(default_factory=lambda: MappingProxyType({}), hash=False)
    """The target file's ``setup:`` (runtime -> pip requirements): what `harness targets setup`
    installs on the device (wheels resolved on the host for the device's platform)."""
    emulation: str = ""
    """How the device is emulated, for its target file's ``emulated`` (the report shows it)."""
    cpu_period_us: int = 10_000
    """CFS period of a device with one core or more (a whole-core quota only caps how many
    threads run at once). Under one core the period is chosen by measurement at `lab up`
    (`harness.lab.shaping`): the kernel's default 100 ms, or even 10 ms, lets short
    inferences run at full host speed between stalls, so only throughput would be shaped."""

    @property
    def simulated_power(self) -> bool:
        """The lab runs a simulated sensor for this device (`SIMULATED_SENSORS`)."""
        return self.power_sensor in SIMULATED_SENSORS

    def envs(self) -> tuple[PythonEnv, ...]:
        """The distinct host-built interpreters this device needs (agent's first); none for a
        device with its own root filesystem (its interpreters live inside it)."""
        if self.rootfs is not None:
            return ()
        seen: dict[str, PythonEnv] = {self.python.name: self.python}
        for env in self.runtimes.values():
            seen.setdefault(env.name, env)
        return tuple(seen.values())


@dataclass(frozen=True)
class LabSpec:
    """A set of devices plus the names and addresses the lab uses on this machine.

    ``prefix`` names everything the lab creates (bridge ``<prefix>0``, namespaces, users
    ``<prefix>-<device>``, veths ``<prefix>v<index>``), so a test lab with another prefix can
    run beside a user's lab. Device *i* (position in ``devices``) gets host address 10+i of
    ``subnet``; the bridge takes address 1.
    """

    devices: tuple[DeviceSpec, ...]
    prefix: str = "hlab"
    subnet: str = "10.200.0.0/24"
    cgroup_parent: str = "harness-lab"

    def device(self, name: str) -> DeviceSpec:
        for device in self.devices:
            if device.name == name:
                return device
        known = ", ".join(d.name for d in self.devices)
        raise LabError(f"no device {name!r} in the lab; devices: {known}")

    def index(self, name: str) -> int:
        return [d.name for d in self.devices].index(name)

    def select(self, names: tuple[str, ...] | list[str] | None) -> tuple[DeviceSpec, ...]:
        if not names:
            return self.devices
        return tuple(self.device(name) for name in dict.fromkeys(names))


PY36_ORT = PythonEnv(
    name="py36-onnxruntime",
    base="pyenv:3.6.15",
    packages=(f"onnxruntime=={ONNXRUNTIME_PY36}", "numpy==1.19.5", "protobuf==3.19.6", "flatbuffers==2.0"),
    check="import onnxruntime, numpy; print(onnxruntime.__version__, numpy.__version__)",
)
HOST_VENV = PythonEnv(name="host-venv", base=HOST_VENV_PYTHON, venv=False)

DEFAULT_LAB = LabSpec(
    devices=(
        DeviceSpec(
            name="jetson-nano",
            kind="jetson",
            arch="x86_64",
            description="Lab twin of a Jetson Nano on JetPack 4 (Python 3.6, onnxruntime "
            f"{ONNXRUNTIME_PY36}): half a core, 2 GiB, 256 MiB disk; x86_64, not a real Jetson",
            cpu_quota=0.5,
            memory_limit=2 * GiB,
            disk_size=256 * MiB,
            link_rate=None,
            tags=("lab", "jetson", "py36", "edge"),
            python=PY36_ORT,
            runtimes=MappingProxyType({"onnxruntime": PY36_ORT}),
            power_sensor="ina3221",
            job_timeout="30min",
        ),
        DeviceSpec(
            name="edge-cpu",
            kind="x86-cpu",
            arch="x86_64",
            description="Lab edge CPU box (RK3588-class budget): 1 core, 1 GiB, 256 MiB disk, Paddle Inference",
            cpu_quota=1.0,
            memory_limit=1 * GiB,
            disk_size=256 * MiB,
            link_rate=None,
            tags=("lab", "x86", "cpu", "edge"),
            python=HOST_VENV,
            runtimes=MappingProxyType({"paddle-inference": HOST_VENV}),
        ),
        DeviceSpec(
            name="slow-link",
            kind="x86-cpu",
            arch="x86_64",
            description="Lab device behind a 20 Mbit/s link (tbf): 1 core, 1 GiB, 256 MiB disk",
            cpu_quota=1.0,
            memory_limit=1 * GiB,
            disk_size=256 * MiB,
            link_rate="20mbit",
            tags=("lab", "x86", "cpu", "slow-link"),
            python=HOST_VENV,
            runtimes=MappingProxyType({"paddle-inference": HOST_VENV}),
        ),
    )
)

ONNXRUNTIME_ARM64 = ("onnxruntime==1.31.1", "numpy==2.4.6")
"""What `harness targets setup` installs on the emulated arm64 device: the host's own
onnxruntime and numpy versions (pyproject.toml), as cp311 manylinux aarch64 wheels for
bookworm's Python 3.11."""

ARM64_QEMU = DeviceSpec(
    name="arm64-qemu",
    kind="arm-cortex",
    arch="aarch64",
    description="Emulated aarch64 board: a Debian bookworm arm64 userland (Python 3.11) run by qemu-user on "
                "this x86_64 machine; one core, 2 GiB, 512 MiB disk. Its latency is qemu's, not an ARM board's",
    cpu_quota=1.0,
    memory_limit=2 * GiB,
    disk_size=512 * MiB,
    link_rate=None,
    tags=("lab", "arm", "aarch64", "emulated"),
    python=PythonEnv(name="arm64-python3", base="/usr/bin/python3", venv=False),
    rootfs=ARM64_BOOKWORM,
    setup=MappingProxyType({"onnxruntime": ONNXRUNTIME_ARM64}),
    emulation="qemu-user aarch64 on an x86_64 host (binfmt_misc); arm64 Debian bookworm userland",
    job_timeout="30min",
)

WITH_ARM_LAB = LabSpec(devices=(*DEFAULT_LAB.devices, ARM64_QEMU))
"""`harness lab up --with-arm`: the default lab plus the emulated arm64 device."""

# ---------------------------------------------------------------------------------------------
# Images: building (or finding) the interpreters
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class BuiltEnv:
    """An interpreter ready on this machine. ``complete`` is False for a bare environment made
    without its packages (``install=False`` and nothing cached)."""

    name: str
    python: str
    version: str
    complete: bool
    path: str | None = None


def resolve_base(env: PythonEnv) -> str:
    """The base interpreter's absolute path; a clear error if it is not installed."""
    if env.base.startswith("pyenv:"):
        version = env.base.split(":", 1)[1]
        pyenv = shutil.which("pyenv") or os.path.expanduser("~/.pyenv/bin/pyenv")
        prefix = None
        if os.path.exists(pyenv):
            done = subprocess.run([pyenv, "prefix", version], capture_output=True, text=True)
            if done.returncode == 0:
                prefix = done.stdout.strip()
        short = ".".join(version.split(".")[:2])
        candidates = [os.path.join(prefix, "bin", f"python{short}")] if prefix else []
        candidates.append(shutil.which(f"python{short}") or "")
        for candidate in candidates:
            if candidate and os.path.exists(candidate):
                return candidate
        raise LabError(f"{env.name}: Python {version} not found: install it (pyenv install {version}) "
                       f"so that `pyenv prefix {version}` works")
    if not os.path.isabs(env.base) or not os.path.exists(env.base):
        raise LabError(f"{env.name}: interpreter {env.base} not found (make envs creates the project venvs)")
    return env.base


def _interpreter_facts(python: str) -> dict[str, str]:
    code = ("import sys, platform; print(sys.version.split()[0]); print(getattr(sys, 'abiflags', '')); "
            "print(platform.machine())")
    done = subprocess.run([python, "-c", code], capture_output=True, text=True, env=_clean_env())
    if done.returncode != 0:
        raise LabError(f"{python} does not run: {done.stderr.strip()[-300:]}")
    version, abiflags, machine = done.stdout.splitlines()[:3]
    return {"version": version, "abiflags": abiflags, "machine": machine}


def _clean_env() -> dict[str, str]:
    return {"PATH": "/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8"}


def env_key(env: PythonEnv, base: str) -> str:
    text = json.dumps({"base": os.path.realpath(base), "packages": list(env.packages)}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def env_dir(env: PythonEnv, cache_dir: Path) -> Path:
    """Where `build_env` puts ``env`` (packages or not: a bare env has its own key)."""
    return Path(cache_dir) / "envs" / f"{env.name}-{env_key(env, resolve_base(env))}"


def cached_env(env: PythonEnv, cache_dir: Path) -> BuiltEnv | None:
    """The finished environment if it is already in the cache (never builds)."""
    if not env.venv:
        base = resolve_base(env)
        return BuiltEnv(env.name, base, _interpreter_facts(base)["version"], True)
    directory = env_dir(env, cache_dir)
    marker = directory / ".complete"
    if not marker.exists():
        return None
    facts = json.loads(marker.read_text())
    return BuiltEnv(env.name, str(directory / "bin" / "python"), facts["version"], True, str(directory))


def build_env(env: PythonEnv, cache_dir: Path, progress: Progress = print, install: bool = True) -> BuiltEnv:
    """The environment for ``env``, from the cache or built now (with progress lines).

    With ``install=False`` a missing environment is made bare (the interpreter, no packages:
    seconds instead of a download) and returned with ``complete=False``.
    """
    found = cached_env(env, cache_dir)
    if found is not None:
        if env.venv:
            progress(f"  image {env.name}: cached at {found.path} (Python {found.version})")
        return found
    if not install and env.packages:
        bare = PythonEnv(name=f"{env.name}-bare", base=env.base, packages=(), venv=True)
        progress(f"  image {env.name}: not cached and package installs skipped: a bare Python venv "
                 f"without {', '.join(p.split('==')[0] for p in env.packages)}")
        built = build_env(bare, cache_dir, progress, install=False)
        return BuiltEnv(env.name, built.python, built.version, False, built.path)
    cache_dir = Path(cache_dir)
    (cache_dir / "envs").mkdir(parents=True, exist_ok=True)
    with open(cache_dir / "envs" / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # another `lab up` or test building the same image
        found = cached_env(env, cache_dir)
        if found is not None:
            return found
        return _build_locked(env, cache_dir, progress)


def _build_locked(env: PythonEnv, cache_dir: Path, progress: Progress) -> BuiltEnv:
    started = time.monotonic()
    base = resolve_base(env)
    facts = _interpreter_facts(base)
    directory = env_dir(env, cache_dir)
    if directory.exists():
        shutil.rmtree(directory)  # an interrupted build
    progress(f"  image {env.name}: creating a Python {facts['version']} venv from {base}")
    _run([base, "-m", "venv", "--without-pip", str(directory)], f"{env.name}: python -m venv", progress)
    python = directory / "bin" / "python"
    if env.packages:
        major, minor = facts["version"].split(".")[:2]
        site = directory / "lib" / f"python{major}.{minor}" / "site-packages"
        cross = ["--only-binary=:all:", "--python-version", f"{major}{minor}", "--implementation", "cp",
                 "--abi", f"cp{major}{minor}{facts['abiflags']}",
                 "--platform", f"manylinux2014_{facts['machine']}"]
        wheels = cache_dir / "wheels"
        wheels.mkdir(parents=True, exist_ok=True)
        progress(f"  image {env.name}: fetching wheels for cp{major}{minor} {facts['machine']}: "
                 f"{' '.join(env.packages)} (into {wheels}; reused next time)")
        pip = [sys.executable, "-m", "pip", "--disable-pip-version-check"]
        _run([*pip, "download", "--progress-bar", "off", *cross, "-d", str(wheels), *env.packages],
             f"{env.name}: pip download", progress, echo=True)
        progress(f"  image {env.name}: installing into {site}")
        _run([*pip, "install", "--no-index", "--find-links", str(wheels), "--no-compile", "--no-warn-conflicts",
              "--progress-bar", "off", *cross, "--target", str(site), *env.packages],
             f"{env.name}: pip install", progress, echo=True)
        progress(f"  image {env.name}: byte-compiling with Python {facts['version']}")
        subprocess.run([str(python), "-m", "compileall", "-q", str(site)], capture_output=True, env=_clean_env())
    if env.check:
        progress(f"  image {env.name}: checking: {env.check}")
        done = subprocess.run([str(python), "-c", env.check], capture_output=True, text=True, env=_clean_env())
        if done.returncode != 0:
            raise LabError(f"{env.name}: the built environment fails its check ({env.check}): "
                           f"{done.stderr.strip()[-400:]}")
        progress(f"  image {env.name}: ok: {done.stdout.strip()}")
    _make_readable(directory)
    (directory / ".complete").write_text(json.dumps({"version": facts["version"], "base": base,
                                                     "packages": list(env.packages)}))
    progress(f"  image {env.name}: built in {time.monotonic() - started:.0f}s")
    return BuiltEnv(env.name, str(python), facts["version"], True, str(directory))


def _make_readable(directory: Path) -> None:
    """Device users (not root) must read and run the image."""
    for root, dirs, files in os.walk(directory):
        for name in dirs:
            os.chmod(os.path.join(root, name), 0o755)
        for name in files:
            path = os.path.join(root, name)
            if not os.path.islink(path):
                os.chmod(path, os.stat(path).st_mode | 0o444)
    os.chmod(directory, 0o755)


def _run(argv: list[str], what: str, progress: Progress, echo: bool = False) -> None:
    """Run a build step, streaming its output as progress lines when ``echo``."""
    def on_line(line: str) -> None:
        if echo and not line.startswith("WARNING: Location"):
            progress(f"    {line}")

    finished = run_streamed(argv, on_line, keep=4)
    if finished.returncode != 0:
        raise LabError(f"{what} failed (exit {finished.returncode}): {' | '.join(finished.lines)}")


__all__ = [
    "DEFAULT_LAB",
    "GiB",
    "MiB",
    "BuiltEnv",
    "DeviceSpec",
    "LabSpec",
    "PythonEnv",
    "SIMULATED_SENSORS",
    "build_env",
    "cached_env",
    "env_dir",
    "resolve_base",
]
