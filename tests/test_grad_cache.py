"""GradCache (large in-batch batches in bounded memory) on the real tiny TF-Hub model:
its gradients are the plain step's, its table gradient stays sparse, and a search
with it trains."""

from __future__ import annotations

import keras_tuner as kt
import numpy as np
import pytest

import domaintune as dt
from domaintune import tf_runtime
from domaintune.errors import UserError
from domaintune.models.siamese import build_model
from domaintune.models.trainable_encoder import TrainableEncoder
from domaintune.search.overrides import parse_hp_options
from domaintune.search.space import SearchSpace

from .tensorboard_events import read_scalars

tf = tf_runtime.load().tf


def _model(encoder: TrainableEncoder, **values):
    space = SearchSpace().with_overrides({k: [v] for k, v in values.items()})
    return build_model(space.declare(kt.HyperParameters()), encoder.keras_layer(trainable=True))


def _batch(n: int, hard: bool):
    bases = tf.constant([f"base title {i} of {n}" for i in range(n)])
    refs = tf.constant([f"the ref {i}" for i in range(n)])
    target = tf.constant([1.0 if i % 3 else 0.75 for i in range(n)])  # some non-positives
    if not hard:
        return (bases, refs), target
    negatives = tf.constant([f"negative {i}" if i % 2 else "" for i in range(n)])
    return (bases, refs, negatives), target


def _dense(gradient) -> np.ndarray:
    return tf.convert_to_tensor(gradient).numpy()


@pytest.mark.parametrize(
    "loss, hard", [("in_batch_negatives", True), ("mixed", False), ("angular_mse", True)]
)
def test_grad_cache_gradients_equal_the_plain_steps(tiny_model_dir, loss, hard):
    encoder = TrainableEncoder(tiny_model_dir)
    values = dict(loss=loss, scale=20.0, positive_threshold=0.99)
    plain = _model(encoder, **values)
    cached = _model(encoder, grad_cache_chunk=4, **values)  # same variables
    inputs, target = _batch(11, hard)  # 22-28 texts: uneven chunks of 4
    variables = plain.tuned_variables()
    assert [id(v) for v in variables] == [id(v) for v in cached.tuned_variables()]

    # In a tf.function, as the train step runs (dynamic chunk count, tf.cond).
    loss_p, mae_p, grads_p = tf.function(plain.gradients)(inputs, target, variables)
    loss_c, mae_c, grads_c = tf.function(cached.gradients)(inputs, target, variables)
    assert float(loss_c) == pytest.approx(float(loss_p), abs=1e-6)
    assert float(mae_c) == pytest.approx(float(mae_p), abs=1e-6)
    table = max(range(len(variables)), key=lambda i: variables[i].shape.num_elements())
    # The table's gradient stays sparse, so lazy Adam still touches only its rows.
    assert isinstance(grads_c[table], tf.IndexedSlices)
    for p, c in zip(grads_p, grads_c):
        assert np.abs(_dense(p)).max() > 0
        np.testing.assert_allclose(_dense(c), _dense(p), rtol=0, atol=1e-5)


def test_small_batch_takes_the_plain_path(tiny_model_dir):
    encoder = TrainableEncoder(tiny_model_dir)
    model = _model(encoder, loss="in_batch_negatives", grad_cache_chunk=64)
    inputs, target = _batch(8, hard=True)
    loss, _, grads = model.gradients(inputs, target, model.tuned_variables())  # eager: one branch
    plain = _model(encoder, loss="in_batch_negatives")
    expected, _, expected_grads = plain.gradients(inputs, target, plain.tuned_variables())
    assert float(loss) == float(expected)
    for g, e in zip(grads, expected_grads):
        np.testing.assert_array_equal(_dense(g), _dense(e))


def test_batch_size_takes_large_batches():
    space = SearchSpace().with_overrides(parse_hp_options(["batch_size=64,256,1024"]))
    assert space.params["batch_size"].values == (64, 256, 1024)
    hp = space.kt_hyperparameters()
    assert list(hp.space[[p.name for p in hp.space].index("batch_size")].values) == [64, 256, 1024]
    chunk = SearchSpace().with_overrides(parse_hp_options(["grad_cache_chunk=128"]))
    assert chunk.params["grad_cache_chunk"].default == 128
    with pytest.raises(UserError, match="grad_cache_chunk=-1: must be >= 0"):
        SearchSpace().with_overrides(parse_hp_options(["grad_cache_chunk=-1"]))


def test_search_with_grad_cache_trains(tmp_path, tiny_model_dir):
    result = dt.search(
        train=dt.sample_pairs(),
        base=tiny_model_dir,
        sts="none",
        max_trials=1,
        epochs=3,
        seed=1,
        hp={
            "loss": "in_batch_negatives",
            "batch_size": 1024,  # the whole sample in one batch
            "grad_cache_chunk": 32,
            "learning_rate": 0.05,
        },
        project_dir=tmp_path / "p",
    )
    (trial,) = result.trials
    assert trial.status == "COMPLETED", trial.message
    assert trial.hyperparameters["grad_cache_chunk"] == 32
    run = tmp_path / "p" / "logs" / f"trial-{trial.trial_id}"
    losses = [v for _, v in read_scalars(run)["loss"]]
    assert len(losses) >= 2 and losses[-1] < losses[0]
