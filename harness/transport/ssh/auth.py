"""Logging in to one SSH server with public keys only, never passwords.

Keys are tried in OpenSSH's order: the hop's key files (the target's ``key_file`` and its
IdentityFile entries), then the ssh-agent's keys (unless IdentitiesOnly), then the default
``~/.ssh/id_*`` keys (only when no key file was named). A refusal names every key tried and why
each was unusable (missing, passphrase-protected, not a key).
"""

from __future__ import annotations

import os

import paramiko
from paramiko.pkey import UnknownKeyType

from harness.transport.ssh.config import Endpoint, unreachable

DEFAULT_KEYS = ("id_ed25519", "id_ecdsa", "id_rsa")


def authenticate(transport: paramiko.Transport, hop: Endpoint, final: Endpoint, target_name: str) -> None:
    """Log `transport` (connected to `hop`, on the way to `final`) in as `hop.user`, or raise
    the "<target>: unreachable: ..." error that says which keys were tried."""
    tried: list[str] = []

    def attempt(key: paramiko.PKey, label: str) -> bool:
        try:
            remaining = transport.auth_publickey(hop.user, key)
        except paramiko.BadAuthenticationType as exc:
            raise unreachable(target_name, hop, final, f"the server does not accept public keys for {hop.user} "
                              f"(it allows {', '.join(exc.allowed_types) or 'nothing'}); the harness "
                              "never uses passwords") from None
        except paramiko.AuthenticationException:
            tried.append(f"{label} (refused)")
            return False
        except (paramiko.SSHException, EOFError, OSError) as exc:
            raise unreachable(target_name, hop, final, f"connection dropped during authentication: {exc}",
                              transient=True) from None
        if remaining:
            raise unreachable(target_name, hop, final, f"the server wants more than a key ({', '.join(remaining)}); "
                              "the harness only authenticates with keys")
        return transport.is_authenticated()

    for path in hop.key_files:
        key = _load_key(path, tried)
        if key is not None and attempt(key, path):
            return
    if not hop.identities_only:
        agent = paramiko.Agent()
        try:
            for agent_key in agent.get_keys():
                if attempt(agent_key, f"agent key {agent_key.fingerprint}"):
                    return
        finally:
            agent.close()
    if not hop.key_files:
        for name in DEFAULT_KEYS:
            path = os.path.expanduser(f"~/.ssh/{name}")
            if os.path.exists(path):
                key = _load_key(path, tried)
                if key is not None and attempt(key, path):
                    return
    keys = "; tried " + ", ".join(tried) if tried else "; no key file, agent key or ~/.ssh/id_* key was found"
    raise unreachable(target_name, hop, final, f"authentication failed for user {hop.user}{keys}. Install the public "
                      f"key in ~{hop.user}/.ssh/authorized_keys on the device, or set connection.key_file (or load "
                      "the key into ssh-agent); passwords are never used")


def _load_key(path: str, tried: list[str]) -> paramiko.PKey | None:
    """The private key in `path`, or None with the reason it cannot be used added to `tried`."""
    try:
        return paramiko.PKey.from_path(path)
    except FileNotFoundError:
        tried.append(f"{path} (no such file)")
    except (TypeError, ValueError, paramiko.SSHException, paramiko.PasswordRequiredException,
            UnknownKeyType) as exc:
        encrypted = "password" in str(exc).lower() or "encrypted" in str(exc).lower()
        tried.append(f"{path} (passphrase-protected: load it into ssh-agent)" if encrypted
                     else f"{path} (not a usable private key: {exc})")
    except OSError as exc:
        tried.append(f"{path} ({exc.strerror})")
    return None
