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
    """tf_keras Adam whose sparse gradients update only the rows they touch.

    It also flags the rows it writes (:meth:`updated_rows`), so that a search
    can undo a trial by rewriting those rows rather than whole tables; the
    flags are optimizer variables, zeroed with the moments.
    """

    def build(self, var_list):
        super().build(var_list)
        if getattr(self, "_row_flags", None) is not None:
            return
        # One flag per row (first axis): 1 once a lazy update wrote the row.
        self._row_flags = {
            self._var_key(v): self.add_variable_from_reference(
                v, "updated_rows", shape=[v.shape[0]]
            )
            for v in var_list
            if v.shape.rank
        }
        # Filled while tracing update_step: which variables get sparse updates,
        # and which dense ones (those may have changed anywhere).
        self._lazy_keys: set[str] = set()
        self._dense_keys: set[str] = set()

    def updated_rows(self, variable):
        """Row ids of ``variable`` written so far, or None if any part of it
        may have changed (a dense update, or not seen by this optimizer)."""
        key = self._var_key(variable)
        if key not in getattr(self, "_lazy_keys", ()) or key in self._dense_keys:
            return None
        return self._flagged_rows(key)

    def written_slot_rows(self) -> dict[int, object]:
        """``{id(moment variable): rows written}`` for the lazily updated tables."""
        found = {}
        for key in getattr(self, "_lazy_keys", set()) - getattr(self, "_dense_keys", set()):
            rows = self._flagged_rows(key)
            index = self._index_dict[key]
            found[id(self._momentums[index])] = found[id(self._velocities[index])] = rows
        return found

    def _flagged_rows(self, key: str):
        return tf.reshape(tf.where(self._row_flags[key] > 0), [-1])

    def apply_gradients(self, grads_and_vars, *args, **kwargs):
        merged = [(_merge_duplicate_rows(g), v) for g, v in grads_and_vars]
        return super().apply_gradients(merged, *args, **kwargs)

    def update_step(self, gradient, variable):
        if not isinstance(gradient, tf.IndexedSlices) or self.amsgrad or not variable.shape.rank:
            self._dense_keys.add(self._var_key(variable))
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
        epsilon = (
            self.epsilon * tf.sqrt(1 - beta_2_power) if self.adaptive_epsilon else self.epsilon
        )

        self._lazy_keys.add(self._var_key(variable))
        self._row_flags[self._var_key(variable)].scatter_update(
            tf.IndexedSlices(tf.ones(tf.shape(rows), dtype), rows)
        )
        key = self._index_dict[self._var_key(variable)]
        m, v = self._momentums[key], self._velocities[key]
        # Same arithmetic, in the same order, as the dense branch of Adam.
        m_rows = tf.gather(m, rows)
        m_rows = m_rows + (grad - m_rows) * (1 - self.beta_1)
        v_rows = tf.gather(v, rows)
        v_rows = v_rows + (tf.square(grad) - v_rows) * (1 - self.beta_2)
        m.scatter_update(tf.IndexedSlices(m_rows, rows))
        v.scatter_update(tf.IndexedSlices(v_rows, rows))
        variable.scatter_sub(tf.IndexedSlices((m_rows * alpha) / (tf.sqrt(v_rows) + epsilon), rows))


class _AssignableClipNorm:
    """Clipping by a norm held in a ``tf.Variable``, and a state reset.

    tf_keras bakes ``clipnorm`` into the traced train step as a constant, so a
    trial with another clipnorm would retrace it (~5 s for USE-m3). As a
    variable it is assigned, like the learning rate, and one traced step
    serves every trial that differs only in these values.
    """

    def __init__(self, *, clipnorm: float, global_clip: bool = False, **kwargs):
        super().__init__(**kwargs)
        with tf.init_scope():
            self.clip_norm = tf.Variable(
                float(clipnorm), trainable=False, dtype=tf.float32, name="clip_norm"
            )
        self.global_clip = global_clip

    def _clip_gradients(self, grads):
        if self.global_clip:  # one norm over all gradients (global_clipnorm)
            return tf.clip_by_global_norm(grads, self.clip_norm)[0]
        # Per variable, as tf_keras clipnorm.
        return [g if g is None else tf.clip_by_norm(g, self.clip_norm) for g in grads]

    def start_over(self, learning_rate: float, clipnorm: float) -> None:
        """New settings and zeroed moments: as a freshly built optimizer.

        Moments of lazily updated tables are zeroed on their written rows
        only: the rest are still zero, and rewriting both slots of USE-m3's
        whole table would cost time and make every page of them resident.
        """
        self.learning_rate = float(learning_rate)
        self.clip_norm.assign(float(clipnorm))
        self.iterations.assign(0)
        touched = self.written_slot_rows()
        settings = {id(self.iterations), id(self.clip_norm), id(self._learning_rate)}
        for variable in self.variables:
            if id(variable) in settings:
                continue
            rows = touched.get(id(variable))
            if rows is None:
                variable.assign(tf.zeros(variable.shape, variable.dtype))
            else:
                zeros = tf.zeros(tf.concat([tf.shape(rows), variable.shape[1:]], 0), variable.dtype)
                variable.scatter_update(tf.IndexedSlices(zeros, rows))


class TrialAdam(_AssignableClipNorm, _rt.tf_keras.optimizers.Adam):
    """tf_keras Adam with assignable clipping (``sparse_updates=false``)."""

    def updated_rows(self, variable) -> None:
        return None  # dense updates: any row may have changed

    def written_slot_rows(self) -> dict[int, object]:
        return {}


class TrialLazyAdam(_AssignableClipNorm, LazyAdam):
    """:class:`LazyAdam` with assignable clipping (the default)."""


def make_optimizer(values) -> TrialAdam | TrialLazyAdam:
    """Adam from a trial's values: per-variable or global clipping, lazy or dense."""
    adam = TrialLazyAdam if values.get("sparse_updates", True) else TrialAdam
    return adam(
        learning_rate=float(values["learning_rate"]),
        clipnorm=float(values["clipnorm"]),
        global_clip=values.get("clipnorm_scope") == "global",
    )
