"""The regression rule's fast paths give the straightforward computation's values exactly:
the bootstrap's draws replayed from memory (regression/draws.py), resample medians read off
the draws' counts, the medians behind the block length. Equality, not closeness: a
verdict and the numbers it shows must not depend on which path computed them."""

from __future__ import annotations

import math

import numpy as np
import pytest

from harness.analysis.regression import block_length
from harness.analysis.regression.bootstrap import _ranks_drawn, bootstrap_replicates, bootstrap_statistic
from harness.analysis.regression.draws import Draws


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
