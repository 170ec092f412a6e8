"""Command-line options of the plugin, validated when parsed, turned into SessionOptions."""

from __future__ import annotations

import argparse
import os
import re
from pathlib import Path

import pytest

from harness.config.targets import TARGETS_DIR_ENV
from harness.run.session import SessionOptions
from harness.store import DEFAULT_STORE
from harness.transport.labgrid import LabgridSettings

NAME_PATTERN = re.compile(r"^[a-z0-9][a-z0-9._-]*$")


def parse_target_spec(value: str) -> str:
    """`local`, `a,b,c` or `all`; each name must look like a target file stem."""
    names = [name.strip() for name in value.split(",")]
    if not value.strip() or any(not name for name in names):
        raise argparse.ArgumentTypeError(f"--target={value!r}: give a target name, a comma list, or 'all'")
    for name in names:
        if not NAME_PATTERN.match(name):
            raise argparse.ArgumentTypeError(
                f"--target: '{name}' is not a valid target name (lower-case letters, digits, '.', '_', '-')")
    return ",".join(names)


def parse_run_label(value: str) -> str:
    if not re.match(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$", value):
        raise argparse.ArgumentTypeError(
            f"--run-label={value!r}: use letters, digits, '.', '_', ':' or '-' (e.g. nightly, release-1.4)")
    return value


def parse_seconds(value: str) -> float:
    from harness.config.units import parse_duration
    from harness.errors import ConfigError

    try:
        return parse_duration(value, "--lock-timeout", "value")
    except ConfigError as exc:
        raise argparse.ArgumentTypeError(exc.message) from None


def parse_run_spec(value: str) -> str:
    """A --baseline value (run id, latest or latest:LABEL), or a usage error saying what is accepted."""
    from harness.analysis.run_spec import check_run_spec

    try:
        return check_run_spec(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


_LABGRID_OPTIONS = (
    ("--lg-coordinator", {"action": "store", "dest": "lg_coordinator", "default": None, "metavar": "HOST:PORT",
                          "help": "labgrid coordinator for targets with transport: labgrid (default: the target "
                                  "file's connection.coordinator, else $LG_COORDINATOR, else 127.0.0.1:20408)"}),
    ("--lg-priority", {"action": "store", "dest": "lg_priority", "type": float, "default": None,
                       "help": "priority of this run's labgrid reservations (higher goes first in the "
                               "coordinator's queue; default: the target file's connection.priority, else 0)"}),
)


def add_options(parser: pytest.Parser) -> None:
    group = parser.getgroup("harness", "edge model benchmarking harness")
    group.addoption("--target", action="store", type=parse_target_spec, default=None,
                    help="target(s) to benchmark: a name, a comma list, or 'all' (default: local)")
    group.addoption("--target-tag", action="store", default=None,
                    help="only targets carrying this tag (combines with --target)")
    group.addoption("--targets-dir", action="store", default=None,
                    help="directory of target YAML files (default: $HARNESS_TARGETS_DIR, else targets/ in the "
                         "rootdir, plus the devices of the lab `harness lab up` brought up)")
    group.addoption("--manifest", action="store", default=None,
                    help="model manifest (default: suites/models.yaml in the rootdir)")
    group.addoption("--run-label", action="store", type=parse_run_label, default=None,
                    help="series this run belongs to, e.g. nightly or release-1.4")
    group.addoption("--store", action="store", default=None,
                    help=f"results store: a path, sqlite:///path or postgresql://user@host:port/db "
                         f"(default: {DEFAULT_STORE} in the rootdir)")
    group.addoption("--report-dir", action="store", default=None,
                    help="where reports are written (default: reports/ in the rootdir)")
    group.addoption("--lock-timeout", action="store", type=parse_seconds, default=600.0,
                    help="how long to wait for a device locked by another run (e.g. 10min; default 600s)")
    for flag, settings in _LABGRID_OPTIONS:
        try:
            group.addoption(flag, **settings)
        except ValueError:  # labgrid's own pytest plugin is loaded too: its --lg-coordinator (same dest) serves
            pass
    group.addoption("--resume", action="store", default=None, metavar="RUN|latest|latest:LABEL",
                    help="continue an interrupted run: measure only what it is missing, into the same run")
    group.addoption("--sweep", action="append", default=[], metavar="PARAM=V1,V2",
                    help="also measure each variant at these values: threads=1,2,4 | batch=1,4 | "
                         "resolution=224,448 | precision=fp32,int8 | power_mode=... (repeatable)")
    group.addoption("--profile-ops", action="store_true", default=False,
                    help="after each latency measurement, run the runtime's own op profiler (outside the timed window)")
    group.addoption("--no-report", action="store_true", default=False,
                    help="do not render the HTML report at the end of the run")
    group.addoption("--baseline", action="store", type=parse_run_spec, default=None,
                    help="compare with a stored run: a run id, latest, or latest:LABEL (e.g. latest:nightly); "
                         "every (target, variant, metric) is paired, missing pairs are listed")
    group.addoption("--fail-on-regression", action="store_true", default=False,
                    help="fail a test whose measurement regressed against the --baseline run")


def _path(value: str | None, invocation_dir: Path, default: Path) -> Path:
    return (invocation_dir / value).resolve() if value else default


def session_options(config: pytest.Config) -> SessionOptions:
    """A plain value from the parsed options: user paths are relative to where pytest was
    invoked, defaults relative to the rootdir."""
    root = config.rootpath
    here = config.invocation_params.dir
    store = config.getoption("--store")
    if store is None:
        store_url = str(root / DEFAULT_STORE)
    elif "://" in store:
        store_url = store
    else:
        store_url = str((here / store).resolve())
    targets_dir = config.getoption("--targets-dir") or os.environ.get(TARGETS_DIR_ENV) or None
    return SessionOptions(
        target_spec=config.getoption("--target") or "local",
        target_tag=config.getoption("--target-tag"),
        targets_dir=_path(targets_dir, here, root / "targets"),
        targets_dir_given=targets_dir is not None,
        manifest_path=_path(config.getoption("--manifest"), here, root / "suites" / "models.yaml"),
        run_label=config.getoption("--run-label"),
        store_url=store_url,
        report_dir=_path(config.getoption("--report-dir"), here, root / "reports"),
        render_report=not config.getoption("--no-report"),
        lock_timeout_s=config.getoption("--lock-timeout"),
        profile_ops=config.getoption("--profile-ops"),
        resume=config.getoption("--resume"),
        repo_dir=root,
        baseline=config.getoption("--baseline"),
        fail_on_regression=config.getoption("--fail-on-regression"),
        labgrid=LabgridSettings(coordinator=getattr(config.option, "lg_coordinator", None),
                                priority=getattr(config.option, "lg_priority", None)),
    )
