"""Metrics of an encoder: STS Benchmark and domain pairs.

Similarities are angular, ``1 - arccos(cos)/pi``, the scale the siamese model
trains on and the one the TF-Hub STS-B tutorial reports Pearson on.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy import stats

from domaintune.models.encoding import EncodeFn


def angular_similarity(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Row-wise angular similarity of two embedding matrices (any norm)."""
    a = a / np.linalg.norm(a, axis=1, keepdims=True)
    b = b / np.linalg.norm(b, axis=1, keepdims=True)
    cos = np.clip(np.einsum("ij,ij->i", a, b), -1.0, 1.0)
    return 1.0 - np.arccos(cos) / np.pi


def pair_similarities(encode: EncodeFn, texts_a: Sequence[str],
                      texts_b: Sequence[str]) -> np.ndarray:
    """Angular similarity of each (a, b) pair; every distinct text encoded once."""
    embeddings = encode(list(texts_a) + list(texts_b))
    return angular_similarity(embeddings[:len(texts_a)], embeddings[len(texts_a):])


def _correlations(predicted: np.ndarray, target: np.ndarray) -> tuple[float, float]:
    if len(target) < 2 or np.ptp(target) == 0 or np.ptp(predicted) == 0:
        return float("nan"), float("nan")
    return (float(stats.pearsonr(predicted, target)[0]),
            float(stats.spearmanr(predicted, target)[0]))


def sts_metrics(encode: EncodeFn, sts) -> dict[str, float]:
    """``sts_pearson``, ``sts_spearman`` and ``n_pairs`` on an STS-B split."""
    predicted = pair_similarities(encode, sts.sentences1, sts.sentences2)
    pearson, spearman = _correlations(predicted, np.asarray(sts.scores, np.float64))
    return {"sts_pearson": pearson, "sts_spearman": spearman, "n_pairs": len(predicted)}


def pair_metrics(encode: EncodeFn, pairs) -> dict[str, float]:
    """MSE (angular space), Pearson and Spearman on domain pairs."""
    predicted = pair_similarities(encode, pairs.texts_a, pairs.texts_b)
    target = np.asarray(pairs.scores, np.float64)
    pearson, spearman = _correlations(predicted, target)
    return {"pairs_mse": float(np.mean((predicted - target) ** 2)),
            "pairs_pearson": pearson, "pairs_spearman": spearman,
            "n_domain_pairs": len(target)}
