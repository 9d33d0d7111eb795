"""The siamese fine-tuning model and its KerasTuner build function.

Two string inputs go through ONE shared ``hub.KerasLayer(trainable=True)``;
the model's output is the angular similarity of the two embeddings, cosine
(``Dot(normalize=True)``) clipped to +-(1 - clip_epsilon) (arccos has an
infinite slope at +-1) and mapped to ``1 - arccos(cos)/pi``. Training
minimises a pair loss from :mod:`domaintune.models.losses` — by default MSE
of that similarity against the pair's score, the tutorial's formulation.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from domaintune import tf_runtime
from domaintune.models.losses import make_loss
from domaintune.models.optimizers import LazyAdam

_rt = tf_runtime.load()
tf, keras = _rt.tf, _rt.tf_keras


class SiameseModel(keras.Model):
    """Shared encoder, angular-similarity output, pluggable pair loss.

    With ``train_embeddings=False`` the encoder's embedding table (its
    largest variable, whatever the model calls it) gets no update.
    """

    def __init__(self, encoder, pair_loss, clip_epsilon: float, train_embeddings: bool = True):
        super().__init__(name="siamese")
        self.encoder = encoder
        self.pair_loss = pair_loss
        self.clip_epsilon = clip_epsilon
        self.train_embeddings = train_embeddings
        self.cosine = keras.layers.Dot(axes=1, normalize=True, name="cosine")
        self.loss_tracker = keras.metrics.Mean(name="loss")
        self.mae_tracker = keras.metrics.Mean(name="mae")

    @property
    def metrics(self):
        return [self.loss_tracker, self.mae_tracker]

    def similarity(self, a, b):
        limit = 1.0 - self.clip_epsilon
        cos = tf.squeeze(self.cosine([a, b]), axis=1)
        return 1.0 - tf.acos(tf.clip_by_value(cos, -limit, limit)) / math.pi

    def call(self, inputs, training=False):
        return self.similarity(self.encoder(inputs[0], training=training),
                               self.encoder(inputs[1], training=training))

    def _loss(self, inputs, target, training):
        a = self.encoder(inputs[0], training=training)
        b = self.encoder(inputs[1], training=training)
        hard = None
        if len(inputs) > 2:  # rows without a hard negative hold ""
            texts = tf.boolean_mask(inputs[2], tf.strings.length(inputs[2]) > 0)
            hard = self.encoder(texts, training=training)
        loss = self.pair_loss(a, b, target, hard)
        return loss, tf.reduce_mean(tf.abs(self.similarity(a, b) - target))

    def tuned_variables(self):
        variables = self.trainable_variables
        if self.train_embeddings or not variables:
            return variables
        table = max(variables, key=lambda v: v.shape.num_elements())
        return [v for v in variables if v is not table]

    def train_step(self, data):
        inputs, target = data
        variables = self.tuned_variables()
        replicas = tf.distribute.get_strategy().num_replicas_in_sync
        with tf.GradientTape() as tape:
            loss, mae = self._loss(inputs, target, training=True)
            # Replicas' gradients are summed: scale so they average instead.
            scaled = loss / replicas
        self.optimizer.apply_gradients(zip(tape.gradient(scaled, variables), variables))
        return self._track(loss, mae)

    def test_step(self, data):
        inputs, target = data
        return self._track(*self._loss(inputs, target, training=False))

    def _track(self, loss, mae):
        self.loss_tracker.update_state(loss)
        self.mae_tracker.update_state(mae)
        return {"loss": self.loss_tracker.result(), "mae": self.mae_tracker.result()}


def make_optimizer(values: Mapping[str, Any]):
    """Adam from the trial's values: per-variable or global clipping, lazy or dense."""
    clip = {"global_clipnorm" if values.get("clipnorm_scope") == "global" else "clipnorm":
            float(values["clipnorm"])}
    adam = LazyAdam if values.get("sparse_updates", True) else keras.optimizers.Adam
    return adam(learning_rate=float(values["learning_rate"]), **clip)


def build_model(hp, encoder, space=None) -> SiameseModel:
    """The KerasTuner build function: ``HyperParameters`` -> compiled model.

    Declares the search space on ``hp`` (values already set, as in a trial,
    are kept) and builds the siamese model around ``encoder`` with them.
    """
    from domaintune.search.space import SearchSpace

    values = (space or SearchSpace()).declare(hp)
    model = SiameseModel(encoder, make_loss(values.get("loss", "angular_mse"), **values),
                         clip_epsilon=float(values["clip_epsilon"]),
                         train_embeddings=bool(values.get("train_embeddings", True)))
    model.compile(optimizer=make_optimizer(values))
    return model


def pair_dataset(pairs, batch_size: int, *, shuffle: bool, seed: int = 0,
                 unique_texts: bool = False, positives_only: float | None = None):
    """A ``tf.data`` pipeline of ((base, ref[, hard_negative]), score) batches.

    For in-batch losses (``unique_texts``) every other pair in a batch is a
    negative, so a text never appears twice in one batch (it would be its own
    "negative"); ``positives_only`` keeps only pairs scored at least that.
    """
    hard = getattr(pairs, "hard_negatives", None)
    keep = np.arange(len(pairs))
    if positives_only is not None:
        keep = keep[np.asarray(pairs.scores) >= positives_only]
    columns = [np.asarray(pairs.texts_a, object)[keep], np.asarray(pairs.texts_b, object)[keep]]
    if hard is not None and unique_texts:
        columns.append(np.asarray(hard, object)[keep])
    scores = np.asarray(pairs.scores, np.float32)[keep]
    signature = (tuple(tf.TensorSpec([None], tf.string) for _ in columns),
                 tf.TensorSpec([None], tf.float32))
    rng = np.random.default_rng(seed)

    def batches():
        order = rng.permutation(len(scores)) if shuffle else np.arange(len(scores))
        plan = _unique_text_batches(columns, order, batch_size) if unique_texts else \
            [order[i:i + batch_size] for i in range(0, len(order), batch_size)]
        for rows in plan:
            yield tuple(c[rows].astype(str) for c in columns), scores[rows]

    return tf.data.Dataset.from_generator(batches, output_signature=signature)


def _unique_text_batches(columns, order, batch_size: int) -> list[np.ndarray]:
    """Greedy batches in which no text (any column, case-insensitive) repeats."""
    batches: list[tuple[list[int], set[str]]] = []
    for row in order:
        texts = {str(c[row]).strip().lower() for c in columns if str(c[row])}
        for rows, seen in batches:  # first open batch where the pair fits
            if len(rows) < batch_size and not texts & seen:
                rows.append(row)
                seen |= texts
                break
        else:
            batches.append(([row], set(texts)))
    return [np.asarray(rows) for rows, _ in batches]
