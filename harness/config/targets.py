"""Declared devices as values: what a target is, and choosing targets from an inventory.

A `Target` (with its `Connection`, `RuntimeDecl`s, `PowerSensor`, `Limits` and
`EnvCapture`) is what one target file declares, checked and frozen; `Inventory` is every
target of one directory and `Inventory.select` turns a ``--target`` spec into targets.
Reading and checking the files is harness.config.target_files; the key reference is
docs/targets.md.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from harness.config.sections import empty_mapping
from harness.errors import UnknownTargetError

KINDS = ("arm-cortex", "jetson", "x86-gpu", "x86-cpu", "local")
TARGETS_DIR_ENV = "HARNESS_TARGETS_DIR"
"""Where target files are when --targets-dir is not given (`harness lab up` says to export it)."""
ARCHES = ("x86_64", "aarch64", "armv7l")
TRANSPORTS = ("local", "ssh", "labgrid")
KNOWN_HOSTS_POLICIES = ("strict", "accept-new")
RUNTIMES = ("paddle-inference", "paddle-lite", "onnxruntime", "litert", "noop")
"""Runtime names a target or a model variant may use. ``noop`` is built in: it runs under
the target's ``python``, loads nothing and measures the harness's own overhead."""
POWER_SENSORS = ("tegrastats", "ina3221", "rapl", "nvml", "command", "estimate", "none")
NAME_PATTERN = re.compile(r"[a-z0-9][a-z0-9._-]*")
"""Target names and tags (a manifest's per-target budgets are checked against it too)."""
_JUMP_PATTERN = re.compile(
    r"(?:(?P<user>[A-Za-z0-9_.][A-Za-z0-9_.-]*)@)?(?P<host>\[[0-9A-Fa-f:.%]+\]|[A-Za-z0-9_.%-]+)(?::(?P<port>\d+))?"
)


DEFAULT_KEEPALIVE_S = 5.0
DEFAULT_LINK_TIMEOUT_S = 15.0
"""A dead link is noticed within about keepalive + link_timeout (20 s by default): the
keepalive makes the host send something, and what it sent going unacknowledged for
link_timeout drops the connection (harness.transport.ssh.connection)."""


@dataclass(frozen=True)
class LabgridPlace:
    """Which labgrid place a ``transport: labgrid`` target reserves: one by name (``place``) or
    any free one whose tags carry ``match`` (``{board: orin-nano}``). ``coordinator`` is the
    target file's address (None: --lg-coordinator, ``$LG_COORDINATOR`` or labgrid's default);
    ``priority`` orders the coordinator's queue (higher first). The board's address, user and
    port come from the place's NetworkService once it is acquired."""

    place: str | None = None
    match: Mapping[str, str] = field(default_factory=empty_mapping, hash=False)
    coordinator: str | None = None
    priority: float = 0.0

    @property
    def filters(self) -> dict[str, str]:
        """The reservation's filter: labgrid's coordinator matches ``name`` against place names."""
        return {"name": self.place} if self.place is not None else dict(self.match)

    def describe(self) -> str:
        return (f"place {self.place}" if self.place is not None
                else "any place with " + " ".join(f"{k}={v}" for k, v in self.match.items()))


@dataclass(frozen=True)
class Connection:
    """How to reach the device. ``key_file`` is a path on this machine, never key material."""

    transport: str
    host: str | None = None
    port: int = 22
    user: str | None = None
    key_file: str | None = None
    jump_host: str | None = None
    ssh_config_host: str | None = None
    known_hosts: str | None = None  # None: not in the target file (ssh_config's StrictHostKeyChecking, else strict)
    known_hosts_file: str | None = None  # on this machine; default: ssh_config's UserKnownHostsFile, ~/.ssh/known_hosts
    connect_timeout_s: float = 10.0
    keepalive_s: float = DEFAULT_KEEPALIVE_S  # an SSH keepalive after this long without traffic from the host
    link_timeout_s: float = DEFAULT_LINK_TIMEOUT_S  # TCP_USER_TIMEOUT: unacknowledged data this long drops it
    labgrid: LabgridPlace | None = None  # transport: labgrid: the place (or kind of place) to reserve


@dataclass(frozen=True)
class RuntimeDecl:
    """A runtime available on the device and the interpreter (on the device) that runs it."""

    name: str
    python: str
    options: Mapping[str, Any] = field(default_factory=empty_mapping, hash=False)
    setup_env: str | None = None
    """For a runtime installed by `harness targets setup`: its environment's directory relative
    to the target's workdir (``envs/<runtime>``); the interpreter is then that environment's
    ``bin/python3`` (resolved once the workdir's absolute path is known, see `harness.run.device`)."""


SETUP_ENVS_DIR = "envs"
"""Where `harness targets setup` installs runtime environments, relative to the workdir."""


@dataclass(frozen=True)
class PowerSensor:
    """Which power sensor the agent samples on the device; options go to the sensor plugin."""

    kind: str
    options: Mapping[str, Any] = field(default_factory=empty_mapping, hash=False)


@dataclass(frozen=True)
class Limits:
    max_parallel_jobs: int = 1
    job_timeout_s: float = 900.0


@dataclass(frozen=True)
class EnvCapture:
    """Extra environment facts recorded per run: files read and commands (argv, no shell) run."""

    files: tuple[str, ...] = ()
    commands: tuple[tuple[str, ...], ...] = ()


@dataclass(frozen=True)
class Target:
    """One declared device, validated. ``source`` is the file it came from.

    ``emulated`` marks a device imitated by the simulated lab (e.g. an aarch64 board under
    emulation): its numbers say nothing about the real device's speed. ``emulation`` says
    how, when the target file gives ``emulated`` as a string instead of ``true``.
    ``setup`` is what `harness targets setup` installs: runtime -> pip requirements.
    ``shaping`` says how a simulated device's resources are rationed and what that was measured
    to do (``cpu``, ``statement``, ``calibrated``, ``calibration``; written by `harness lab up`,
    see harness.lab.shaping): the report shows it beside the device's numbers.
    """

    name: str
    kind: str
    arch: str
    description: str
    connection: Connection
    workdir: str
    python: str
    runtimes: Mapping[str, RuntimeDecl] = field(hash=False)
    power: PowerSensor
    tags: tuple[str, ...]
    limits: Limits
    env_capture: EnvCapture
    source: str
    emulated: bool = False
    emulation: str = ""
    setup: Mapping[str, tuple[str, ...]] = field(default_factory=empty_mapping, hash=False)
    shaping: Mapping[str, Any] = field(default_factory=empty_mapping, hash=False)


def split_jump_host(value: str) -> tuple[str | None, str, int | None] | None:
    """Split ``user@host:port`` (user and port optional; IPv6 in brackets) or an alias.

    Returns (user, host, port), or None when ``value`` is not of that form.
    """
    match = _JUMP_PATTERN.fullmatch(value)
    if match is None:
        return None
    port = match.group("port")
    if port is not None and not 1 <= int(port) <= 65535:
        return None
    return match.group("user"), match.group("host").strip("[]"), int(port) if port is not None else None



@dataclass(frozen=True)
class Inventory:
    """All targets declared in one directory, by name (sorted)."""

    directory: str
    targets: Mapping[str, Target] = field(hash=False)

    def select(self, spec: str, tag: str | None = None) -> tuple[Target, ...]:
        """Targets named by ``spec`` (``all``, a name, or a comma list), optionally only
        those tagged ``tag``. A tag no target in the directory carries is an error (a typo);
        a known tag that none of the selected targets carry selects nothing."""
        names = self._names(spec)
        chosen = tuple(self.targets[name] for name in names)
        if tag is None:
            return chosen
        if not any(tag in target.tags for target in self.targets.values()):
            raise UnknownTargetError(
                f"no target in {self._shown_directory()} has tag {tag!r}; tags in use: {self._tags_text()}"
            )
        return tuple(target for target in chosen if tag in target.tags)

    def _names(self, spec: str) -> tuple[str, ...]:
        items = [item.strip() for item in spec.split(",")]
        if not any(items):
            raise UnknownTargetError(
                f"empty target selection; give a name, a comma list or 'all' ({self._known_text()})"
            )
        if "all" in items:
            return tuple(self.targets)
        for item in items:
            if item and item not in self.targets:
                raise UnknownTargetError(
                    f"unknown target {item!r}; {self._known_text()} "
                    f"(add {self._shown_directory()}{item}.yaml or fix the name)"
                )
        return tuple(dict.fromkeys(item for item in items if item))

    def _shown_directory(self) -> str:
        return self.directory.rstrip("/") + "/"

    def _known_text(self) -> str:
        known = ", ".join(self.targets) or "(none)"
        return f"known targets in {self._shown_directory()}: {known}"

    def _tags_text(self) -> str:
        tags = sorted({tag for target in self.targets.values() for tag in target.tags})
        return ", ".join(tags) or "(none)"


__all__ = [
    "ARCHES",
    "KINDS",
    "KNOWN_HOSTS_POLICIES",
    "LabgridPlace",
    "NAME_PATTERN",
    "POWER_SENSORS",
    "RUNTIMES",
    "SETUP_ENVS_DIR",
    "TRANSPORTS",
    "Connection",
    "EnvCapture",
    "Inventory",
    "Limits",
    "PowerSensor",
    "RuntimeDecl",
    "Target",
    "split_jump_host",
]
