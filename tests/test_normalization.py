"""Case folding in the graph: exported, loaded with hub.KerasLayer, trainable."""

from __future__ import annotations

import numpy as np
import pytest

from domaintune import tf_runtime
from domaintune.models.normalization import case_folded_root, fold_case
from tests.tiny_model import build_tiny_saved_model

VARIANTS = ["ABOGADO", "abogado", "Abogado", "ＡＢＯＧＡＤＯ"]  # the last: full-width


@pytest.fixture(scope="module")
def case_sensitive_dir(tmp_path_factory):
    return build_tiny_saved_model(tmp_path_factory.mktemp("cs") / "model", lowercase=False)


def _embed(model_dir, texts):
    rt = tf_runtime.load()
    return np.asarray(rt.hub.KerasLayer(str(model_dir))(rt.tf.constant(texts)))


def test_fold_case():
    tf = tf_runtime.load().tf
    folded = fold_case(tf.constant(VARIANTS + ["Straße ÉCOLE"])).numpy()
    assert [t.decode() for t in folded] == ["abogado"] * 4 + ["straße école"]


def test_exported_root_folds_case_and_stays_trainable(case_sensitive_dir, tmp_path):
    rt = tf_runtime.load()
    tf = rt.tf
    plain = _embed(case_sensitive_dir, VARIANTS)
    assert not np.allclose(plain[0], plain[1])  # the model itself is case-sensitive

    module = tf.saved_model.load(str(case_sensitive_dir))
    tf.saved_model.save(case_folded_root(module), str(tmp_path / "folded"))
    folded = _embed(tmp_path / "folded", VARIANTS)
    np.testing.assert_array_equal(folded, np.repeat(folded[:1], len(VARIANTS), axis=0))
    np.testing.assert_allclose(folded[0], plain[1], atol=1e-6)  # = the lower-case text

    layer = rt.hub.KerasLayer(str(tmp_path / "folded"), trainable=True)
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(layer(tf.constant(["ABOGADO"])))
    grads = tape.gradient(loss, layer.trainable_variables)
    assert len(layer.trainable_variables) == 2 and all(g is not None for g in grads)
