"""A trial's training and validation batches, with the hard negatives its
``hard_negatives`` value asks for; mined ones are mined again before each
epoch with the encoder as training has left it. With a pairs budget
(``--pairs-per-epoch``) each epoch trains on, and mines for, its sample."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np

from domaintune import tf_runtime
from domaintune.data.pair_arrays import pair_arrays
from domaintune.models.encoding import EncodeFn
from domaintune.models.losses import PairLoss
from domaintune.models.mining import mine_hard_negatives
from domaintune.models.siamese import pair_dataset


class TrainingEpoch(tf_runtime.load().tf_keras.callbacks.Callback):
    """Tells the training batches which epoch fit is in: an epoch's sample and
    order are a function of it (:func:`~domaintune.models.siamese.pair_dataset`),
    also when fit starts past 0 (a Hyperband child, a resumed trial)."""

    def __init__(self, first: int = 0):
        super().__init__()
        self.epoch = first

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch


class MinedNegatives(TrainingEpoch):
    """The mined hard negatives of a training set (``k`` columns), mined with
    the current encoder at the start of every epoch and taken once by that
    epoch's batch plan (:func:`~domaintune.models.siamese.pair_dataset`).
    ``rows(epoch)``: the pairs an epoch trains on (None: all); with a pairs
    budget only their negatives are mined."""

    def __init__(
        self,
        pairs: Any,
        encode: Callable[[], EncodeFn],
        *,
        k: int,
        skip: int,
        positive_threshold: float,
        rows: Callable[[int], np.ndarray | None] | None = None,
    ):
        super().__init__()
        self.pairs, self.encode, self.rows = pairs, encode, rows
        self.k, self.skip, self.positive_threshold = k, skip, positive_threshold
        self._columns: list[list[str]] | None = None

    def mine(self) -> None:
        self._columns = mine_hard_negatives(
            self.pairs,
            self.encode(),  # the weights as they are now
            k=self.k,
            skip=self.skip,
            positive_threshold=self.positive_threshold,
            rows=self.rows(self.epoch) if self.rows else None,
        )

    def on_epoch_begin(self, epoch, logs=None):
        super().on_epoch_begin(epoch)
        # tf_keras plans an epoch's batches (calls the dataset's generator) on
        # its first step, after this: the epoch trains on these negatives.
        # fit runs callbacks inside its distribution strategy's scope, where
        # the loaded encoder's functions cannot be called (MirroredStrategy
        # fails); a thread starts in the default context, as scoring does.
        with ThreadPoolExecutor(1) as pool:
            pool.submit(self.mine).result()

    def take(self) -> list[list[str]]:
        if self._columns is None:  # stale negatives would silently mislead
            raise RuntimeError("mined hard negatives were not mined before this epoch")
        columns, self._columns = self._columns, None
        return columns


def trial_batches(
    loss: PairLoss,
    values: Mapping[str, Any],
    train: Any,
    val: Any,
    *,
    seed: int,
    encode: Callable[[], EncodeFn],
    pairs_per_epoch: int = 0,
    sample_seed: int = 0,
) -> tuple[Any, Any, list[TrainingEpoch]]:
    """``(train dataset, validation dataset, fit callbacks)`` of a trial.

    ``hard_negatives`` shapes the training batches of in-batch losses only:
    validation keeps the pair file's column, a yardstick that stays the same
    from epoch to epoch (early stopping compares them) and across trials.
    ``pairs_per_epoch`` (0: all): each epoch's sample of the training pairs,
    seeded by ``sample_seed`` (the search's: every trial's epoch ``e`` is the
    same sample); ``seed`` orders an epoch's pairs. The one callback (a
    :class:`MinedNegatives` for mined negatives) must go to fit.
    """
    positives_only = float(values["positive_threshold"]) if loss.positives_only else None
    batch = dict(
        batch_size=int(values["batch_size"]),
        unique_texts=loss.in_batch,
        positives_only=positives_only,
    )
    mode = values.get("hard_negatives", "taxonomy")
    clock = TrainingEpoch()
    if mode == "mined" and loss.in_batch:
        # The same memoized sample the batches take (pair_dataset): mine its rows.
        arrays = pair_arrays(train)
        keep = arrays.kept(positives_only)
        sample = arrays.sample(positives_only, pairs_per_epoch, sample_seed)
        clock = MinedNegatives(
            train,
            encode,
            k=int(values.get("mined_k", 1)),
            skip=int(values.get("mined_skip", 0)),
            positive_threshold=float(values["positive_threshold"]),
            rows=lambda epoch: keep[sample.rows(epoch)] if sample.budgeted else None,
        )
    train_data = pair_dataset(
        train,
        shuffle=True,
        seed=seed,
        taxonomy=mode == "taxonomy",
        mined=clock if isinstance(clock, MinedNegatives) else None,
        pairs_per_epoch=pairs_per_epoch,
        sample_seed=sample_seed,
        epoch=lambda: clock.epoch,
        **batch,
    )
    return train_data, pair_dataset(val, shuffle=False, **batch), [clock]
