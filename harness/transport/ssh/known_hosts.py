"""Host keys: which keys known_hosts records for a server, and whether the one it offers is trusted.

Host keys are verified against known_hosts (OpenSSH format, hashed names and wildcards
understood; ``[host]:port`` for a port other than 22): the file named for the target, or
ssh_config's UserKnownHostsFile, or the user's file, and the system-wide files (read, never
written); see `KnownHosts`. The policy (the target's ``connection.known_hosts``, else ssh_config's
StrictHostKeyChecking) decides about a key not recorded there:
``strict``: the host is refused with its SHA256 fingerprint and how to accept it;
``accept-new``: the key is appended to the user's known_hosts file. A changed key is always
refused, naming both fingerprints and the line to remove.
"""

from __future__ import annotations

import base64
import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import paramiko

from harness.config.targets import Target
from harness.errors import TransportError
from harness.transport.ssh.config import Endpoint

GLOBAL_KNOWN_HOSTS = Path("/etc/ssh/ssh_known_hosts")


@dataclass(frozen=True)
class KnownKey:
    """One key line of a known_hosts file that names the server."""

    file: Path
    line: int
    marker: str | None  # "@revoked" or None (@cert-authority lines are skipped)
    key: paramiko.PKey


def known_keys(path: Path, name: str) -> list[KnownKey]:
    """Keys recorded for `name` in an OpenSSH known_hosts file (missing file: none)."""
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        return []
    except OSError as exc:
        raise TransportError(f"cannot read known_hosts file {path}: {exc.strerror}") from None
    found = []
    for number, raw in enumerate(text.splitlines(), 1):
        fields = raw.split()
        if not fields or fields[0].startswith("#"):
            continue
        marker = None
        if fields[0].startswith("@"):
            marker, fields = fields[0], fields[1:]
        if len(fields) < 3 or marker == "@cert-authority" or not _host_pattern_matches(fields[0], name):
            continue
        try:
            key = paramiko.PKey.from_type_string(fields[1], base64.b64decode(fields[2]))
        except Exception:  # an unknown key type or a damaged line: OpenSSH skips it too
            continue
        found.append(KnownKey(path, number, marker, key))
    return found


def _glob(pattern: str, name: str) -> bool:
    """OpenSSH host patterns: `*` and `?` only (brackets are literal: `[host]:port`)."""
    regex = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.fullmatch(regex, name, re.IGNORECASE) is not None


def _host_pattern_matches(patterns: str, name: str) -> bool:
    matched = False
    for pattern in patterns.split(","):
        if pattern.startswith("|1|"):
            if paramiko.HostKeys.hash_host(name, pattern) == pattern:
                matched = True
        elif pattern.startswith("!"):
            if _glob(pattern[1:], name):
                return False
        elif _glob(pattern, name):
            matched = True
    return matched


def _same_key(a: paramiko.PKey, b: paramiko.PKey) -> bool:
    return a.get_name() == b.get_name() and a.asbytes() == b.asbytes()


def describe_key(key: paramiko.PKey) -> str:
    return f"{key.get_name()} {key.fingerprint}"


def prefer_known_key_types(transport: paramiko.Transport, known: list[KnownKey]) -> None:
    """Ask for a host key type already in known_hosts first, as OpenSSH does (before the
    handshake: otherwise the server may offer a key of another type, which reads as unknown)."""
    wanted = []
    for entry in known:
        name = entry.key.get_name()
        wanted.extend(["rsa-sha2-512", "rsa-sha2-256", "ssh-rsa"] if name == "ssh-rsa" else [name])
    options = transport.get_security_options()
    available = list(options.key_types)
    first = [kind for kind in dict.fromkeys(wanted) if kind in available]
    if first:
        options.key_types = first + [kind for kind in available if kind not in first]


class KnownHosts:
    """The known_hosts files one target's connections trust, and its policy for a new key.

    Which files, per server (a jump host may have ssh_config entries of its own), as OpenSSH:
    a ``known_hosts_file`` named in the target file (``path``) is the only one read and written;
    otherwise the server's ssh_config ``UserKnownHostsFile`` (new keys go into the first),
    else ``~/.ssh/known_hosts``, plus ``GlobalKnownHostsFile`` (default /etc/ssh/ssh_known_hosts),
    read only. The policy for a key not recorded there: the target file's
    ``connection.known_hosts`` when it gives one, else ssh_config's ``StrictHostKeyChecking``
    (``accept-new``: accepted and recorded; ``yes``, and anything else, strict: the harness
    never connects to a server whose key it cannot verify, so ``no`` does not turn checking off)."""

    def __init__(self, target: Target, path: Path | None, debug: Callable[[str], None]) -> None:
        self._target = target
        self._debug = debug
        named = path or target.connection.known_hosts_file
        self._path = Path(named) if named else None

    def files(self, hop: Endpoint) -> tuple[Path, tuple[Path, ...]]:
        """The file new keys of `hop` are written to, and the other files read for it."""
        if self._path is not None:
            return self._path, ()
        user = [Path(f) for f in hop.known_hosts_files] or [Path("~/.ssh/known_hosts").expanduser()]
        system = (hop.global_known_hosts_files if hop.global_known_hosts_files is not None
                  else (str(GLOBAL_KNOWN_HOSTS),))
        return user[0], (*user[1:], *(Path(f) for f in system))

    def policy(self, hop: Endpoint) -> str:
        given = self._target.connection.known_hosts
        if given is not None:
            return given
        return "accept-new" if hop.strict_host_key_checking == "accept-new" else "strict"

    def keys_for(self, hop: Endpoint) -> list[KnownKey]:
        """What every trusted file records for `hop` (under its `known_hosts_name`)."""
        written, others = self.files(hop)
        return [entry for file in (written, *others) for entry in known_keys(file, hop.known_hosts_name)]

    def check(self, hop: Endpoint, key: paramiko.PKey, known: list[KnownKey], jumped: bool) -> None:
        """Raise unless `key` (offered by `hop`) is recorded in `known`, or is new and the
        policy accepts new keys (then it is recorded). `jumped`: reached through a jump host
        (the hint to fetch the key says so)."""
        target_name = self._target.name
        name = hop.known_hosts_name
        file = self.files(hop)[0]
        for entry in known:
            if entry.marker == "@revoked" and _same_key(entry.key, key):
                raise TransportError(f"{target_name}: host key {describe_key(key)} of {name} is marked "
                                     f"@revoked in {entry.file}:{entry.line}; refusing to connect")
        plain = [entry for entry in known if entry.marker is None]
        if any(_same_key(entry.key, key) for entry in plain):
            return
        changed = [entry for entry in plain if entry.key.get_name() == key.get_name()]
        if changed:
            old = changed[0]
            raise TransportError(
                f"{target_name}: HOST KEY CHANGED for {name}: the server offers {describe_key(key)} but "
                f"{old.file}:{old.line} records {old.key.fingerprint}. Someone may be intercepting the connection; "
                f"if the device was re-imaged, remove line {old.line} (ssh-keygen -R '{name}' -f {old.file}) and "
                "connect again")
        if self.policy(hop) == "accept-new":
            self._remember(file, name, key)
            self._debug(f"accepted new host key {describe_key(key)} for {name} into {file}")
            return
        scan = f"ssh-keyscan -p {hop.port} {hop.hostname} >> {file}"
        if jumped:
            scan = f"ssh <jump host> ssh-keyscan -p {hop.port} {hop.hostname} >> {file}"
        also = ""
        if plain:
            also = f" (known_hosts holds only {', '.join(sorted({e.key.get_name() for e in plain}))} keys for it)"
        raise TransportError(
            f"{target_name}: unknown host key for {name}: {describe_key(key)}{also} is not in {file}; "
            f"after checking the fingerprint with the device (ssh-keygen -lf /etc/ssh/ssh_host_*_key.pub), accept it "
            f"with `{scan}`, or set connection.known_hosts: accept-new in {self._target.source}")

    def _remember(self, file: Path, name: str, key: paramiko.PKey) -> None:
        try:
            file.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            prefix = ""
            if file.exists() and file.stat().st_size:
                with open(file, "rb") as handle:
                    handle.seek(-1, os.SEEK_END)
                    prefix = "" if handle.read(1) == b"\n" else "\n"
            with open(file, "a", encoding="utf-8") as handle:
                handle.write(f"{prefix}{name} {key.get_name()} {key.get_base64()}\n")
            os.chmod(file, 0o600)
        except OSError as exc:
            raise TransportError(f"{self._target.name}: cannot add the host key of {name} to {file}: "
                                 f"{exc.strerror}") from None
