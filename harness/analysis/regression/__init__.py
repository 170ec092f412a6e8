"""Regression decisions: a candidate run against a stored reference run (the one ``--baseline``
names). Pure, no I/O.

The question users ask is "did this model get slower on this target since last night (or
since release X)?". One answer per (target, model, variant, metric), from the raw samples of
the two runs. Modules, one concern each:

    rule       the rule (``decide``, ``Decision``) and the noise/drift screen (``run_flags``);
               its module docstring states the rule and why
    bootstrap  moving-block bootstrap: within-run uncertainty of a run's statistic
    draws      the bootstrap's random draws, replayed from memory for pairs of the same sizes
    batch      many pairs decided at once (``decide_all``): decide's decisions, faster
    ranks      Mann-Whitney U, the rule's guard for tiny samples
    noise      the run-to-run sd from a per-run history (``estimate_run_sd``)
    steps      step and drift detection over a per-run history (``detect_steps``)
    pairing    pairing two runs' records (``pair_runs``, ``Pair``, ``MissingPair``) and the
               names of the two sides
    samples, normal   sample validation, the named statistics, the normal distribution

What callers use is importable from here.
"""

from harness.analysis.regression.bootstrap import block_length, bootstrap_ratio_ci
from harness.analysis.regression.noise import estimate_run_sd
from harness.analysis.regression.pairing import CANDIDATE_SIDE, REFERENCE_SIDE, MissingPair, Pair, pair_runs
from harness.analysis.regression.ranks import mann_whitney_u
from harness.analysis.regression.rule import (
    DEFAULT_ALPHA,
    DEFAULT_RUN_SD,
    DEFAULT_THRESHOLD,
    STATUSES,
    Decision,
    decide,
    run_flags,
)
from harness.analysis.regression.steps import Step, detect_steps

__all__ = [
    "CANDIDATE_SIDE",
    "DEFAULT_ALPHA",
    "DEFAULT_RUN_SD",
    "DEFAULT_THRESHOLD",
    "STATUSES",
    "Decision",
    "MissingPair",
    "Pair",
    "REFERENCE_SIDE",
    "Step",
    "block_length",
    "bootstrap_ratio_ci",
    "decide",
    "detect_steps",
    "estimate_run_sd",
    "mann_whitney_u",
    "pair_runs",
    "run_flags",
]
