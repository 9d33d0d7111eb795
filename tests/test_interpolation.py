"""``--interpolate`` (WiSE-FT): a trial scored at base + alpha * (trained - base).

The endpoints are exact (alpha 0 is the base, alpha 1 the trained trial), the
objective keeps the best weight, the checkpoint and the export hold the
interpolated weights, and the next trial still starts from the exact base.
"""

from __future__ import annotations

import json
from pathlib import Path

import keras_tuner as kt
import numpy as np
import pytest
from click.testing import CliRunner

import domaintune as dt
from domaintune import tf_runtime
from domaintune.cli import main
from domaintune.data.pairs import load_pairs, sample_path
from domaintune.errors import UserError
from domaintune.evaluation import names
from domaintune.models.siamese import build_model, pair_dataset
from domaintune.models.trainable_encoder import TrainableEncoder
from domaintune.reporting.results import load_trials
from domaintune.search.callbacks import PHASES
from domaintune.search.fit_callbacks import changed_rows
from domaintune.search.interpolation import parse_alphas
from domaintune.search.space import SearchSpace

from .tensorboard_events import read_scalars
from .test_callbacks import Recorder

rt = tf_runtime.load()
FAST = ("--sts", "none", "--hp", "batch_size=32", "--epochs", "1", "--seed", "1")
FAST += ("--hp", "learning_rate=1e-2:1e-1", "--max-trials", "2", "--keep-best", "2")


def _search(project: Path, base: Path, *extra: str) -> str:
    args = ["search", "--base", str(base), "--project-dir", str(project), *FAST, *extra]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output + repr(result.exception)
    return result.output


def _checkpoint(project: Path, trial_id: str) -> list[np.ndarray]:
    with np.load(project / f"trial_{trial_id}" / "encoder.npz") as stored:
        return [stored[f"v{i}"] for i in range(len(stored.files))]


def _base_weights(model_dir: Path) -> list[np.ndarray]:
    return [v.numpy().copy() for v in TrainableEncoder(model_dir).variables]


def _mix(base: list[np.ndarray], trained: list[np.ndarray], alpha: float) -> list[np.ndarray]:
    """base + alpha * (trained - base), computed here in float64."""
    return [b + alpha * (t.astype(np.float64) - b) for b, t in zip(base, trained)]


def _trials(project: Path) -> dict[str, dict]:
    return {t["trial_id"]: t for t in load_trials(project)}


@pytest.mark.parametrize(
    "value, expected",
    [("1.0", [1.0]), ("1,0.5,0.75,0.5", [0.5, 0.75, 1.0]), (" 0 , 1 ", [0.0, 1.0]), (0.5, [0.5])],
)
def test_parse_alphas(value, expected):
    assert parse_alphas(value) == expected


@pytest.mark.parametrize("value", ["", "0.5,", "1.5", "-0.1", "nan", "half", [True], []])
def test_bad_weights_are_one_clear_error(value):
    with pytest.raises(UserError, match="--interpolate"):
        parse_alphas(value)


def test_bad_weights_on_the_command_line_leave_nothing_behind(tmp_path, tiny_model_dir):
    project = tmp_path / "p"
    args = ["search", "--base", str(tiny_model_dir), "--sts", "none", "--project-dir", str(project)]
    result = CliRunner().invoke(main, [*args, "--interpolate", "0.5,2"])
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert "Error: --interpolate '0.5,2': every weight must be a number in [0, 1]" in result.output
    assert not project.exists()
    with pytest.raises(UserError, match="--interpolate"):
        dt.search(base=tiny_model_dir, sts="none", project_dir=project, interpolate=(0.5, 1.1))


def _trained_encoder(model_dir: Path, **encoder_args):
    """An encoder after one short training from the base, and its model."""
    encoder = TrainableEncoder(model_dir, **encoder_args)
    space = SearchSpace().with_overrides({"learning_rate": [5e-2], "clipnorm": [10.0]})
    model = build_model(space.declare(kt.HyperParameters()), encoder.keras_layer(trainable=True))
    pairs, _ = load_pairs(sample_path())
    model.fit(pair_dataset(pairs.subset(range(96)), 16, shuffle=True, seed=1), verbose=0)
    return encoder, model


def test_interpolation_is_exact_at_the_ends_and_undone_by_the_lazy_restore(tiny_model_dir):
    base = _base_weights(tiny_model_dir)
    encoder, model = _trained_encoder(tiny_model_dir)
    trained = [v.numpy().copy() for v in encoder.variables]
    changed = changed_rows(model)
    assert 0 < len(changed(encoder.variables[0])) < len(base[0])  # lazy Adam: some rows
    changes = encoder.changes(changed)

    encoder.interpolate_with_base(0.25, changes)
    for now, want in zip(encoder.variables, _mix(base, trained, 0.25)):
        np.testing.assert_allclose(now.numpy(), want, rtol=0, atol=1e-6)
    for alpha, want in ((0.0, base), (1.0, trained)):  # bit for bit
        encoder.interpolate_with_base(alpha, changes)
        assert all(np.array_equal(v.numpy(), w) for v, w in zip(encoder.variables, want))

    encoder.interpolate_with_base(0.5, changes)
    encoder.restore_base(changed)  # what the next trial does: the changed rows only
    assert all(np.array_equal(v.numpy(), b) for v, b in zip(encoder.variables, base))


def test_big_variables_are_compared_by_rows_without_changed_rows(tmp_path):
    """A warm-started trial does not know what changed since the base: big
    variables are compared with it chunk by chunk, keeping only differing rows."""
    from tests.tiny_model import build_tiny_saved_model

    model_dir = build_tiny_saved_model(tmp_path / "big", buckets=70_000)  # > 1M elements
    encoder = TrainableEncoder(model_dir)
    table, dense = encoder.variables
    base = [v.numpy().copy() for v in encoder.variables]
    rows = np.array([3, 8191, 8192, 69_999])  # across chunk boundaries
    table.scatter_update(rt.tf.IndexedSlices(np.ones((4, 16), np.float32), rows))
    dense.assign_add(rt.tf.ones_like(dense))
    trained = [v.numpy().copy() for v in encoder.variables]

    changes = encoder.changes()
    assert np.array_equal(changes[0][0], rows) and changes[0][1].shape == (4, 16)
    assert changes[1][0] is None  # a small variable: whole
    encoder.interpolate_with_base(0.5, changes)
    for now, want in zip(encoder.variables, _mix(base, trained, 0.5)):
        np.testing.assert_allclose(now.numpy(), want, rtol=0, atol=1e-6)


def test_alpha_zero_reproduces_the_base_and_resumes_only_with_the_same_weights(
    tmp_path, tiny_model_dir
):
    project = tmp_path / "p"
    _search(project, tiny_model_dir, "--interpolate", "0")
    config = json.loads((project / "search_config.json").read_text())
    assert config["interpolate"] == [0.0]
    base_metrics = json.loads((project / "base_metrics.json").read_text())
    base = _base_weights(tiny_model_dir)
    for trial_id, trial in _trials(project).items():
        assert trial["alpha"] == 0.0
        for name, value in base_metrics.items():
            assert trial.get(name) == value, name  # exactly (None: not measured)
        assert all(np.array_equal(c, b) for c, b in zip(_checkpoint(project, trial_id), base))

    again = _search(project, tiny_model_dir, "--interpolate", "0.0")  # the same weights
    assert "different settings" not in again
    refused = CliRunner().invoke(
        main,
        ["search", "--base", str(tiny_model_dir), "--project-dir", str(project), *FAST]
        + ["--interpolate", "0,1"],
    )
    assert refused.exit_code == 1 and "different settings (interpolate)" in refused.output


def test_the_objective_picks_the_best_weight_and_alpha_one_is_the_plain_trial(
    tmp_path, tiny_model_dir
):
    plain, mixed = tmp_path / "plain", tmp_path / "mixed"
    _search(plain, tiny_model_dir)
    recorder = Recorder()
    dt.search(
        base=tiny_model_dir,
        project_dir=mixed,
        sts="none",
        max_trials=2,
        keep_best=2,
        epochs=1,
        seed=1,
        hp={"batch_size": 32, "learning_rate": (1e-2, 1e-1)},
        interpolate=(0.0, 0.5, 1.0),
        callbacks=[recorder],
    )
    base = _base_weights(tiny_model_dir)
    plain_trials = _trials(plain)
    for trial_id, trial in _trials(mixed).items():
        assert trial["hyperparameters"] == plain_trials[trial_id]["hyperparameters"]
        per_alpha = {a: trial[names.objective_at_alpha(a)] for a in (0.0, 0.5, 1.0)}
        assert per_alpha[1.0] == pytest.approx(plain_trials[trial_id]["objective"], rel=1e-6)
        assert per_alpha[0.0] == 1.0  # the base scored against itself
        best = min(per_alpha, key=lambda a: (per_alpha[a], -a))
        assert trial["alpha"] == best and trial["objective"] == per_alpha[best]
        # The checkpoint holds the chosen weights: base + alpha * (plain trial - base).
        want = _mix(base, _checkpoint(plain, trial_id), best)
        for got, expected in zip(_checkpoint(mixed, trial_id), want):
            np.testing.assert_allclose(got, expected, rtol=0, atol=1e-5)
        scalars = read_scalars(mixed / "logs" / f"trial-{trial_id}")
        assert scalars["final/alpha"][-1][1] == best
        assert scalars["final/objective_alpha_0.5"][-1][1] == pytest.approx(per_alpha[0.5])
    phases = [e[2] for e in recorder.events if e[0] == "phase"]
    assert phases == list(PHASES) * 2  # the weights are scored inside the "score" phase
    table = CliRunner().invoke(main, ["results", str(mixed)]).output
    header = next(line for line in table.splitlines() if line.startswith("rank"))
    assert "alpha" in header.split()  # a column of the results table


def test_checkpoint_and_export_hold_the_interpolated_weights_and_trials_start_from_the_base(
    tmp_path, tiny_model_dir
):
    plain, half = tmp_path / "plain", tmp_path / "half"
    _search(plain, tiny_model_dir)
    _search(half, tiny_model_dir, "--interpolate", "0.5")
    base = _base_weights(tiny_model_dir)
    expected = {}
    for trial_id in _trials(half):
        # Trial 1 too: it started from the base, not from trial 0's interpolated weights.
        expected[trial_id] = _mix(base, _checkpoint(plain, trial_id), 0.5)
        for got, want in zip(_checkpoint(half, trial_id), expected[trial_id]):
            np.testing.assert_allclose(got, want, rtol=0, atol=1e-5)

    out = tmp_path / "export"
    exported = CliRunner().invoke(main, ["export", str(half), "--out", str(out)])
    assert exported.exit_code == 0, exported.output
    card = json.loads((out / "model_card.json").read_text())
    assert card["interpolation"] == {"alpha": 0.5, "alphas": [0.5]}
    # Embeddings of the export vs. the module with the independently mixed weights.
    texts = rt.tf.constant(["data scientist", "nurse at night", "chef de cuisine", ""])
    exported = rt.hub.KerasLayer(str(out))(texts).numpy()
    reference = TrainableEncoder(tiny_model_dir)
    for variable, value in zip(reference.variables, expected[card["trial_id"]]):
        variable.assign(value.astype(np.float32))
    np.testing.assert_allclose(exported, reference.module(texts).numpy(), rtol=0, atol=1e-5)
    untuned = TrainableEncoder(tiny_model_dir).module(texts).numpy()
    assert not np.allclose(exported, untuned, atol=1e-3)  # it did train


def test_hyperband_children_interpolate_with_the_untuned_base(tmp_path, tiny_model_dir):
    """A promoted trial starts from its parent's checkpoint, yet its alpha 0
    is the untuned base: its objective there is the base's own, 1.0."""
    project = tmp_path / "p"
    _search(
        project,
        tiny_model_dir,
        *("--tuner", "hyperband", "--epochs", "3", "--max-trials", "20"),
        *("--interpolate", "0,1"),
    )
    states = [json.loads(p.read_text()) for p in project.glob("trial_*/trial.json")]
    children = [
        s["trial_id"] for s in states if s["hyperparameters"]["values"].get("tuner/trial_id")
    ]
    assert children, "hyperband promoted no trial"
    trials = _trials(project)
    assert {t["status"] for t in trials.values()} == {"COMPLETED"}
    for trial_id, trial in trials.items():
        assert trial[names.objective_at_alpha(0.0)] == 1.0, trial_id
