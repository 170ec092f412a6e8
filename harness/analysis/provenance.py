"""How each model file was made, for the diagnosis rules: the zoo's build-info.json entries
(calibration size, tool, options) indexed by the sha256 of the files they built.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from harness.records import MeasurementRecord


def file_provenance(record: MeasurementRecord, provenance: Mapping[str, Any] | None) -> Mapping[str, Any]:
    """How the record's model file was made (build-info variant entry), matched by sha256."""
    for entry in (record.meta.get("files") or {}).values():
        sha = (entry or {}).get("sha256")
        made = (provenance or {}).get(sha) if sha else None
        if made:
            return made
    return {}


def provenance_index(zoo_dir: str | Path) -> dict[str, Mapping[str, Any]]:
    """{sha256 of a built file: its build-info variant entry (+ "model")} over a zoo directory.

    Reads every `<zoo_dir>/<model>/build-info.json`; unreadable ones are skipped."""
    index: dict[str, Mapping[str, Any]] = {}
    for path in sorted(Path(zoo_dir).glob("*/build-info.json")):
        try:
            info = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        files = info.get("files") or {}
        for name, entry in (info.get("variants") or {}).items():
            if not isinstance(entry, Mapping):
                continue
            made = {**entry, "model": info.get("model"), "variant_dir": name}
            for file in entry.get("files") or []:
                sha = (files.get(file) or {}).get("sha256")
                if sha:
                    index[sha] = made
    return index
