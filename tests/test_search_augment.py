"""``search --augment`` / ``dt.search(augment=...)``: variants of the TRAINING
pairs' texts only, counted, recorded and part of what a resume must match."""

from __future__ import annotations

import json
import logging

import pandas as pd
import pytest
from click.testing import CliRunner

import domaintune as dt
from domaintune.cli import main
from domaintune.data.pairs import load_pairs, sample_path, split_pairs
from domaintune.search.inputs import load_inputs
from domaintune.search.project import SearchConfig


def _inputs(caplog, train=None, val=None, **config):
    config = SearchConfig(train=str(sample_path()), sts="none", seed=1, **config)
    frames = {k: v for k, v in (("train", train), ("val", val)) if v is not None}
    with caplog.at_level(logging.INFO, logger="domaintune"):
        return load_inputs(config, None, frames)


def test_variants_come_from_training_texts_only_and_are_counted(caplog):
    inputs = _inputs(caplog, augment=["upper", "accents"])
    plain_train, val = split_pairs(load_pairs(sample_path())[0], 0.2, 1)
    n = len(plain_train)
    assert val.texts_a == inputs.val.texts_a  # validation as given
    assert inputs.train.texts_a[:n] == plain_train.texts_a
    added = list(zip(inputs.train.texts_a[n:], inputs.train.texts_b[n:]))
    train_texts = {*plain_train.texts_a, *plain_train.texts_b}
    val_texts = {*val.texts_a, *val.texts_b}
    assert added and all(text in train_texts for _, text in added)
    assert not {t for pair in added for t in pair} & val_texts
    assert set(inputs.train.scores[n:]) == {1.0}
    upper = sum(variant == text.upper() for variant, text in added)
    assert f"Augmented the training pairs: +{len(added)} pairs (upper {upper}, accents " in (
        caplog.text
    )
    again = _inputs(caplog, augment=["accents", "upper"])  # deterministic, any order
    assert again.train.texts_a == inputs.train.texts_a


def test_a_variant_that_is_a_validation_text_is_not_added(caplog):
    def frame(texts):
        return pd.DataFrame({"base": texts, "ref": [f"{t} x" for t in texts], "similarity": 1.0})

    train = frame(["Técnico de sonido", *(f"title {i}" for i in range(10))])
    val = frame(["Tecnico de sonido", *(f"other {i}" for i in range(10))])
    inputs = _inputs(caplog, train=train, val=val, augment=["upper", "accents"])
    added = set(inputs.train.texts_a[len(train) :])
    assert "TÉCNICO DE SONIDO" in added and "Tecnico de sonido" not in added


def test_variants_take_their_texts_concept(caplog):
    frame = pd.DataFrame(
        {
            "base": [f"Title {i}" for i in range(12)],
            "ref": [f"alias {i}" for i in range(12)],
            "similarity": 1.0,
            "concept": [f"c{i}" for i in range(12)],
        }
    )
    inputs = _inputs(caplog, train=frame, augment=["upper"])
    n = len(split_pairs(load_pairs(frame)[0], 0.2, 1)[0])
    assert len(inputs.train) == 3 * n  # each pair's two texts, upper-cased
    for variant, text, concept in zip(
        inputs.train.texts_a[n:], inputs.train.texts_b[n:], inputs.train.concepts[n:]
    ):
        assert variant == text.upper() and concept == f"c{text.split()[1]}"


def test_search_records_augment_and_resumes_only_with_it(tmp_path, tiny_model_dir):
    project = tmp_path / "p"
    args = [
        "search",
        "--base",
        str(tiny_model_dir),
        "--sts",
        "none",
        "--project-dir",
        str(project),
        "--epochs",
        "1",
        "--max-trials",
        "1",
    ]
    result = CliRunner().invoke(main, [*args, "--augment", "gender,upper"])
    assert result.exit_code == 0, result.output
    assert "Augmented the training pairs: +" in result.output
    assert json.loads((project / "search_config.json").read_text())["augment"] == [
        "upper",
        "gender",
    ]
    other = CliRunner().invoke(main, [*args, "--augment", "upper"])
    assert other.exit_code == 1 and "different settings (augment)" in other.output


def test_unknown_kind_is_one_clear_error_before_anything_is_written(tmp_path):
    with pytest.raises(dt.UserError, match="unknown kind 'caps'.*upper, lower, title"):
        dt.search(augment=["upper", "caps"], project_dir=tmp_path / "p", sts="none")
    assert not (tmp_path / "p").exists()
