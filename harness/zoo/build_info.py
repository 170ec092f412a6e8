"""A built model's `build-info.json`, written by every zoo build worker and read by the host.

What every build writes there besides its own provenance: `files` ({path relative to the
model directory: {size, sha256}}), per variant the `files` it owns and their total `size`,
and the `build_key` the host passed in. The host trusts a build only while each listed file
still has its recorded size and sha256 (`harness.zoo.build.is_up_to_date`).

Stdlib only: the host imports it, and so does every worker before its tools are imported.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, MutableMapping, Sequence
from pathlib import Path
from typing import Any

BUILD_INFO = "build-info.json"

#: {path relative to the model directory: {"size": bytes, "sha256": hex digest}}
FileEntries = dict[str, dict[str, Any]]


def sha256(path: str | Path) -> str:
    """sha256 of a file's bytes, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def file_entries(root: Path, subdirs: Sequence[str] = ("",)) -> FileEntries:
    """Size and sha256 of every plain file directly in `root / sub` for each of `subdirs`
    ("" is `root` itself), named `sub/name` (or `name`)."""
    files: FileEntries = {}
    for sub in subdirs:
        directory = root / sub if sub else root
        for path in sorted(directory.iterdir()):
            if path.is_file():
                name = f"{sub}/{path.name}" if sub else path.name
                files[name] = {"size": path.stat().st_size, "sha256": sha256(path)}
    return files


def attach_variant_files(variants: Mapping[str, MutableMapping[str, Any]], files: FileEntries) -> None:
    """Give each variant (its name is its directory) the sorted list of its files and their total size."""
    for name, entry in variants.items():
        entry["files"] = sorted(f for f in files if f.startswith(name + "/"))
        entry["size"] = sum(files[f]["size"] for f in entry["files"])


def write_build_info(directory: Path, info: Mapping[str, Any]) -> None:
    """`directory/build-info.json`: sorted keys, indented, UTF-8 as is; NaN is refused."""
    with open(directory / BUILD_INFO, "w", encoding="utf-8") as handle:
        json.dump(info, handle, indent=2, sort_keys=True, ensure_ascii=False, allow_nan=False)
        handle.write("\n")


def load_build_info(directory: Path) -> dict[str, Any] | None:
    """The build-info.json of a built model directory, or None if missing/unreadable."""
    try:
        info = json.loads((Path(directory) / BUILD_INFO).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return info if isinstance(info, dict) else None
