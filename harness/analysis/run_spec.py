"""Which stored run the run spec of a comparison names: the reference run of ``--baseline``,
and the candidate of ``harness report signoff --candidate``.

    --baseline=<run id | latest | latest:LABEL>

``latest`` / ``latest:LABEL`` here is ``latest_complete_run``: the newest *complete* run
(with that label); for a reference run, one that started before the candidate run and is
not the candidate itself. A nightly run with ``--baseline latest:nightly`` compares with
the previous night, and the first night has nothing to compare with (said, not an error).
An explicit run id must exist.

In ``--resume latest`` and ``harness report latest`` it means something else: the newest
run of *any* status (``newest_run``, ``resolve_any_run``), since an interrupted run is the
one to resume or to report. The two meanings are named apart here, side by side.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from harness.errors import HarnessError
from harness.records import RunInfo
from harness.store import Store

_LATEST = re.compile(r"^latest(:[A-Za-z0-9][A-Za-z0-9._:-]{0,63})?$")
_SPEC = re.compile(r"^(latest(:[A-Za-z0-9][A-Za-z0-9._:-]{0,63})?|[A-Za-z0-9][A-Za-z0-9._:-]{0,127})$")


def check_run_spec(value: str) -> str:
    """A well-formed ``--baseline`` value, or ValueError saying what is accepted."""
    if not _SPEC.match(value or "") or (value.startswith("latest") and not _LATEST.match(value)):
        raise ValueError(f"--baseline={value!r}: give a run id (`harness runs` lists them), latest, "
                         "or latest:LABEL (e.g. latest:nightly, latest:release-1.4)")
    return value


def latest_complete_run(store: Store, label: str | None, *, before: str | None = None,
                        exclude: Iterable[str] = ()) -> RunInfo | None:
    """The newest complete run (with `label`, if given) that started before `before` and is
    not in `exclude`; None if there is none."""
    excluded = set(exclude)
    for run in store.runs(label=label, limit=500):
        if run.id in excluded or run.status != "complete":
            continue
        if before is not None and run.started_at >= before:
            continue
        return run
    return None


def resolve_complete_run(store: Store, spec: str, *, before: str | None = None,
                         exclude: Iterable[str] = ()) -> tuple[RunInfo | None, str]:
    """The run `spec` names and a note saying which it is; (None, why) when `latest[:LABEL]`
    finds no earlier complete run. An unknown explicit run id is a HarnessError."""
    check_run_spec(spec)
    excluded = set(exclude)
    if spec == "latest" or spec.startswith("latest:"):
        label = spec.split(":", 1)[1] if ":" in spec else None
        found = latest_complete_run(store, label, before=before, exclude=excluded)
        if found is not None:
            return found, f"{spec} = run {found.id}" + (f" ({found.started_at})" if found.started_at else "")
        where = f" with label '{label}'" if label else ""
        when = " before this run" if before or excluded else ""
        return None, f"{spec}: no complete run{where}{when} in {store.url}: nothing to compare with"
    run = store.get_run(spec)
    if run is None:
        raise HarnessError(f"--baseline {spec}: no run '{spec}' in {store.url}; `harness runs` lists the stored "
                           "runs, or use latest:LABEL")
    if run.id in excluded:
        raise HarnessError(f"--baseline {spec}: that is the run being compared; name an earlier run")
    note = f"run {run.id}" + ("" if run.status == "complete" else f" (status {run.status}: partial)")
    return run, note


def newest_run(store: Store, label: str | None = None) -> RunInfo | None:
    """The newest run (with `label`, if given) whatever its status: the one to report or to
    resume. (A comparison's `latest` is the newest *complete* run: ``latest_complete_run``.)"""
    runs = store.runs(label=label, limit=1)
    return runs[0] if runs else None


def resolve_any_run(store: Store, spec: str) -> str:
    """`latest`, `latest:LABEL` (``newest_run``, of any status) or a run id -> run id."""
    if spec == "latest" or spec.startswith("latest:"):
        label = spec.split(":", 1)[1] if ":" in spec else None
        run = newest_run(store, label)
        if run is None:
            where = f" with label '{label}'" if label else ""
            raise HarnessError(f"no runs{where} in {store.url}; run the suites first")
        return run.id
    if store.get_run(spec) is None:
        raise HarnessError(f"no run '{spec}' in {store.url}; `harness runs` lists the stored runs")
    return spec
