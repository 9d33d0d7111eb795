"""The base encoder held in memory for a whole search.

A search loads the base SavedModel once and keeps a copy of its initial
weights; each trial restores them in memory (no re-read from disk), fine-tunes
the same variables, and a checkpoint stores only those encoder variables (no
optimizer state: a few hundred MB instead of ~790 MB for USE-m3).
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path

import numpy as np

from domaintune import tf_runtime
from domaintune.models.encoder import EncodeFn, batched_encoder

CHECKPOINT_NAME = "encoder.npz"


class EncoderState:
    """A loaded TF-Hub style SavedModel plus its pristine base weights."""

    def __init__(self, saved_model_dir: Path, strategy=None):
        tf = tf_runtime.load().tf
        self.saved_model_dir = Path(saved_model_dir)
        # Under a distribution strategy the variables must be created in its
        # scope (mirrored on every device).
        with strategy.scope() if strategy else contextlib.nullcontext():
            self.module = tf.saved_model.load(str(saved_model_dir))
        self.variables = list(self.module.variables)
        self._base = [v.numpy() for v in self.variables]

    def restore_base(self) -> None:
        """Put the untuned base weights back into the variables."""
        for variable, value in zip(self.variables, self._base):
            variable.assign(value)

    def keras_layer(self, trainable: bool = True):
        """A fresh ``hub.KerasLayer`` over the shared variables."""
        return tf_runtime.load().hub.KerasLayer(self.module, trainable=trainable)

    def encoder(self, batch_size: int = 256) -> EncodeFn:
        """Batched numpy encoding with the current weights."""
        return batched_encoder(self.module, batch_size)

    def save_weights(self, path: Path) -> None:
        """Write the encoder variables (only) atomically to ``path`` (.npz)."""
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".encoder-", suffix=".npz", dir=path.parent)
        try:
            with os.fdopen(fd, "wb") as f:
                np.savez(f, **{f"v{i}": v.numpy() for i, v in enumerate(self.variables)})
            os.replace(tmp, path)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)

    def load_weights(self, path: Path) -> None:
        """Assign variables from a checkpoint written by :meth:`save_weights`."""
        with np.load(path) as stored:
            if len(stored.files) != len(self.variables):
                raise ValueError(f"{path} holds {len(stored.files)} variables, "
                                 f"the encoder has {len(self.variables)}")
            for i, variable in enumerate(self.variables):
                variable.assign(stored[f"v{i}"])

    def all_finite(self) -> bool:
        tf = tf_runtime.load().tf
        return all(bool(tf.reduce_all(tf.math.is_finite(v))) for v in self.variables
                   if v.dtype.is_floating)
