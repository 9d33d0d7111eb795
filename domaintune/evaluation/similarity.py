"""Cosine and angular similarity of embeddings (numpy): the one home of both.

Evaluation, retrieval and the heatmaps all normalise rows the same way: a
zero vector stays zero, so it scores cosine 0 against everything instead of
NaN. (Training uses its own TF version, clipped away from +-1 so that the
gradient of arccos stays finite: ``models.losses.clipped_angular_similarity``.)
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, DTypeLike


def normalise(x: ArrayLike, dtype: DTypeLike = None) -> np.ndarray:
    """The rows of the 2-D ``x`` scaled to unit length (``dtype``: cast first)."""
    x = np.asarray(x, dtype)
    if x.ndim != 2:
        raise ValueError(f"embeddings must be 2-D (n, dim), got shape {x.shape}")
    norm = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.where(norm > 0, norm, 1)  # a zero vector scores 0 against everything


def row_cosine(a: ArrayLike, b: ArrayLike) -> np.ndarray:
    """Cosine of each row of ``a`` with the same row of ``b``, in ``[-1, 1]``."""
    return np.clip(np.einsum("ij,ij->i", normalise(a), normalise(b)), -1.0, 1.0)


def angular_similarity(a: ArrayLike, b: ArrayLike) -> np.ndarray:
    """Row-wise angular similarity ``1 - arccos(cos)/pi``, in ``[0, 1]`` (any norm)."""
    return 1.0 - np.arccos(row_cosine(a, b)) / np.pi


def cosine_similarity_matrix(embeddings: ArrayLike) -> np.ndarray:
    """Pairwise cosine similarities of the rows of ``embeddings`` (``(n, dim)``).

    Returns a symmetric ``(n, n)`` float64 matrix clipped to ``[-1, 1]``; an
    all-zero row has similarity 0 with everything (itself included).
    """
    unit = normalise(embeddings, np.float64)
    sim = unit @ unit.T
    sim = (sim + sim.T) / 2.0  # exact symmetry despite float round-off
    return np.clip(sim, -1.0, 1.0)
