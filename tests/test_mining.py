"""Hard negatives mined by the model: never a positive of their query (a property
over many generated taxonomies, with and without a ``concept`` column), mined
again before each epoch with the current weights, and batched without repeats."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass

import keras_tuner as kt
import numpy as np
import pytest

import domaintune as dt
from domaintune import tf_runtime
from domaintune.data.pairs import PairSet, load_pairs, sample_path
from domaintune.models.losses import AngularMSE, InBatchNegatives
from domaintune.models.mining import mine_hard_negatives
from domaintune.models.siamese import build_model, pair_dataset
from domaintune.models.trainable_encoder import TrainableEncoder
from domaintune.reporting.results import load_trials
from domaintune.search.space import SearchSpace
from domaintune.search.trial_batches import MinedNegatives, trial_batches

from .tensorboard_events import read_scalars

tf = tf_runtime.load().tf


@dataclass
class Taxonomy:
    """Generated pairs (PairSet's attributes) and the truth they come from."""

    texts_a: list[str]
    texts_b: list[str]
    scores: np.ndarray
    concepts: list[str] | None
    members: dict[str, set[str]]  # concept -> its texts' keys
    vectors: dict[str, np.ndarray]  # text key -> embedding

    def __len__(self) -> int:
        return len(self.texts_a)

    def embed(self, texts: list[str]) -> np.ndarray:
        return np.stack([self.vectors[_key(t)] for t in texts])


def _key(text: str) -> str:
    return text.strip().casefold()


def _taxonomy(rng: np.random.Generator, with_concepts: bool, blank: float = 0.0) -> Taxonomy:
    """Concepts of 1-5 labels (some shared by two concepts, some case variants),
    same-concept pairs at 1.0, cross-concept pairs at 0.75 / 0.5. Same-concept
    texts embed close together, so a careless miner would pick positives."""
    n = int(rng.integers(2, 10))
    labels = {c: [f"c{c} label {j}" for j in range(int(rng.integers(1, 6)))] for c in range(n)}
    for c in range(n):
        if rng.random() < 0.3:  # an ambiguous label: also a label of another concept
            labels[c].append(labels[int(rng.integers(0, n))][-1])
        if rng.random() < 0.3:  # a case variant, a text of its own in the file
            labels[c].append(labels[c][0].upper())
    centre = {c: rng.normal(size=8) for c in range(n)}
    vectors: dict[str, np.ndarray] = {}
    members: dict[str, set[str]] = {}
    rows: list[tuple[str, str, float, str]] = []
    for c, texts in labels.items():
        members[f"C{c}"] = {_key(t) for t in texts}
        for text in texts:
            vectors.setdefault(_key(text), centre[c] + rng.normal(scale=0.6, size=8))
        others = [t for t in texts[1:] if _key(t) != _key(texts[0])] or texts[:1]
        for text in others:  # alternative -> preferred, sometimes the other way round
            pair = (text, texts[0]) if rng.random() < 0.8 else (texts[0], text)
            rows.append((*pair, 1.0, f"C{c}"))
        if len(texts) > 2 and rng.random() < 0.5:
            rows.append((texts[1], texts[2], 1.0, f"C{c}"))
    for _ in range(int(rng.integers(0, 2 * n))):  # graded cross-concept pairs
        c, d = rng.choice(n, 2)
        if c != d:
            rows.append((labels[c][0], labels[d][-1], float(rng.choice([0.75, 0.5])), ""))
    concepts = [concept if concept and rng.random() >= blank else "" for *_, concept in rows]
    return Taxonomy(
        [r[0] for r in rows],
        [r[1] for r in rows],
        np.asarray([r[2] for r in rows], np.float32),
        concepts if with_concepts else None,
        members,
        vectors,
    )


def _component_of(tax: Taxonomy, query: str) -> set[str]:
    """Texts reachable from ``query`` over pairs scored 1.0 (breadth first)."""
    edges: dict[str, set[str]] = {}
    for a, b, s in zip(tax.texts_a, tax.texts_b, tax.scores):
        if s >= 0.99:
            edges.setdefault(_key(a), set()).add(_key(b))
            edges.setdefault(_key(b), set()).add(_key(a))
    seen, todo = {query}, [query]
    while todo:
        for other in edges.get(todo.pop(), ()):
            if other not in seen:
                seen.add(other)
                todo.append(other)
    return seen


def _positives(tax: Taxonomy, query: str, exact: bool) -> set[str]:
    """The texts that must never be a negative of ``query``: with a concept
    column every text of its concepts, else its component of the positives
    graph; and in any file every text it is paired with at 1.0."""
    found = {query}
    for a, b, s in zip(tax.texts_a, tax.texts_b, tax.scores):
        if s >= 0.99 and query in (_key(a), _key(b)):
            found |= {_key(a), _key(b)}
    if exact:
        for texts in tax.members.values():
            if query in texts:
                found |= texts
    else:
        found |= _component_of(tax, query)
    return found


def _brute_force(tax: Taxonomy, query: str, k: int, skip: int, exact: bool) -> list[str]:
    targets: dict[str, str] = {}
    for b, s in zip(tax.texts_b, tax.scores):
        if s >= 0.99:
            targets.setdefault(_key(b), b)
    excluded = _positives(tax, query, exact)
    allowed = [t for key, t in targets.items() if key not in excluded]
    q = tax.vectors[query] / np.linalg.norm(tax.vectors[query])
    sims = [float(q @ tax.vectors[_key(t)]) / np.linalg.norm(tax.vectors[_key(t)]) for t in allowed]
    ranked = [allowed[i] for i in np.argsort(sims, kind="stable")[::-1]]
    return (ranked[skip : skip + k] + [""] * k)[:k]


@pytest.mark.parametrize("with_concepts", [True, False])
def test_mined_negatives_are_never_positives_of_their_query(with_concepts):
    rng = np.random.default_rng(12)
    mined_any = 0
    for _ in range(300):
        tax = _taxonomy(rng, with_concepts)
        k, skip = int(rng.integers(1, 4)), int(rng.integers(0, 2))
        columns = mine_hard_negatives(tax, tax.embed, k=k, skip=skip, positive_threshold=0.99)
        assert len(columns) == k and all(len(c) == len(tax) for c in columns)
        for i, (query, score) in enumerate(zip(tax.texts_a, tax.scores)):
            negatives = [c[i] for c in columns]
            if score < 0.99:
                assert negatives == [""] * k  # only positive pairs get negatives
                continue
            forbidden = _positives(tax, _key(query), exact=with_concepts)
            assert not {_key(n) for n in negatives if n} & forbidden, (query, negatives)
            # ...and they are the most similar allowed targets, after `skip`.
            assert negatives == _brute_force(tax, _key(query), k, skip, with_concepts)
            mined_any += sum(map(bool, negatives))
    assert mined_any > 500  # the property did not hold vacuously


def test_pairs_without_a_concept_fall_back_to_the_positives_graph():
    rng = np.random.default_rng(5)
    mined_any = 0
    for _ in range(300):
        tax = _taxonomy(rng, with_concepts=True, blank=0.3)
        columns = mine_hard_negatives(tax, tax.embed, k=3, positive_threshold=0.99)
        for i, (query, score) in enumerate(zip(tax.texts_a, tax.scores)):
            if score < 0.99:
                continue
            # Each generated concept's pairs join its texts, so even with some
            # concepts left out the file still tells every text of it.
            forbidden = _positives(tax, _key(query), exact=True)
            assert not {_key(c[i]) for c in columns if c[i]} & forbidden, (i, query)
            mined_any += sum(bool(c[i]) for c in columns)
    assert mined_any > 500


class _Columns:
    """Fixed columns offered as mined ones (pair_dataset's MinedColumns)."""

    def __init__(self, columns: list[list[str]]):
        self.k, self.columns = len(columns), columns

    def take(self) -> list[list[str]]:
        return [list(c) for c in self.columns]


def test_mined_columns_are_batched_without_repeating_a_text():
    pairs, _ = load_pairs(sample_path())
    positive = np.asarray(pairs.scores) >= 0.99
    refs = [b for b, p in zip(pairs.texts_b, positive) if p]
    rng = np.random.default_rng(0)
    # Popular negatives (8 texts for all pairs), as mining often finds.
    columns = [[str(rng.choice(refs[:8])) if p else "" for p in positive] for _ in range(2)]
    dataset = pair_dataset(
        pairs, 32, shuffle=True, unique_texts=True, positives_only=0.99, mined=_Columns(columns)
    )
    rows = kept = 0
    for inputs, _ in dataset:
        assert len(inputs) == 4  # base, ref, two mined columns
        texts = [t.decode().lower() for c in inputs for t in c.numpy() if t]
        assert len(texts) == len(set(texts)), texts
        rows += len(inputs[0])
        kept += sum(int(bool(t)) for c in inputs[2:] for t in c.numpy())
    assert rows == int(positive.sum())  # every positive pair once
    assert rows > 4 * 32  # popular negatives did not split the data into tiny batches
    assert 0 < kept < 2 * rows  # clashing ones were left out, the others kept
    # hard_negatives=none: the file's column is not fed either.
    plain = pair_dataset(pairs, 32, shuffle=False, unique_texts=True, taxonomy=False)
    assert all(len(inputs) == 2 for inputs, _ in plain)


class _Recording(MinedNegatives):
    """MinedNegatives that keeps what each epoch's batches took."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.taken: list[list[list[str]]] = []

    def take(self) -> list[list[str]]:
        self.taken.append(super().take())
        return self.taken[-1]


def test_mining_runs_before_each_epoch_with_the_current_weights(tiny_model_dir):
    pairs, _ = load_pairs(sample_path())
    encoder = TrainableEncoder(tiny_model_dir)
    overrides = {"loss": "in_batch_negatives", "learning_rate": 0.5, "clipnorm": 10.0}
    overrides.update({"batch_size": 64, "hard_negatives": "mined", "mined_k": 2})
    space = SearchSpace().with_overrides({k: [v] for k, v in overrides.items()})
    values = space.declare(kt.HyperParameters())
    model = build_model(values, encoder.keras_layer(trainable=True))
    # The tuner's wiring: mined negatives come with their fit callback.
    _, _, (miner,) = trial_batches(
        model.pair_loss, values, pairs, pairs, seed=0, encode=encoder.encode_fn
    )
    assert isinstance(miner, MinedNegatives) and miner.k == 2

    recorder = _Recording(pairs, encoder.encode_fn, k=2, skip=0, positive_threshold=0.99)
    train = pair_dataset(
        pairs, 64, shuffle=True, unique_texts=True, positives_only=0.99, mined=recorder
    )
    expected = []

    class Expect(tf_runtime.load().tf_keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):  # what the weights now give
            expected.append(_mine(pairs, encoder))

    before = _mine(pairs, encoder)
    model.fit(train, epochs=3, verbose=0, callbacks=[Expect(), recorder])
    assert len(recorder.taken) == 3
    assert recorder.taken == expected  # each epoch trained on what its start mined
    assert expected[0] == before  # the first: the base weights
    assert expected[1] != expected[0] and expected[2] != expected[1]  # training moved them
    with pytest.raises(RuntimeError, match="not mined"):
        recorder.take()  # never a stale reuse


def _mine(pairs, encoder: TrainableEncoder) -> list[list[str]]:
    return mine_hard_negatives(pairs, encoder.encode_fn(), k=2, positive_threshold=0.99)


def test_search_with_mined_negatives_completes(tmp_path, tiny_model_dir):
    result = dt.search(
        train=dt.sample_pairs(),
        base=tiny_model_dir,
        sts="none",
        max_trials=1,
        epochs=2,
        seed=1,
        hp={
            "loss": "in_batch_negatives_symmetric",
            "hard_negatives": "mined",
            "mined_k": 2,
            "mined_skip": 1,
            "batch_size": 64,
            "learning_rate": 0.05,
        },
        project_dir=tmp_path / "p",
    )
    (trial,) = result.trials
    assert trial.status == "COMPLETED", trial.message
    assert trial.hyperparameters["hard_negatives"] == "mined"


def test_mined_negatives_and_grad_cache_under_a_mirrored_strategy(tmp_path, tiny_model_dir):
    """fit calls the miner inside MirroredStrategy's scope; GradCache runs per replica."""
    project = tmp_path / "p"
    proc = subprocess.run(
        [sys.executable, "-m", "domaintune.cli", "search", "--base", str(tiny_model_dir)]
        + ["--sts", "none", "--project-dir", str(project), "--max-trials", "1"]
        + ["--epochs", "2", "--strategy", "mirrored", "--hp", "batch_size=256"]
        + ["--hp", "learning_rate=0.05", "--hp", "loss=in_batch_negatives"]
        + ["--hp", "hard_negatives=mined", "--hp", "grad_cache_chunk=16"],
        capture_output=True,
        text=True,
        env={**os.environ, "DOMAINTUNE_LOGICAL_CPUS": "2"},
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    (trial,) = load_trials(project)
    assert trial["status"] == "COMPLETED", trial
    losses = [v for _, v in read_scalars(project / "logs" / f"trial-{trial['trial_id']}")["loss"]]
    assert len(losses) == 2 and losses[-1] < losses[0]


@pytest.mark.parametrize("mode, columns", [("taxonomy", 3), ("none", 2), ("mined", 4)])
def test_hard_negatives_mode_shapes_the_training_batches_only(tiny_model_dir, mode, columns):
    found, _ = load_pairs(sample_path())
    hard = [f"sibling of {b}" if s >= 0.99 else "" for b, s in zip(found.texts_b, found.scores)]
    pairs = PairSet(found.texts_a, found.texts_b, found.scores, "sample", hard)
    values = {"batch_size": 64, "positive_threshold": 0.99, "hard_negatives": mode, "mined_k": 2}
    encoder = TrainableEncoder(tiny_model_dir)
    train, val, callbacks = trial_batches(
        InBatchNegatives(), values, pairs, pairs, seed=0, encode=encoder.encode_fn
    )
    for callback in callbacks:
        callback.on_epoch_begin(0)
    assert {len(inputs) for inputs, _ in train} == {columns}
    assert {len(inputs) for inputs, _ in val} == {3}  # validation keeps the file's column
    # A loss that is not in-batch takes no hard negatives, mined or not.
    train, _, callbacks = trial_batches(
        AngularMSE(), values, pairs, pairs, seed=0, encode=encoder.encode_fn
    )
    assert not any(isinstance(c, MinedNegatives) for c in callbacks)
    assert {len(inputs) for inputs, _ in train} == {2}
