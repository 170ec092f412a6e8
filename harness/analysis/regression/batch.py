"""Many pairs of runs decided at once: ``decide_all`` gives what ``decide`` gives for each
pair, value for value, with the work of pairs alike done as whole-array operations.

A run comparison decides thousands of pairs (10,000 measurements: 5,000), one run a side,
most of them of the same sizes. Per pair, ``decide`` spends most of its time in numpy's
per-call overhead on arrays of a few hundred values. Here the pairs with one run a side are
grouped by their sizes and bootstrap settings, and per group the runs are stacked: sorted
together, screened together (the noise and drift flags' percentiles, elementwise), their
resample medians counted together from the shared draws, and their rank sums counted
together. What is not plain elementwise arithmetic, sorting or integer counting (logs,
means, dot products: numpy may round those differently for another array shape) is still
computed run by run, on the run's own array, as ``decide`` computes it. Pairs with several
runs a side go through ``decide`` itself.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from harness.analysis.regression.bootstrap import block_length, block_length_of, resample_statistic
from harness.analysis.regression.draws import Drawn, Draws
from harness.analysis.regression.pairing import REFERENCE_SIDE
from harness.analysis.regression.ranks import u_and_ties_of_rows, u_p_value
from harness.analysis.regression.rule import (
    Decision,
    Question,
    answer,
    ask,
    decide_question,
    replicates_per_run,
    screened,
    side_level,
)
from harness.analysis.regression.samples import compute_statistic
from harness.analysis.stats import DRIFT_LIMIT, HIGH_CV, MIN_SAMPLES_FOR_DRIFT

_PAIRS_AT_ONCE = 512  # pairs stacked at once (memory: a few arrays of 512 x their sizes)
_ROWS_AT_ONCE = 128  # pairs whose window counts are summed in one array (128 x 100 x ~100 counts)


def decide_all(pairs: Sequence[tuple[Any, Any, Mapping[str, Any]]]) -> list[Decision]:
    """[decide(reference, candidate, **options) for reference, candidate, options in pairs],
    the same decisions (and the same ValueError on bad arguments), faster."""
    out: list[Decision | None] = [None] * len(pairs)
    groups: dict[tuple[Any, ...], list[tuple[int, Question]]] = {}
    for i, (reference, candidate, options) in enumerate(pairs):
        question = ask(reference, candidate, **options)
        if isinstance(question, Decision):
            out[i] = question
        elif len(question.ref_runs) == 1 and len(question.cand_runs) == 1:
            key = (question.ref_runs[0].size, question.cand_runs[0].size, question.statistic,
                   question.resamples, question.seed, question.screen)
            groups.setdefault(key, []).append((i, question))
        else:
            out[i] = decide_question(question)
    for members in groups.values():
        for start in range(0, len(members), _PAIRS_AT_ONCE):
            chunk = members[start:start + _PAIRS_AT_ONCE]
            for (i, _), decision in zip(chunk, _decide_group([q for _, q in chunk]), strict=True):
                out[i] = decision
    assert all(decision is not None for decision in out)
    return [decision for decision in out if decision is not None]


def _percentile_rows(ordered: np.ndarray, q: float) -> np.ndarray:
    """``stats.percentile`` of each sorted row: its arithmetic, elementwise."""
    n = ordered.shape[1]
    position = (n - 1) * q / 100.0
    lower = math.floor(position)
    upper = min(lower + 1, n - 1)
    return ordered[:, lower] + (ordered[:, upper] - ordered[:, lower]) * (position - lower)


def _flags_rows(x: np.ndarray, ordered: np.ndarray) -> list[list[str]]:
    """``rule.run_flags`` of each row (samples in time order; `ordered` the rows sorted):
    ``stats.robust_cv`` and ``stats.drift_ratio`` elementwise, the same arithmetic."""
    median = _percentile_rows(ordered, 50)
    noise = ((_percentile_rows(ordered, 75) - _percentile_rows(ordered, 25)) / 1.349) / median
    drift: np.ndarray | None = None
    n = x.shape[1]
    if n >= MIN_SAMPLES_FOR_DRIFT:
        third = n // 3
        drift = (_percentile_rows(np.sort(x[:, -third:], axis=1), 50)
                 / _percentile_rows(np.sort(x[:, :third], axis=1), 50))
    out = []
    for i in range(x.shape[0]):
        flags = []
        if median[i] > 0 and noise[i] > HIGH_CV:  # robust_cv is None when the median is not > 0
            flags.append(f"robust CV {float(noise[i]):.0%} > {HIGH_CV:.0%}")
        if drift is not None and abs(float(drift[i]) - 1) > DRIFT_LIMIT:
            flags.append(f"drift {float(drift[i]) - 1:+.0%} from first to last third")
        out.append(flags)
    return out


def _drawn_ranks_rows(counts: np.ndarray, orders: np.ndarray, ks: list[int], spread: float) -> np.ndarray:
    """``bootstrap._ranks_drawn`` for several runs of one size drawn alike (`orders`: their
    stable argsorts, one a row): out[run, resample, j] the sorted position of resample's
    ks[j]-th smallest value. Integer counts throughout (exact)."""
    rows, n = counts.shape
    reach = int(6 * spread) + 8
    low, high = max(0, min(ks) - reach), min(n, max(ks) + 1 + reach)
    kind = np.int16 if n < 2**15 else np.int64  # a running count is at most n
    by_sample_int = np.ascontiguousarray(counts.T).astype(kind)  # n x resamples
    out = np.empty((orders.shape[0], rows, len(ks)), dtype=np.intp)
    for start in range(0, orders.shape[0], _ROWS_AT_ONCE):
        part = orders[start:start + _ROWS_AT_ONCE]
        # sorted position first, one (run x resample) slab each: sums over slabs and a loop
        # of whole-slab adds are several times faster than np.cumsum along an axis (and than
        # a matrix product, which BLAS threads slow down on a busy machine)
        below = np.zeros((part.shape[0], rows), dtype=kind)
        if low > 0:
            below = np.add.reduce(by_sample_int[np.ascontiguousarray(part[:, :low].T)], axis=0, dtype=kind)
        running = by_sample_int[np.ascontiguousarray(part[:, low:high].T)]
        running[0] += below
        for j in range(1, running.shape[0]):
            np.add(running[j], running[j - 1], out=running[j])
        for column, k in enumerate(ks):
            found = low + np.count_nonzero(running <= k, axis=0)
            outside = np.argwhere((below > k) | (running[-1] <= k))
            for run, resample in outside:  # beyond the window: counted in full
                found[run, resample] = np.count_nonzero(np.cumsum(counts[resample, part[run]]) <= k)
            out[start:start + part.shape[0], :, column] = found
    return out


def _within(runs: list[np.ndarray], orders: np.ndarray, ordered: np.ndarray, question: Question,
            drawn: Drawn, block: int) -> list[float]:
    """The within-run variance of log(statistic) of each run, all drawn alike (`drawn`)."""
    n = ordered.shape[1]
    if question.statistic == "median":
        half = n // 2
        spread = math.sqrt(n * block) / 2
        if n % 2:
            ranks = _drawn_ranks_rows(drawn.counts, orders, [half], spread)[:, :, 0]
            medians = np.take_along_axis(ordered, ranks, axis=1)
        else:
            ranks = _drawn_ranks_rows(drawn.counts, orders, [half - 1, half], spread)
            medians = 0.5 * (np.take_along_axis(ordered, ranks[:, :, 0], axis=1)
                             + np.take_along_axis(ordered, ranks[:, :, 1], axis=1))
        replicates = [row.copy() for row in medians]  # each its own array, as decide's are
    else:
        replicates = [np.asarray(resample_statistic(run[drawn.index], question.statistic), dtype=float) for run in runs]
    return [float(np.var(np.log(values), ddof=1)) for values in replicates]


def _block_lengths(runs: list[np.ndarray]) -> list[int]:
    """``bootstrap.block_length`` of each run (one size, every value > 0): the sorts,
    medians and clipping elementwise over the runs stacked; the log, the mean and the dot
    products on each run's own array, as block_length computes them."""
    n = runs[0].size
    if n < 8:
        return [block_length(run) for run in runs]
    y = np.stack([np.log(run) for run in runs])
    ordered = np.sort(y, axis=1)
    half = n // 2
    center = ordered[:, half] if n % 2 else (ordered[:, half - 1] + ordered[:, half]) / 2
    deviation = np.sort(np.abs(y - center[:, None]), axis=1)
    spread = 1.4826 * (deviation[:, half] if n % 2 else (deviation[:, half - 1] + deviation[:, half]) / 2)
    clipped = np.where((spread > 0)[:, None],
                       np.clip(y, (center - 4 * spread)[:, None], (center + 4 * spread)[:, None]), y)
    out = []
    for row in clipped:
        centred = row - row.mean()
        denominator = float(np.dot(centred, centred))
        rho = float(np.dot(centred[1:], centred[:-1]) / denominator) if denominator != 0 else 0.0
        out.append(block_length_of(rho, n) if denominator != 0 else 1)
    return out


def _decide_group(questions: list[Question]) -> list[Decision]:
    """decide_question of each question: one run a side, all of the same sizes and settings."""
    first = questions[0]
    sides = [[q.ref_runs[0] for q in questions], [q.cand_runs[0] for q in questions]]
    stacked = [np.stack(runs) for runs in sides]
    orders = [np.argsort(x, axis=1, kind="stable") for x in stacked]
    ordered = [np.take_along_axis(x, o, axis=1) for x, o in zip(stacked, orders, strict=True)]
    flags = ([_flags_rows(x, s) for x, s in zip(stacked, ordered, strict=True)] if first.screen
             else [[[] for _ in questions]] * 2)

    def flags_of(i: int) -> Callable[[str, int], list[str]]:
        return lambda side, _: flags[0 if side == REFERENCE_SIDE else 1][i]

    screens = [screened(q, flags_of(i)) for i, q in enumerate(questions)]
    # with one run a side the screen keeps both runs (a flag blocks the verdict instead)
    assert all(len(s.ref_runs) == 1 and len(s.cand_runs) == 1 for s in screens)
    logs = []
    for runs, s in zip(sides, ordered, strict=True):
        if first.statistic == "median":
            n = s.shape[1]
            middle = s[:, n // 2] if n % 2 else (s[:, n // 2 - 1] + s[:, n // 2]) / 2
            logs.append([math.log(float(value)) for value in middle])
        else:
            logs.append([math.log(float(compute_statistic(run, first.statistic))) for run in runs])
    blocks = [[max(1, min(block, run.size)) for block, run in zip(_block_lengths(runs), runs, strict=True)]
              for runs in sides]
    within: list[list[float]] = [[0.0] * len(questions), [0.0] * len(questions)]
    per_run = replicates_per_run(first, 1)
    alike: dict[tuple[int, int], list[int]] = {}
    for i in range(len(questions)):
        alike.setdefault((blocks[0][i], blocks[1][i]), []).append(i)
    for (block_a, block_b), members in alike.items():
        draws = Draws(first.seed)
        for side, block in ((0, block_a), (1, block_b)):
            n = stacked[side].shape[1]
            drawn = draws.index(n, block, per_run)
            if drawn is None:  # too large to keep: each pair as decide draws it
                return [decide_question(q) for q in questions]
            found = _within([sides[side][i] for i in members], orders[side][members], ordered[side][members],
                            first, drawn, block)
            for i, value in zip(members, found, strict=True):
                within[side][i] = value
    u1, ties = u_and_ties_of_rows(ordered[0], ordered[1])
    n1, n2 = ordered[0].shape[1], ordered[1].shape[1]
    return [answer(q, screens[i], side_level([logs[0][i]], [within[0][i]]), side_level([logs[1][i]], [within[1][i]]),
                   u_p_value(float(u1[i]), float(ties[i]), n1, n2))
            for i, q in enumerate(questions)]
