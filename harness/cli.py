"""The `harness` command: targets, zoo, runs and reports.

    harness targets list [--targets-dir DIR]
    harness targets check NAME [--targets-dir DIR]
    harness targets setup NAME [--targets-dir DIR] [--runtime R ...]
    harness zoo build [--zoo-dir DIR] [--model NAME ...] [--force]
    harness runs [--store URL] [--label L]
    harness report [RUN | latest | latest:LABEL] [--baseline SPEC] [--store URL] [--report-dir DIR]
    harness report trend --label LABEL [--last N] [--store URL] [--report-dir DIR]
    harness report signoff --candidate SPEC --baseline SPEC [--store URL] [--report-dir DIR]
    harness lab up|down|status
    harness store migrate|info [--store URL]

Every HarnessError ends the command with its one-line message and exit status 2.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from harness.errors import HarnessError


def _repo_default(relative: str) -> Path:
    return Path.cwd() / relative


def cmd_targets_list(args: argparse.Namespace) -> int:
    from harness.config.target_files import load_inventory

    inventory = load_inventory(Path(args.targets_dir))
    print(f"{'name':<16} {'kind':<11} {'arch':<8} {'transport':<9} {'runtimes':<40} tags")
    for name, target in sorted(inventory.targets.items()):
        runtimes = ", ".join(sorted(r for r in target.runtimes if r != "noop"))
        print(f"{name:<16} {target.kind:<11} {target.arch:<8} {target.connection.transport:<9} "
              f"{runtimes:<40} {', '.join(target.tags)}")
    return 0


def cmd_targets_check(args: argparse.Namespace) -> int:
    from harness.config.target_files import load_inventory
    from harness.run.labgrid_device import open_device

    inventory = load_inventory(Path(args.targets_dir))
    (target,) = inventory.select(args.name, None)
    print(f"{target.name}: {target.kind} {target.arch}, declared in {target.source}")
    started = time.monotonic()
    device = open_device(target, lambda line: print(f"  {line}", flush=True), purpose="harness targets check")
    try:
        device.transport.makedirs(device.transport.workdir)
        print(f"  reachable via {target.connection.transport} in {time.monotonic() - started:.2f}s; "
              f"workdir {device.transport.workdir}")
        agent = device.agent.probe(target.python, "noop")
        print(f"  agent     {target.python}: Python {agent['python']} ok")
        failures = 0
        for name, runtime in sorted(target.runtimes.items()):
            if name == "noop":
                continue
            interpreter = device.interpreter_for(name)
            if runtime.setup_env is not None and not device.transport.exists(interpreter):
                failures += 1
                print(f"  {name:<17} {interpreter}: NOT SET UP: run `harness targets setup {target.name} "
                      f"--targets-dir {args.targets_dir}`")
                continue
            try:
                found = device.agent.probe(interpreter, name)
            except HarnessError as exc:
                failures += 1
                print(f"  {name:<17} {interpreter}: NOT USABLE: {exc}")
                continue
            print(f"  {name:<17} {interpreter}: {name} {found['version']} on Python {found['python']} "
                  f"(import {found['import_ns'] / 1e9:.1f}s) ok")
    finally:
        device.close()
    if failures:
        print(f"{target.name}: {failures} declared runtime(s) not usable; install them or remove them "
              f"from {target.source}")
        return 1
    print(f"{target.name}: ok")
    return 0


def cmd_targets_setup(args: argparse.Namespace) -> int:
    from harness.config.target_files import load_inventory
    from harness.run.device_setup import setup_target

    inventory = load_inventory(Path(args.targets_dir))
    (target,) = inventory.select(args.name, None)
    outcomes = setup_target(target, progress=lambda line: print(line, flush=True), runtimes=args.runtime or None)
    for outcome in outcomes:
        state = "installed" if outcome.installed else "already set up"
        print(f"{target.name}: {outcome.runtime} {outcome.version} {state}: {outcome.interpreter}")
    return 0


def cmd_zoo_build(args: argparse.Namespace) -> int:
    from harness.zoo.build import build_zoo

    zoo_dir = Path(args.zoo_dir or os.environ.get("HARNESS_ZOO_DIR") or _repo_default(".zoo"))
    started = time.monotonic()
    records = build_zoo(zoo_dir, args.model or None, force=args.force,
                        progress=lambda line: print(line, flush=True))
    built = [r.model for r in records if not r.skipped]
    print(f"zoo: {len(records)} model(s) in {zoo_dir} ({len(built)} built, {len(records) - len(built)} "
          f"up to date) in {time.monotonic() - started:.0f}s")
    return 0


def _open_store(url: str | None):
    from harness.store import DEFAULT_STORE, open_store

    return open_store(url or _repo_default(str(DEFAULT_STORE)))


def cmd_runs(args: argparse.Namespace) -> int:
    store = _open_store(args.store)
    runs = store.runs(label=args.label, limit=args.limit)
    if not runs:
        print(f"no runs in {store.url}")
        return 0
    for run in runs:
        commit = (run.git_sha or "")[:10] + ("+dirty" if run.git_dirty else "")
        print(f"{run.id}  {run.status:<11} {run.label or '-':<14} {run.started_at}  {commit}")
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from harness.analysis.run_spec import resolve_any_run
    from harness.report.build import render_run_report

    store = _open_store(args.store)
    run_id = resolve_any_run(store, args.run)
    path = render_run_report(store, run_id, Path(args.report_dir or _repo_default("reports")),
                             reference_spec=args.baseline)
    print(f"report: {path}")
    return 0


def cmd_report_trend(args: argparse.Namespace) -> int:
    from harness.report.trend import regression_lines, render_trend_report

    store = _open_store(args.store)
    path = render_trend_report(store, args.label, args.last, Path(args.report_dir or _repo_default("reports")))
    data = json.loads((path.parent / "trend.json").read_text(encoding="utf-8"))
    print(f"trend of {args.label}: {len(data['runs'])} run(s), {len(data['regressions'])} regression(s)")
    for line in regression_lines(data):
        print(f"  REGRESSION {line}")
    for event in data.get("unconfirmed", []):
        paired = event.get("paired")
        evidence = (f"; paired against run {paired['against_run']} that night: {paired['change_pct']:+.1f}% "
                    f"[{paired['ci_pct'][0]:+.1f}%, {paired['ci_pct'][1]:+.1f}%]" if paired else "")
        print(f"  UNCONFIRMED {event['target']}: {event['variant_id']} {event['title']} {event['change_pct']:+.1f}% "
              f"in the newest run {event['run']} alone{evidence}")
    print(f"report: {path}")
    return 0


def cmd_report_signoff(args: argparse.Namespace) -> int:
    """Exit status 0 for PASS, 1 for FAIL (so CI can gate a release on it)."""
    from harness.report.signoff import render_signoff_report

    store = _open_store(args.store)
    path, data = render_signoff_report(store, args.candidate, args.baseline,
                                       Path(args.report_dir or _repo_default("reports")))
    why = f": {'; '.join(data['reasons'])}" if data["reasons"] else ""
    print(f"sign-off {data['candidate']['id']} vs {data['baseline']['id']}: {data['verdict']}{why}")
    print(f"report: {path}")
    return 0 if data["verdict"] == "PASS" else 1


def _run_spec(value: str) -> str:
    """A --baseline / --candidate value, checked as harness.analysis.run_spec reads it."""
    from harness.analysis.run_spec import check_run_spec

    try:
        return check_run_spec(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _positive_int(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        number = 0
    if number < 2:
        raise argparse.ArgumentTypeError(f"{value!r}: give a whole number of runs, 2 or more")
    return number


def build_report_parser(kind: str) -> argparse.ArgumentParser:
    """`harness report trend ...` and `harness report signoff ...` (a run id is never
    'trend' or 'signoff', so `harness report RUN` keeps its positional argument)."""
    if kind == "trend":
        parser = argparse.ArgumentParser(
            prog="harness report trend", description="metric history across the last runs of a label, regressions "
            "marked at the run where they appeared (reports/trend-LABEL/index.html)")
        parser.add_argument("--label", required=True, help="run label, e.g. nightly")
        parser.add_argument("--last", type=_positive_int, default=30, help="how many runs (default 30)")
        parser.set_defaults(func=cmd_report_trend)
    else:
        parser = argparse.ArgumentParser(
            prog="harness report signoff", description="one printable page: PASS/FAIL and why, budgets, regressions "
            "vs the baseline, device environments (exit status 1 on FAIL)")
        parser.add_argument("--candidate", required=True, type=_run_spec,
                            help="the release candidate run: id, latest or latest:LABEL")
        parser.add_argument("--baseline", required=True, type=_run_spec,
                            help="the run to compare with: id, latest or latest:LABEL "
                                 "(the newest before the candidate)")
        parser.set_defaults(func=cmd_report_signoff)
    parser.add_argument("--store", default=None)
    parser.add_argument("--report-dir", default=None)
    return parser


def build_parser() -> argparse.ArgumentParser:
    from harness.config.targets import TARGETS_DIR_ENV

    targets_dir = os.environ.get(TARGETS_DIR_ENV) or "targets"  # --targets-dir, else $HARNESS_TARGETS_DIR
    parser = argparse.ArgumentParser(prog="harness", description="Edge model benchmarking harness")
    commands = parser.add_subparsers(dest="command", required=True)

    targets = commands.add_parser("targets", help="declared devices").add_subparsers(dest="action", required=True)
    listing = targets.add_parser("list", help="list the targets in a targets directory")
    listing.add_argument("--targets-dir", default=targets_dir)
    listing.set_defaults(func=cmd_targets_list)
    check = targets.add_parser("check", help="reach a target and probe its interpreters and runtimes")
    check.add_argument("name")
    check.add_argument("--targets-dir", default=targets_dir)
    check.set_defaults(func=cmd_targets_check)
    setup = targets.add_parser(
        "setup", help="install the runtimes the target file's setup section lists on the device",
        description="Resolves the wheels for the device's platform and Python on this host (pip --platform), "
                    "pushes them over the target's transport and unpacks them into <workdir>/envs/<runtime> "
                    "on the device; the device needs no internet and no pip. Idempotent.")
    setup.add_argument("name")
    setup.add_argument("--targets-dir", default=targets_dir)
    setup.add_argument("--runtime", action="append", help="only this runtime of the setup section (repeatable)")
    setup.set_defaults(func=cmd_targets_setup)

    zoo = commands.add_parser("zoo", help="the locally built demo model zoo").add_subparsers(dest="action",
                                                                                            required=True)
    build = zoo.add_parser("build", help="build (or reuse) the demo models")
    build.add_argument("--zoo-dir", default=None, help="default: $HARNESS_ZOO_DIR or ./.zoo")
    build.add_argument("--model", action="append", help="only this model (repeatable)")
    build.add_argument("--force", action="store_true", help="rebuild even if up to date")
    build.set_defaults(func=cmd_zoo_build)

    runs = commands.add_parser("runs", help="list stored runs")
    runs.add_argument("--store", default=None)
    runs.add_argument("--label", default=None)
    runs.add_argument("--limit", type=int, default=20)
    runs.set_defaults(func=cmd_runs)

    from harness.lab.cli import add_lab_commands
    from harness.store.cli import add_store_commands

    add_lab_commands(commands)
    add_store_commands(commands)

    report = commands.add_parser(
        "report", help="render a run's HTML report from the store (also: report trend, report signoff)",
        epilog="also: `harness report trend --label L [--last N]` and "
               "`harness report signoff --candidate X --baseline Y` (see their --help)")
    report.add_argument("run", nargs="?", default="latest", help="run id, latest, or latest:LABEL")
    report.add_argument("--baseline", type=_run_spec, default=None,
                        help="also compare with this run: id, latest or latest:LABEL (the newest before RUN)")
    report.add_argument("--store", default=None)
    report.add_argument("--report-dir", default=None)
    report.set_defaults(func=cmd_report)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if len(argv) >= 2 and argv[0] == "report" and argv[1] in ("trend", "signoff"):
        args = build_report_parser(argv[1]).parse_args(argv[2:])
    else:
        args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except HarnessError as exc:
        print(f"harness: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("harness: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
