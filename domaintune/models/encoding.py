"""Batched encoding with any TF-Hub style text encoder."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from domaintune import tf_runtime

EncodeFn = Callable[[Sequence[str]], np.ndarray]

DEFAULT_BATCH_SIZE = 256


def load_encoder_layer(saved_model_dir: Path | str, trainable: bool = False):
    """Load a SavedModel as ``hub.KerasLayer`` (strings -> embeddings)."""
    hub = tf_runtime.load().hub
    return hub.KerasLayer(str(saved_model_dir), trainable=trainable)


def batched_encoder(layer, batch_size: int = DEFAULT_BATCH_SIZE) -> EncodeFn:
    """Wrap a string -> embedding callable into a batched numpy encoder.

    Texts are encoded in batches of ``batch_size``, never one at a time, in
    length order so each batch holds sentences of similar size; duplicates are
    encoded once. Output rows follow the input order.
    """
    tf = tf_runtime.load().tf

    def encode(texts: Sequence[str]) -> np.ndarray:
        unique = sorted(set(texts), key=len)
        if not unique:
            return np.zeros((0, 0), np.float32)
        chunks = [
            np.asarray(layer(tf.constant(unique[i : i + batch_size])))
            for i in range(0, len(unique), batch_size)
        ]
        table = np.concatenate(chunks).astype(np.float32, copy=False)
        row = {text: i for i, text in enumerate(unique)}
        return table[[row[t] for t in texts]]

    return encode
