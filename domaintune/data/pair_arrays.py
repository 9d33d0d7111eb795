"""A pair set's columns as numpy arrays, built once per pair set.

A search loads its training pairs once and every trial batches them: the
object arrays of the columns, each text's case-folded id (what the in-batch
batcher compares), the epoch samples and the mined negatives' concept groups
do not depend on the trial, so they are built on first use and kept with the
pair set (:func:`pair_arrays`) instead of being rebuilt per trial (or epoch)
from up to half a million Python strings.
"""

from __future__ import annotations

import threading
import weakref
from collections import OrderedDict
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from domaintune.data.epoch_sample import EpochSample

#: Id of "" (no text) in :attr:`PairArrays.ids`.
NO_TEXT = -1
#: Derived values a pair set keeps (the least recently used go first).
MEMO_SIZE = 8


def text_key(text: str) -> str:
    """What makes two texts the same text: stripped, case-folded."""
    return text.strip().casefold()


class PairArrays:
    """``texts``: base, ref and (if the pairs have one) hard-negative column as
    object arrays; ``ids``: each text's id by :func:`text_key` (:data:`NO_TEXT`
    for ""), aligned with ``texts``; ``concept_ids``: each pair's concept as a
    negative id (:data:`NO_TEXT` where the pair has none), so that it never
    equals a text's; ``scores`` as float32."""

    def __init__(self, pairs: Any):
        hard = getattr(pairs, "hard_negatives", None)
        columns = [pairs.texts_a, pairs.texts_b, *([hard] if hard is not None else [])]
        self.texts = [np.asarray(c, object) for c in columns]
        self.has_hard = hard is not None
        self.scores = np.asarray(pairs.scores, np.float32)
        self._ids_by_text: dict[str, int] = {}
        self._ids_by_key: dict[str, int] = {}
        self.ids = [self.ids_of(c) for c in columns]
        self.concept_ids = _concept_ids(getattr(pairs, "concepts", None), len(self.scores))
        self._memo: OrderedDict[Any, Any] = OrderedDict()
        self._lock = threading.RLock()  # a build may memo too

    def ids_of(self, texts: Sequence[str]) -> np.ndarray:
        """Ids of ``texts`` (new texts get new ids: mined negatives need them)."""
        by_text, by_key = self._ids_by_text, self._ids_by_key
        out = np.empty(len(texts), np.int64)
        for i, text in enumerate(texts):
            found = by_text.get(text)
            if found is None:
                key = text_key(text)
                found = NO_TEXT if not key else by_key.setdefault(key, len(by_key))
                by_text[text] = found
            out[i] = found
        return out

    def memo(self, key: Any, build: Callable[[], Any]) -> Any:
        """``build()``, computed once per pair set for ``key`` while among the
        last :data:`MEMO_SIZE` keys used (a searched ``positive_threshold``
        makes a new key per trial: memory must not grow with the trials)."""
        with self._lock:
            if key in self._memo:
                self._memo.move_to_end(key)
            else:
                self._memo[key] = build()
                while len(self._memo) > MEMO_SIZE:
                    self._memo.popitem(last=False)
            return self._memo[key]

    def kept(self, positives_only: float | None) -> np.ndarray:
        """Rows a loss trains on: all, or those scored at least ``positives_only``."""
        if positives_only is None:
            return np.arange(len(self.scores))
        return np.flatnonzero(self.scores >= float(positives_only))  # a millisecond

    def sample(self, positives_only: float | None, per_epoch: int, seed: int) -> EpochSample:
        """The epoch sample over :meth:`kept` rows (its rows are positions in ``kept``)."""
        n = len(self.kept(positives_only))
        key = ("sample", positives_only, int(per_epoch), int(seed))
        return self.memo(key, lambda: EpochSample(n, per_epoch, seed))


def _concept_ids(concepts: Sequence[str] | None, n: int) -> np.ndarray:
    if concepts is None:
        return np.full(n, NO_TEXT, np.int64)
    values = np.asarray(concepts, object)
    _, index = np.unique(values.astype(str), return_inverse=True)
    ids = NO_TEXT - 1 - index.astype(np.int64)  # -2, -3, ...: never a text id
    ids[values == ""] = NO_TEXT
    return ids


# id(pair set) -> (weak reference, arrays); keyed by id, as a pair set need
# not be hashable, and dropped with the pair set.
_CACHE: dict[int, tuple[weakref.ref, PairArrays]] = {}
_CACHE_LOCK = threading.RLock()  # reentrant: a collection may call forget() inside


def pair_arrays(pairs: Any) -> PairArrays:
    """The :class:`PairArrays` of ``pairs`` (a PairSet), built on first use and
    kept while the pair set lives (pair sets are not changed once loaded)."""
    key = id(pairs)
    with _CACHE_LOCK:
        found = _CACHE.get(key)
        if found is not None and found[0]() is pairs:
            return found[1]
    arrays = PairArrays(pairs)  # outside the lock: half a second for 500k pairs

    def forget(ref: weakref.ref) -> None:
        with _CACHE_LOCK:
            if _CACHE.get(key, (None,))[0] is ref:
                del _CACHE[key]

    with _CACHE_LOCK:
        _CACHE[key] = (weakref.ref(pairs, forget), arrays)
    return arrays
