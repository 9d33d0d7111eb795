"""Losses describe themselves: a loss defined only here becomes searchable.

The toy losses below are registered by a fixture and removed afterwards, so
the other tests see the built-in registry. Also checked: where the space says
each value lives (graph / TF variable / outside) is what the built model does.
"""

from __future__ import annotations

import dataclasses
from typing import ClassVar

import keras_tuner as kt
import numpy as np
import pytest
from click.testing import CliRunner

from domaintune import tf_runtime
from domaintune.cli import main
from domaintune.errors import UserError
from domaintune.models.losses import (
    LOSSES,
    POSITIVE_THRESHOLD,
    SCALE,
    PairLoss,
    Setting,
    pair_cosine,
    register_loss,
)
from domaintune.models.siamese import build_model
from domaintune.models.trainable_encoder import TrainableEncoder
from domaintune.reporting.results import load_trials
from domaintune.search.overrides import parse_hp_options
from domaintune.search.space import GRAPH, OUTSIDE, VARIABLE, SearchSpace


@dataclasses.dataclass(frozen=True)
class CosineMSE(PairLoss):
    """``mean(relu(|(1 + cos) / 2 - y| - margin) ** 2)``: errors under ``margin`` are free."""

    name = "toy_cosine_mse"
    margin: float = Setting(
        0.0, "Errors smaller than this cost nothing.", minimum=0, maximum=1
    ).field()
    traced: ClassVar[list] = []  # proof that a trial computed this loss

    def __call__(self, a, b, target, hard_negatives=None):
        tf = tf_runtime.load().tf
        CosineMSE.traced.append(self.margin)
        error = tf.abs((1.0 + pair_cosine(a, b)) / 2.0 - target)
        return tf.reduce_mean(tf.square(tf.nn.relu(error - self.margin)))


@dataclasses.dataclass(frozen=True)
class PositivesOnly(PairLoss):
    """Trains on the positive pairs only: ``mean(1 - cos)`` over them."""

    name = "toy_positives"
    positives_only = True
    positive_threshold: float = POSITIVE_THRESHOLD.field()
    power: float = Setting(
        1.0,
        "Exponent (baked into the graph).",
        minimum=0,
        exclusive_minimum=True,
        shapes_graph=True,
    ).field()

    def __call__(self, a, b, target, hard_negatives=None):
        tf = tf_runtime.load().tf
        return tf.reduce_mean((1.0 - pair_cosine(a, b)) ** self.power)


@pytest.fixture()
def toy_losses():
    before = SearchSpace().summary()
    for cls in (CosineMSE, PositivesOnly):
        register_loss(cls)  # adding a loss: the class above and this one line
    yield
    for cls in (CosineMSE, PositivesOnly):
        LOSSES.pop(cls.name)
    assert SearchSpace().summary() == before


def space_with(*options: str) -> SearchSpace:
    return SearchSpace().with_overrides(parse_hp_options(options))


def test_a_registered_loss_and_its_settings_are_in_the_space(toy_losses):
    space = SearchSpace()
    assert space.params["loss"].allowed[-2:] == ("toy_cosine_mse", "toy_positives")
    margin = space.params["margin"]
    assert (margin.kind, margin.default, margin.lives) == ("fixed", 0.0, VARIABLE)
    assert space.params["power"].lives == GRAPH
    # Its settings come after the built-in ones, before the graph options.
    names = list(space.params)
    assert names.index("mix_weight") < names.index("margin") < names.index("clipnorm_scope")

    chosen = space_with("loss=toy_cosine_mse,cosent", "margin=0.05:0.2")
    assert chosen.params["loss"].values == ("toy_cosine_mse", "cosent")
    assert "margin=[0.05, 0.2]" in chosen.summary()
    with pytest.raises(UserError, match=r"--hp margin=2: must be >= 0 and <= 1"):
        space_with("margin=2")
    # A search space made now knows the toy; the built-in one is untouched.
    with pytest.raises(
        UserError,
        match=r"'hinge' is not one of angular_mse, cosent, "
        r"in_batch_negatives, in_batch_negatives_symmetric, mixed, toy_cosine_mse",
    ):
        space_with("loss=hinge")


def test_one_trial_trains_with_the_toy_loss(toy_losses, tmp_path, tiny_model_dir):
    CosineMSE.traced.clear()
    project = tmp_path / "p"
    result = CliRunner().invoke(
        main,
        [
            "search",
            "--base",
            str(tiny_model_dir),
            "--sts",
            "none",
            "--project-dir",
            str(project),
            "--max-trials",
            "1",
            "--epochs",
            "1",
            "--seed",
            "1",
            "--hp",
            "loss=toy_cosine_mse",
            "--hp",
            "margin=0.05",
            "--hp",
            "batch_size=32",
        ],
    )
    assert result.exit_code == 0, result.output + repr(result.exception)
    (trial,) = load_trials(project)
    assert trial["status"] == "COMPLETED"
    assert trial["hyperparameters"]["loss"] == "toy_cosine_mse"
    assert trial["hyperparameters"]["margin"] == 0.05
    assert CosineMSE.traced, "the trial did not compute the toy loss"
    # The margin reached the loss through the model's variable, not as a constant.
    assert float(CosineMSE.traced[-1].numpy()) == pytest.approx(0.05)


def test_a_positives_only_loss_needs_positive_training_pairs(toy_losses, tmp_path, tiny_model_dir):
    low = tmp_path / "low.csv"
    low.write_text("base,ref,similarity\n" + "".join(f"a{i},b{i},0.6\n" for i in range(20)))
    result = CliRunner().invoke(
        main,
        [
            "search",
            "--base",
            str(tiny_model_dir),
            "--sts",
            "none",
            "--train",
            str(low),
            "--project-dir",
            str(tmp_path / "p"),
            "--hp",
            "loss=angular_mse,toy_positives",
        ],
    )
    assert result.exit_code != 0
    assert (
        "--hp loss=toy_positives trains on pairs scored >= positive_threshold (0.99)"
        in result.output
    )
    assert "Traceback" not in result.output


def test_the_registry_refuses_what_the_space_could_not_search(toy_losses):
    def loss(name, **fields):
        namespace = {"name": name, "__annotations__": {k: float for k in fields}, **fields}
        return dataclasses.dataclass(frozen=True)(type("Bad", (PairLoss,), namespace))

    with pytest.raises(ValueError, match="'toy_cosine_mse' is already registered"):
        register_loss(loss("toy_cosine_mse"))
    with pytest.raises(TypeError, match=r"fields \['scale'\] are not Settings"):
        register_loss(loss("bad", scale=20.0))
    with pytest.raises(ValueError, match="Bad.scale differs from the setting 'scale'"):
        register_loss(loss("bad", scale=Setting(30.0, "another default").field()))
    with pytest.raises(TypeError, match="not a PairLoss|a loss is a PairLoss"):
        register_loss(type("NotALoss", (), {"name": "bad"}))
    positives = loss("bad", scale=SCALE.field())
    positives.positives_only = True
    with pytest.raises(TypeError, match="needs a positive_threshold setting"):
        register_loss(positives)
    assert "bad" not in LOSSES
    # A setting named like one of the space's own parameters cannot be searched.
    register_loss(loss("clashing", learning_rate=Setting(1e-3, "").field()))
    try:
        with pytest.raises(ValueError, match=r"\['learning_rate'\] clash"):
            SearchSpace()
    finally:
        LOSSES.pop("clashing")


def _other_value(param):
    """A valid value of ``param`` other than its default."""
    if param.allowed:
        return next(v for v in param.allowed if v != param.default)
    if isinstance(param.default, bool):
        return not param.default
    return param.default / 2 if param.maximum is not None else (param.default * 2 or 1)


def test_where_a_value_lives_is_what_the_built_model_does(toy_losses, tiny_model_dir):
    """VARIABLE values reach a built model through start_trial (so trials that
    differ only in them, and in OUTSIDE ones, reuse it); GRAPH values change
    the graph key (another model is built)."""
    space = SearchSpace()
    defaults = space.declare(kt.HyperParameters())
    assert set(space.names(OUTSIDE)) == {"batch_size", "epochs", "patience", "mined_skip"}
    assert set(space.names(GRAPH)) == {
        "loss",
        "clipnorm_scope",
        "train_embeddings",
        "sparse_updates",
        "case_fold",
        "grad_cache_chunk",
        "hard_negatives",
        "mined_k",
        "power",
    }
    for name in space.names(GRAPH):
        changed = {**defaults, name: _other_value(space.params[name])}
        assert space.graph_key(changed) != space.graph_key(defaults), name
    for name in space.names(VARIABLE) + space.names(OUTSIDE):
        changed = {**defaults, name: _other_value(space.params[name])}
        assert space.graph_key(changed) == space.graph_key(defaults), name

    encoder = TrainableEncoder(tiny_model_dir)
    held_by_some_model = set()
    for loss in LOSSES:
        values = {**defaults, "loss": loss}
        model = build_model(values, encoder.keras_layer(trainable=True))
        new = {k: _other_value(space.params[k]) for k in space.names(VARIABLE)}
        model.start_trial({**values, **new})
        held = {
            "learning_rate": float(model.optimizer.learning_rate),
            "clipnorm": float(model.optimizer.clip_norm),
            "clip_epsilon": float(model.clip_epsilon.numpy()),
            **{k: float(v.numpy()) for k, v in model.loss_settings.items()},
        }
        assert held == pytest.approx({k: new[k] for k in held}), loss
        for name, variable in model.loss_settings.items():  # the loss reads these variables
            assert getattr(model.pair_loss, name) is variable
        held_by_some_model |= held.keys()
    assert held_by_some_model == set(space.names(VARIABLE))

    # A graph-shaping setting is baked in as a number, not held in a variable.
    model = build_model(
        {**defaults, "loss": "toy_positives", "power": 3.0}, encoder.keras_layer(trainable=True)
    )
    assert model.pair_loss.power == 3.0 and "power" not in model.loss_settings
    assert np.isfinite(model.pair_loss(np.eye(2, dtype="f"), np.eye(2, dtype="f"), np.ones(2, "f")))
