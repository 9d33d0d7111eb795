"""A trial's training and validation batches, with the hard negatives its
``hard_negatives`` value asks for; mined ones are mined again before each
epoch with the encoder as training has left it."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from domaintune import tf_runtime
from domaintune.models.encoding import EncodeFn
from domaintune.models.losses import PairLoss
from domaintune.models.mining import mine_hard_negatives
from domaintune.models.siamese import pair_dataset


class MinedNegatives(tf_runtime.load().tf_keras.callbacks.Callback):
    """The mined hard negatives of a training set (``k`` columns), mined with
    the current encoder at the start of every epoch and taken once by that
    epoch's batch plan (:func:`~domaintune.models.siamese.pair_dataset`)."""

    def __init__(
        self,
        pairs: Any,
        encode: Callable[[], EncodeFn],
        *,
        k: int,
        skip: int,
        positive_threshold: float,
    ):
        super().__init__()
        self.pairs, self.encode = pairs, encode
        self.k, self.skip, self.positive_threshold = k, skip, positive_threshold
        self._columns: list[list[str]] | None = None

    def mine(self) -> None:
        self._columns = mine_hard_negatives(
            self.pairs,
            self.encode(),  # the weights as they are now
            k=self.k,
            skip=self.skip,
            positive_threshold=self.positive_threshold,
        )

    def on_epoch_begin(self, epoch, logs=None):
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
) -> tuple[Any, Any, list[MinedNegatives]]:
    """``(train dataset, validation dataset, fit callbacks)`` of a trial.

    ``hard_negatives`` shapes the training batches of in-batch losses only:
    validation keeps the pair file's column, a yardstick that stays the same
    from epoch to epoch (early stopping compares them) and across trials.
    """
    batch = dict(
        batch_size=int(values["batch_size"]),
        unique_texts=loss.in_batch,
        positives_only=float(values["positive_threshold"]) if loss.positives_only else None,
    )
    mode = values.get("hard_negatives", "taxonomy")
    miner = None
    if mode == "mined" and loss.in_batch:
        miner = MinedNegatives(
            train,
            encode,
            k=int(values.get("mined_k", 1)),
            skip=int(values.get("mined_skip", 0)),
            positive_threshold=float(values["positive_threshold"]),
        )
    train_data = pair_dataset(
        train, shuffle=True, seed=seed, taxonomy=mode == "taxonomy", mined=miner, **batch
    )
    return train_data, pair_dataset(val, shuffle=False, **batch), [miner] if miner else []
