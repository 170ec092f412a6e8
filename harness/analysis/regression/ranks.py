"""Mann-Whitney U: do two samples differ by rank? In ``decide`` a guard for tiny samples."""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

from harness.analysis.regression.normal import normal_sf
from harness.analysis.regression.samples import as_samples


def _ranks_with_ties(values: np.ndarray) -> tuple[np.ndarray, float]:
    """1-based average ranks and the tie term sum(t^3 - t) over tie groups."""
    n = values.size
    order = np.argsort(values, kind="mergesort")
    ordered = values[order]
    new_group = np.empty(n, dtype=bool)
    new_group[0] = True
    np.not_equal(ordered[1:], ordered[:-1], out=new_group[1:])
    starts = np.flatnonzero(new_group)
    counts = np.diff(np.append(starts, n))
    average = starts + (counts + 1) / 2.0
    ranks = np.empty(n, dtype=float)
    ranks[order] = np.repeat(average, counts)
    tie_term = float(np.sum(counts.astype(float) ** 3 - counts))
    return ranks, tie_term


def _exact_u_counts(n1: int, n2: int) -> np.ndarray:
    """Number of orderings giving U = 0..n1*n2 (coefficients of the Gaussian binomial)."""
    m, other = (n1, n2) if n1 <= n2 else (n2, n1)
    size = m * other + 1
    poly = np.zeros(size)
    poly[0] = 1.0
    for i in range(1, m + 1):
        k = other + i  # times (1 - q^k) / (1 - q^i): the result is [other+i choose i]_q again
        if k < size:
            poly[k:] -= poly[:size - k].copy()
        for r in range(i):
            poly[r::i] = np.cumsum(poly[r::i])
    return np.maximum(poly, 0.0)


def mann_whitney_u(a: npt.ArrayLike, b: npt.ArrayLike, *, method: str = "auto",
                   use_continuity: bool = True) -> tuple[float, float]:
    """Mann-Whitney U of `a` against `b` and its two-sided p-value.

    U is the statistic of `a` (the count of pairs with a > b, ties counting one half), as in
    scipy >= 1.7. method "asymptotic" uses the normal approximation with the tie correction
    and (by default) the continuity correction; "exact" the exact null distribution (no ties
    allowed); "auto" picks exact when a side has at most 8 samples and there are no ties,
    like scipy. O((n1 + n2) log(n1 + n2)): 10^4 samples a side take a few milliseconds.
    """
    x = as_samples(a, "a")
    y = as_samples(b, "b")
    n1, n2 = x.size, y.size
    if n1 == 0 or n2 == 0:
        raise ValueError("Mann-Whitney U needs at least one sample on each side")
    if method not in ("auto", "asymptotic", "exact"):
        raise ValueError(f"method {method!r}: use auto, asymptotic or exact")
    n = n1 + n2
    ranks, tie_term = _ranks_with_ties(np.concatenate([x, y]))
    u1 = float(ranks[:n1].sum() - n1 * (n1 + 1) / 2.0)
    u_big = max(u1, n1 * n2 - u1)
    if method == "auto":
        method = "exact" if (min(n1, n2) <= 8 and tie_term == 0) else "asymptotic"
    if method == "exact":
        if tie_term != 0:
            raise ValueError("exact Mann-Whitney p-value needs samples without ties; use asymptotic")
        counts = _exact_u_counts(n1, n2)
        tail = counts[int(round(u_big)):].sum() / counts.sum()  # P(U >= u_big)
        return u1, float(min(1.0, 2.0 * tail))
    mean = n1 * n2 / 2.0
    variance = n1 * n2 / 12.0 * ((n + 1) - tie_term / (n * (n - 1)))
    if variance <= 0:  # every value tied: no evidence of a difference
        return u1, 1.0
    z = (u_big - mean - (0.5 if use_continuity else 0.0)) / math.sqrt(variance)
    return u1, float(min(1.0, 2.0 * normal_sf(z)))
