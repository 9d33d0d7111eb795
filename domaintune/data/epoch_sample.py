"""A pairs budget per epoch (``--pairs-per-epoch N``): which rows each epoch trains on.

Epoch ``e`` takes positions ``[e * N, (e + 1) * N)`` of an endless stream of
seeded permutations of the rows, so the epochs differ, every row is seen once
before any row is seen twice, and the run covers the data. The stream is a
pure function of ``(seed, epoch)``: every trial of a search sees the same
first epoch (comparable), a Hyperband trial continuing its parent at epoch
``e`` sees the rows the parent has not, and a resumed trial can re-create any
epoch without replaying the ones before it.
"""

from __future__ import annotations

import threading

import numpy as np


class EpochSample:
    """The rows (of ``n``) each epoch trains on: all of them when ``per_epoch``
    is 0 or at least ``n``, else ``per_epoch`` distinct rows."""

    def __init__(self, n: int, per_epoch: int = 0, seed: int = 0):
        if n < 0 or per_epoch < 0:
            raise ValueError(f"need n >= 0 and per_epoch >= 0, got {n}, {per_epoch}")
        self.n, self.seed = int(n), int(seed)
        self.size = self.n if per_epoch == 0 or per_epoch >= n else int(per_epoch)
        self._cycles: list[np.ndarray] = []  # the stream, one permutation per pass
        self._lock = threading.Lock()  # the miner and the batches' thread both ask

    @property
    def budgeted(self) -> bool:
        """Whether an epoch is a sample rather than every row."""
        return self.size < self.n

    def rows(self, epoch: int) -> np.ndarray:
        """The epoch's rows in stream order (``arange(n)`` without a budget)."""
        if not self.budgeted:
            return np.arange(self.n)
        start = int(epoch) * self.size
        end = start + self.size
        first, last = start // self.n, (end - 1) // self.n
        with self._lock:
            while len(self._cycles) <= last:
                self._cycles.append(self._next_cycle())
            stream = np.concatenate(self._cycles[first : last + 1])
        offset = first * self.n
        return stream[start - offset : end - offset]

    def _next_cycle(self) -> np.ndarray:
        c = len(self._cycles)
        order = np.random.default_rng([self.seed, c]).permutation(self.n)
        boundary = c * self.n
        if c == 0 or boundary % self.size == 0:
            return order
        # The epoch that straddles the boundary takes the previous pass's tail
        # and this pass's head: move the tail's rows out of the head, or that
        # epoch would hold some row twice (and fewer than `size` distinct rows).
        tail = self._cycles[-1][(boundary // self.size) * self.size - (c - 1) * self.n :]
        head = self.size - len(tail)
        fresh = ~np.isin(order, tail)
        taken = np.flatnonzero(fresh)[:head]
        rest = np.ones(self.n, bool)
        rest[taken] = False
        return np.concatenate([order[taken], order[rest]])
