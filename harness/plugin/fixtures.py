"""Fixtures the suites use: `target` and `variant` (parametrized), `harness`."""

from __future__ import annotations

from typing import Any

import pytest

from ..compare import Verdict, record_verdict
from ..errors import HarnessError
from ..inventory import Target
from ..measure import measure_latency
from ..records import MeasurementRecord
from ..session import HarnessSession
from .state import SESSION_KEY


class Harness:
    """What a suite test calls: measure, then require budgets."""

    def __init__(self, session: HarnessSession) -> None:
        self.session = session

    def measure_latency(self, target: Target, variant: Any) -> MeasurementRecord:
        """Measure `variant` on `target` and record it; a failure fails the test in one line."""
        run = self.session.ensure_run()
        device = self.session.device(target)
        failure = None
        try:
            record = measure_latency(
                device, variant, self.session.store, run.id,
                on_environment=lambda env: self.session.record_environment(target, env))
        except HarnessError as exc:
            failure = str(exc)
        if failure is not None:  # outside the except: no chained traceback in the output
            self.session.error_count += 1
            pytest.fail(failure, pytrace=False)
        self.session.measurement_count += 1
        return record

    @staticmethod
    def latency_verdict(record: MeasurementRecord) -> Verdict:
        return record_verdict(record)

    @staticmethod
    def require(verdict: Verdict) -> None:
        """Fail the test (one line, no traceback) when a budget is missed."""
        if verdict.status in ("fail", "error"):
            pytest.fail(verdict.message, pytrace=False)


@pytest.fixture(scope="session")
def harness_session(pytestconfig: pytest.Config) -> HarnessSession:
    return pytestconfig.stash[SESSION_KEY]


@pytest.fixture
def harness(harness_session: HarnessSession) -> Harness:
    return Harness(harness_session)


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
