"""The Keras fit callbacks of a trial (TensorBoard epoch scalars, restoring the best epoch,
stopping on a NaN/inf loss) and :func:`changed_rows`, which tells them what a trial changed."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from domaintune import tf_runtime
from domaintune.models.trainable_encoder import TrainableEncoder
from domaintune.reporting.tensorboard_logging import TrialLogger


def changed_rows(model) -> Callable[[Any], Any]:
    """What a trial of ``model`` changed: trainable variables it did not tune
    (a frozen table) not at all, lazily updated tables in the rows its
    optimizer wrote, anything else (non-trainable state too) anywhere."""
    tf = tf_runtime.load().tf
    tuned = {id(v) for v in model.tuned_variables()}
    frozen = {id(v) for v in model.trainable_variables} - tuned

    def changed(variable):
        if id(variable) in frozen:
            return tf.zeros([0], tf.int64)
        return model.optimizer.updated_rows(variable) if id(variable) in tuned else None

    return changed


class EpochLog(tf_runtime.load().tf_keras.callbacks.Callback):
    """Writes the epoch scalars (loss, val_loss, mae, val_mae) to TensorBoard."""

    def __init__(self, logger: TrialLogger):
        super().__init__()
        self.logger = logger

    def on_epoch_end(self, epoch, logs=None):
        self.logger.log_epoch(epoch + 1, {k: float(v) for k, v in (logs or {}).items()})


class RestoreBestEpoch(tf_runtime.load().tf_keras.callbacks.Callback):
    """Early stopping on val_loss that puts the best epoch's weights back,
    minus its waste: Keras copies every weight (all of USE-m3's) after each
    improving epoch, the last one included. The last epoch never needs a copy
    (if it is the best, its weights are in place), and with ``changed_rows``
    (a trial from the base) only the rows changed so far are copied.
    It stops after ``patience`` epochs without a better val_loss (1: the first
    worse one); 0, unlike Keras' ``EarlyStopping``, never stops and keeps the
    last epoch (with ``--pairs-per-epoch`` an epoch is a budget unit, and one
    noisy epoch of a few thousand pairs must not end a trial)."""

    def __init__(
        self,
        encoder: TrainableEncoder,
        last_epoch: int,
        changed_rows: Callable[[Any], Any] | None = None,
        patience: int = 1,
    ):
        super().__init__()
        self.encoder = encoder
        self.last_epoch = last_epoch
        self.changed_rows = changed_rows
        self.patience = patience
        self.best = math.inf
        self.wait = 0  # epochs since the best
        self.saved = False

    def on_epoch_end(self, epoch, logs=None):
        loss = (logs or {}).get("val_loss", math.nan)
        if not self.patience:
            self.model.stop_training |= not math.isfinite(loss)  # diverged: no use going on
            return
        if loss < self.best:
            self.best, self.wait = loss, 0
            if epoch < self.last_epoch:
                self.encoder.snapshot(self.changed_rows)
                self.saved = True
            return
        self.wait += 1
        # Waits, unless the budget ends or --prune median stops the trial here.
        if self.wait < self.patience and epoch < self.last_epoch and not self.model.stop_training:
            return
        self.model.stop_training = True
        if self.saved:
            self.encoder.restore_snapshot(self.changed_rows)

    def on_train_end(self, logs=None):
        self.encoder.drop_snapshot()  # a full copy is as large as the encoder


class StopOnNonFinite(tf_runtime.load().tf_keras.callbacks.Callback):
    """Stops at the first NaN/inf batch loss (the trial is then marked failed)."""

    def on_train_batch_end(self, batch, logs=None):
        loss = (logs or {}).get("loss")
        if loss is not None and not math.isfinite(float(loss)):
            self.model.stop_training = True
