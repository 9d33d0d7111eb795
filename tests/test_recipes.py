"""Recipes: named starting points, recorded in the config, overridable setting by setting."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from domaintune.cli import main
from domaintune.errors import UserError
from domaintune.reporting.results import load_trials
from domaintune.search.overrides import hp_overrides
from domaintune.search.recipes import RECIPES, apply_recipe, get_recipe
from domaintune.search.space import SearchSpace


def test_user_settings_win_over_the_recipe():
    retrieval = get_recipe("retrieval")
    hp, options, made = apply_recipe(
        retrieval,
        user_hp={"learning_rate"},
        options={"domain_metric": None, "interpolate": (1.0,), "augment": None},
        known={"loss", "learning_rate", "batch_size", "epochs"},  # no case_fold here
    )
    assert "learning_rate" not in hp  # the user's own value stays
    assert "case_fold" not in hp  # unknown to this installation: skipped
    assert hp["loss"] == "in_batch_negatives_symmetric" and hp["batch_size"] == [256, 64]
    assert options["domain_metric"] == "retrieval"
    assert options["interpolate"] == (1.0,)  # set explicitly: not the recipe's
    assert "domain_metric=retrieval" in made and not any("interpolate" in m for m in made)


def test_one_trial_at_the_retrieval_recipes_defaults_is_its_measured_best():
    # A list's first value is its default: what a 1-trial grid search runs.
    space = SearchSpace()
    hp, _, _ = apply_recipe(get_recipe("retrieval"), set(), {}, known=set(space.params))
    defaults = space.with_overrides(hp_overrides(hp, None, None, None)).kt_hyperparameters()
    values = defaults.values
    assert values["loss"] == "in_batch_negatives_symmetric" and values["case_fold"] is True
    assert values["learning_rate"] == 1e-4 and values["batch_size"] == 256
    assert values["hard_negatives"] == "taxonomy" and values["clipnorm"] == 1.0


def test_tutorial_is_the_default_and_adds_nothing():
    assert get_recipe(None).name == "tutorial" and not RECIPES["tutorial"].hp
    with pytest.raises(UserError, match="--recipe 'fast': choose one of tutorial, retrieval"):
        get_recipe("fast")


def test_retrieval_recipe_search_end_to_end(tmp_path, tiny_model_dir):
    """On the bundled sample and the tiny model: the recipe's settings reach
    search_config.json and the trial, --hp overrides one of them, and the
    search selects on retrieval with interpolation."""
    project = tmp_path / "p"
    result = CliRunner().invoke(
        main,
        [
            "search", "--base", str(tiny_model_dir), "--sts", "none", "--project-dir",
            str(project), "--seed", "1", "--max-trials", "1", "--recipe", "retrieval",
            "--hp", "learning_rate=3e-3", "--hp", "batch_size=32",
        ],
    )  # fmt: skip
    assert result.exit_code == 0, result.output + repr(result.exception)
    assert "Recipe retrieval:" in result.output and "domain_metric=retrieval" in result.output
    config = json.loads((project / "search_config.json").read_text())
    assert config["recipe"] == "retrieval"
    assert config["domain_metric"] == "retrieval"
    assert config["interpolate"] == [0.5, 0.75, 1.0]
    assert config["hp_overrides"]["learning_rate"] == ["3e-3"]  # the user's, not the range
    assert config["hp_overrides"]["case_fold"] == [True]
    (trial,) = load_trials(project)
    assert trial["status"] == "COMPLETED"
    assert trial["hyperparameters"]["loss"] == "in_batch_negatives_symmetric"
    assert trial["hyperparameters"]["clipnorm"] == 1.0  # fixed by the recipe
    assert trial["hyperparameters"]["case_fold"] is True
    assert trial["hyperparameters"]["learning_rate"] == pytest.approx(3e-3)
    assert trial["alpha"] in (0.5, 0.75, 1.0) and trial["retrieval_r1"] is not None

    # Resuming under another recipe is refused: the searches are not comparable.
    again = CliRunner().invoke(
        main,
        [
            "search", "--base", str(tiny_model_dir), "--sts", "none", "--project-dir",
            str(project), "--seed", "1", "--max-trials", "1", "--hp", "learning_rate=3e-3",
            "--hp", "batch_size=32",
        ],
    )  # fmt: skip
    assert again.exit_code == 1 and "different settings" in again.output
