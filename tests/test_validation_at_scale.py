"""Validation at scale: a file whose pairs chain into one group of shared texts
still splits (by concept, else by texts) with no text on both sides, and
validation is sampled to a bounded, seeded size that keeps the retrieval task
consistent."""

from __future__ import annotations

import re

import numpy as np
import pytest
from click.testing import CliRunner

from domaintune.cli import main
from domaintune.data.pair_set import PairSet
from domaintune.data.retrieval_sets import retrieval_from_pairs
from domaintune.data.split import cap_validation, split_validation
from domaintune.reporting.results import load_trials

from .chained_taxonomy import chained_taxonomy, write_csv


def _keys(pairs: PairSet) -> set[str]:
    return {t.strip().casefold() for t in pairs.texts_a + pairs.texts_b}


def _concepts(pairs: PairSet) -> set[str]:
    return {c for c in pairs.concepts if c}


@pytest.mark.parametrize("seed", range(6))
def test_one_giant_group_splits_by_whole_concepts(seed: int) -> None:
    pairs = chained_taxonomy(concepts=30 + 5 * seed, seed=seed)
    split = split_validation(pairs, 0.2, seed)
    assert split.strategy == "concept" and split.largest_group == len(pairs)  # one group
    train, val = split.train, split.val
    assert not _keys(train) & _keys(val)  # no text on both sides, case-insensitively
    assert not _concepts(train) & _concepts(val)  # whole concepts on one side
    assert len(train) + len(val) + split.dropped == len(pairs) and split.dropped > 0
    assert 0.5 * 0.2 * len(pairs) <= len(val) <= 1.5 * 0.2 * len(pairs)
    assert "split by concept" in split.summary() and f"{split.dropped:,} pairs" in split.summary()
    again = split_validation(pairs, 0.2, seed)
    assert again.val.texts_a == val.texts_a and again.train.texts_b == train.texts_b
    other = split_validation(pairs, 0.2, seed + 100)
    assert other.val.texts_a != val.texts_a  # the seed picks the concepts


@pytest.mark.parametrize("seed", range(6))
def test_without_a_concept_column_it_splits_by_texts(seed: int) -> None:
    pairs = chained_taxonomy(concepts=30 + 5 * seed, seed=seed, with_concepts=False)
    split = split_validation(pairs, 0.25, seed)
    assert split.strategy == "texts" and split.largest_group == len(pairs)
    assert not _keys(split.train) & _keys(split.val)
    assert len(split.train) + len(split.val) + split.dropped == len(pairs)
    assert 0.5 * 0.25 * len(pairs) <= len(split.val) <= 1.5 * 0.25 * len(pairs)
    # Every pair kept on a side has both texts there; a dropped one links the sides.
    val_keys, train_keys = _keys(split.val), _keys(split.train)
    kept = {(x, y) for part in (split.train, split.val) for x, y in zip(part.texts_a, part.texts_b)}
    for x, y in zip(pairs.texts_a, pairs.texts_b):
        if (x, y) not in kept:
            sides = {k in val_keys for k in (x.strip().casefold(), y.strip().casefold())}
            assert not {x.strip().casefold(), y.strip().casefold()} <= train_keys
            assert sides != {True}  # both in validation would have been kept


def test_pairs_that_cannot_split_any_way_are_still_one_clear_error() -> None:
    from domaintune.errors import UserError

    hub = PairSet(["hub"] * 20, [f"t{i}" for i in range(20)], np.full(20, 0.75), "hub.csv")
    with pytest.raises(UserError, match=r"20 of 20 .*split by texts leaves .*--val PATH"):
        split_validation(hub, 0.2, 0)


def _retrieval_pool(concepts: int = 40) -> PairSet:
    return chained_taxonomy(concepts=concepts, seed=3)


@pytest.mark.parametrize("cap, seed", [(40, 0), (40, 1), (75, 2), (120, 3)])
def test_validation_is_capped_seeded_and_keeps_retrieval_consistent(cap: int, seed: int) -> None:
    pool = _retrieval_pool()
    capped = cap_validation(pool, cap, seed)
    assert len(capped) == cap < len(pool)
    assert cap_validation(pool, cap, seed).texts_b == capped.texts_b  # seeded
    assert cap_validation(pool, cap, seed + 1).texts_b != capped.texts_b
    rows = {(x, y, s) for x, y, s in zip(pool.texts_a, pool.texts_b, pool.scores.tolist())}
    assert {(x, y, s) for x, y, s in zip(capped.texts_a, capped.texts_b, capped.scores)} <= rows
    # No gold answer in the sample's corpus counts as wrong: every query of the
    # sample has as gold each corpus text it is a same-concept pair with.
    top = {(x, y) for x, y, s in zip(pool.texts_a, pool.texts_b, pool.scores) if s >= 0.99}
    task = retrieval_from_pairs(capped)
    queries, golds = task.gold()
    assert len(queries) >= 5
    for query, gold in zip(queries, golds):
        expected = {j for j, text in enumerate(task.corpus) if (query, text) in top}
        assert set(gold) == expected, query


def test_cap_of_zero_or_more_than_there_are_keeps_everything() -> None:
    pool = _retrieval_pool(10)
    assert cap_validation(pool, 0, 0) is pool
    assert cap_validation(pool, len(pool), 0) is pool


def test_search_on_one_giant_group_splits_by_concept_and_samples_validation(
    tmp_path, tiny_model_dir
) -> None:
    train = write_csv(chained_taxonomy(concepts=60, seed=1), tmp_path / "taxonomy.csv")
    project = tmp_path / "p"
    args = ["search", "--base", str(tiny_model_dir), "--sts", "none", "--train", str(train)]
    args += ["--project-dir", str(project), "--max-trials", "1", "--epochs", "1", "--seed", "2"]
    result = CliRunner().invoke(main, [*args, "--val-max-pairs", "40"])
    assert result.exit_code == 0, result.output + repr(result.exception)
    out = result.output
    assert "Validation split by concept" in out and "pairs linking a validation text" in out
    held_out = int(re.search(r"Validation: sampled 40 of (\d+) pairs", out)[1])
    assert held_out > 40 and "validation: 40 pairs" in out
    (trial,) = load_trials(project)
    assert trial["status"] == "COMPLETED"
    # Another cap samples another validation set: resuming under it is refused.
    again = CliRunner().invoke(main, [*args, "--val-max-pairs", "0"])
    assert again.exit_code == 1 and "val_max_pairs" in again.output
    assert "Traceback" not in again.output
