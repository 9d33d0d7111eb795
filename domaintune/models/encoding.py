"""Batched encoding with any TF-Hub style text encoder."""

from __future__ import annotations

import contextlib
import re
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import numpy as np

from domaintune import tf_runtime
from domaintune.errors import UserError

EncodeFn = Callable[[Sequence[str]], np.ndarray]

DEFAULT_BATCH_SIZE = 256


def load_encoder_layer(saved_model_dir: Path | str, trainable: bool = False):
    """Load a SavedModel as ``hub.KerasLayer`` (strings -> embeddings); a
    damaged one raises :class:`UserError`."""
    hub = tf_runtime.load().hub
    with _damaged_is_user_error(saved_model_dir):
        return hub.KerasLayer(str(saved_model_dir), trainable=trainable)


def load_saved_model(saved_model_dir: Path | str):
    """``tf.saved_model.load``; a damaged model raises :class:`UserError`."""
    tf = tf_runtime.load().tf
    with _damaged_is_user_error(saved_model_dir):
        return tf.saved_model.load(str(saved_model_dir))


@contextlib.contextmanager
def _damaged_is_user_error(saved_model_dir: Path | str) -> Iterator[None]:
    """What TensorFlow raises for a truncated, corrupt or incomplete SavedModel
    (IndexError "Read less bytes than requested", DataLossError, a missing
    variables file...) as one :class:`UserError` naming the folder."""
    tf = tf_runtime.load().tf
    try:
        yield
    except (IndexError, ValueError, OSError, tf.errors.OpError) as exc:
        # OpError messages open with the failing op's {{function_node ...}} tag.
        reason = re.sub(r"\{\{.*?\}\}\s*", "", str(exc)).strip().splitlines()
        raise UserError(
            f"Cannot load the SavedModel '{saved_model_dir}' "
            f"({reason[0][:200] if reason else type(exc).__name__}): it is damaged or "
            "incomplete, or not a TF2 SavedModel. Copy, export or download it again, or use "
            "the embedded 'use-m3'."
        ) from None


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
