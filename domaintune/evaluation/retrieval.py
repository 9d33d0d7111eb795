"""Retrieval evaluation: does a query's nearest corpus text name its concept?

A :class:`RetrievalSet` holds (query, gold target) rows and a corpus of
candidate targets. :func:`retrieval_metrics` embeds both, ranks the corpus by
cosine similarity for each query and reports recall@k and the mean reciprocal
rank (MRR).

Rules, the same for every source:

- **Several gold targets.** A query may appear on several rows (an ESCO
  alternative label shared by two occupations). It counts once, and it is a
  hit if its best-scoring gold target ranks within k.
- **Rank** = 1 + the number of non-gold corpus texts scoring at least as high
  as the best gold target (within ``TIE_TOLERANCE``). Ties count against the
  query, so an encoder that maps everything to one vector scores 0, not 1.
- **Queries found verbatim in the corpus are skipped**, because their rank
  does not depend on the encoder: identical to one of their own gold targets
  the hit is trivial (counted as ``trivial``); identical to another corpus text
  they always lose to it (counted as ``in_corpus``).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from domaintune.data.retrieval_sets import TIE_TOLERANCE, RetrievalSet
from domaintune.evaluation import names
from domaintune.evaluation.similarity import normalise
from domaintune.models.encoding import EncodeFn

_SCORE_CELLS = 1 << 24  # query x corpus scores held at once (64 MB of float32)


def retrieval_metrics(
    encode: EncodeFn, rset: RetrievalSet, ks: Sequence[int] = (1, 5)
) -> dict[str, float | int]:
    """``retrieval_r{k}`` for each k, ``retrieval_mrr``, ``retrieval_queries`` and
    ``retrieval_corpus`` (the numbers of distinct queries and of corpus texts)."""
    queries, golds = rset.gold()
    # float32: a corpus of 100k texts x 512 dims; a zero vector scores 0 against everything.
    ranks = _ranks(
        normalise(encode(queries), np.float32), normalise(encode(rset.corpus), np.float32), golds
    )
    result: dict[str, float | int] = {names.recall_at(k): float(np.mean(ranks <= k)) for k in ks}
    result.update(
        {
            names.RETRIEVAL_MRR: float(np.mean(1.0 / ranks)),
            "retrieval_queries": len(queries),
            "retrieval_corpus": len(rset.corpus),
        }
    )
    return result


def _ranks(q: np.ndarray, c: np.ndarray, golds: list[list[int]]) -> np.ndarray:
    """1-based rank of each query's best gold target (ties count against it)."""
    n = len(golds)
    rows = np.repeat(np.arange(n), [len(g) for g in golds])
    cols = np.fromiter((i for g in golds for i in g), np.int64, len(rows))
    ranks = np.empty(n, np.int64)
    step = max(1, _SCORE_CELLS // max(1, len(c)))
    for start in range(0, n, step):
        stop = min(n, start + step)
        scores = q[start:stop] @ c.T
        sel = (rows >= start) & (rows < stop)
        r, g = rows[sel] - start, cols[sel]
        best = np.full(stop - start, -np.inf, np.float32)
        np.maximum.at(best, r, scores[r, g])
        threshold = best - TIE_TOLERANCE
        at_least = np.count_nonzero(scores >= threshold[:, None], axis=1)
        gold_at_least = np.bincount(r, scores[r, g] >= threshold[r], stop - start)
        ranks[start:stop] = 1 + at_least - gold_at_least.astype(np.int64)
    return ranks
