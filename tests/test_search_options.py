"""README promises of ``domaintune search`` and ``export`` that no other test
held: ``--val FILE``, ``--hp-file``, ``--objective-weight``, ``--tolerance``,
``--domain-metric spearman``, ``--dedupe mean``, ``--keep-best > 1``,
``--objective val_mse|sts_pearson``, ``export --trial ID`` with the model
card's checksums, deltas and versions, and the ``KERASTUNER_*`` variables.

One real search on the tiny model (three trials, a small STS-B style split)
carries most options at once; every assertion reads what the search wrote.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import json
import platform
from importlib import metadata
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from domaintune import load_search, tf_runtime
from domaintune.cli import main
from domaintune.data.pairs import sample_path
from domaintune.errors import UserError
from domaintune.objectives import GuardedObjective
from domaintune.reporting.results import load_base_metrics, load_trials

WEIGHT, TOLERANCE = 2.5, 1.0  # a tolerance no trial exceeds: the weight always counts
TEXTS = ["data scientist", "registered nurse at night", "chef de cuisine", "truck driver"]


def _invoke(*args) -> str:
    result = CliRunner().invoke(main, [str(a) for a in args])
    assert result.exit_code == 0, result.output + repr(result.exception)
    return result.output


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _sample_rows() -> list[list[str]]:
    with open(sample_path(), newline="", encoding="utf-8") as f:
        return list(csv.reader(f))[1:]


def _write(path: Path, rows: list[list[str]]) -> Path:
    with open(path, "w", newline="", encoding="utf-8") as f:
        csv.writer(f).writerows([["base", "ref", "similarity"], *rows])
    return path


def _sts(folder: Path, reversed_scores: bool = False) -> Path:
    """An STS-B style dev split of the sample's pairs (angular score x 5), or
    with the scores reversed: one that training on the domain makes worse."""
    folder.mkdir()
    lines = [
        f"main-news\tsample\t2024\t{i:04d}\t"
        f"{(1 - float(score) if reversed_scores else float(score)) * 5:.3f}\t{a}\t{b}"
        for i, (a, b, score) in enumerate(_sample_rows()[::4])
    ]
    (folder / "sts-dev.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return folder


@pytest.fixture(scope="module")
def searched(tmp_path_factory, tiny_model_dir):
    """(folder, project, train, val, output) of one search with many options."""
    folder = tmp_path_factory.mktemp("options")
    rows = _sample_rows()
    val = _write(folder / "val.csv", rows[::5])
    train_rows = [r for i, r in enumerate(rows) if i % 5]
    first = train_rows[0]
    other_score = f"{(float(first[2]) + 0.1) % 1:.2f}"  # the same pair, another score
    train = _write(folder / "train.csv", [*train_rows, [first[0], first[1], other_score]])
    hp_file = folder / "space.yaml"
    hp_file.write_text(
        "learning_rate: {min: 1.0e-2, max: 1.0e-1}\nbatch_size: [16, 32]\nclipnorm: 2.0\n"
    )
    project = folder / "project"
    output = _invoke(
        "search", "--base", tiny_model_dir, "--project-dir", project,
        "--train", train, "--val", val, "--dedupe", "mean",
        "--sts", _sts(folder / "sts", reversed_scores=True),
        "--hp-file", hp_file, "--objective-weight", WEIGHT, "--tolerance", TOLERANCE,
        "--domain-metric", "spearman", "--keep-best", "2",
        "--max-trials", "3", "--epochs", "1", "--seed", "3",
    )  # fmt: skip
    return folder, project, train, val, output, len(train_rows)


def test_val_file_is_the_validation_set_and_dedupe_mean_merges(searched):
    folder, project, train, val, output, n_train = searched
    n_val = len(_sample_rows()[::5])
    # The contradictory duplicate merged into one pair; no split of --train.
    assert f"Train: {n_train} pairs, validation: {n_val} pairs" in output
    config = json.loads((project / "search_config.json").read_text())
    assert config["val"] == str(val) and config["val_sha256"] == _sha256(val)
    assert config["pair_format"]["dedupe"] == "mean"


def test_hp_file_bounds_every_trial(searched):
    trials = load_trials(searched[1])
    assert [t["status"] for t in trials] == ["COMPLETED"] * 3
    for trial in trials:
        hp = trial["hyperparameters"]
        assert 1e-2 <= hp["learning_rate"] <= 1e-1
        assert hp["batch_size"] in (16, 32) and hp["clipnorm"] == 2.0
    assert len({t["hyperparameters"]["learning_rate"] for t in trials}) == 3  # searched


def test_objective_weight_tolerance_and_spearman_rank_the_trials(searched):
    project = searched[1]
    config = json.loads((project / "search_config.json").read_text())
    assert (config["objective_weight"], config["tolerance"], config["domain_metric"]) == (
        WEIGHT,
        TOLERANCE,
        "spearman",
    )
    base = load_base_metrics(project)
    asked = GuardedObjective(weight=WEIGHT, tolerance=TOLERANCE, domain_metric="spearman")
    unweighted = GuardedObjective(weight=1.0, tolerance=TOLERANCE, domain_metric="spearman")
    trials = load_trials(project)
    for trial in trials:
        assert trial["domain_term"] == pytest.approx(
            (1 - trial["val_spearman"]) / (1 - base["val_spearman"]), rel=1e-6
        )
        assert trial["objective"] == pytest.approx(asked.score(trial, base)["objective"], rel=1e-6)
    # Both options made a difference (a search ignoring one would fail the loop above):
    # the weight changed some trial's score, the tolerance spared some trial the guard.
    assert any(
        t["objective"] != pytest.approx(unweighted.score(t, base)["objective"]) for t in trials
    )
    assert any(t["sts_delta"] < -0.005 for t in trials), [t["sts_delta"] for t in trials]


def test_keep_best_two_keeps_exactly_the_two_best_checkpoints(searched):
    project = searched[1]
    ranked = sorted(load_trials(project), key=lambda t: t["objective"])
    kept = {p.parent.name for p in project.glob("trial_*/encoder.npz")}
    assert kept == {f"trial_{t['trial_id']}" for t in ranked[:2]}


def _embed(model_dir: Path) -> np.ndarray:
    rt = tf_runtime.load()
    return rt.hub.KerasLayer(str(model_dir))(rt.tf.constant(TEXTS)).numpy()


def test_export_trial_writes_that_trial_and_its_provenance(searched, tiny_model_dir):
    from domaintune.models.trainable_encoder import TrainableEncoder

    folder, project, train, val, _, _ = searched
    ranked = sorted(load_trials(project), key=lambda t: t["objective"])
    second = ranked[1]  # kept (--keep-best 2) but not the best
    out = folder / "second"
    started = dt.datetime.now(dt.timezone.utc).replace(microsecond=0)
    _invoke("export", project, "--out", out, "--trial", second["trial_id"])

    # The encoder is that trial's checkpoint, not the best's.
    encoder = TrainableEncoder(tiny_model_dir)
    encoder.load_weights(project / f"trial_{second['trial_id']}" / "encoder.npz")
    expected = encoder.module(tf_runtime.load().tf.constant(TEXTS)).numpy()
    np.testing.assert_allclose(_embed(out), expected, rtol=0, atol=1e-6)
    best = folder / "best"
    _invoke("export", project, "--out", best)
    assert not np.allclose(_embed(best), expected, atol=1e-4)

    card = json.loads((out / "model_card.json").read_text())
    assert card["trial_id"] == second["trial_id"]
    assert card["base_model"] == str(tiny_model_dir)
    assert card["hyperparameters"] == second["hyperparameters"]
    base = load_base_metrics(project)
    assert card["base_metrics"] == base
    for metric in ("val_mse", "val_spearman", "sts_pearson", "objective"):
        assert card["metrics"][metric] == pytest.approx(second[metric])
    for metric in ("val_mse", "val_spearman", "sts_pearson"):
        assert card["deltas_vs_base"][metric] == pytest.approx(second[metric] - base[metric])
    data = card["data"]
    assert (data["train"], data["train_sha256"]) == (str(train), _sha256(train))
    assert (data["val"], data["val_sha256"]) == (str(val), _sha256(val))
    assert data["val_split"] is None and data["sts"] == str(folder / "sts" / "sts-dev.csv")
    for package in ("tensorflow", "tf-keras", "tensorflow-hub", "keras-tuner"):
        assert card["packages"][package] == metadata.version(package), package
    assert card["python"] == platform.python_version()
    exported_at = dt.datetime.fromisoformat(card["exported_at"])
    assert started <= exported_at <= dt.datetime.now(dt.timezone.utc)


@pytest.mark.parametrize("objective", ["val_mse", "sts_pearson"])
def test_single_metric_objectives(tmp_path, tiny_model_dir, objective):
    project = tmp_path / "p"
    _invoke(
        "search", "--base", tiny_model_dir, "--project-dir", project, "--objective", objective,
        "--sts", _sts(tmp_path / "sts"), "--hp", "batch_size=32", "--hp",
        "learning_rate=1e-2:1e-1", "--max-trials", "2", "--epochs", "1", "--seed", "1",
    )  # fmt: skip
    trials = load_trials(project)
    assert [t["status"] for t in trials] == ["COMPLETED"] * 2
    assert json.loads((project / "search_config.json").read_text())["objective"] == objective
    for trial in trials:
        expected = trial["val_mse"] if objective == "val_mse" else -trial["sts_pearson"]
        assert trial["objective"] == pytest.approx(expected, rel=1e-9)
    # The best trial has the lowest val_mse, or the highest STS-B Pearson.
    if objective == "val_mse":
        expected = min(trials, key=lambda t: t["val_mse"])
    else:
        expected = max(trials, key=lambda t: t["sts_pearson"])
    assert load_search(project).best.trial_id == expected["trial_id"]


@pytest.mark.parametrize(
    "tuner_id, role, worker_id",
    [("chief", "chief", ""), ("worker-3", "worker", "3"), ("tuner0", "worker", "tuner0")],
)
def test_kerastuner_variables_stand_for_the_three_options(monkeypatch, tuner_id, role, worker_id):
    """As the README says: KERASTUNER_TUNER_ID / _ORACLE_IP / _ORACLE_PORT work
    instead of --role, --oracle and --worker-id (the battery in
    test_bad_inputs.py checks that a worker really looks for the oracle there
    and that a partial set is an error)."""
    from domaintune.search.distributed import Cluster, cluster_from_options

    monkeypatch.setenv("KERASTUNER_TUNER_ID", tuner_id)
    monkeypatch.setenv("KERASTUNER_ORACLE_IP", "10.0.0.5")
    monkeypatch.setenv("KERASTUNER_ORACLE_PORT", "8000")
    cluster = cluster_from_options(None, None, None)
    assert cluster == Cluster(role, "10.0.0.5", 8000, worker_id)
    assert cluster.tuner_id == ("chief" if role == "chief" else f"worker-{worker_id}")
    # The options win over the variables; mixing the two is refused.
    assert cluster_from_options("worker", "127.0.0.1:9000", "7") == Cluster(
        "worker", "127.0.0.1", 9000, "7"
    )
    with pytest.raises(UserError, match="not both"):
        cluster_from_options(None, "127.0.0.1:9000", None)
