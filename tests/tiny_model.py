"""A tiny text-embedding SavedModel in the TF-Hub reusable format, for tests.

Hashes whole words into a small trainable table and mean-pools, so it builds
and trains in milliseconds yet goes through the same hub.KerasLayer path as
USE-m3.
"""

from __future__ import annotations

from pathlib import Path

from domaintune import tf_runtime


def build_tiny_saved_model(
    out_dir: Path, buckets: int = 512, dim: int = 16, seed: int = 0, lowercase: bool = True
) -> Path:
    """``lowercase=False`` makes it case-sensitive, as USE-m3 is."""
    tf = tf_runtime.load().tf

    class Tiny(tf.Module):
        def __init__(self):
            super().__init__()
            init = tf.random.stateless_normal([buckets, dim], seed=[seed, 1])
            self.table = tf.Variable(init, name="table")
            self.dense = tf.Variable(tf.eye(dim), name="dense")

        @tf.function(input_signature=[tf.TensorSpec([None], tf.string)])
        def __call__(self, texts):
            words = tf.strings.split(tf.strings.lower(texts) if lowercase else texts)
            ids = tf.strings.to_hash_bucket_fast(words, buckets)
            vectors = tf.gather(self.table, ids)
            pooled = tf.reduce_mean(vectors, axis=1) + 1e-3
            pooled = tf.where(tf.math.is_finite(pooled), pooled, 1e-3)
            return tf.math.l2_normalize(tf.matmul(pooled, self.dense), axis=1)

    module = Tiny()
    root = tf.train.Checkpoint()
    root.model = module
    root.variables = [module.table, module.dense]
    root.trainable_variables = [module.table, module.dense]
    root.regularization_losses = []
    root.__call__ = module.__call__
    tf.saved_model.save(root, str(out_dir))
    return Path(out_dir)
