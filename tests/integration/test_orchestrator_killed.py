"""The orchestrator SIGKILLed mid-run: the store is intact, the partial run renders as
incomplete, and `--resume` measures only the missing cases into the same run."""

from __future__ import annotations

import sys
from pathlib import Path

from helpers.killed_orchestrator import check_killed_run_is_intact_reportable_and_resumable
from helpers.project import local_target, write_target


def test_killed_run_is_intact_reportable_and_resumable(tmp_path: Path) -> None:
    write_target(tmp_path / "targets", local_target("box", workdir=tmp_path / "work", python=sys.executable))
    check_killed_run_is_intact_reportable_and_resumable(tmp_path, "box", tmp_path / "targets")
