"""Errors the harness raises for the user to read.

Every error here carries a one-line message that names the file, key or target at fault
and says what to do. Callers show `str(error)`, never a traceback.
"""

from __future__ import annotations

from typing import Any


def _one_line(text: str) -> str:
    """Control characters from a hostile file (a newline in a key) shown escaped: one line."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


class HarnessError(Exception):
    """Base class: a problem the user can act on, described in one line."""


class ConfigError(HarnessError):
    """A target file, manifest or deployment config is malformed.

    `source` is the file, `key` the dotted path inside it (e.g. ``connection.port``).
    """

    def __init__(self, source: str, key: str | None, message: str) -> None:
        self.source = source
        self.key = key
        self.message = message
        where = f"{source}: {_one_line(key)}" if key else source
        super().__init__(f"{where}: {_one_line(message)}")


class UnknownTargetError(HarnessError):
    """A target name that no file in the targets directory declares."""


class TransportError(HarnessError):
    """A command or file transfer on a target failed (unreachable, timeout, no space...)."""


class Unreachable(TransportError):
    """The target did not answer: refused, no answer in time, dropped during the handshake.
    Trying again may help (a changed host key or a refused login is a plain TransportError)."""


class ConnectionLost(TransportError):
    """The connection to a target broke while something ran on it (sshd killed, link dead).

    `phase` says what was running, as precisely as the raiser knows it (the transport knows
    the command; the agent client adds the job's phase)."""

    def __init__(self, target: str, phase: str, reason: str = "") -> None:
        self.target = target
        self.phase = phase
        self.reason = reason
        super().__init__(f"connection lost to {target} during {_one_line(phase)}"
                         + (f" ({_one_line(reason)})" if reason else ""))


class AgentError(HarnessError):
    """The agent on a device reported an error, or broke the protocol.

    `kind` is the agent's error kind (``model-missing``, ``runtime-missing``,
    ``runtime-error``, ``protocol``, ``timeout``, ``crashed``...).
    """

    def __init__(self, target: str, kind: str, message: str, detail: str = "") -> None:
        self.target = target
        self.kind = kind
        self.message = message
        self.detail = detail
        self.partial_paired: dict[str, Any] | None = None  # a paired job's rounds before it failed
        super().__init__(f"{target}: {kind}: {message}")


class StoreError(HarnessError):
    """The results store cannot be opened or has an incompatible schema."""
