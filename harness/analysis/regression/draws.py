"""The moving-block bootstrap's random draws: which samples each resample takes, and the
draws of one seeded generator kept for the next caller with the same sizes.

``decide`` seeds ``default_rng(seed)`` afresh for every pair of runs, so every pair whose runs
have the same sizes and block lengths draws the very same indexes (a 10,000-measurement run
compared with another: 5,000 pairs, a handful of distinct size sequences). `Draws` replays
such a sequence from memory instead of drawing it again: the indexes it gives are exactly
the generator's, call by call (the generator's state after each call is kept with them).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Iterator, Mapping
from functools import cached_property
from typing import Any

import numpy as np

MAX_CHUNK_ELEMENTS = 2_000_000  # bootstrap memory bound: resamples x samples per chunk
_MEMO_BYTES = 64 * 2**20  # kept draws in all (index and counts, 16 bytes an element)


def block_index(n: int, block: int, rows: int, rng: np.random.Generator) -> np.ndarray:
    """`rows` resamples of n sample positions: n iid draws (block 1), else contiguous blocks
    of `block` positions from uniformly drawn starts, the last block cut at n."""
    if block == 1:
        return rng.integers(0, n, size=(rows, n))
    blocks_per_resample = -(-n // block)
    starts = rng.integers(0, n - block + 1, size=(rows, blocks_per_resample))
    return (starts[:, :, None] + np.arange(block)).reshape(rows, -1)[:, :n]


def index_chunks(n: int, block: int, resamples: int, rng: np.random.Generator) -> Iterator[np.ndarray]:
    """The resamples' positions, in chunks of at most MAX_CHUNK_ELEMENTS elements."""
    chunk = max(1, MAX_CHUNK_ELEMENTS // max(n, 1))
    for start in range(0, resamples, chunk):
        yield block_index(n, block, min(chunk, resamples - start), rng)


class Drawn:
    """One call's resample positions (one chunk: resamples x n), read-only."""

    def __init__(self, index: np.ndarray, state: Mapping[str, Any]) -> None:
        index.flags.writeable = False
        self.index = index
        self.state = state  # the generator's state after drawing them

    @cached_property
    def counts(self) -> np.ndarray:
        """counts[r, i]: how many times resample r took sample i (float, for matrix products)."""
        rows, n = self.index.shape
        flat = (self.index + (np.arange(rows) * n)[:, None]).ravel()
        out = np.bincount(flat, minlength=rows * n).reshape(rows, n).astype(float)
        out.flags.writeable = False
        return out

    @property
    def nbytes(self) -> int:
        return 2 * self.index.nbytes


_memo: OrderedDict[tuple[Any, ...], Drawn] = OrderedDict()
_memo_bytes = 0
_lock = threading.Lock()


def _remember(key: tuple[Any, ...], drawn: Drawn) -> None:
    global _memo_bytes
    with _lock:
        if key in _memo or drawn.nbytes > _MEMO_BYTES // 4:
            return
        _memo[key] = drawn
        _memo_bytes += drawn.nbytes
        while _memo_bytes > _MEMO_BYTES:
            _, old = _memo.popitem(last=False)
            _memo_bytes -= old.nbytes


def _recall(key: tuple[Any, ...]) -> Drawn | None:
    with _lock:
        found = _memo.get(key)
        if found is not None:
            _memo.move_to_end(key)
        return found


class Draws:
    """The draws of ``np.random.default_rng(seed)``, call by call, replayed from memory when
    an earlier `Draws` of the same seed made the same calls."""

    def __init__(self, seed: int) -> None:
        self._seed = seed
        self._calls: tuple[tuple[int, int, int], ...] = ()
        self._state: Mapping[str, Any] | None = None  # None: the fresh generator

    def generator(self) -> np.random.Generator:
        """The generator where this sequence stands; `advanced` must follow its use."""
        rng = np.random.default_rng(self._seed)
        if self._state is not None:
            rng.bit_generator.state = self._state
        return rng

    def advanced(self, rng: np.random.Generator, call: tuple[int, int, int]) -> None:
        """Record that `call` (n, block, resamples) was drawn from `rng` outside the memo."""
        self._calls += (call,)
        self._state = rng.bit_generator.state

    def index(self, n: int, block: int, resamples: int) -> Drawn | None:
        """The positions of `resamples` resamples of n samples in blocks of `block` (one
        chunk), or None when they take more than one chunk (draw those with `generator`)."""
        if resamples * n > MAX_CHUNK_ELEMENTS:
            return None
        call = (n, block, resamples)
        key = (self._seed, self._calls + (call,))
        drawn = _recall(key)
        if drawn is None:
            rng = self.generator()
            drawn = Drawn(block_index(n, block, resamples, rng), rng.bit_generator.state)
            _remember(key, drawn)
        self._calls += (call,)
        self._state = drawn.state
        return drawn
