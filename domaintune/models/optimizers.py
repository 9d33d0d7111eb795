"""Adam with lazy (sparse) updates of embedding tables.

tf_keras Adam handles an ``IndexedSlices`` gradient densely: it decays the
moments of, and moves, all 128k x 512 rows of USE-m3's table every step,
although a batch touches a few hundred. That makes a step ~3x slower than with
the table frozen. :class:`LazyAdam` updates only the touched rows (their
weights and both moments), the classic "lazy Adam": on those rows one step is
exactly the dense Adam formula; untouched rows and their moments stay as they
are (dense Adam would keep decaying their moments and moving them by momentum).
"""

from __future__ import annotations

from domaintune import tf_runtime

_rt = tf_runtime.load()
tf = _rt.tf


def _merge_duplicate_rows(gradient):
    """Sum the slices of rows gathered several times in a batch.

    Each row then gets one Adam step with its whole gradient, as in dense Adam,
    and clipnorm measures the same norm as the dense gradient's.
    """
    if not isinstance(gradient, tf.IndexedSlices):
        return gradient
    rows, position = tf.unique(gradient.indices)
    values = tf.math.unsorted_segment_sum(gradient.values, position, tf.shape(rows)[0])
    return tf.IndexedSlices(values, rows, gradient.dense_shape)


class LazyAdam(_rt.tf_keras.optimizers.Adam):
    """tf_keras Adam whose sparse gradients update only the rows they touch."""

    def apply_gradients(self, grads_and_vars, *args, **kwargs):
        merged = [(_merge_duplicate_rows(g), v) for g, v in grads_and_vars]
        return super().apply_gradients(merged, *args, **kwargs)

    def update_step(self, gradient, variable):
        if not isinstance(gradient, tf.IndexedSlices) or self.amsgrad:
            return super().update_step(gradient, variable)
        # Merged once more: a distribution strategy concatenates the replicas'
        # slices after apply_gradients merged each replica's.
        gradient = _merge_duplicate_rows(gradient)
        rows, grad = gradient.indices, gradient.values

        dtype = variable.dtype
        lr = tf.cast(self.learning_rate, dtype)
        local_step = tf.cast(self.iterations + 1, dtype)
        beta_1_power = tf.pow(tf.cast(self.beta_1, dtype), local_step)
        beta_2_power = tf.pow(tf.cast(self.beta_2, dtype), local_step)
        alpha = lr * tf.sqrt(1 - beta_2_power) / (1 - beta_1_power)
        epsilon = self.epsilon * tf.sqrt(1 - beta_2_power) if self.adaptive_epsilon \
            else self.epsilon

        key = self._index_dict[self._var_key(variable)]
        m, v = self._momentums[key], self._velocities[key]
        # Same arithmetic, in the same order, as the dense branch of Adam.
        m_rows = tf.gather(m, rows)
        m_rows = m_rows + (grad - m_rows) * (1 - self.beta_1)
        v_rows = tf.gather(v, rows)
        v_rows = v_rows + (tf.square(grad) - v_rows) * (1 - self.beta_2)
        m.scatter_update(tf.IndexedSlices(m_rows, rows))
        v.scatter_update(tf.IndexedSlices(v_rows, rows))
        variable.scatter_sub(tf.IndexedSlices((m_rows * alpha) / (tf.sqrt(v_rows) + epsilon),
                                              rows))
