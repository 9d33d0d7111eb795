"""The siamese fine-tuning model and its KerasTuner build function.

Two string inputs go through ONE shared ``hub.KerasLayer(trainable=True)``;
the cosine of the two embeddings is clipped to +-(1 - clip_epsilon) (arccos
has an infinite slope at +-1) and turned into angular similarity
``1 - arccos(cos)/pi``, trained with MSE against the pair's score.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from domaintune import tf_runtime


def build_siamese(encoder, *, learning_rate: float, clipnorm: float,
                  clip_epsilon: float):
    """Compile the siamese tf_keras model around ``encoder``.

    ``encoder`` is a ``hub.KerasLayer`` (or any tf_keras layer mapping a batch
    of strings to embeddings); it is shared by both branches.
    """
    rt = tf_runtime.load()
    tf, keras = rt.tf, rt.tf_keras
    left = keras.Input(shape=(), dtype=tf.string, name="base")
    right = keras.Input(shape=(), dtype=tf.string, name="ref")
    cosine = keras.layers.Dot(axes=1, normalize=True, name="cosine")([encoder(left), encoder(right)])
    limit = 1.0 - clip_epsilon
    similarity = keras.layers.Lambda(
        lambda c: 1.0 - tf.acos(tf.clip_by_value(tf.squeeze(c, axis=1), -limit, limit)) / math.pi,
        name="angular_similarity")(cosine)
    model = keras.Model([left, right], similarity, name="siamese")
    model.compile(optimizer=keras.optimizers.Adam(learning_rate=learning_rate, clipnorm=clipnorm),
                  loss="mse", metrics=["mae"])
    return model


def build_model(hp, encoder, space=None):
    """The KerasTuner build function: ``HyperParameters`` -> compiled model.

    Declares the search space on ``hp`` (values already set, as in a trial,
    are kept) and builds the siamese model around ``encoder`` with them.
    """
    from domaintune.search.space import SearchSpace

    values: Mapping[str, Any] = (space or SearchSpace()).declare(hp)
    return build_siamese(encoder, learning_rate=float(values["learning_rate"]),
                         clipnorm=float(values["clipnorm"]),
                         clip_epsilon=float(values["clip_epsilon"]))


def pair_dataset(pairs, batch_size: int, *, shuffle: bool, seed: int = 0):
    """A ``tf.data`` pipeline of ((base, ref), score) batches."""
    tf = tf_runtime.load().tf
    data = tf.data.Dataset.from_tensor_slices(
        ((list(pairs.texts_a), list(pairs.texts_b)), pairs.scores))
    if shuffle:
        data = data.shuffle(len(pairs), seed=seed, reshuffle_each_iteration=True)
    return data.batch(batch_size)
