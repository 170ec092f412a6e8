"""The shell text sent for a command: never built from target or model data as raw shell text.

The remote login shell (POSIX sh) receives ``cd DIR && exec env K=V ... sh -c WRAPPER sh
ARGV...`` where every piece went through `shlex.quote`. WRAPPER reports the remote pid on the
first stderr line (``harness-pid PID [group] [start=TICKS]``, TICKS the process's start time
from /proc/PID/stat) and makes the process a process-group leader (the exec channel's own
session, or `setsid` where available), so a kill can end the whole process tree on the device
with a separate ``kill -KILL -PGID``. The kill checks the start time first: a pid the device
has given to another process since (a long-dead link) is never hit.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Mapping, Sequence

from harness.errors import TransportError

PID_MARKER = b"harness-pid "
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")

# Runs as `sh -c WRAPPER sh ARGV...`: report the pid (and whether it leads its process group)
# on stderr, then become ARGV. Field 5 of /proc/PID/stat is the process group. A process that
# is not a group leader becomes one through setsid (which then does not fork).
WRAPPER = (
    'g=; read -r _ _ _ _ g _ 2>/dev/null </proc/$$/stat; '
    # qemu-user (an emulated device) fakes a process's own /proc/<pid>/stat with pgrp 0; another
    # process (cat) reads the kernel's. Without this, setsid would fork and the command's exit
    # status would be setsid's parent's 0, at once.
    'if [ "$g" = 0 ]; then g=$(cat /proc/$$/stat 2>/dev/null | { read -r _ _ _ _ p _; echo "$p"; }); fi; '
    'if [ "$g" != "$$" ] && command -v setsid >/dev/null 2>&1; then g=$$; set -- setsid "$@"; fi; '
    # field 22 of /proc/PID/stat: the start time, read by another process (cut) like the pgrp
    's=$(cut -d" " -f22 /proc/$$/stat 2>/dev/null); '
    'if [ "$g" = "$$" ]; then echo "harness-pid $$ group start=$s" >&2; else echo "harness-pid $$ start=$s" >&2; fi; '
    'exec "$@"'
)


def shell_command(target_name: str, argv: Sequence[str], cwd: str | None, env: Mapping[str, str] | None,
                  wrap: bool) -> str:
    """The line for the device's login shell that runs `argv` (in `cwd`, with `env` added),
    each argument reaching the program as exactly one word; `wrap`: through WRAPPER."""
    if not argv:
        raise TransportError(f"{target_name}: empty command")
    if argv[0].startswith("-"):
        raise TransportError(f"{target_name}: program name {argv[0]!r} starts with '-'")
    for item in (*argv, *(env or {}).values(), cwd or ""):
        if "\0" in item:
            raise TransportError(f"{target_name}: a command argument contains a NUL byte")
    parts = []
    if cwd:
        parts.append(f"cd {shlex.quote('./' + cwd if cwd.startswith('-') else cwd)} &&")
    if wrap:
        parts.append("exec")  # the wrapper replaces the login shell: one process fewer
    if env:
        parts.append("env")
        for name, value in env.items():
            if not _ENV_NAME.fullmatch(name):
                raise TransportError(f"{target_name}: environment variable name {name!r} is not valid")
            parts.append(shlex.quote(f"{name}={value}"))
    if wrap:
        parts += ["sh", "-c", shlex.quote(WRAPPER), "sh"]
    parts += [shlex.quote(arg) for arg in argv]
    return " ".join(parts)


def kill_argv(pid: int, group: bool, start: str | None = None) -> list[str]:
    """SIGKILL for a remote process, or for its whole process group when it leads one.

    With its `start` time (from the wrapper), only if /proc/PID still shows that start time: a
    pid reused by another process since is left alone. A group whose leader is gone is still
    killed (its number cannot be reused while a member of the group lives)."""
    # `kill -KILL -PGID`, not `kill -KILL -- -PGID`: dash's kill rejects `--`
    kill = ["kill", "-KILL", f"-{pid}"] if group else ["kill", "-KILL", str(pid)]
    if not start or not start.isdigit():
        return kill
    now = f"s=$(cut -d' ' -f22 /proc/{pid}/stat 2>/dev/null); "
    unchanged = f'[ "$s" = {start} ]' if not group else f'{{ [ -z "$s" ] || [ "$s" = {start} ]; }}'
    return ["sh", "-c", f"{now}{unchanged} && {' '.join(kill)}"]


def describe_command(argv: Sequence[str], shown_args: int = 5) -> str:
    """The command as a user would recognise it: ``python -m harness_agent --job-id ID``."""
    shown = " ".join(shlex.quote(arg) for arg in argv[:shown_args])
    return f"`{shown}{' ...' if len(argv) > shown_args else ''}`"
