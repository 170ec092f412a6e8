"""What a suites run left in its ``out`` folder (see helpers.suites): store rows, JUnit cases."""

from __future__ import annotations

import sqlite3
import xml.etree.ElementTree as ElementTree
from pathlib import Path

from harness.records import MeasurementRecord, RunInfo
from harness.store import Store, open_store


def records(out: Path) -> tuple[Store, list[RunInfo], list[MeasurementRecord]]:
    """The run's store, its runs, and every measurement of every run."""
    store = open_store(out / "results.sqlite")
    runs = store.runs()
    return store, runs, [m for run in runs for m in store.measurements(run.id)]


def only_record(store_path: Path) -> MeasurementRecord:
    """The one measurement of the one run in the store at ``store_path`` (fails otherwise)."""
    store = open_store(store_path)
    (run,) = store.runs()
    (record,) = store.measurements(run.id)
    return record


def junit_cases(out: Path) -> dict[str, tuple[float, str]]:
    """test name -> (seconds, failure message or '')."""
    cases = {}
    for case in ElementTree.parse(out / "junit.xml").iter("testcase"):
        failure = case.find("failure")
        cases[str(case.get("name"))] = (float(case.get("time", "0")),
                                         failure.get("message", "") if failure is not None else "")
    return cases


def ok_rows(store: Path) -> list[tuple[int, str]]:
    """(id, variant) of the store's ok measurements in insertion order, read with a plain sqlite3
    connection (what another process sees mid-run); [] while the store or its tables do not exist."""
    if not store.exists():
        return []
    with sqlite3.connect(store) as db:
        try:
            return db.execute("SELECT id, variant FROM measurements WHERE status = 'ok' ORDER BY id").fetchall()
        except sqlite3.OperationalError:
            return []
