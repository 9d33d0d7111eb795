"""Pair losses against hand-computed values, and the in-batch batcher."""

from __future__ import annotations

import math

import numpy as np
import pytest

from domaintune import tf_runtime
from domaintune.models.losses import (
    LOSSES,
    AngularMSE,
    CoSENT,
    InBatchNegatives,
    InBatchNegativesSymmetric,
    Mixed,
)
from domaintune.models.siamese import pair_dataset
from domaintune.search.space import SEARCH_SPACE

tf = tf_runtime.load().tf

# Known cosines: a0.b0 = 1, a1.b1 = 0, a0.b1 = -0.8, a1.b0 = 0.6
A = tf.constant([[1.0, 0.0], [0.6, 0.8]])
B = tf.constant([[2.0, 0.0], [-0.8, 0.6]])  # b0 not unit: losses normalise


def test_angular_mse_by_hand():
    # cos = [1, 0] -> clipped [1 - 1e-3, 0] -> angular [1 - acos(0.999)/pi, 0.5]
    target = tf.constant([1.0, 0.5])
    expected = ((1 - math.acos(0.999) / math.pi) - 1.0) ** 2 / 2
    assert float(AngularMSE(1e-3)(A, B, target)) == pytest.approx(expected, rel=1e-4)


def test_cosent_by_hand():
    # target0 > target1, cos0 = 1, cos1 = 0: loss = log(1 + exp(s * (0 - 1))), s = 2
    target = tf.constant([0.9, 0.5])
    assert float(CoSENT(2.0)(A, B, target)) == pytest.approx(math.log1p(math.exp(-2)), rel=1e-6)
    # Reversed order of targets: log(1 + exp(s * (1 - 0)))
    assert float(CoSENT(2.0)(A, B, tf.constant([0.5, 0.9]))) == pytest.approx(
        math.log1p(math.exp(2.0)), rel=1e-6
    )
    # Equal targets: no ordered pair, loss log(1) = 0
    assert float(CoSENT(2.0)(A, B, tf.constant([0.7, 0.7]))) == pytest.approx(0.0, abs=1e-7)


def test_in_batch_negatives_by_hand():
    target = tf.constant([1.0, 1.0])
    s = 2.0
    # logits row0: s*[1, -0.8], row1: s*[0.6, 0]; labels [0, 1]
    row0 = -math.log(math.exp(s) / (math.exp(s) + math.exp(-0.8 * s)))
    row1 = -math.log(1 / (math.exp(s * 0.6) + 1))
    assert float(InBatchNegatives(s, 0.99)(A, B, target)) == pytest.approx(
        (row0 + row1) / 2, rel=1e-6
    )
    # Only pair 0 is positive: one anchor, one candidate -> loss 0
    assert float(InBatchNegatives(s, 0.99)(A, B, tf.constant([1.0, 0.5]))) == pytest.approx(
        0.0, abs=1e-7
    )
    # No positives: 0, not NaN
    assert float(InBatchNegatives(s, 0.99)(A, B, tf.constant([0.5, 0.5]))) == 0.0


def test_hard_negatives_are_extra_candidates():
    target = tf.constant([1.0, 1.0])
    hard = tf.constant([[0.0, 1.0], [0.6, 0.8]])  # row1's hard negative equals its anchor
    s = 1.0
    # candidates: b0, b1, h0, h1; row0 cos: [1, -0.8, 0, 0.6]; row1: [0.6, 0, 0.8, 1]
    row0 = -math.log(math.exp(1) / (math.exp(1) + math.exp(-0.8) + 1 + math.exp(0.6)))
    row1 = -math.log(1 / (math.exp(0.6) + 1 + math.exp(0.8) + math.exp(1)))
    got = float(InBatchNegatives(s, 0.99)(A, B, target, hard))
    assert got == pytest.approx((row0 + row1) / 2, rel=1e-6)


def test_symmetric_in_batch_negatives_by_hand():
    target = tf.constant([1.0, 1.0])
    s = 2.0
    # query -> target: row0 s*[1, -0.8], row1 s*[0.6, 0] (answers 0, 1), as above
    forward = (
        -math.log(math.exp(s) / (math.exp(s) + math.exp(-0.8 * s)))
        - math.log(1 / (math.exp(s * 0.6) + 1))
    ) / 2
    # target -> query: b0 against [a0, a1] = s*[1, 0.6], b1 against s*[-0.8, 0]
    backward = (
        -math.log(math.exp(s) / (math.exp(s) + math.exp(0.6 * s)))
        - math.log(1 / (math.exp(-0.8 * s) + 1))
    ) / 2
    loss = InBatchNegativesSymmetric(s, 0.99)
    assert float(loss(A, B, target)) == pytest.approx((forward + backward) / 2, rel=1e-6)
    # Hard negatives are candidates of the queries only: the forward term as
    # in_batch_negatives computes it, the backward term unchanged.
    hard = tf.constant([[0.0, 1.0], [0.6, 0.8]])
    forward_hard = float(InBatchNegatives(s, 0.99)(A, B, target, hard))
    assert float(loss(A, B, target, hard)) == pytest.approx((forward_hard + backward) / 2, rel=1e-6)
    # One positive: nothing to rank in either direction; none: 0, not NaN.
    assert float(loss(A, B, tf.constant([1.0, 0.5]))) == pytest.approx(0.0, abs=1e-7)
    assert float(loss(A, B, tf.constant([0.5, 0.5]))) == 0.0


def test_mixed_is_the_weighted_sum():
    target = tf.constant([1.0, 1.0])
    mixed = Mixed(clip_epsilon=1e-3, scale=2.0, positive_threshold=0.99, mix_weight=0.5)
    expected = float(AngularMSE(1e-3)(A, B, target)) + 0.5 * float(
        InBatchNegatives(2.0, 0.99)(A, B, target)
    )
    assert float(mixed(A, B, target)) == pytest.approx(expected, rel=1e-6)


def test_loss_names_match_the_search_space():
    loss = next(p for p in SEARCH_SPACE if p.name == "loss")
    assert set(loss.allowed) == set(LOSSES)


class _Pairs:
    def __init__(self, a, b, scores, hard=None, concepts=None):
        self.texts_a, self.texts_b = a, b
        self.scores = np.asarray(scores, np.float32)
        self.hard_negatives = hard
        self.concepts = concepts

    def __len__(self):
        return len(self.scores)


def test_in_batch_batches_never_repeat_a_text():
    rng = np.random.default_rng(0)
    names = [f"title {i}" for i in range(30)]
    a = [names[i] for i in rng.integers(0, 30, 200)]
    b = [f"ROLE {i}" if i % 2 else f"Title {i}" for i in rng.integers(0, 30, 200)]
    keep = [i for i in range(200) if a[i].lower() != b[i].lower()]
    a, b = [a[i] for i in keep], [b[i] for i in keep]  # clashes across pairs only
    pairs = _Pairs(a, b, np.ones(len(a)))
    seen_rows = 0
    for (ta, tb), _ in pair_dataset(pairs, 8, shuffle=True, seed=3, unique_texts=True):
        texts = [t.decode().lower() for t in np.concatenate([ta.numpy(), tb.numpy()])]
        assert len(texts) == len(set(texts)), texts
        seen_rows += len(ta)
    assert seen_rows == len(a)  # every pair is used once per epoch


def test_in_batch_batches_never_hold_two_pairs_of_one_concept():
    # Six occupations, each named differently in every row (labels in other
    # languages): only the concept column tells that two rows are one concept.
    concepts = [f"occ{i % 6}" for i in range(60)]
    a = [f"label {i}" for i in range(60)]
    b = [f"autre {i}" for i in range(60)]
    concepts[7] = ""  # a pair without a concept is batched by its texts alone
    pairs = _Pairs(a, b, np.ones(60), concepts=concepts)
    rows_of = {(x, y): c for x, y, c in zip(a, b, concepts)}
    seen_rows = 0
    for (ta, tb), _ in pair_dataset(pairs, 4, shuffle=True, seed=1, unique_texts=True):
        batch = [rows_of[(x.decode(), y.decode())] for x, y in zip(ta.numpy(), tb.numpy())]
        named = [c for c in batch if c]
        assert len(named) == len(set(named)), batch
        seen_rows += len(batch)
    assert seen_rows == 60


def test_hard_negative_column_is_fed_and_positives_filtered():
    pairs = _Pairs(["a", "b", "c"], ["x", "y", "z"], [1.0, 0.5, 1.0], hard=["h1", "h2", "h3"])
    batches = list(pair_dataset(pairs, 8, shuffle=False, unique_texts=True, positives_only=0.99))
    ((inputs, scores),) = batches
    assert len(inputs) == 3
    assert [t.decode() for t in inputs[2].numpy()] == ["h1", "h3"]
    assert scores.numpy().tolist() == [1.0, 1.0]
