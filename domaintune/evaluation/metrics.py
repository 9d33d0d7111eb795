"""Metrics of an encoder: STS Benchmark and scored domain pairs.

Similarities are angular, ``1 - arccos(cos)/pi``, the scale the siamese model
trains on and the one the TF-Hub STS-B tutorial reports Pearson on.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy import stats

from domaintune.evaluation import names
from domaintune.evaluation.similarity import angular_similarity
from domaintune.models.encoding import EncodeFn


def pair_similarities(
    encode: EncodeFn, texts_a: Sequence[str], texts_b: Sequence[str]
) -> np.ndarray:
    """Angular similarity of each (a, b) pair; every distinct text encoded once."""
    embeddings = encode(list(texts_a) + list(texts_b))
    return angular_similarity(embeddings[: len(texts_a)], embeddings[len(texts_a) :])


def _correlations(predicted: np.ndarray, target: np.ndarray) -> tuple[float, float]:
    if len(target) < 2 or np.ptp(target) == 0 or np.ptp(predicted) == 0:
        return float("nan"), float("nan")
    return (
        float(stats.pearsonr(predicted, target)[0]),
        float(stats.spearmanr(predicted, target)[0]),
    )


def sts_metrics(encode: EncodeFn, sts) -> dict[str, float]:
    """``sts_pearson``, ``sts_spearman`` and ``n_pairs`` on an STS-B split."""
    predicted = pair_similarities(encode, sts.sentences1, sts.sentences2)
    pearson, spearman = _correlations(predicted, np.asarray(sts.scores, np.float64))
    return {names.STS_PEARSON: pearson, "sts_spearman": spearman, "n_pairs": len(predicted)}


def pair_metrics(encode: EncodeFn, pairs, prefix: str = names.PAIRS) -> dict[str, float]:
    """MSE (angular space), Pearson and Spearman on scored pairs, and their count.

    Keys are ``<prefix>_mse``, ``<prefix>_pearson``, ``<prefix>_spearman``
    (:func:`names.pair_metric_names`) and ``n_domain_pairs``; ``prefix`` is
    ``names.PAIRS`` (``evaluate --pairs``) or ``names.VAL`` (a search's
    validation pairs).
    """
    predicted = pair_similarities(encode, pairs.texts_a, pairs.texts_b)
    target = np.asarray(pairs.scores, np.float64)
    mse, pearson, spearman = names.pair_metric_names(prefix)
    values = (float(np.mean((predicted - target) ** 2)), *_correlations(predicted, target))
    return {**dict(zip((mse, pearson, spearman), values)), "n_domain_pairs": len(target)}
