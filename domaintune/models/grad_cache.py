"""GradCache: the gradient of a whole batch's loss with the encoder's activations
held for one chunk of texts at a time.

Gao et al., 2021, "Scaling Deep Contrastive Learning Batch Size under Memory
Limited Setup". An in-batch loss couples every text of the batch, so a plain
step keeps the encoder's activations of all of them for the backward pass.
GradCache splits the step in three:

1. embed the texts chunk by chunk without a tape (no activations kept);
2. compute the loss on those embeddings and its gradient with respect to
   them (cheap: the loss is a few matrix products);
3. re-run each chunk under a tape and back-propagate the cached embedding
   gradients (``tape.gradient(..., output_gradients=...)``), summing the
   variables' gradients over the chunks.

By the chain rule the sum equals the plain step's gradient, for one more
forward pass. Sparse gradients (an embedding table's ``IndexedSlices``) stay
sparse: the chunks' slices are concatenated, so lazy Adam still updates only
the touched rows (it merges duplicate rows itself).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from domaintune import tf_runtime

tf = tf_runtime.load().tf

Encode = Callable[[Any], Any]  # strings [n] -> embeddings [n, d]
LossOf = Callable[[Any], tuple[Any, Any]]  # embeddings -> (loss, anything else)


def grad_cache_gradients(
    encode: Encode, loss_of: LossOf, texts, variables: Sequence[Any], chunk: int
) -> tuple[Any, Any, list[Any]]:
    """``(loss, aux, gradients)`` of ``loss_of(encode(texts))`` over ``variables``,
    encoding at most ``chunk`` texts per pass; ``aux`` is ``loss_of``'s second
    output (computed on the embeddings, not differentiated). Works eagerly and
    in a ``tf.function`` (the number of chunks may be dynamic)."""
    n = tf.shape(texts)[0]
    n_chunks = (n + chunk - 1) // chunk

    def piece(i):
        return texts[i * chunk : (i + 1) * chunk]

    # 1. Embeddings without a tape: no activations kept.
    first = tf.stop_gradient(encode(piece(0)))
    parts = tf.TensorArray(
        first.dtype, size=n_chunks, infer_shape=False, element_shape=[None, first.shape[-1]]
    ).write(0, first)
    _, parts = tf.while_loop(
        lambda i, _: i < n_chunks,
        lambda i, ta: (i + 1, ta.write(i, tf.stop_gradient(encode(piece(i))))),
        (tf.constant(1), parts),
        parallel_iterations=1,  # one chunk's activations at a time
    )
    embeddings = parts.concat()

    # 2. The loss and its gradient with respect to the embeddings.
    with tf.GradientTape() as tape:
        tape.watch(embeddings)
        loss, aux = loss_of(embeddings)
    cached = tape.gradient(loss, embeddings)

    # 3. Each chunk again, under a tape, back-propagating its cached gradient.
    def chunk_gradients(i) -> list[Any]:
        with tf.GradientTape() as chunk_tape:
            out = encode(piece(i))
        return chunk_tape.gradient(
            out, variables, output_gradients=cached[i * chunk : (i + 1) * chunk]
        )

    # Chunk 0 outside the loop shows each gradient's kind (dense, sparse or
    # None), which the loop's state must declare up front.
    sums = _Sums(chunk_gradients(0), n_chunks)
    _, state = tf.while_loop(
        lambda i, _: i < n_chunks,
        lambda i, s: (i + 1, sums.add(s, i, chunk_gradients(i))),
        (tf.constant(1), sums.state),
        parallel_iterations=1,
    )
    return loss, aux, sums.result(state)


class _Sums:
    """Running sums of per-chunk gradients as ``tf.while_loop`` state: dense
    gradients are added, sparse ones' slices gathered in TensorArrays."""

    def __init__(self, first: list[Any], n_chunks):
        self.kinds = [
            None if g is None else "sparse" if isinstance(g, tf.IndexedSlices) else "dense"
            for g in first
        ]
        self.dense_shapes = [
            g.dense_shape if k == "sparse" else None for g, k in zip(first, self.kinds)
        ]
        state = []
        for g, kind in zip(first, self.kinds):
            if kind == "dense":
                state.append(g)
            elif kind == "sparse":
                values = _slices_array(g.values, n_chunks).write(0, g.values)
                indices = _slices_array(g.indices, n_chunks).write(0, g.indices)
                state.append((values, indices))
        self.state = tuple(state)

    def add(self, state: tuple, i, gradients: list[Any]) -> tuple:
        out, it = [], iter(state)
        for g, kind in zip(gradients, self.kinds):
            if kind == "dense":
                out.append(next(it) + tf.convert_to_tensor(g))
            elif kind == "sparse":
                values, indices = next(it)
                out.append((values.write(i, g.values), indices.write(i, g.indices)))
        return tuple(out)

    def result(self, state: tuple) -> list[Any]:
        out, it = [], iter(state)
        for kind, dense_shape in zip(self.kinds, self.dense_shapes):
            if kind is None:
                out.append(None)
            elif kind == "dense":
                out.append(next(it))
            else:
                values, indices = next(it)
                out.append(tf.IndexedSlices(values.concat(), indices.concat(), dense_shape))
        return out


def _slices_array(first, n_chunks):
    return tf.TensorArray(
        first.dtype,
        size=n_chunks,
        infer_shape=False,
        element_shape=tf.TensorShape([None]).concatenate(first.shape[1:]),
    )
