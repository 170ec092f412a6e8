"""pytest hooks: options, session set-up, parametrization over target x variant, and the
report at the end. Thin on purpose: the work happens in harness.run.session and friends."""

from __future__ import annotations

import dataclasses
import os
import shutil
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from harness.analysis.run_comparison import Comparer, RunComparison
from harness.analysis.run_spec import resolve_complete_run
from harness.config.sweep_specs import SweepSpecError, parse_sweep_options
from harness.config.targets import Target
from harness.config.variants import ModelVariant
from harness.errors import HarnessError
from harness.plugin.fixtures import COMPARER_KEY
from harness.plugin.options import add_options, session_options
from harness.plugin.state import REPORT_KEY, SESSION_KEY
from harness.run.declared_input_shapes import UnreadableModelFile, read_declared_input_shape
from harness.run.measure import arch_mismatch
from harness.run.run_info import new_run_id, utc_now
from harness.run.session import HarnessSession, SessionOptions
from harness.run.sweep_points import DeclaredShape, InputShapeOf, SweepPoint, expand
from harness.store import open_store

if TYPE_CHECKING:
    from harness.config.manifest import ModelVariant

REFERENCE_RUN_NOTE_KEY = pytest.StashKey[str]()  # what --baseline resolved to, for the summary
COMPARISON_KEY = pytest.StashKey[Any]()  # RunComparison of the whole run, or an error line
JUNIT_KEY = pytest.StashKey[Any]()  # the LogXML the plugin registered (no --junitxml given)
DECLARED_SHAPES_KEY = pytest.StashKey[dict[str, DeclaredShape | None]]()  # variant id -> its model's input shape


def pytest_addoption(parser: pytest.Parser) -> None:
    add_options(parser)


class XdistController:
    """Registered only when pytest-xdist is active: hands the controller's run id (and its
    reference run's) to every worker, so all workers record into one run, compare with the
    same run, and the controller reports it."""

    def __init__(self, run_id: str, loadgroup: bool, reference_run_id: str | None = None) -> None:
        self.run_id = run_id
        self.loadgroup = loadgroup
        self.reference_run_id = reference_run_id

    def pytest_configure_node(self, node) -> None:
        node.workerinput["harness_run_id"] = self.run_id
        node.workerinput["harness_loadgroup"] = self.loadgroup
        node.workerinput["harness_reference_run_id"] = self.reference_run_id


def _resolve_resume(options: SessionOptions, spec: str) -> str:
    """--resume RUN|latest|latest:LABEL -> the run id to continue (a usage error if none);
    latest is the newest run of any status (an interrupted one is what is resumed)."""
    from harness.analysis.run_spec import resolve_any_run

    try:
        store = open_store(options.store_url)
        try:
            return resolve_any_run(store, spec)
        finally:
            store.close()
    except HarnessError as exc:
        raise pytest.UsageError(f"--resume: {exc}") from None


def _resolve_reference_run(options: SessionOptions, config: pytest.Config) -> SessionOptions:
    """--baseline resolved to the reference run once, before anything is measured (a worker
    takes the controller's answer); the comparer reads that run lazily, at the first test.
    The run id goes to SessionOptions.baseline_run_id, stored with the run's options."""
    if options.fail_on_regression and not options.baseline:
        raise pytest.UsageError("--fail-on-regression needs --baseline=<run id | latest | latest:LABEL>")
    if not options.baseline:
        return options
    workerinput = getattr(config, "workerinput", None)
    try:
        store = open_store(options.store_url)  # the comparer's own read connection
        if workerinput is not None:
            run_id = workerinput.get("harness_reference_run_id")
            run = store.get_run(run_id) if run_id else None
            note = f"run {run_id}" if run_id else "none"
        else:
            run, note = resolve_complete_run(store, options.baseline, before=utc_now(),
                                             exclude=(options.run_id,) if options.run_id else ())
    except HarnessError as exc:
        raise pytest.UsageError(str(exc)) from None
    config.stash[REFERENCE_RUN_NOTE_KEY] = note
    if run is None:
        store.close()
        return options
    config.stash[COMPARER_KEY] = Comparer(store, run, history_label=run.label or options.run_label,
                                          candidate_run_id=options.run_id, note=note)
    return dataclasses.replace(options, baseline_run_id=run.id)


def _register_junit(config: pytest.Config) -> None:
    """No --junitxml given: write pytest's JUnit XML to a scratch file, moved next to the run's
    report (reports/<run>/junit.xml) at the end, or dropped when nothing was measured."""
    if getattr(config.option, "xmlpath", "unset") is not None or hasattr(config, "workerinput"):
        return
    from _pytest.junitxml import LogXML

    handle, scratch = tempfile.mkstemp(prefix="harness-junit-", suffix=".xml")
    os.close(handle)
    logxml = LogXML(scratch, config.option.junitprefix, config.getini("junit_suite_name"),
                    config.getini("junit_logging"), config.getini("junit_duration_report"),
                    config.getini("junit_family"), config.getini("junit_log_passing_tests"))
    config.stash[JUNIT_KEY] = logxml
    config.pluginmanager.register(logxml, "harness-junitxml")


def pytest_configure(config: pytest.Config) -> None:
    options = session_options(config)
    workerinput = getattr(config, "workerinput", None)
    if workerinput is not None:
        options = dataclasses.replace(options, run_id=workerinput.get("harness_run_id"), is_worker=True)
        if workerinput.get("harness_loadgroup"):
            config.option.loadgroup = True  # workers derive it from their own (unchanged) --dist
    elif options.resume:
        options = dataclasses.replace(options, run_id=_resolve_resume(options, options.resume))
    elif getattr(config.option, "numprocesses", None):
        options = dataclasses.replace(options, run_id=new_run_id())
    options = _resolve_reference_run(options, config)
    session = HarnessSession(options)
    if workerinput is None and getattr(config.option, "numprocesses", None):
        # one worker per device at a time (tests carry xdist_group(<target>) marks), so two
        # measurements never share a device; explicit other --dist modes are respected
        loadgroup = getattr(config.option, "dist", "no") in ("no", "load", "loadgroup")
        if loadgroup:
            config.option.dist = "loadgroup"
        assert options.run_id is not None  # set above: the resumed run's or a new id
        config.pluginmanager.register(XdistController(options.run_id, loadgroup, options.baseline_run_id),
                                      "harness-xdist-controller")
    config.stash[SESSION_KEY] = session
    config.addinivalue_line("markers", "harness: a benchmark suite test driven by the harness plugin")
    config.addinivalue_line("markers", "no_sweeps: parametrize this suite over variants only, not sweep points")
    try:
        session.cli_sweeps = parse_sweep_options(config.getoption("--sweep") or ())
    except SweepSpecError as exc:
        raise pytest.UsageError(f"{exc.where}: {exc.reason}") from None
    session.notify = lambda message: _tell_terminal(config, message)
    if config.getoption("--target") is not None:
        # an explicit --target is checked before collection: a typo is a usage error
        try:
            session.selected_targets()
        except HarnessError as exc:
            raise pytest.UsageError(str(exc)) from None
    if options.render_report:
        _register_junit(config)  # last: a usage error above leaves no scratch file behind


def _tell_terminal(config: pytest.Config, message: str) -> None:
    """Progress that must reach the terminal while pytest captures the test's output
    (e.g. "waiting for the device lock held by ...")."""
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    capture = config.pluginmanager.get_plugin("capturemanager")
    if reporter is None:  # while pytest is still configuring (the terminal comes later): stderr
        print(f"harness: {message}", file=sys.stderr, flush=True)
        return
    if capture is not None:
        with capture.global_and_fixture_disabled():
            reporter.write_line(f"harness: {message}")
    else:
        reporter.write_line(f"harness: {message}")


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    wants_target = "target" in metafunc.fixturenames
    wants_variant = "variant" in metafunc.fixturenames
    if not (wants_target or wants_variant):
        return
    session: HarnessSession = metafunc.config.stash[SESSION_KEY]
    try:
        targets = session.selected_targets()
        variants = session.manifest.variants if wants_variant else ()
    except HarnessError as exc:
        # CollectError is shown as its message alone: one line, no traceback
        raise pytest.Collector.CollectError(str(exc)) from None
    if wants_target and not wants_variant:
        metafunc.parametrize("target", [pytest.param(t, id=t.name, marks=pytest.mark.xdist_group(t.name))
                                        for t in targets])  # a matched board: whichever worker (board) runs it
        return
    swept: list[ModelVariant | SweepPoint] = list(variants)
    if wants_variant and metafunc.definition.get_closest_marker("no_sweeps") is None:
        try:
            points = expand(variants, session.cli_sweeps, siblings=session.manifest.variants,
                            input_shape=_declared_input_shapes(metafunc.config, session))
        except SweepSpecError as exc:
            raise pytest.Collector.CollectError(f"{exc.where}: {exc.reason}") from None
        swept += points
    for item in swept:  # what a paired measurement looks its baseline up in (a sweep point's too)
        known = item.variant if isinstance(item, SweepPoint) else item
        if known is not None:
            session.swept_variants[known.id] = known
    params = []
    for target in targets if wants_target else (None,):
        for item in swept:
            variant = item.variant if isinstance(item, SweepPoint) else item
            point_id = item.id  # a point's id, or the variant's own
            marks = [pytest.mark.xdist_group(xdist_group(target, variant))] if target is not None else []
            if variant is None:
                assert isinstance(item, SweepPoint)  # only a point has no variant: it cannot run
                marks.append(pytest.mark.skip(reason=f"{point_id}: {item.skipped}"))
            elif target is not None and variant.arch and variant.arch != target.arch:  # before the runtime:
                marks.append(pytest.mark.skip(reason=arch_mismatch(variant, target)))  # never runs there at all
            elif target is not None and variant.runtime != "noop" and variant.runtime not in target.runtimes:
                marks.append(pytest.mark.skip(
                    reason=f"{target.name} declares no '{variant.runtime}' runtime ({target.source})"))
            values = (target, variant) if target is not None else (variant,)
            name = f"{target.name}-{point_id}" if target is not None else point_id
            params.append(pytest.param(*values, id=name, marks=marks))
    metafunc.parametrize(("target", "variant") if wants_target else ("variant",), params)


def xdist_group(target: Target, variant: ModelVariant | None) -> str:
    """Which tests one pytest-xdist worker runs together: all of a device's (one worker per
    device at a time); for a labgrid target matching any free board of a kind, all of one
    model's, so each worker (each holding its own board) measures whole models and a variant
    and its baseline share a board."""
    labgrid = target.connection.labgrid
    if labgrid is not None and labgrid.place is None and variant is not None:
        return f"{target.name}/{variant.model}"
    return target.name


def _declared_input_shapes(config: pytest.Config, session: HarnessSession) -> InputShapeOf:
    """The input shape each variant's model file declares, read once per session (every suite
    is parametrized from it); a file that cannot be read is said once on the terminal, and its
    batch/resolution points run for the runtime to decide, as when nothing is declared."""
    shapes = config.stash.setdefault(DECLARED_SHAPES_KEY, {})

    def declared(variant: ModelVariant) -> DeclaredShape | None:
        if variant.id not in shapes:
            try:
                shapes[variant.id] = read_declared_input_shape(variant)
            except UnreadableModelFile as exc:
                session.notify(f"{variant.id}: {exc}: its batch/resolution points run unchecked")
                shapes[variant.id] = None
        return shapes[variant.id]

    return declared


def _place_junit(config: pytest.Config, report_dir: Path | None) -> None:
    """Move the scratch JUnit XML (written by now: this hook runs last) next to the report."""
    logxml = config.stash.get(JUNIT_KEY, None)
    if logxml is None:
        return
    scratch = logxml.logfile
    if report_dir is None:
        config.pluginmanager.unregister(logxml)  # nothing measured: no "generated xml file" line
        del config.stash[JUNIT_KEY]
        Path(scratch).unlink(missing_ok=True)
        return
    final = report_dir / "junit.xml"
    try:
        shutil.move(scratch, final)
        # the scratch file was made private (mkstemp: 0600); the report's files are as this
        # process's umask makes them (0644 usually), so a CI runner collecting them as another
        # user can read it too
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(final, 0o666 & ~umask)
    except OSError:
        return
    logxml.logfile = str(final)


def _close_comparer(config: pytest.Config) -> None:
    comparer: Comparer | None = config.stash.get(COMPARER_KEY, None)
    if comparer is not None:
        comparer.store.close()
        del config.stash[COMPARER_KEY]


def _compare_run(config: pytest.Config, harness: HarnessSession) -> RunComparison | None:
    comparer: Comparer | None = config.stash.get(COMPARER_KEY, None)
    if comparer is None or harness.run is None:
        return None
    comparer.candidate_run_id = harness.run.id
    try:
        comparison = comparer.comparison(harness.run.id)
    except HarnessError as exc:
        config.stash[COMPARISON_KEY] = f"comparison with the baseline run failed: {exc}"
        return None
    config.stash[COMPARISON_KEY] = comparison
    return comparison


@pytest.hookimpl(trylast=True)  # after junitxml has written its file
def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    config = session.config
    harness: HarnessSession | None = config.stash.get(SESSION_KEY, None)
    if harness is None:
        return
    if harness.options.is_worker:
        harness.finish(None)  # close devices; the controller finishes the run and reports it
        _close_comparer(config)
        return
    run = harness.adopt_run()
    if run is None:
        _place_junit(config, None)
        _close_comparer(config)
        return
    interrupted = exitstatus in (pytest.ExitCode.INTERRUPTED, pytest.ExitCode.INTERNAL_ERROR)
    harness.finish("interrupted" if interrupted else "complete")
    comparison = _compare_run(config, harness)
    _close_comparer(config)
    if not harness.options.render_report:
        _place_junit(config, None)
        return
    from harness.report.build import render_run_report  # pandas/matplotlib only when a report is due

    try:
        path = render_run_report(harness.store, run.id, harness.options.report_dir,
                                 comparison=comparison, junit=config.stash.get(JUNIT_KEY, None) is None)
    except HarnessError as exc:
        config.stash[REPORT_KEY] = f"report not rendered: {exc}"
        _place_junit(config, None)
        return
    _place_junit(config, path.parent)
    config.stash[REPORT_KEY] = str(path)


def pytest_terminal_summary(terminalreporter, exitstatus: int, config: pytest.Config) -> None:
    harness: HarnessSession | None = config.stash.get(SESSION_KEY, None)
    if harness is None or harness.run is None or harness.options.is_worker:
        return
    write = terminalreporter.write_line
    terminalreporter.section("harness")
    write(f"run {harness.run.id}" + (f" (label {harness.run.label})" if harness.run.label else "")
          + f": {harness.measurement_count} measurement(s), {harness.error_count} failed to measure; "
          + harness.push_summary())
    write(f"results store: {harness.store.url}")
    if harness.options.baseline:
        _write_comparison(write, harness, config)
    report = config.stash.get(REPORT_KEY, None)
    if report:
        shown = report if report.startswith("report not rendered") else f"report: {Path(report)}"
        write(shown)


def _write_comparison(write, harness: HarnessSession, config: pytest.Config) -> None:
    """Regressions and missing pairs against the --baseline run, one line each."""
    note = config.stash.get(REFERENCE_RUN_NOTE_KEY, harness.options.baseline)
    comparison = config.stash.get(COMPARISON_KEY, None)
    if harness.options.baseline_run_id is None:
        write(f"baseline: {note}")
        return
    if not isinstance(comparison, RunComparison):
        write(f"baseline: {note}: {comparison or 'not compared'}")
        return
    write(f"baseline: {note}: {comparison.summary_line()}")
    for verdict in comparison.verdicts:
        if verdict.status in ("regression", "missing"):
            shown = verdict.line() if verdict.status == "regression" else _missing(verdict)
            write(f"  {verdict.status.upper()} {shown}")


def _missing(verdict) -> str:
    return f"{verdict.target}: {verdict.variant_id} {verdict.metric}: {verdict.reason}"
