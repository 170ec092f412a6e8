"""pytest hooks: options, session set-up, parametrization over target x variant, and the
report at the end. Thin on purpose: the work happens in harness.session and friends."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from ..errors import HarnessError
from ..measure import arch_mismatch
from ..runinfo import new_run_id
from ..session import HarnessSession
from .options import add_options, session_options
from .state import REPORT_KEY, SESSION_KEY


def pytest_addoption(parser: pytest.Parser) -> None:
    add_options(parser)


class XdistController:
    """Registered only when pytest-xdist is active: hands the controller's run id to every
    worker, so all workers record into one run and the controller reports it."""

    def __init__(self, run_id: str, loadgroup: bool) -> None:
        self.run_id = run_id
        self.loadgroup = loadgroup

    def pytest_configure_node(self, node) -> None:
        node.workerinput["harness_run_id"] = self.run_id
        node.workerinput["harness_loadgroup"] = self.loadgroup


def pytest_configure(config: pytest.Config) -> None:
    options = session_options(config)
    workerinput = getattr(config, "workerinput", None)
    if workerinput is not None:
        options = dataclasses.replace(options, run_id=workerinput.get("harness_run_id"), is_worker=True)
        if workerinput.get("harness_loadgroup"):
            config.option.loadgroup = True  # workers derive it from their own (unchanged) --dist
    elif getattr(config.option, "numprocesses", None):
        options = dataclasses.replace(options, run_id=new_run_id())
        # one worker per device at a time (tests carry xdist_group(<target>) marks), so two
        # measurements never share a device; explicit other --dist modes are respected
        loadgroup = getattr(config.option, "dist", "no") in ("no", "load", "loadgroup")
        if loadgroup:
            config.option.dist = "loadgroup"
        config.pluginmanager.register(XdistController(options.run_id, loadgroup), "harness-xdist-controller")
    session = HarnessSession(options)
    config.stash[SESSION_KEY] = session
    config.addinivalue_line("markers", "harness: a benchmark suite test driven by the harness plugin")
    if config.getoption("--target") is not None:
        # an explicit --target is checked before collection: a typo is a usage error
        try:
            session.selected_targets()
        except HarnessError as exc:
            raise pytest.UsageError(str(exc)) from None


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
                                        for t in targets])
        return
    params = []
    for target in targets if wants_target else (None,):
        for variant in variants:
            marks = [pytest.mark.xdist_group(target.name)] if target is not None else []
            if target is not None and variant.runtime != "noop" and variant.runtime not in target.runtimes:
                marks.append(pytest.mark.skip(
                    reason=f"{target.name} declares no '{variant.runtime}' runtime ({target.source})"))
            elif target is not None and variant.arch and variant.arch != target.arch:
                marks.append(pytest.mark.skip(reason=arch_mismatch(variant, target)))
            values = (target, variant) if target is not None else (variant,)
            name = f"{target.name}-{variant.id}" if target is not None else variant.id
            params.append(pytest.param(*values, id=name, marks=marks))
    metafunc.parametrize(("target", "variant") if wants_target else ("variant",), params)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    config = session.config
    harness: HarnessSession | None = config.stash.get(SESSION_KEY, None)
    if harness is None:
        return
    if harness.options.is_worker:
        harness.finish(None)  # close devices; the controller finishes the run and reports it
        return
    if harness.adopt_run() is None:
        return
    interrupted = exitstatus in (pytest.ExitCode.INTERRUPTED, pytest.ExitCode.INTERNAL_ERROR)
    harness.finish("interrupted" if interrupted else "complete")
    if not harness.options.render_report:
        return
    from ..report.build import render_run_report  # pandas/matplotlib only when a report is due

    try:
        path = render_run_report(harness.store, harness.run.id, harness.options.report_dir)
    except HarnessError as exc:
        config.stash[REPORT_KEY] = f"report not rendered: {exc}"
        return
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
    report = config.stash.get(REPORT_KEY, None)
    if report:
        shown = report if report.startswith("report not rendered") else f"report: {Path(report)}"
        write(shown)
