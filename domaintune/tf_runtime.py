"""Imports TensorFlow the way every part of domaintune needs it.

``hub.KerasLayer`` is a tf_keras (Keras 2) layer, while ``tf.keras`` is Keras 3
in TF 2.21, so the project imports ``tf_keras`` explicitly. ``tensorflow_text``
registers the SentencePiece ops and must be imported before any SavedModel
that uses them is loaded. Import through :func:`load` so both always hold.
"""

from __future__ import annotations

import os
import warnings
from types import SimpleNamespace

# Quiet TF's C++ start-up chatter unless the user asked for it.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

_modules: SimpleNamespace | None = None


def load() -> SimpleNamespace:
    """Return a namespace with ``tf``, ``tf_keras``, ``hub`` and ``text``."""
    global _modules
    if _modules is None:
        # tensorflow_hub still imports pkg_resources (setuptools < 81 pinned).
        warnings.filterwarnings("ignore", message="pkg_resources is deprecated")
        import tensorflow as tf
        import tensorflow_hub as hub
        import tensorflow_text as text  # registers SentencePiece ops
        import tf_keras

        _split_cpu(tf)
        _modules = SimpleNamespace(tf=tf, tf_keras=tf_keras, hub=hub, text=text)
    return _modules


def _split_cpu(tf) -> None:
    """``DOMAINTUNE_LOGICAL_CPUS=N`` splits the CPU into N logical devices, so a
    MirroredStrategy (``--strategy mirrored``) can be tried without GPUs."""
    count = int(os.environ.get("DOMAINTUNE_LOGICAL_CPUS", "0") or 0)
    if count > 1:
        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(
            cpu, [tf.config.LogicalDeviceConfiguration() for _ in range(count)]
        )
