"""The lab's devices: what each simulated device is (plain data, no behaviour).

A `DeviceSpec` is name, kind, honest arch, CPU quota, memory limit, the size of its home
tmpfs ("disk"), an optional link rate, tags, and the Python interpreters (`PythonEnv`) its
runtimes run under. `DEFAULT_LAB` is the lab `harness lab up` builds; `WITH_ARM_LAB` adds
the emulated arm64 device. How an interpreter becomes a device's "vendor image" is
`harness.lab.images`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType

from harness.lab.rootfs import ARM64_BOOKWORM, RootfsSpec
from harness.lab.sshd import LabError

MiB = 1 << 20
GiB = 1 << 30
REPO = Path(__file__).resolve().parents[2]
HOST_VENV_PYTHON = str(REPO / ".venv" / "bin" / "python")

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

__all__ = [
    "ARM64_QEMU",
    "DEFAULT_LAB",
    "GiB",
    "HOST_VENV",
    "HOST_VENV_PYTHON",
    "MiB",
    "PY36_ORT",
    "REPO",
    "SIMULATED_SENSORS",
    "WITH_ARM_LAB",
    "DeviceSpec",
    "LabSpec",
    "PythonEnv",
]
