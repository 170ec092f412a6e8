"""Fixtures the suites use: `target` and `variant` (parametrized), `harness`."""

from __future__ import annotations

import random
import sys
from collections.abc import Callable
from typing import Any

import pytest

from harness.analysis.record_verdict import record_verdict
from harness.analysis.run_comparison import Comparer, RunVerdict
from harness.analysis.verdict import Verdict
from harness.config.targets import Target
from harness.errors import HarnessError
from harness.plugin.state import SESSION_KEY
from harness.records import MeasurementRecord
from harness.run.device import Device
from harness.run.measure import measure_fidelity, measure_latency, measure_memory, measure_power, record_failure
from harness.run.paired_latency import PairingSettings, measure_paired_latency, reference_arm
from harness.run.session import HarnessSession

# the reference (--baseline) run's records and history, read once per process (see hooks.pytest_configure)
COMPARER_KEY = pytest.StashKey[Comparer]()


class Harness:
    """What a suite test calls: measure (recorded at once), then require budgets.

    With --baseline, each measurement is compared with the reference run's right after it is
    recorded (the reference run's samples are already in the store); with --fail-on-regression
    a regression fails the test with the verdict's reason."""

    def __init__(self, session: HarnessSession, comparer: Comparer | None = None) -> None:
        self.session = session
        self.comparer = comparer
        self.regressions: list[RunVerdict] = []

    def _measured(self, target: Target, measure: Callable[..., MeasurementRecord], variant: Any = None,
                  metric: str | None = None) -> MeasurementRecord:
        """Run one measurement; a failure fails the test in one line (no traceback). With
        --resume, a measurement the resumed run already holds is reused, not repeated."""
        run = self.session.ensure_run()
        if variant is not None and metric is not None:
            done = self.session.already_measured(self.session.record_name(target), variant.id, metric)
            if done is not None:
                self.session.measurement_count += 1
                return done
        failure = None
        try:
            device = self.session.device(target)  # connecting and locking can fail too (unreachable)
        except HarnessError as exc:
            failure = str(exc)
            if variant is not None and metric is not None:  # the report shows the device was not reached
                record_failure(self.session.store, run.id, target, variant, metric, failure,
                               record_name=self.session.record_name(target))
        else:
            try:
                record = measure(device, run.id)  # records its own error row when it fails
            except HarnessError as exc:
                failure = str(exc)
                _print_link_log(device)
        if failure is not None:  # outside the except: no chained traceback in the output
            self.session.error_count += 1
            pytest.fail(failure, pytrace=False)
        self.session.measurement_count += 1
        self._compare_with_reference_run(record)
        return record

    def reference_run_verdict(self, record: MeasurementRecord) -> RunVerdict | None:
        """The record against the reference (--baseline) run (None without one, or nothing to
        compare)."""
        if self.comparer is None:
            return None
        self.comparer.candidate_run_id = record.run_id
        return self.comparer.verdict(record)

    def _compare_with_reference_run(self, record: MeasurementRecord) -> None:
        comparer = self.comparer
        if comparer is None:
            return
        failure = None
        try:
            verdict = self.reference_run_verdict(record)
        except HarnessError as exc:
            verdict, failure = None, f"comparison with the baseline run failed: {exc}"
        if failure is not None:
            pytest.fail(failure, pytrace=False)
        if verdict is None or verdict.status != "regression":
            return
        self.regressions.append(verdict)
        if self.session.options.fail_on_regression:
            message = f"{verdict.line()} (baseline run {comparer.reference_run.id})"
            budget = record_verdict(record)
            if budget.status in ("fail", "error"):
                message += f"; and {budget.message}"
            pytest.fail(message, pytrace=False)

    def _environment(self, target: Target) -> Callable[[dict[str, Any]], None]:
        return lambda env: self.session.record_environment(target, env)

    def measure_latency(self, target: Target, variant: Any) -> MeasurementRecord:
        """A variant is timed interleaved (paired) with its baseline and, with --baseline RUN,
        with that run's own artifacts where they can still run; alone where neither exists or
        the manifest sets ``latency.pairing: false``."""
        profile_ops = self.session.options.profile_ops

        def measure(device: Device, run_id: str) -> MeasurementRecord:
            # the reference run's record of this board (a labgrid board matched by kind has its own name)
            reference = (self.comparer.reference_record(device.record_name, variant.model, variant.name, "latency")
                         if self.comparer is not None else None)
            if not variant.latency.pairing or (variant.baseline is None and reference is None):
                return measure_latency(device, variant, self.session.store, run_id,
                                       on_environment=self._environment(target), profile_ops=profile_ops)
            settings = PairingSettings(precision=variant.latency.paired_precision,
                                       rounds=variant.latency.paired_rounds, seed=random.randrange(2**31))
            return measure_paired_latency(
                device, variant, self.session.baseline_of(variant), self.session.store, run_id, settings,
                on_environment=self._environment(target), profile_ops=profile_ops,
                reference=reference_arm(device, variant, reference) if reference is not None else None)

        return self._measured(target, measure, variant, "latency")

    def measure_memory(self, target: Target, variant: Any) -> MeasurementRecord:
        return self._measured(target, lambda device, run_id: measure_memory(
            device, variant, self.session.store, run_id, on_environment=self._environment(target)), variant, "memory")

    def measure_power(self, target: Target, variant: Any) -> MeasurementRecord:
        return self._measured(target, lambda device, run_id: measure_power(
            device, variant, self.session.store, run_id, on_environment=self._environment(target)), variant, "power")

    def measure_fidelity(self, target: Target, variant: Any) -> MeasurementRecord:
        baseline = self.session.baseline_of(variant)
        if baseline is not None and baseline.runtime != "noop" and baseline.runtime not in target.runtimes:
            if variant.dataset:  # its task accuracy is still measurable here, alone: no agreement is claimed
                return self._measured(target, lambda device, run_id: measure_fidelity(
                    device, variant, None, self.session.store, run_id, self.session.baseline_outputs,
                    baseline_not_run=f"its baseline {baseline.id} needs the '{baseline.runtime}' runtime, which "
                                     f"{target.name} does not declare"), variant, "fidelity")
            pytest.skip(f"{variant.id}: its baseline {baseline.id} needs the '{baseline.runtime}' runtime, which "
                        f"{target.name} does not declare: compare on a target that has both")
        return self._measured(target, lambda device, run_id: measure_fidelity(
            device, variant, baseline, self.session.store, run_id, self.session.baseline_outputs), variant, "fidelity")

    @staticmethod
    def verdict(record: MeasurementRecord) -> Verdict:
        return record_verdict(record)

    latency_verdict = verdict  # the name the first suites used

    @staticmethod
    def require(verdict: Verdict) -> None:
        """Fail the test (one line, no traceback) when a budget is missed; an unavailable
        measurement (no power sensor on this target) skips it, with the reason."""
        if verdict.status in ("fail", "error"):
            pytest.fail(verdict.message, pytrace=False)
        if verdict.status == "unavailable":
            pytest.skip(verdict.message)


@pytest.fixture(scope="session")
def harness_session(pytestconfig: pytest.Config) -> HarnessSession:
    return pytestconfig.stash[SESSION_KEY]


@pytest.fixture
def harness(harness_session: HarnessSession, pytestconfig: pytest.Config) -> Harness:
    return Harness(harness_session, pytestconfig.stash.get(COMPARER_KEY, None))


@pytest.fixture
def target(request: pytest.FixtureRequest) -> Target:
    """A declared target; parametrized by the plugin over --target."""
    if not hasattr(request, "param"):
        pytest.fail("the 'target' fixture is parametrized by the harness plugin; is it disabled?", pytrace=False)
    return request.param


@pytest.fixture
def variant(request: pytest.FixtureRequest) -> Any:
    """A model variant from the manifest; parametrized by the plugin."""
    if not hasattr(request, "param"):
        pytest.fail("the 'variant' fixture is parametrized by the harness plugin; is it disabled?", pytrace=False)
    return request.param


def _print_link_log(device: Device) -> None:
    """What the device's link saw lately (reconnects, kills and how long they took), on stderr:
    pytest shows it under a failed test, beside the one-line reason."""
    lines = list(getattr(device.transport, "debug_log", []) or [])[-12:]
    if lines:
        print(f"{device.target.name}: the link's last events:", *lines, sep="\n  ", file=sys.stderr)
