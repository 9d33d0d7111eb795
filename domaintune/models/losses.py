"""Pair losses, sentence-transformers style: small classes in one registry.

Every loss maps a batch of embeddings ``a``, ``b`` (and optional hard
negatives ``h``) with target scores on the angular scale to a scalar:

- ``angular_mse``: the tutorial's loss. MSE between the target and the angular
  similarity ``1 - arccos(clip(cos))/pi``.
- ``cosent``: CoSENT pairwise ranking. For every two pairs of the batch whose
  targets are ordered ``y_i > y_j``, penalises ``cos_j >= cos_i``:
  ``log(1 + sum exp(scale * (cos_j - cos_i))``. Only the order of the targets
  matters, so graded scores need no calibration.
- ``in_batch_negatives``: multiple-negatives ranking (softmax over the batch).
  Each positive pair (target >= ``positive_threshold``) is an anchor ``a_i``
  whose candidates are every positive pair's ``b_j`` plus the batch's hard
  negatives (e.g. a sibling occupation's label);
  cross-entropy with ``scale * cos`` as logits and ``b_i`` as the answer.
- ``mixed``: ``angular_mse + mix_weight * in_batch_negatives``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from domaintune import tf_runtime

tf = tf_runtime.load().tf


def _normalise(x):
    return tf.math.l2_normalize(x, axis=-1)


def pair_cosine(a, b):
    """Row-wise cosine of two embedding batches."""
    return tf.reduce_sum(_normalise(a) * _normalise(b), axis=-1)


def angular_similarity(a, b, clip_epsilon: float):
    """``1 - arccos(cos)/pi`` with cos clipped to +-(1 - clip_epsilon)."""
    limit = 1.0 - clip_epsilon
    return 1.0 - tf.acos(tf.clip_by_value(pair_cosine(a, b), -limit, limit)) / math.pi


@dataclass(frozen=True)
class AngularMSE:
    """MSE of angular similarity against the target (the tutorial's loss)."""

    clip_epsilon: float = 1e-5
    name = "angular_mse"
    in_batch = False

    def __call__(self, a, b, target, hard_negatives=None):
        return tf.reduce_mean(tf.square(angular_similarity(a, b, self.clip_epsilon) - target))


@dataclass(frozen=True)
class CoSENT:
    """Pairwise ranking of scored pairs (Su, 2022)."""

    scale: float = 20.0
    name = "cosent"
    in_batch = False

    def __call__(self, a, b, target, hard_negatives=None):
        cos = self.scale * pair_cosine(a, b)
        # diff[i, j] = cos_j - cos_i, counted where target_i > target_j.
        diff = cos[None, :] - cos[:, None]
        ordered = tf.cast(target[:, None] > target[None, :], diff.dtype)
        diff = diff - (1.0 - ordered) * 1e12  # mask: exp(-1e12) = 0
        flat = tf.concat([tf.zeros([1], diff.dtype), tf.reshape(diff, [-1])], axis=0)
        return tf.reduce_logsumexp(flat)  # log(1 + sum exp(...))


@dataclass(frozen=True)
class InBatchNegatives:
    """Softmax over in-batch candidates, anchors = pairs at/above the threshold."""

    scale: float = 20.0
    positive_threshold: float = 0.99
    name = "in_batch_negatives"
    in_batch = True

    def __call__(self, a, b, target, hard_negatives=None):
        positive = target >= self.positive_threshold
        anchors = _normalise(tf.boolean_mask(a, positive))
        candidates = _normalise(tf.boolean_mask(b, positive))
        if hard_negatives is not None:  # extra candidates, one per row that has one
            candidates = tf.concat([candidates, _normalise(hard_negatives)], axis=0)
        logits = self.scale * tf.matmul(anchors, candidates, transpose_b=True)
        # Cross-entropy with b_i as the answer, written out so that a batch
        # without positives (0 x 0 logits) is valid.
        losses = tf.reduce_logsumexp(logits, axis=1) - tf.linalg.diag_part(logits)
        # A batch without positives contributes nothing (not NaN).
        return tf.math.divide_no_nan(tf.reduce_sum(losses),
                                     tf.cast(tf.size(losses), losses.dtype))


@dataclass(frozen=True)
class Mixed:
    """``angular_mse + mix_weight * in_batch_negatives``."""

    clip_epsilon: float = 1e-5
    scale: float = 20.0
    positive_threshold: float = 0.99
    mix_weight: float = 1.0
    name = "mixed"
    in_batch = True

    def __call__(self, a, b, target, hard_negatives=None):
        mse = AngularMSE(self.clip_epsilon)(a, b, target)
        ibn = InBatchNegatives(self.scale, self.positive_threshold)(a, b, target, hard_negatives)
        return mse + self.mix_weight * ibn


LOSSES = {cls.name: cls for cls in (AngularMSE, CoSENT, InBatchNegatives, Mixed)}


def make_loss(name: str, **hyperparameters):
    """Build the loss ``name`` from the trial's hyperparameters (extra ones ignored)."""
    if name not in LOSSES:
        raise ValueError(f"unknown loss {name!r}; choose from {', '.join(LOSSES)}")
    cls = LOSSES[name]
    fields = cls.__dataclass_fields__
    return cls(**{k: v for k, v in hyperparameters.items() if k in fields})
