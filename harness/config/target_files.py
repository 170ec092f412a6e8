"""Reading target files: one YAML file per device in a targets directory.

`load_target` reads and checks one file into a frozen `Target`; `load_inventory` reads a
directory (not its subdirectories, so ``targets/examples/`` is never part of ``all``) into
an `Inventory`. The key reference is docs/targets.md.

Paths: for ``transport: local`` targets, ``~`` and ``${VAR}`` are expanded and relative
paths are resolved against the target file's directory (a bare interpreter name such as
``python3`` is looked up on PATH). For ``ssh`` targets the paths live on the device and
are kept as written. ``key_file`` is always a path on this machine.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from types import MappingProxyType
from typing import Any

from harness.config.labgrid_connection import LABGRID_KEYS, read_labgrid_place
from harness.config.sections import (
    Section,
    check_choice,
    check_name,
    check_plain_path,
    describe,
    empty_mapping,
    freeze,
    join_key,
    load_yaml_mapping,
)
from harness.config.target_paths import LocalPaths, RemotePaths
from harness.config.targets import (
    ARCHES,
    DEFAULT_KEEPALIVE_S,
    DEFAULT_LINK_TIMEOUT_S,
    KINDS,
    KNOWN_HOSTS_POLICIES,
    NAME_PATTERN,
    POWER_SENSORS,
    RUNTIMES,
    SETUP_ENVS_DIR,
    TRANSPORTS,
    Connection,
    EnvCapture,
    Inventory,
    Limits,
    PowerSensor,
    RuntimeDecl,
    Target,
    split_jump_host,
)
from harness.errors import ConfigError

_ARCHES_BY_KIND: Mapping[str, tuple[str, ...]] = MappingProxyType(
    {"arm-cortex": ("aarch64", "armv7l"), "jetson": ("aarch64",), "x86-gpu": ("x86_64",), "x86-cpu": ("x86_64",)}
)
_NAME_HINT = "start with a lower-case letter or digit, then use lower-case letters, digits, '.', '_' or '-'"
_HOST_PATTERN = re.compile(r"[A-Za-z0-9_.:%\[\]-]+")
_USER_PATTERN = re.compile(r"[A-Za-z0-9_.][A-Za-z0-9_.-]*")

_TOP_KEYS = (
    "name", "kind", "arch", "description", "connection", "workdir", "python", "runtimes",
    "power", "tags", "limits", "env_capture", "emulated", "setup", "shaping",
)  # fmt: skip
_SHAPING_KEYS = ("cpu", "statement", "calibrated", "calibration")
_CONNECTION_KEYS = (
    "transport", "host", "port", "user", "key_file", "jump_host", "ssh_config_host",
    "known_hosts", "known_hosts_file", "connect_timeout", "keepalive", "link_timeout",
)  # fmt: skip
_SSH_ONLY_KEYS = _CONNECTION_KEYS[1:]
_SSH_LEG_KEYS = ("key_file", "known_hosts", "known_hosts_file", "connect_timeout", "keepalive", "link_timeout")
_PASSWORD_MESSAGE = "passwords are not allowed in target files; use key_file or an ssh-agent"
_REQUIREMENT_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*(\[[A-Za-z0-9._, -]+\])?\s*([<>=!~]=?.*)?")


def load_target(path: str | Path) -> Target:
    """Read and check one target file; ``name`` must equal the file's stem."""
    source = str(path)
    top = Section.of(_reject_password(load_yaml_mapping(path), source, ""), source, "", _TOP_KEYS)
    name = _read_name(top, Path(path).stem)
    kind = top.get_choice("kind", KINDS)
    arch = top.get_choice("arch", ARCHES)
    emulated, emulation = _read_emulated(top)
    _check_kind_arch(top, kind, arch, emulated)
    base_dir = os.path.abspath(Path(path).parent)
    connection = _read_connection(top, base_dir)
    if kind == "local" and connection.transport != "local":
        raise top.error("connection.transport", "a target of kind 'local' must use transport: local")
    paths = LocalPaths(source, base_dir) if connection.transport == "local" else RemotePaths(source)
    python = paths.interpreter(top.get_str("python"), top.key("python"))
    setup = _read_setup(top)
    return Target(
        name=name,
        kind=kind,
        arch=arch,
        description=top.get_str("description", ""),
        connection=connection,
        workdir=paths.workdir(top.get_str("workdir"), top.key("workdir")),
        python=python,
        runtimes=_read_runtimes(top, python, paths, setup),
        power=_read_power(top),
        tags=_read_tags(top),
        limits=_read_limits(top),
        env_capture=_read_env_capture(top),
        source=source,
        emulated=emulated,
        emulation=emulation,
        setup=setup,
        shaping=_read_shaping(top),
    )


def _read_shaping(top: Section) -> Mapping[str, Any]:
    """``shaping: {cpu, statement, calibrated, calibration}``: the first three are sentences,
    ``calibration`` the measured figures (a list of mappings, kept as they are)."""
    section = top.get_section("shaping", _SHAPING_KEYS)
    if not section.data:
        return empty_mapping()
    for name in ("cpu", "statement"):
        section.get_str(name)  # required: what is shaped, and what that does to the numbers
    section.get_str("calibrated", "")
    calibration = section.raw("calibration", [])
    if not isinstance(calibration, list) or not all(isinstance(row, dict) for row in calibration):
        raise section.error("calibration", f"expected a list of measured figures, got {describe(calibration)}")
    return freeze(section.data, top.source, section.path)


def _read_emulated(top: Section) -> tuple[bool, str]:
    """``emulated: true`` or a string saying how the device is emulated (implies true)."""
    value = top.raw("emulated")
    if isinstance(value, str):
        if value.strip().lower() in ("", "yes", "no", "true", "false", "on", "off", "y", "n", "0", "1"):
            raise top.error("emulated", f"expected true or false (unquoted), or a description of how the device is "
                            f"emulated, got {value!r}")
        return True, value.strip()
    return top.get_bool("emulated", False), ""


def _read_setup(top: Section) -> Mapping[str, tuple[str, ...]]:
    """``setup: {<runtime>: [<pip requirement>, ...]}``: what `harness targets setup` installs.

    Requirements go to pip as arguments (never through a shell); one starting with ``-`` would
    be taken as a pip option (``--index-url``, ``-r FILE``), so only plain requirement
    specifiers are accepted."""
    section = top.get_section("setup", tuple(r for r in RUNTIMES if r != "noop"))
    setup: dict[str, tuple[str, ...]] = {}
    for runtime in section.data:
        packages = section.get_str_list(runtime, ())
        if not packages:
            raise section.error(runtime, "expected a non-empty list of pip requirements, "
                                "e.g. [onnxruntime==1.31.1, numpy]")
        for index, package in enumerate(packages):
            if not _REQUIREMENT_PATTERN.fullmatch(package) or "\n" in package:
                raise ConfigError(top.source, join_key(section.key(runtime), index),
                                  f"{package!r} is not a plain pip requirement (name[extras] and a version "
                                  "specifier such as ==1.2): options and URLs are not accepted")
        setup[runtime] = packages
    return MappingProxyType(setup)


def _reject_password(data: Mapping[str, Any], source: str, path: str) -> Mapping[str, Any]:
    if "password" in data:
        raise ConfigError(source, join_key(path, "password"), _PASSWORD_MESSAGE)
    return data


def _read_name(top: Section, stem: str) -> str:
    name = check_name(top.get_str("name"), NAME_PATTERN, top.source, "name", "target name", _NAME_HINT)
    if name != stem:
        raise top.error(
            "name",
            f"name {name!r} does not match the file name {stem!r}: rename the file to {name}.yaml or set name: {stem}",
        )
    return name


def _check_kind_arch(top: Section, kind: str, arch: str, emulated: bool) -> None:
    """Catch typos such as a Jetson declared x86_64; the simulated lab (emulated) may mix."""
    allowed = _ARCHES_BY_KIND.get(kind)
    if allowed is not None and arch not in allowed and not emulated:
        raise top.error("arch", f"a {kind} target has arch {' or '.join(allowed)}, not {arch!r}: fix kind or arch")


def _read_connection(top: Section, base_dir: str) -> Connection:
    raw = top.raw("connection")
    if isinstance(raw, Mapping):
        _reject_password(raw, top.source, "connection")
    labgrid = isinstance(raw, Mapping) and raw.get("transport") == "labgrid"
    allowed = ("transport", *_SSH_LEG_KEYS, *LABGRID_KEYS) if labgrid else _CONNECTION_KEYS
    section = top.get_section("connection", allowed, required=("transport",), default_empty=False)
    transport = section.get_choice("transport", TRANSPORTS)
    if transport == "local":
        for name in _SSH_ONLY_KEYS:
            if section.has(name):
                raise section.error(name, "only allowed with transport: ssh; remove it for a local target")
        return Connection(transport="local")
    if transport == "labgrid":  # the board's host, port and user come from the place's NetworkService
        return Connection(transport="labgrid", labgrid=read_labgrid_place(section), **_ssh_leg(section, base_dir))
    host = _optional_word(section, "host", _HOST_PATTERN, "a host name or IP address")
    alias = _optional_word(section, "ssh_config_host", _HOST_PATTERN, "a Host alias from ~/.ssh/config")
    if host is None and alias is None:
        raise section.error("host", "an ssh target needs host or ssh_config_host: add one")
    return Connection(
        transport="ssh",
        host=host,
        port=section.get_int("port", 22, minimum=1, maximum=65535),
        user=_optional_word(section, "user", _USER_PATTERN, "a login name"),
        jump_host=_read_jump_host(section),
        ssh_config_host=alias,
        **_ssh_leg(section, base_dir),
    )


def _ssh_leg(section: Section, base_dir: str) -> dict[str, Any]:
    """The SSH settings an ssh target and a labgrid target (whose board is reached over SSH) share."""
    return dict(
        key_file=_read_key_file(section, base_dir),
        known_hosts=section.get_choice("known_hosts", KNOWN_HOSTS_POLICIES, None),
        known_hosts_file=_read_local_path(section, "known_hosts_file", base_dir),
        connect_timeout_s=section.get_duration("connect_timeout", 10.0, positive=True),
        keepalive_s=_read_at_least(section, "keepalive", DEFAULT_KEEPALIVE_S, 1.0,
                                   "paramiko sends keepalives in whole seconds"),
        link_timeout_s=_read_at_least(section, "link_timeout", DEFAULT_LINK_TIMEOUT_S, 0.001,
                                      "TCP_USER_TIMEOUT counts whole milliseconds"),
    )


def _read_at_least(section: Section, name: str, default: float, minimum: float, why: str) -> float:
    value: float = section.get_duration(name, default, positive=True)
    if value < minimum:
        raise section.error(name, f"{value:g}s is too short: use {minimum:g}s or more ({why})")
    return value


def _optional_word(section: Section, name: str, pattern: re.Pattern[str], what: str) -> str | None:
    """A host/user/alias: one word, not starting with '-' (it must never read as an option)."""
    value: str | None = section.get_str(name, None)
    if value is not None and (value.startswith("-") or not pattern.fullmatch(value)):
        raise section.error(name, f"{value!r} is not {what}: no spaces, no leading '-'")
    return value


def _read_key_file(section: Section, base_dir: str) -> str | None:
    value: str | None = section.get_str("key_file", None)
    if value is None:
        return None
    if "PRIVATE KEY" in value or "\n" in value:
        raise section.error(
            "key_file",
            "looks like key material, not a path: keep the key in a file and give its path (or use an ssh-agent)",
        )
    return LocalPaths(section.source, base_dir).path(value, section.key("key_file"))


def _read_local_path(section: Section, name: str, base_dir: str) -> str | None:
    value: str | None = section.get_str(name, None)
    if value is None:
        return None
    return LocalPaths(section.source, base_dir).path(value, section.key(name))


def _read_jump_host(section: Section) -> str | None:
    value: str | None = section.get_str("jump_host", None)
    if value is None:
        return None
    if value.startswith("-") or split_jump_host(value) is None:
        raise section.error("jump_host", f"{value!r} is not 'user@host:port', 'host' or an ~/.ssh/config alias")
    return value


def _read_runtimes(top: Section, python: str, paths: LocalPaths | RemotePaths,
                   setup: Mapping[str, tuple[str, ...]]) -> Mapping[str, RuntimeDecl]:
    """Declared runtimes, plus one per ``setup`` entry not declared (its interpreter is the
    environment `harness targets setup` makes)."""
    section = top.get_section("runtimes", RUNTIMES)
    runtimes: dict[str, RuntimeDecl] = {}
    for name in section.data:
        runtimes[name] = _read_runtime(section, name, python, paths)
    for name in setup:
        if name in runtimes:
            raise top.error(f"setup.{name}", f"runtime {name!r} is both declared under runtimes (an interpreter "
                            "already on the device) and under setup (installed by `harness targets setup`): keep one")
        env = f"{SETUP_ENVS_DIR}/{name}"
        runtimes[name] = RuntimeDecl(name=name, python=f"{env}/bin/python3", setup_env=env)
    runtimes.setdefault("noop", RuntimeDecl(name="noop", python=python))
    return MappingProxyType(runtimes)


def _read_runtime(section: Section, name: str, python: str, paths: LocalPaths | RemotePaths) -> RuntimeDecl:
    """An entry is an interpreter path, or ``{python: PATH, options: {...}}`` (python defaults
    to the target's ``python``)."""
    value = section.data[name]
    if isinstance(value, str):
        return RuntimeDecl(name=name, python=paths.interpreter(value, section.key(name)))
    if value is not None and not isinstance(value, Mapping):
        raise section.error(name, "expected an interpreter path or a mapping with python/options, "
                            f"got {describe(value)}")
    entry = section.get_section(name, ("python", "options"))
    interpreter = entry.get_str("python", None)
    return RuntimeDecl(
        name=name,
        python=python if interpreter is None else paths.interpreter(interpreter, entry.key("python")),
        options=entry.get_frozen("options"),
    )


def _read_power(top: Section) -> PowerSensor:
    """``power: tegrastats`` or ``power: {sensor: tegrastats, options: {...}}``; absent = none."""
    value = top.raw("power")
    if value is None:
        return PowerSensor(kind="none")
    if isinstance(value, str):
        return PowerSensor(kind=check_choice(value, POWER_SENSORS, top.source, "power"))
    section = top.get_section("power", ("sensor", "options"), required=("sensor",))
    kind = section.get_choice("sensor", POWER_SENSORS)
    options = section.get_frozen("options")
    if kind == "command":
        _check_argv(options.get("argv"), section.source, join_key(section.key("options"), "argv"))
    return PowerSensor(kind=kind, options=options)


def _check_argv(value: object, source: str, key: str) -> tuple[str, ...]:
    if not isinstance(value, tuple) or not value or not all(isinstance(item, str) for item in value):
        raise ConfigError(
            source,
            key,
            "expected a non-empty list of strings (program and arguments; no shell), e.g. [cat, /sys/.../power]",
        )
    return value


def _read_tags(top: Section) -> tuple[str, ...]:
    tags = top.get_str_list("tags")
    for index, tag in enumerate(tags):
        check_name(tag, NAME_PATTERN, top.source, join_key("tags", index), "tag", _NAME_HINT)
    return tuple(dict.fromkeys(tags))


def _read_limits(top: Section) -> Limits:
    section = top.get_section("limits", ("max_parallel_jobs", "job_timeout"))
    return Limits(
        max_parallel_jobs=section.get_int("max_parallel_jobs", 1, minimum=1),
        job_timeout_s=section.get_duration("job_timeout", 900.0, positive=True),
    )


def _read_env_capture(top: Section) -> EnvCapture:
    section = top.get_section("env_capture", ("files", "commands"))
    files = section.get_str_list("files")
    for index, name in enumerate(files):
        check_plain_path(name, section.source, join_key(section.key("files"), index))
    raw_commands = section.raw("commands", [])
    if not isinstance(raw_commands, list):
        raise section.error("commands", f"expected a list of commands, got {describe(raw_commands)}")
    commands = []
    for index, command in enumerate(raw_commands):
        key = join_key(section.key("commands"), index)
        if isinstance(command, str):
            raise ConfigError(
                section.source,
                key,
                f"write the command as a list of arguments, e.g. {command.split()}; no shell runs it",
            )
        argv = tuple(command) if isinstance(command, list) else command
        commands.append(_check_argv(argv, section.source, key))
    return EnvCapture(files=files, commands=tuple(commands))


def load_inventory(directory: str | Path) -> Inventory:
    """Load every ``*.yaml`` / ``*.yml`` directly in ``directory`` (not subdirectories)."""
    shown = str(directory)
    folder = Path(directory)
    if not folder.is_dir():
        raise ConfigError(shown, None, "targets directory not found: create it with one <name>.yaml per device")
    files = sorted(p for p in folder.iterdir() if p.suffix in (".yaml", ".yml") and p.is_file())
    targets: dict[str, Target] = {}
    for file in files:
        target = load_target(os.path.join(shown, file.name))
        if target.name in targets:
            raise ConfigError(
                target.source,
                "name",
                f"target {target.name!r} is also declared in {targets[target.name].source}: keep one",
            )
        targets[target.name] = target
    return Inventory(directory=shown, targets=MappingProxyType(dict(sorted(targets.items()))))
