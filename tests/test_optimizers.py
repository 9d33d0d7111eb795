"""LazyAdam: sparse table updates touch only the rows a batch uses."""

from __future__ import annotations

import numpy as np

from domaintune import tf_runtime
from domaintune.models.optimizers import LazyAdam

rt = tf_runtime.load()
tf = rt.tf


def _step(optimizer, table, dense, ids, dense_gradient=False):
    with tf.GradientTape() as tape:
        rows = tf.gather(table, ids)  # IndexedSlices gradient, duplicates included
        loss = tf.reduce_sum(tf.square(tf.matmul(rows, dense) - 1.0))
    grads = tape.gradient(loss, [table, dense])
    assert isinstance(grads[0], tf.IndexedSlices)
    if dense_gradient:
        grads[0] = tf.convert_to_tensor(grads[0])
    optimizer.apply_gradients(zip(grads, [table, dense]))


def _variables(seed=0):
    rng = np.random.default_rng(seed)
    return (
        tf.Variable(rng.normal(size=(40, 6)).astype(np.float32)),
        tf.Variable(rng.normal(size=(6, 3)).astype(np.float32)),
    )


def _slots(optimizer, variable):
    key = optimizer._index_dict[optimizer._var_key(variable)]
    return optimizer._momentums[key].numpy(), optimizer._velocities[key].numpy()


def test_lazy_adam_matches_dense_adam_on_touched_rows_and_leaves_the_rest():
    first, second = tf.constant([3, 7, 7, 12]), tf.constant([7, 20, 20, 20, 31])
    lazy_table, lazy_dense = _variables()
    ref_table, ref_dense = _variables()
    lazy = LazyAdam(learning_rate=0.01, clipnorm=1.0)
    dense = rt.tf_keras.optimizers.Adam(learning_rate=0.01, clipnorm=1.0)

    _step(lazy, lazy_table, lazy_dense, first)
    _step(dense, ref_table, ref_dense, first, dense_gradient=True)
    # Step 1 from zero moments: dense Adam moves only the touched rows too.
    np.testing.assert_allclose(lazy_table.numpy(), ref_table.numpy(), atol=1e-6)
    np.testing.assert_allclose(lazy_dense.numpy(), ref_dense.numpy(), atol=1e-6)
    for a, b in zip(_slots(lazy, lazy_table), _slots(dense, ref_table)):
        np.testing.assert_allclose(a, b, atol=1e-6)

    before = lazy_table.numpy().copy()
    slots_before = _slots(lazy, lazy_table)
    _step(lazy, lazy_table, lazy_dense, second)
    untouched = np.setdiff1d(np.arange(40), second.numpy())
    after = lazy_table.numpy()
    assert np.array_equal(after[untouched], before[untouched])
    for slot, old in zip(_slots(lazy, lazy_table), slots_before):
        assert np.array_equal(slot[untouched], old[untouched])
    assert not np.array_equal(after[[7, 20, 31]], before[[7, 20, 31]])

    # Touched rows of step 2 follow dense Adam (their state was identical);
    # dense Adam also moves rows 3 and 12 by momentum, lazy Adam does not.
    _step(dense, ref_table, ref_dense, second, dense_gradient=True)
    touched = [7, 20, 31]
    np.testing.assert_allclose(after[touched], ref_table.numpy()[touched], atol=1e-6)
    for a, b in zip(_slots(lazy, lazy_table), _slots(dense, ref_table)):
        np.testing.assert_allclose(a[touched], b[touched], atol=1e-6)
    assert not np.array_equal(ref_table.numpy()[[3, 12]], before[[3, 12]])


def test_loss_decreases_on_seed_pairs_with_sparse_updates(use_m3_dir):
    import keras_tuner as kt

    from domaintune.data.pairs import load_pairs
    from domaintune.models.siamese import build_model, pair_dataset
    from domaintune.search.space import SearchSpace

    from .conftest import shared_path

    pairs, _ = load_pairs(shared_path("seed", "training_data.csv"))
    batch = pairs.subset(range(16))
    layer = rt.hub.KerasLayer(str(use_m3_dir), trainable=True)
    space = SearchSpace().with_overrides({"learning_rate": [1e-4], "batch_size": [16]})
    model = build_model(space.declare(kt.HyperParameters()), layer)
    assert isinstance(model.optimizer, LazyAdam)
    table = next(v for v in layer.trainable_variables if v.shape[0] == 128010)
    before = table.numpy()
    history = model.fit(pair_dataset(batch, 16, shuffle=False), epochs=4, verbose=0)
    losses = history.history["loss"]
    assert losses[-1] < losses[0]
    changed_rows = np.flatnonzero((table.numpy() != before).any(axis=1))
    assert 0 < len(changed_rows) < 500  # only the rows of the batch's tokens moved
