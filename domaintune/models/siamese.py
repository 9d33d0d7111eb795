"""The siamese fine-tuning model, built from a trial's values.

Two string inputs go through ONE shared ``hub.KerasLayer(trainable=True)``;
the model's output is the angular similarity of the two embeddings, cosine
(``Dot(normalize=True)``) clipped to +-(1 - clip_epsilon) (arccos has an
infinite slope at +-1) and mapped to ``1 - arccos(cos)/pi``. Training
minimises a pair loss from :mod:`domaintune.models.losses` — by default MSE
of that similarity against the pair's score, the tutorial's formulation.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from domaintune import tf_runtime
from domaintune.data.pair_arrays import NO_TEXT, pair_arrays
from domaintune.models.grad_cache import grad_cache_gradients
from domaintune.models.losses import CLIP_EPSILON, DEFAULT_LOSS, loss_class, make_loss
from domaintune.models.mining import MinedColumns
from domaintune.models.normalization import fold_case
from domaintune.models.optimizers import make_optimizer

_rt = tf_runtime.load()
tf, keras = _rt.tf, _rt.tf_keras


class SiameseModel(keras.Model):
    """Shared encoder, angular-similarity output, pluggable pair loss.

    With ``train_embeddings=False`` the encoder's embedding table (its
    largest variable, whatever the model calls it) gets no update. With
    ``grad_cache_chunk > 0`` a batch of more pairs than that trains by
    GradCache (:mod:`domaintune.models.grad_cache`), encoding at most
    ``grad_cache_chunk`` texts per pass: the same gradients in less memory.
    """

    def __init__(
        self,
        tower,
        loss: str = DEFAULT_LOSS,
        clip_epsilon: float = CLIP_EPSILON.default,
        train_embeddings: bool = True,
        grad_cache_chunk: int = 0,
        **loss_settings: float,
    ):
        super().__init__(name="siamese")
        self.tower = tower
        self.train_embeddings = train_embeddings
        self.grad_cache_chunk = int(grad_cache_chunk)
        # Float settings live in variables: a later trial assigns its values
        # instead of retracing the train step (see :meth:`start_trial`).
        self.clip_epsilon = _variable("clip_epsilon", clip_epsilon)
        declared = loss_class(loss).settings()
        given = {
            k: loss_settings.get(k, s.default) for k, s in declared.items() if k != "clip_epsilon"
        }
        self.loss_settings = {
            k: _variable(k, v) for k, v in given.items() if not declared[k].shapes_graph
        }
        baked = {k: float(v) for k, v in given.items() if declared[k].shapes_graph}
        self.pair_loss = make_loss(
            loss, clip_epsilon=self.clip_epsilon, **self.loss_settings, **baked
        )
        self.cosine = keras.layers.Dot(axes=1, normalize=True, name="cosine")
        self.loss_tracker = keras.metrics.Mean(name="loss")
        self.mae_tracker = keras.metrics.Mean(name="mae")

    def start_trial(self, values: Mapping[str, Any]) -> None:
        """Take a trial's assignable values and reset the optimizer's state,
        so this built model trains as a freshly built one would."""
        self.clip_epsilon.assign(float(values["clip_epsilon"]))
        for name, variable in self.loss_settings.items():
            variable.assign(float(values[name]))
        self.optimizer.start_over(values["learning_rate"], values["clipnorm"])

    @property
    def metrics(self):
        return [self.loss_tracker, self.mae_tracker]

    def similarity(self, a, b):
        limit = 1.0 - self.clip_epsilon
        cos = tf.squeeze(self.cosine([a, b]), axis=1)
        return 1.0 - tf.acos(tf.clip_by_value(cos, -limit, limit)) / math.pi

    def call(self, inputs, training=False):
        return self.similarity(
            self.tower(inputs[0], training=training), self.tower(inputs[1], training=training)
        )

    def _loss(self, inputs, target, training):
        a = self.tower(inputs[0], training=training)
        b = self.tower(inputs[1], training=training)
        texts = _hard_negative_texts(inputs)
        hard = None if texts is None else self.tower(texts, training=training)
        return self._loss_of(a, b, hard, target)

    def _loss_of(self, a, b, hard, target):
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
        loss, mae, gradients = self.gradients(inputs, target, variables)
        self.optimizer.apply_gradients(zip(gradients, variables))
        return self._track(loss, mae)

    def gradients(self, inputs, target, variables) -> tuple[Any, Any, list[Any]]:
        """``(loss, mae, gradients)`` of one training batch: plainly, or by
        GradCache when the batch has more pairs than ``grad_cache_chunk``."""
        # Replicas' gradients are summed: scale so they average instead.
        replicas = tf.distribute.get_strategy().num_replicas_in_sync
        chunk = self.grad_cache_chunk

        def plain():
            with tf.GradientTape() as tape:
                loss, mae = self._loss(inputs, target, training=True)
                scaled = loss / replicas
            return loss, mae, tape.gradient(scaled, variables)

        if chunk <= 0:
            return plain()
        return tf.cond(
            tf.shape(inputs[0])[0] > chunk,
            self._grad_cached(inputs, target, variables, replicas),
            plain,
        )

    def _grad_cached(self, inputs, target, variables, replicas):
        # Every text of the batch (bases, refs, hard negatives) in one list:
        # the tower is shared, so one chunked pass embeds them all.
        hard = _hard_negative_texts(inputs)
        texts = tf.concat([inputs[0], inputs[1], *([] if hard is None else [hard])], axis=0)
        n = tf.shape(inputs[0])[0]

        def loss_of(embeddings):
            a, b, rest = embeddings[:n], embeddings[n : 2 * n], embeddings[2 * n :]
            loss, mae = self._loss_of(a, b, None if hard is None else rest, target)
            return loss / replicas, (loss, mae)

        def run():
            _, (loss, mae), gradients = grad_cache_gradients(
                lambda t: self.tower(t, training=True),
                loss_of,
                texts,
                variables,
                self.grad_cache_chunk,
            )
            return loss, mae, gradients

        return run

    def test_step(self, data):
        inputs, target = data
        return self._track(*self._loss(inputs, target, training=False))

    def _track(self, loss, mae):
        self.loss_tracker.update_state(loss)
        self.mae_tracker.update_state(mae)
        return {"loss": self.loss_tracker.result(), "mae": self.mae_tracker.result()}


class CaseFolded(keras.layers.Layer):
    """``tower`` behind case folding: every text the siamese model embeds (pair
    texts, hard negatives; training and validation) is folded first, as the
    exported model will fold it."""

    def __init__(self, tower):
        super().__init__(name="case_folded")
        self.tower = tower

    def call(self, texts, training=False):
        return self.tower(fold_case(texts), training=training)


def _hard_negative_texts(inputs):
    """The batch's hard negatives (columns after base and ref), without the
    "" of rows that have none; None when the batch has no such column."""
    if len(inputs) <= 2:
        return None
    texts = tf.concat(list(inputs[2:]), axis=0)
    return tf.boolean_mask(texts, tf.strings.length(texts) > 0)


def _variable(name: str, value: float):
    return tf.Variable(float(value), trainable=False, dtype=tf.float32, name=name)


def build_model(values: Mapping[str, Any], tower) -> SiameseModel:
    """The compiled siamese model around ``tower`` for a trial's ``values``
    (the search space's names: loss, its settings, optimizer settings)."""
    loss = values.get("loss", DEFAULT_LOSS)
    names = {"clip_epsilon", *loss_class(loss).settings()}  # the model's output clips too
    settings = {k: values[k] for k in names if k in values}
    if values.get("case_fold"):
        tower = CaseFolded(tower)
    model = SiameseModel(
        tower,
        loss,
        train_embeddings=bool(values.get("train_embeddings", True)),
        grad_cache_chunk=int(values.get("grad_cache_chunk", 0)),
        **settings,
    )
    model.compile(optimizer=make_optimizer(values))
    return model


def pair_dataset(
    pairs,
    batch_size: int,
    *,
    shuffle: bool,
    seed: int = 0,
    unique_texts: bool = False,
    positives_only: float | None = None,
    taxonomy: bool = True,
    mined: MinedColumns | None = None,
    pairs_per_epoch: int = 0,
    sample_seed: int = 0,
    epoch: Callable[[], int] | None = None,
):
    """A ``tf.data`` pipeline of ((base, ref[, hard negatives...]), score) batches.

    For in-batch losses (``unique_texts``) every other pair in a batch is a
    negative, so a text never appears twice in one batch (it would be its own
    "negative"), nor does a concept (the pairs' ``concept`` column, as ``data
    esco`` writes: another language's label of the same occupation would be a
    false negative); ``positives_only`` keeps only pairs scored at least that.
    Their hard negatives: the pairs' ``hard_negative`` column (``taxonomy``),
    or ``mined.k`` columns from ``mined.take()`` when each epoch's batches are
    planned (a mined negative that would repeat a text of its batch is left
    out: ""). Rows without a hard negative hold "".

    ``pairs_per_epoch`` > 0 (with ``shuffle``): each epoch trains on that many
    of the kept pairs, an :class:`~domaintune.data.epoch_sample.EpochSample`
    seeded by ``sample_seed``. An epoch's pairs and order depend only on the
    seeds and the epoch number: ``epoch()`` names the epoch a pass plans (fit's,
    told by a callback); without it, passes count 0, 1, 2...
    """
    arrays = pair_arrays(pairs)  # built once per pair set, shared by trials
    keep = arrays.kept(positives_only)
    if not unique_texts:
        mined = None
    n_texts = 3 if unique_texts and taxonomy and mined is None and arrays.has_hard else 2
    k = mined.k if mined else 0
    sample = arrays.sample(positives_only, pairs_per_epoch if shuffle else 0, sample_seed)
    texts, scores = arrays.texts[:n_texts], arrays.scores
    signature = (
        tuple(tf.TensorSpec([None], tf.string) for _ in range(n_texts + k)),
        tf.TensorSpec([None], tf.float32),
    )
    passes = itertools.count()
    length: list[int] = []  # the first planned epoch's batch count

    def batches():
        number = epoch() if epoch is not None else next(passes)
        rows = keep[sample.rows(number)]
        if shuffle:
            rows = np.random.default_rng([seed, number]).permutation(rows)
        extra = [np.asarray(c, object)[rows] for c in mined.take()] if mined else []
        if unique_texts:
            extra_ids = [arrays.ids_of(c).tolist() for c in extra]
            plan = _unique_text_batches(
                [i[rows] for i in (*arrays.ids[:n_texts], arrays.concept_ids)],
                batch_size,
                extra_ids,
            )
            for column, ids in zip(extra, extra_ids):
                column[np.asarray(ids) == NO_TEXT] = ""
            plan = _at_least(plan, length)
        else:
            plan = [
                np.arange(i, min(i + batch_size, len(rows)))
                for i in range(0, len(rows), batch_size)
            ]
        for positions in plan:
            picked = rows[positions]
            yield (*(c[picked] for c in texts), *(c[positions] for c in extra)), scores[picked]

    # Python plans an epoch and hands out its batches (the object arrays are
    # built once per pair set); prefetch runs it ahead of the training step.
    # (Gathering the texts in TF from one plan per epoch costs less per batch,
    # but building that pipeline costs more than a small trial's whole epoch.)
    dataset = tf.data.Dataset.from_generator(batches, output_signature=signature)
    return dataset.prefetch(tf.data.AUTOTUNE)


def _at_least(plan: list[np.ndarray], length: list[int]) -> list[np.ndarray]:
    """``plan`` with at least as many batches as the first epoch's (``length``).

    tf_keras takes the first epoch's batch count as every epoch's length and
    ends the whole fit at an epoch that yields fewer. Plans without a repeated
    text vary in count from epoch to epoch, so a shorter one gets its largest
    batches split in two (still no text twice). A longer one loses its last
    (smallest) batches to the cut: a few pairs of that epoch.
    """
    if not length:
        length.append(len(plan))
    plan = list(plan)
    while len(plan) < length[0] and max(map(len, plan), default=0) > 1:
        i = max(range(len(plan)), key=lambda j: len(plan[j]))
        half = len(plan[i]) // 2
        plan[i : i + 1] = [plan[i][:half], plan[i][half:]]
    return plan


def _unique_text_batches(ids, batch_size: int, optional=()) -> list[np.ndarray]:
    """Greedy batches of positions in which no id repeats: texts (see
    :func:`~domaintune.data.pair_arrays.text_key`) and concepts alike.

    Each pair goes into the first batch that has room and none of its texts;
    full batches leave the scan, so it costs O(pairs x open batches), and
    open batches are few unless texts repeat a lot. A text of an ``optional``
    column (lists of ids) that its batch already holds is blanked (in place, to
    ``NO_TEXT``) instead: a mined negative is often a popular text, and placing
    pairs by it would split the data into many small batches.
    """
    batches: list[tuple[list[int], set[int]]] = []
    open_batches: list[tuple[list[int], set[int]]] = []
    for position, row in enumerate(zip(*(c.tolist() for c in ids))):
        texts = set(row)
        texts.discard(NO_TEXT)
        for batch in open_batches:
            if texts.isdisjoint(batch[1]):
                break
        else:
            batch = ([], set())
            batches.append(batch)
            open_batches.append(batch)
        batch[0].append(position)
        batch[1].update(texts)
        for column in optional:
            text = column[position]
            if text in batch[1]:
                column[position] = NO_TEXT
            elif text != NO_TEXT:
                batch[1].add(text)
        if len(batch[0]) == batch_size:
            open_batches.remove(batch)
    return [np.asarray(rows, np.int64) for rows, _ in batches]
