"""The verdict every pass/fail check of a stored record returns (budgets, fidelity).

A module of its own so that the checks (``harness.analysis.budgets``,
``harness.analysis.fidelity``) and the dispatcher over them
(``harness.analysis.record_verdict``) can all use it without importing each other.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Verdict:
    status: str  # "pass" | "fail" | "no-budget" | "error" | "unavailable"
    message: str
    value: float | None = None
    limit: float | None = None
    statistic: str | None = None
