"""``--pairs-per-epoch N``: each epoch trains on a seeded sample of N pairs, a
different one each epoch, every pair seen once before any is seen twice; an
epoch's sample is a function of the epoch (Hyperband children and resumed
trials get the right one); mined negatives are mined for the sample only."""

from __future__ import annotations

import re
from collections import Counter

import keras_tuner as kt
import numpy as np
import pytest
from click.testing import CliRunner

import domaintune as dt
from domaintune.cli import main
from domaintune.data.pair_arrays import MEMO_SIZE, pair_arrays
from domaintune.data.pair_set import PairSet
from domaintune.models.losses import InBatchNegatives
from domaintune.models.mining import mine_hard_negatives
from domaintune.models.siamese import pair_dataset
from domaintune.models.trainable_encoder import TrainableEncoder
from domaintune.reporting.results import load_trials
from domaintune.search.space import SearchSpace
from domaintune.search.trial_batches import MinedNegatives, trial_batches

from .chained_taxonomy import chained_taxonomy, write_csv


def _pairs(n: int = 50) -> PairSet:
    scores = np.where(np.arange(n) % 3 == 0, 0.5, 1.0)
    return PairSet([f"a{i}" for i in range(n)], [f"b{i}" for i in range(n)], scores, "t")


def _epoch(dataset) -> list[tuple[str, str]]:
    """One pass (= one epoch) over the dataset: its pairs in order."""
    return [
        (a.decode(), b.decode())
        for (texts_a, texts_b, *_), _ in dataset
        for a, b in zip(texts_a.numpy(), texts_b.numpy())
    ]


@pytest.mark.parametrize("n, budget, batch", [(50, 16, 8), (50, 7, 4), (31, 30, 8), (12, 5, 5)])
def test_epochs_take_different_samples_and_cover_every_pair_before_repeating(
    n: int, budget: int, batch: int
) -> None:
    data = pair_dataset(_pairs(n), batch, shuffle=True, seed=3, pairs_per_epoch=budget)
    seen: Counter = Counter()
    epochs = [_epoch(data) for _ in range(3 * n // budget + 2)]  # over 3 passes of the data
    for pairs in epochs:
        assert len(pairs) == budget == len(set(pairs))  # N distinct pairs
        seen.update(pairs)
        # Every pair once before any twice: counts never differ by more than 1.
        assert max(seen.values()) - min(seen[p] for p in _epoch_keys(n)) <= 1
    assert len({frozenset(pairs) for pairs in epochs}) > len(epochs) // 2  # epochs differ
    assert all(set(x) != set(y) for x, y in zip(epochs, epochs[1:]))


def _epoch_keys(n: int) -> list[tuple[str, str]]:
    return [(f"a{i}", f"b{i}") for i in range(n)]


def test_an_epochs_pairs_depend_on_the_epoch_and_the_seeds_only() -> None:
    pairs = _pairs()
    counted = pair_dataset(pairs, 8, shuffle=True, seed=3, sample_seed=9, pairs_per_epoch=16)
    passes = [_epoch(counted) for _ in range(5)]
    for epoch in (4, 0, 2):  # told the epoch, in any order: the same pairs, same order
        told = pair_dataset(
            pairs,
            8,
            shuffle=True,
            seed=3,
            sample_seed=9,
            pairs_per_epoch=16,
            epoch=lambda e=epoch: e,
        )
        assert _epoch(told) == passes[epoch]
    # `seed` (the trial's) orders an epoch; `sample_seed` (the search's) picks it.
    reordered = pair_dataset(pairs, 8, shuffle=True, seed=4, sample_seed=9, pairs_per_epoch=16)
    first = _epoch(reordered)
    assert set(first) == set(passes[0]) and first != passes[0]
    other = pair_dataset(pairs, 8, shuffle=True, seed=3, sample_seed=10, pairs_per_epoch=16)
    assert set(_epoch(other)) != set(passes[0])
    # No budget, or one as large as the data: every pair every epoch.
    for budget in (0, 50, 500):
        full = pair_dataset(pairs, 8, shuffle=True, seed=3, pairs_per_epoch=budget)
        assert sorted(_epoch(full)) == sorted(_epoch_keys(50))


def test_budget_counts_the_pairs_a_positives_only_in_batch_loss_trains_on() -> None:
    pairs = chained_taxonomy(concepts=30, seed=2)
    positives = {(a, b) for a, b, s in zip(pairs.texts_a, pairs.texts_b, pairs.scores) if s >= 0.99}
    data = pair_dataset(
        pairs, 16, shuffle=True, unique_texts=True, positives_only=0.99, pairs_per_epoch=40
    )
    seen: Counter = Counter()
    for _ in range(8):
        batches = list(data)  # one pass: one epoch
        for texts, _ in batches:  # in-batch: no text twice in a batch
            keys = [t.decode().casefold() for column in texts for t in column.numpy()]
            assert len(keys) == len(set(keys))
        epoch = [
            (a.decode(), b.decode())
            for (ta, tb), _ in batches
            for a, b in zip(ta.numpy(), tb.numpy())
        ]
        assert len(epoch) == 40 and set(epoch) <= positives
        seen.update(epoch)
    assert max(seen.values()) - min(seen[p] for p in positives) <= 1


def test_budgeted_mining_keeps_the_whole_sets_concepts() -> None:
    """The sample holds A-B and X-C but not B-C, which makes A, B, C, X one
    concept: C must never be A's negative, however close the encoder puts it."""
    pairs = PairSet(["A", "B", "X", "E"], ["B", "C", "C", "F"], np.ones(4), "chain")
    vectors = {"A": [1, 0], "B": [0.5, 0.5], "C": [0.99, 0.1], "X": [0.9, 0.2], "E": [0.1, 1]}
    vectors["F"] = [0, 1]

    def embed(batch: list[str]) -> np.ndarray:
        return np.array([vectors[t] for t in batch], np.float32)

    (mined,) = mine_hard_negatives(pairs, embed, k=1, positive_threshold=0.99, rows=[0, 2, 3])
    assert mined[0] == "F"  # not C: one concept with A through B-C, outside the sample
    assert mined[1] == ""  # not in the sample: not mined
    (everything,) = mine_hard_negatives(pairs, embed, k=1, positive_threshold=0.99)
    assert everything[1] == "F"  # (without rows every positive pair is mined)


def test_a_trials_mined_negatives_follow_its_epoch_sample(tiny_model_dir) -> None:
    pairs = chained_taxonomy(concepts=30, seed=4)
    encoder = TrainableEncoder(tiny_model_dir)
    overrides = {"batch_size": 16, "positive_threshold": 0.99, "hard_negatives": "mined"}
    values = SearchSpace().with_overrides({k: [v] for k, v in overrides.items()})
    values = values.declare(kt.HyperParameters())
    train, _, (miner,) = trial_batches(
        InBatchNegatives(),
        values,
        pairs,
        pairs,
        seed=0,
        encode=encoder.encode_fn,
        pairs_per_epoch=25,
        sample_seed=7,
    )
    assert isinstance(miner, MinedNegatives)
    row = {(a, b): i for i, (a, b) in enumerate(zip(pairs.texts_a, pairs.texts_b))}
    for epoch in (0, 3):
        miner.on_epoch_begin(epoch)  # as fit does: mines this epoch's sample
        mined_rows = {i for i, text in enumerate(miner._columns[0]) if text}
        trained = _epoch(train)
        assert len(trained) == 25
        assert mined_rows and mined_rows <= {row[p] for p in trained}
        told = pair_dataset(
            pairs,
            16,
            shuffle=True,
            unique_texts=True,
            positives_only=0.99,
            pairs_per_epoch=25,
            sample_seed=7,
            epoch=lambda e=epoch: e,
        )
        assert sorted(_epoch(told)) == sorted(trained)  # the clock told the batches the epoch


def test_search_with_a_pairs_budget_runs_and_trains_on_less(tmp_path, tiny_model_dir) -> None:
    train = write_csv(chained_taxonomy(concepts=40, seed=5), tmp_path / "taxonomy.csv")
    args = ["search", "--base", str(tiny_model_dir), "--sts", "none", "--train", str(train)]
    args += ["--max-trials", "1", "--epochs", "2", "--seed", "3", "--tuner", "hyperband"]
    args += ["--hp", "loss=in_batch_negatives", "--hp", "batch_size=8"]
    args += ["--hp", "learning_rate=0.05"]
    outputs, trials = {}, {}
    for budget in ("30", "0"):
        project = tmp_path / budget
        result = CliRunner().invoke(
            main, [*args, "--project-dir", str(project), "--pairs-per-epoch", budget]
        )
        assert result.exit_code == 0, result.output + repr(result.exception)
        outputs[budget] = result.output
        trials[budget] = load_trials(project)
        assert {t["status"] for t in trials[budget]} == {"COMPLETED"}
    assert re.search(r"Pairs budget: each epoch trains on a seeded sample of 30 ", outputs["30"])
    assert "Pairs budget" not in outputs["0"]
    budgeted = [t["val_mse"] for t in trials["30"]]
    full = [t["val_mse"] for t in trials["0"]]
    assert budgeted != full  # the budget changed what trained


def test_a_negative_budget_or_cap_is_one_clear_error(tmp_path, tiny_model_dir) -> None:
    for option in ("pairs_per_epoch", "val_max_pairs"):
        with pytest.raises(dt.UserError, match=f"--{option.replace('_', '-')} -1"):
            dt.search(base=tiny_model_dir, sts="none", project_dir=tmp_path / "p", **{option: -1})
    assert not (tmp_path / "p").exists()


def test_a_pair_sets_arrays_are_built_once_and_stay_bounded() -> None:
    pairs = _pairs()
    arrays = pair_arrays(pairs)
    assert pair_arrays(pairs) is arrays  # once per pair set: every trial reuses them
    assert pair_arrays(_pairs()) is not arrays
    # Per-threshold values (a searched positive_threshold: a new one per trial)
    # are kept for the last few only: memory does not grow with the trials.
    for i in range(3 * MEMO_SIZE):
        assert arrays.memo(("value", i), lambda i=i: i) == i
    assert arrays.memo(("value", 3 * MEMO_SIZE - 1), lambda: "rebuilt") == 3 * MEMO_SIZE - 1
    assert arrays.memo(("value", 0), lambda: "rebuilt") == "rebuilt"
