"""The limits a variant's outputs must meet against its baseline's (see harness.analysis.fidelity).

A value of its own, apart from the fidelity arithmetic, because both sides need it: the
manifest reader (harness.config.manifest) builds it from ``fidelity:`` sections, and the
verdict reads it back from a stored record.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class FidelitySettings:
    """How a variant's outputs must agree with its baseline's on the same seeded inputs.

    ``max_relative_error`` limits the mean over inputs of ||variant - baseline|| divided by
    the mean distance between the baseline's outputs for different inputs: 0.1 means "moves
    a tenth as much as changing the input does". Top-k limits apply to classifier-shaped
    outputs (class scores on the last axis) only."""

    inputs: int = 16
    min_top1_agreement: float = 0.99
    min_top5_agreement: float | None = None
    max_relative_error: float = 0.10
    min_cosine: float | None = None
