"""Cheap trials: one built model reused across trials, lazy restores, chunked I/O.

A reused model must train exactly as a freshly built one would, and undoing a
trial by rewriting only the rows it changed must give back the base weights
bit for bit.
"""

from __future__ import annotations

import zipfile

import keras_tuner as kt
import numpy as np
import pytest

from domaintune import tf_runtime
from domaintune.data.pairs import load_pairs, sample_path
from domaintune.models import weights_io
from domaintune.models.siamese import build_model, pair_dataset
from domaintune.models.trainable_encoder import TrainableEncoder
from domaintune.search.fit_callbacks import RestoreBestEpoch, changed_rows
from domaintune.search.space import SearchSpace

rt = tf_runtime.load()
tf = rt.tf

FIRST = {"learning_rate": 5e-2, "clipnorm": 10.0, "clip_epsilon": 1e-5}
SECOND = {"learning_rate": 1e-2, "clipnorm": 0.05, "clip_epsilon": 1e-2}


def _model(encoder: TrainableEncoder, values: dict):
    space = SearchSpace().with_overrides({k: [v] for k, v in values.items()})
    values = space.declare(kt.HyperParameters())
    return build_model(values, encoder.keras_layer(trainable=True)), values


def _train(model, pairs, seed: int):
    model.fit(pair_dataset(pairs, 16, shuffle=True, seed=seed), epochs=2, verbose=0)


def _weights(encoder: TrainableEncoder) -> list[np.ndarray]:
    return [v.numpy().copy() for v in encoder.variables]


@pytest.fixture()
def pairs():
    found, _ = load_pairs(sample_path())
    return found.subset(range(96))


def test_reused_model_trains_exactly_like_a_fresh_one(tiny_model_dir, pairs):
    encoder = TrainableEncoder(tiny_model_dir)
    base = _weights(encoder)

    model, _ = _model(encoder, FIRST)
    _train(model, pairs, seed=1)
    assert not np.array_equal(encoder.variables[0].numpy(), base[0])
    traces = model.train_function.experimental_get_tracing_count()

    # Trial 2 on the same model: undo trial 1 by its changed rows, new values.
    encoder.restore_base(changed_rows(model))
    for now, then in zip(_weights(encoder), base):
        assert np.array_equal(now, then)
    _, second_values = _model(encoder, SECOND)
    graph_key = SearchSpace().graph_key
    assert graph_key(second_values) == graph_key({**second_values, **FIRST})
    for shaping in (
        {"loss": "cosent"},
        {"clipnorm_scope": "global"},
        {"sparse_updates": False},
        {"train_embeddings": False},
    ):
        assert graph_key({**second_values, **shaping}) != graph_key(second_values)
    model.start_trial(second_values)
    assert float(model.optimizer.learning_rate) == pytest.approx(SECOND["learning_rate"])
    # Step count, moments and written-row flags are back to zero.
    assert all(not np.any(v.numpy()) for v in model.optimizer.variables)
    _train(model, pairs, seed=2)
    assert model.train_function.experimental_get_tracing_count() == traces  # no retrace
    reused = _weights(encoder)

    # The same trial on a freshly built model.
    encoder.restore_base()
    rt.tf_keras.backend.clear_session()
    fresh_model, _ = _model(encoder, SECOND)
    _train(fresh_model, pairs, seed=2)
    for a, b in zip(reused, _weights(encoder)):
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-6)
    # SECOND's tight clipnorm matters: trained with FIRST's it would differ.
    encoder.restore_base()
    other_model, _ = _model(encoder, {**SECOND, "clipnorm": FIRST["clipnorm"]})
    _train(other_model, pairs, seed=2)
    assert not np.allclose(reused[0], encoder.variables[0].numpy(), atol=1e-4)


def test_changed_rows_cover_exactly_what_lazy_adam_wrote(tiny_model_dir, pairs):
    encoder = TrainableEncoder(tiny_model_dir)
    base = _weights(encoder)
    model, _ = _model(encoder, FIRST)
    _train(model, pairs, seed=1)
    changed = changed_rows(model)
    table = encoder.variables[0]
    assert table.shape[0] == 512
    rows = np.asarray(changed(table))
    moved = np.flatnonzero((table.numpy() != base[0]).any(axis=1))
    assert 0 < len(moved) < 512 and set(moved) <= set(rows)
    assert changed(encoder.variables[1]) is None  # the dense matrix: anywhere
    assert encoder.all_finite(changed)


def test_restore_best_epoch_puts_back_the_best_epoch(tiny_model_dir):
    encoder = TrainableEncoder(tiny_model_dir)
    model, _ = _model(encoder, FIRST)
    table = encoder.variables[0]
    callback = RestoreBestEpoch(encoder, last_epoch=2)
    callback.set_model(model)
    callback.on_epoch_end(0, {"val_loss": 0.5})  # best so far: copied aside
    best = table.numpy().copy()
    table.assign_add(tf.ones_like(table))
    callback.on_epoch_end(1, {"val_loss": 0.7})  # worse: stop, put back epoch 0
    assert model.stop_training
    assert np.array_equal(table.numpy(), best)

    # The last epoch is never copied: if it is the best its weights are in place.
    last = RestoreBestEpoch(encoder, last_epoch=0)
    last.set_model(model)
    model.stop_training = False
    last.on_epoch_end(0, {"val_loss": 0.1})
    assert not model.stop_training and not last.saved


def test_patience_waits_and_zero_trains_every_epoch(tiny_model_dir):
    encoder = TrainableEncoder(tiny_model_dir)
    model, _ = _model(encoder, FIRST)
    table = encoder.variables[0]
    callback = RestoreBestEpoch(encoder, last_epoch=5, patience=2)
    callback.set_model(model)
    callback.on_epoch_end(0, {"val_loss": 0.5})
    best = table.numpy().copy()
    table.assign_add(tf.ones_like(table))
    callback.on_epoch_end(1, {"val_loss": 0.7})  # one worse epoch: goes on
    assert not model.stop_training
    callback.on_epoch_end(2, {"val_loss": 0.6})  # two: stops, puts back epoch 0
    assert model.stop_training and np.array_equal(table.numpy(), best)

    # The budget ending on a worse epoch also puts back the best.
    model.stop_training = False
    ending = RestoreBestEpoch(encoder, last_epoch=1, patience=3)
    ending.set_model(model)
    ending.on_epoch_end(0, {"val_loss": 0.5})
    table.assign_add(tf.ones_like(table))
    ending.on_epoch_end(1, {"val_loss": 0.9})
    assert np.array_equal(table.numpy(), best)

    model.stop_training = False
    every = RestoreBestEpoch(encoder, last_epoch=3, patience=0)
    every.set_model(model)
    for epoch, loss in enumerate((0.5, 0.9, 1.0)):
        every.on_epoch_end(epoch, {"val_loss": loss})
    assert not model.stop_training and not every.saved  # no copy, the last epoch stays


def test_restore_best_epoch_bychanged_rows(tiny_model_dir, pairs):
    """From the base, only the rows trained so far are copied, and putting
    them back (with the base elsewhere) gives the best epoch's weights."""
    encoder = TrainableEncoder(tiny_model_dir)
    model, _ = _model(encoder, FIRST)
    model.fit(pair_dataset(pairs.subset(range(48)), 16, shuffle=True, seed=3), epochs=1, verbose=0)
    changed = changed_rows(model)
    callback = RestoreBestEpoch(encoder, last_epoch=2, changed_rows=changed)
    callback.set_model(model)
    callback.on_epoch_end(0, {"val_loss": 0.5})
    best = _weights(encoder)
    table_rows, table_copy = encoder._snapshot[0]
    assert table_copy.shape[0] == len(table_rows) < 512  # rows, not the table
    model.fit(
        pair_dataset(pairs.subset(range(48, 96)), 16, shuffle=True, seed=4), epochs=1, verbose=0
    )
    later = set(np.asarray(changed(encoder.variables[0])))
    assert later - set(table_rows)  # the second epoch moved rows the copy lacks
    assert not np.array_equal(encoder.variables[0].numpy(), best[0])
    callback.on_epoch_end(1, {"val_loss": 0.9})
    for now, then in zip(_weights(encoder), best):
        assert np.array_equal(now, then)


def _variables():
    rng = np.random.default_rng(0)
    rows = 2 * weights_io.CHUNK_ROWS + 5  # streamed: more than one chunk
    return [
        tf.Variable(rng.normal(size=(rows, 64)).astype(np.float32)),
        tf.Variable(rng.normal(size=(3, 3)).astype(np.float32)),
        tf.Variable(np.float32(2.5)),
    ]


def test_npz_checkpoints_stream_big_variables_and_numpy_reads_them(tmp_path):
    variables = _variables()
    path = tmp_path / "encoder.npz"
    with open(path, "wb") as f:
        weights_io.save_npz(f, variables)
    with np.load(path) as stored:  # a plain .npz
        for i, variable in enumerate(variables):
            assert np.array_equal(stored[f"v{i}"], variable.numpy())

    targets = [tf.Variable(tf.zeros_like(v)) for v in variables]
    weights_io.load_npz(path, targets)
    for got, want in zip(targets, variables):
        assert np.array_equal(got.numpy(), want.numpy())

    with pytest.raises(ValueError, match="holds 3 variables, the encoder has 2"):
        weights_io.load_npz(path, targets[:2])
    wrong = [targets[0], tf.Variable(tf.zeros([3, 4])), targets[2]]
    with pytest.raises(ValueError, match=r"v1 is float32\[3, 3\], the variable is float32\[3, 4\]"):
        weights_io.load_npz(path, wrong)


def test_only_numeric_variables_are_checkpointed(tmp_path):
    with open(tmp_path / "x.npz", "wb") as f, pytest.raises(ValueError, match="not numeric"):
        weights_io.save_npz(f, [tf.Variable(["a", "b"])])


def test_truncated_member_is_reported(tmp_path):
    big = _variables()[0]
    path = tmp_path / "cut.npz"
    with zipfile.ZipFile(path, "w") as archive, archive.open("v0.npy", "w") as member:
        header = {"descr": "<f4", "fortran_order": False, "shape": tuple(big.shape)}
        np.lib.format.write_array_header_2_0(member, header)
        member.write(big.numpy()[:100].tobytes())
    with pytest.raises(ValueError, match="truncated"):
        weights_io.load_npz(path, [tf.Variable(tf.zeros_like(big))])


def test_damaged_or_mismatched_checkpoint_is_a_value_error_and_writes_nothing(tmp_path):
    variables = _variables()
    path = tmp_path / "encoder.npz"
    with open(path, "wb") as f:
        weights_io.save_npz(f, variables)
    cut = tmp_path / "cut.npz"
    cut.write_bytes(path.read_bytes()[: path.stat().st_size // 2])  # zip directory lost
    targets = [tf.Variable(tf.zeros_like(v)) for v in variables]
    with pytest.raises(ValueError, match="not a readable encoder checkpoint"):
        weights_io.load_npz(cut, targets)
    # The last member does not fit: nothing is written, the first included.
    wrong = targets[:2] + [tf.Variable(np.zeros(2, np.float32))]
    with pytest.raises(ValueError, match="v2 is"):
        weights_io.load_npz(path, wrong)
    assert not targets[0].numpy().any()


def test_write_rows_and_read_into_move_only_what_they_say():
    table = _variables()[0]
    before = table.numpy().copy()
    rows = np.array([0, 7, weights_io.CHUNK_ROWS + 3, table.shape[0] - 1])
    weights_io.write(table, np.zeros((len(rows), 64), np.float32), rows)
    after = weights_io.read_into(table)
    assert not after[rows].any()
    untouched = np.setdiff1d(np.arange(table.shape[0]), rows)
    assert np.array_equal(after[untouched], before[untouched])
    weights_io.write(table, before)  # whole, in chunks
    assert np.array_equal(weights_io.read_into(table, np.empty_like(before)), before)
