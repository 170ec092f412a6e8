"""Where a target's paths live, and how a target file's paths are checked.

`LocalPaths` (``transport: local``): paths on this machine, ``~`` and ``${VAR}`` expanded
and relative paths resolved against the target file's directory; a bare interpreter name
is looked up on PATH. `RemotePaths` (``ssh``): paths on the device, kept as written.
"""

from __future__ import annotations

import os
import shutil

from harness.config.sections import check_plain_path, resolve_local_path
from harness.errors import ConfigError


class LocalPaths:
    """Paths on this machine, resolved against the target file's directory."""

    def __init__(self, source: str, base_dir: str) -> None:
        self.source = source
        self.base_dir = base_dir

    def path(self, value: str, key: str) -> str:
        return resolve_local_path(value, self.source, key, self.base_dir)

    def workdir(self, value: str, key: str) -> str:
        return self.path(value, key)

    def interpreter(self, value: str, key: str) -> str:
        """Like `path`, but a bare name (``python3``) is looked up on PATH."""
        if "/" in value or "$" in value or value.startswith("~"):
            return self.path(value, key)
        found = shutil.which(check_plain_path(value, self.source, key))
        if found is None:
            raise ConfigError(self.source, key, f"{value!r} is not on PATH: give the interpreter's full path")
        return os.path.abspath(found)


class RemotePaths:
    """Paths on the device: kept as written (relative = relative to the login directory).

    ``$`` and a leading ``~`` are refused rather than passed on: they are never sent
    through a shell, so they would be taken literally.
    """

    def __init__(self, source: str) -> None:
        self.source = source

    def interpreter(self, value: str, key: str) -> str:
        return self._check(value, key)

    def workdir(self, value: str, key: str) -> str:
        checked = self._check(value, key)
        if ".." in checked.split("/"):
            raise ConfigError(self.source, key, f"{value!r} contains a '..' segment: give the directory without '..'")
        return checked

    def _check(self, value: str, key: str) -> str:
        check_plain_path(value, self.source, key)
        if "$" in value:
            raise ConfigError(
                self.source,
                key,
                "environment references are not expanded for ssh targets: write the path as it is on the device",
            )
        if value.startswith("~"):
            raise ConfigError(
                self.source,
                key,
                "'~' is not expanded for ssh targets: write the path relative to the login directory or absolute",
            )
        return value
