"""Where to connect: the target's SSH endpoint (and its jump hops) from the target file and ssh_config.

ssh_config (``~/.ssh/config`` unless given) is honoured for the alias or host: HostName, Port,
User, IdentityFile, IdentitiesOnly, HostKeyAlias, ProxyJump (a chain ``a,b`` works),
UserKnownHostsFile, GlobalKnownHostsFile and StrictHostKeyChecking (``yes`` / ``accept-new``;
see harness.transport.ssh.known_hosts), as OpenSSH does. Values written in the target file win
over ssh_config (``port`` only when it is not the default 22).
ProxyCommand is refused with a hint to use ProxyJump. A jump host also tries the target's
``key_file``.
"""

from __future__ import annotations

import getpass
import os
import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import paramiko

from harness.config.targets import Target, split_jump_host
from harness.errors import TransportError, Unreachable

MAX_JUMPS = 8

SSHOptions = dict[str, Any]  # one host's entry from paramiko.SSHConfig.lookup: str values, identityfile a list


@dataclass(frozen=True)
class Endpoint:
    """One SSH server on the way to the target (a jump host or the target itself)."""

    label: str                        # as the user wrote it (alias or host), for messages
    hostname: str
    port: int
    user: str
    key_files: tuple[str, ...] = ()
    identities_only: bool = False
    host_key_alias: str | None = None
    jumps: tuple[Endpoint, ...] = field(default=())  # hops before this one, outermost first
    known_hosts_files: tuple[str, ...] = ()  # ssh_config UserKnownHostsFile (the first is written to)
    global_known_hosts_files: tuple[str, ...] | None = None  # ssh_config GlobalKnownHostsFile; None: not set
    strict_host_key_checking: str | None = None  # ssh_config StrictHostKeyChecking, lower case; None: not set

    @property
    def address(self) -> str:
        return f"{self.hostname}:{self.port}"

    @property
    def known_hosts_name(self) -> str:
        """The name OpenSSH files this server's key under in known_hosts."""
        if self.host_key_alias:
            return self.host_key_alias
        return self.hostname if self.port == 22 else f"[{self.hostname}]:{self.port}"


def unreachable(target_name: str, hop: Endpoint, final: Endpoint, reason: str, *,
                transient: bool = False) -> TransportError:
    """"<target>: unreachable: <address> (<reason>)", naming the jump host a hop was reached
    through or the target a jump host led to; an `Unreachable` when trying again may help (no
    answer, refused, dropped), else a plain TransportError (keys, auth)."""
    via = ""
    if hop is final and hop.jumps:
        via = f" via {hop.jumps[-1].label}"
    elif hop is not final:
        via = f", the jump host to {final.address},"
    kind = Unreachable if transient else TransportError
    return kind(f"{target_name}: unreachable: {hop.address}{via} ({reason})")


def load_ssh_config(path: Path | None) -> paramiko.SSHConfig:
    """The ssh_config at `path` (default ``~/.ssh/config``); an empty one when the file is missing."""
    chosen = Path(path) if path is not None else Path("~/.ssh/config").expanduser()
    if not chosen.is_file():
        return paramiko.SSHConfig()
    try:
        return paramiko.SSHConfig.from_path(str(chosen))
    except (OSError, paramiko.ConfigParseError, ValueError) as exc:
        raise TransportError(f"cannot read ssh config {chosen}: {exc}") from None


def resolve_endpoint(target: Target, config: paramiko.SSHConfig) -> Endpoint:
    """The target's endpoint (with its jump hops) from the target file and ssh_config."""
    conn = target.connection
    name = conn.ssh_config_host or conn.host
    if name is None:  # the target loader refuses such a file; a Target built in code might not
        raise TransportError(f"{target.name}: an ssh target needs connection.host or connection.ssh_config_host")
    options = _lookup(config, name, target)
    hostname = (conn.host if (conn.host and conn.ssh_config_host) else options.get("hostname", name)).strip("[]")
    port = conn.port if conn.port != 22 else _config_port(options, target, name)
    user = conn.user or options.get("user") or _local_user(target)
    key_files = tuple(dict.fromkeys(([conn.key_file] if conn.key_file else []) + options.get("identityfile", [])))
    jump_spec = conn.jump_host or _proxy_jump(options, target, name)
    jumps = _jump_chain(jump_spec, config, target, (conn.key_file,) if conn.key_file else (), 0)
    return Endpoint(label=name, hostname=hostname, port=port, user=user, key_files=key_files,
                    identities_only=options.get("identitiesonly", "no").lower() == "yes",
                    host_key_alias=options.get("hostkeyalias"), jumps=jumps, **_host_key_options(options))


def _host_key_options(options: SSHOptions) -> dict[str, Any]:
    """UserKnownHostsFile / GlobalKnownHostsFile (each a list of paths, quoted or ~-relative)
    and StrictHostKeyChecking, as ssh_config gives them for one host."""
    def paths(key: str) -> tuple[str, ...] | None:
        if key not in options:
            return None
        value = options[key]
        # paramiko strips the quotes of a value quoted as a whole ("/a b/known_hosts"): such a
        # value with a space is one path when that file exists; otherwise a list, as OpenSSH reads it
        if '"' in value or "'" in value:
            items = shlex.split(value)
        elif Path(os.path.expanduser(value)).is_file():
            items = [value]
        else:
            items = value.split()
        return tuple(os.path.expanduser(p) for p in items if p.lower() != "none")

    strict = options.get("stricthostkeychecking")
    return {"known_hosts_files": paths("userknownhostsfile") or (),
            "global_known_hosts_files": paths("globalknownhostsfile"),
            "strict_host_key_checking": strict.lower() if strict else None}


def _local_user(target: Target) -> str:
    """OpenSSH's default login name: the local user's."""
    try:
        return getpass.getuser()
    except Exception:  # no USER/LOGNAME and no passwd entry (some containers)
        raise TransportError(f"{target.name}: no login name: set connection.user in {target.source}") from None


def _lookup(config: paramiko.SSHConfig, name: str, target: Target) -> SSHOptions:
    try:
        return dict(config.lookup(name))
    except Exception as exc:  # paramiko raises plain exceptions for Match exec etc.
        raise TransportError(f"{target.name}: ssh config entry for {name!r} cannot be read: {exc}") from None


def _config_port(options: SSHOptions, target: Target, name: str) -> int:
    try:
        return int(options.get("port", 22))
    except ValueError:
        raise TransportError(f"{target.name}: ssh config: Port for {name!r} is not a number: "
                             f"{options.get('port')!r}") from None


def _proxy_jump(options: SSHOptions, target: Target, name: str) -> str | None:
    if "proxycommand" in options and options["proxycommand"].lower() != "none":
        raise TransportError(f"{target.name}: ssh config for {name!r} uses ProxyCommand, which the harness does "
                             "not run; use ProxyJump (or connection.jump_host in the target file) instead")
    jump = options.get("proxyjump")
    return None if jump is None or jump.lower() == "none" else jump


def _jump_chain(spec: str | None, config: paramiko.SSHConfig, target: Target, fallback_keys: tuple[str, ...],
                depth: int) -> tuple[Endpoint, ...]:
    if not spec:
        return ()
    if depth > MAX_JUMPS:
        raise TransportError(f"{target.name}: ProxyJump chain is longer than {MAX_JUMPS} hops (a loop in ssh config?)")
    hops: list[Endpoint] = []
    for item in (part.strip() for part in spec.split(",")):
        parts = split_jump_host(item.removeprefix("ssh://"))
        if parts is None:
            raise TransportError(f"{target.name}: jump host {item!r} is not 'user@host:port' or an ssh config alias")
        user, host, port = parts
        options = _lookup(config, host, target)
        inner = _jump_chain(_proxy_jump(options, target, host), config, target, fallback_keys, depth + 1)
        keys = tuple(dict.fromkeys(options.get("identityfile", []) + list(fallback_keys)))
        hops.extend(inner)
        hops.append(Endpoint(
            label=item, hostname=options.get("hostname", host),
            port=port if port is not None else _config_port(options, target, host),
            user=user or options.get("user") or _local_user(target), key_files=keys,
            identities_only=options.get("identitiesonly", "no").lower() == "yes",
            host_key_alias=options.get("hostkeyalias"), **_host_key_options(options)))
    return tuple(hops)
