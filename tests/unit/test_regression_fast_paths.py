"""The regression rule's fast paths give the straightforward computation's values exactly:
the bootstrap's draws replayed from memory (regression/draws.py), resample medians read off
the draws' counts, the medians behind the block length, and many pairs decided at once
(regression/batch.py) against decide pair by pair. Equality, not closeness: a
verdict and the numbers it shows must not depend on which path computed them."""

from __future__ import annotations

import math

import numpy as np
import pytest

from harness.analysis.regression import block_length, decide, mann_whitney_u, run_flags
from harness.analysis.regression.batch import _block_lengths, _flags_rows, decide_all
from harness.analysis.regression.bootstrap import _ranks_drawn, bootstrap_replicates, bootstrap_statistic
from harness.analysis.regression.draws import Draws
from harness.analysis.regression.ranks import u_and_ties_of_rows, u_p_value


def ar1(rng: np.random.Generator, n: int, rho: float) -> np.ndarray:
    out = np.empty(n)
    out[0] = rng.normal()
    for i in range(1, n):
        out[i] = rho * out[i - 1] + rng.normal()
    return np.exp(0.05 * out)


def runs(seed: int) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.lognormal(0, 0.03, 500) * 1e6, np.round(rng.lognormal(0, 0.03, 501) * 1e3),  # ties
            ar1(rng, 400, 0.8), rng.integers(1, 4, 64).astype(float), np.full(30, 2.5), rng.lognormal(0, 1, 7),
            np.array([3.0]), rng.lognormal(0, 0.2, 2)]


@pytest.mark.parametrize("statistic", ["median", "mean", "p90", "min"])
@pytest.mark.parametrize("seed", range(3))
def test_replayed_draws_give_the_generators_replicates(statistic: str, seed: int) -> None:
    samples = runs(seed)
    for attempt in range(2):  # the second time every draw comes from memory
        rng = np.random.default_rng(seed)
        draws = Draws(seed)
        for x in samples:
            for block in (1, block_length(x), 5):
                expected = bootstrap_statistic(x, statistic, 100, block, rng)
                found = bootstrap_replicates(x, statistic, 100, block, draws)
                assert np.array_equal(found, expected), (attempt, x.size, block)
        assert draws.generator().integers(0, 2**62) == rng.integers(0, 2**62)  # the stream goes on alike


def test_draws_larger_than_a_chunk_are_drawn_as_they_come() -> None:
    x = np.random.default_rng(1).lognormal(0, 0.03, 30_000)
    rng, draws = np.random.default_rng(4), Draws(4)
    assert np.array_equal(bootstrap_replicates(x, "median", 100, 3, draws),
                          bootstrap_statistic(x, "median", 100, 3, rng))
    assert np.array_equal(bootstrap_replicates(x[:500], "median", 100, 1, draws),
                          bootstrap_statistic(x[:500], "median", 100, 1, rng))


def test_resample_order_statistics_outside_the_window_are_counted_in_full() -> None:
    x = np.random.default_rng(2).lognormal(0, 0.03, 500)
    order = np.argsort(x, kind="stable")
    drawn = Draws(9).index(500, 1, 100)
    assert drawn is not None
    expected = np.sort(x[drawn.index], axis=1)
    ks = [10, 249, 250, 499]
    for spread in (0.0, 1.0, math.sqrt(500) / 2):  # 0: a window of 17 positions, most rows outside it
        ranks = _ranks_drawn(drawn.counts, order, ks, spread)
        assert np.array_equal(x[order][ranks], expected[:, ks])


def test_block_length_medians_are_numpys() -> None:
    def reference(x: np.ndarray) -> int:  # block_length as first written, with np.median
        n = x.size
        y = np.log(x)
        center = np.median(y)
        spread = 1.4826 * np.median(np.abs(y - center))
        if spread > 0:
            y = np.clip(y, center - 4 * spread, center + 4 * spread)
        y = y - y.mean()
        rho = float(np.dot(y[1:], y[:-1]) / float(np.dot(y, y)))
        if rho <= 2.0 / math.sqrt(n):
            return 1
        rho = min(rho, 0.95)
        return int(max(1, min(math.ceil(n ** (1 / 3) * (2 * rho / (1 - rho * rho)) ** (2 / 3)), n // 4)))

    rng = np.random.default_rng(3)
    for n in (8, 9, 64, 501, 1000):
        for rho in (0.0, 0.2, 0.5, 0.9):
            x = ar1(rng, n, rho)
            assert block_length(x) == reference(x)


def battery(seed: int, count: int) -> list[tuple[object, object, dict[str, object]]]:
    """Pairs of runs of many kinds, sizes and options, several sharing sizes (one group)."""
    rng = np.random.default_rng(seed)
    kinds = {"lognormal": lambda n: rng.lognormal(0, 0.03, n) * 1e6,
             "ns ints": lambda n: tuple(int(v) for v in rng.lognormal(0, 0.03, n) * 1e6),
             "ties": lambda n: rng.integers(1, 6, n).astype(float),
             "noisy": lambda n: rng.lognormal(0, 0.3, n),
             "drift": lambda n: np.linspace(1, 1.3, n) * rng.lognormal(0, 0.01, n),
             "ar1": lambda n: ar1(rng, n, 0.8)}
    pairs: list[tuple[object, object, dict[str, object]]] = []
    for i in range(count):
        n1 = int(rng.choice([3, 5, 8, 9, 30, 31, 100, 500, 501]))
        n2 = n1 if i % 2 else int(rng.choice([5, 8, 30, 500]))
        make = kinds[str(rng.choice(list(kinds)))]
        a: object = make(n1)
        b: object = make(n2)
        if i % 40 == 0:
            a = [a, make(n1)]  # several runs a side: decide itself
        if i % 67 == 0:
            b = None  # missing
        pairs.append((a, b, dict(statistic=str(rng.choice(["median", "median", "mean", "p90", "min"])),
                                 higher_is_worse=bool(i % 5), run_sd=float(rng.choice([0.0, 0.02])),
                                 screen=bool(i % 4), resamples=int(rng.choice([20, 100, 101])), seed=i % 3,
                                 threshold=float(rng.choice([0.03, 0.05])))))
    return pairs


@pytest.mark.parametrize("seed", range(2))
def test_decide_all_gives_each_pairs_decide(seed: int) -> None:
    pairs = battery(seed, 400)
    assert decide_all(pairs) == [decide(a, b, **options) for a, b, options in pairs]
    assert decide_all([]) == []
    with pytest.raises(ValueError, match="positive"):
        decide_all([([1.0] * 10, [1.0] * 10, {}), ([1.0, -2.0, 3.0, 4.0, 5.0], [1.0] * 5, {})])


def test_row_wise_twins_match_their_single_run_functions() -> None:
    rng = np.random.default_rng(11)
    for n in (8, 9, 30, 31, 500):
        x = np.stack([ar1(rng, n, rho) for rho in (0.0, 0.3, 0.6, 0.9)] + [rng.lognormal(0, 0.4, n)]
                     + [np.linspace(1, 1.5, n), np.round(rng.lognormal(0, 0.05, n), 1)])
        y = np.stack([np.round(rng.lognormal(0.02, 0.05, n + 3), 1) for _ in range(x.shape[0])])
        ordered = np.sort(x, axis=1)
        assert _flags_rows(x, ordered) == [run_flags(row) for row in x]
        assert _block_lengths(list(x)) == [block_length(row) for row in x]
        u1, ties = u_and_ties_of_rows(ordered, np.sort(y, axis=1))
        for i in range(x.shape[0]):
            u, p = mann_whitney_u(x[i], y[i])
            assert (float(u1[i]), u_p_value(float(u1[i]), float(ties[i]), n, n + 3)) == (u, p)
