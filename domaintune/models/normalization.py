"""Input normalisation inside the graph: case folding before tokenisation.

USE-m3's SentencePiece vocabulary is case-sensitive in a way that hurts:
cos("ABOGADO", "abogado") = 0.62 with the original weights. Folding every
input to NFKC lower case before the encoder makes "DATA SCIENTIST", "Data
Scientist" and "data scientist" one text. It runs in TensorFlow, so training,
scoring and an exported SavedModel fold alike, and a user of the export gets
it without knowing.

NFKC + ``lower`` rather than full Unicode case folding
(``tensorflow_text.case_fold_utf8``): case folding also rewrites ß as ss,
which moves German words off the tokens the encoder learned.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from domaintune import tf_runtime


def fold_case(texts):
    """NFKC-normalised lower case of a string tensor (any shape)."""
    rt = tf_runtime.load()
    return rt.tf.strings.lower(rt.text.normalize_utf8(texts, "NFKC"), encoding="utf-8")


def case_folding(encoder: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """``encoder`` (string tensor -> embeddings) behind :func:`fold_case`."""

    def folded(texts):
        return encoder(fold_case(texts))

    return folded


def case_folded_root(module: Any):
    """A reusable-SavedModel root (the TF-Hub convention) that folds case and
    then calls ``module``, sharing its variables."""
    tf = tf_runtime.load().tf
    root = tf.train.Checkpoint()
    root.model = module
    # The reusable-SavedModel convention wants these as plain attributes.
    root.variables = list(module.variables)
    root.trainable_variables = list(module.trainable_variables)
    root.regularization_losses = []

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string)])
    def call(texts):
        return module(fold_case(texts))

    root.__call__ = call
    return root
