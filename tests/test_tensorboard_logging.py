"""TensorBoard output of a search: runs, scalars, HParams, heatmaps, text, serving."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from tensorboard.backend.event_processing import event_accumulator as ea

from domaintune.cli import main
from domaintune.data.titles import TUTORIAL_TITLES
from domaintune.errors import UserError
from domaintune.reporting import plotting
from domaintune.reporting.tensorboard_logging import (
    HParamSpec,
    TrialLogger,
    final_tag,
    run_name,
    trial_metric_names,
    write_base_run,
)
from domaintune.reporting.tensorboard_serve import tensorboard_logdir
from tests.tensorboard_events import read_hparams, read_scalars, read_text

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"

SPECS = [
    HParamSpec("learning_rate", "float", (1e-5, 1e-3)),
    HParamSpec("dense_units", "int", (16, 64)),
    HParamSpec("steps", "int", (0, 5000)),  # too many values to list: a number
    HParamSpec("batch_size", "choice", [32, 8, 16]),
    HParamSpec("pooling", "choice", ["mean", "cls"]),
    HParamSpec("margin", "choice", [0.25, 0.5, 1]),
    HParamSpec("freeze_encoder", "bool"),
    HParamSpec("epochs", "choice", (3,)),  # fixed
    HParamSpec("loss", "choice", ("angular_mse",)),  # fixed
]
SEARCHED = {"learning_rate", "dense_units", "steps", "batch_size", "pooling", "margin"}
SEARCHED |= {"freeze_encoder"}
METRICS = ["objective", "val_mse", "retrieval_r1", "sts_pearson"]
BASE = {"objective": 1.0, "val_mse": 0.4, "retrieval_r1": 0.5, "sts_pearson": 0.8}

TRIALS = {
    "0000": {
        "hparams": {
            "learning_rate": 1e-4,
            "dense_units": 32,
            "steps": 1200,
            "batch_size": 8,
            "pooling": "mean",
            "margin": 0.5,
            "freeze_encoder": False,
            "epochs": 3,
            "loss": "angular_mse",
        },
        "final": {"objective": 0.61, "val_mse": 0.30, "retrieval_r1": 0.6, "sts_pearson": 0.80},
    },
    "0001": {
        "hparams": {
            "learning_rate": np.float64(3e-5),
            "dense_units": np.int64(64),
            "steps": np.int64(10),
            "batch_size": np.int64(32),
            "pooling": "cls",
            "margin": 1.0,
            "freeze_encoder": True,
            "epochs": 3,
            "loss": "angular_mse",
        },
        "final": {"objective": 0.55, "val_mse": 0.40, "retrieval_r1": 0.7, "sts_pearson": 0.75},
    },
}


def epoch_metrics(trial_index: int, epoch: int) -> dict[str, float]:
    loss = 1.0 / (epoch + 1) + trial_index
    return {"loss": loss, "val_loss": loss + 0.1, "mae": loss / 2, "val_mae": loss / 2 + 0.05}


def accumulator(path: Path) -> ea.EventAccumulator:
    acc = ea.EventAccumulator(str(path), size_guidance={ea.TENSORS: 0, ea.IMAGES: 0})
    acc.Reload()
    return acc


@pytest.fixture(scope="module")
def logdir(tmp_path_factory) -> Path:
    """A search's logs: the base run, two trials, the second resumed once."""
    logdir = tmp_path_factory.mktemp("project") / "logs"
    sim = np.eye(9) * 0.5 + 0.5
    write_base_run(
        logdir,
        SPECS,
        METRICS,
        base_metrics={**BASE, "val_pearson": None},
        notes=["STS-B guard ON: a trial that loses more than 0.005 --tolerance"],
        heatmap=(TUTORIAL_TITLES, sim),
        last_step=3,
    )
    for index, (trial_id, trial) in enumerate(TRIALS.items()):
        with TrialLogger(logdir, trial_id) as log:
            for epoch in range(3 if index == 0 else 2):
                log.log_epoch(epoch, epoch_metrics(index, epoch))
            if index == 0:
                log.log_final(trial["hparams"], trial["final"], step=3, specs=SPECS)
                log.log_heatmap(TUTORIAL_TITLES, sim, step=3)
    # trial 0001 resumes: a second session appends epochs 2..3, then finishes.
    with TrialLogger(logdir, "0001") as log:
        for epoch in (2, 3):
            log.log_epoch(epoch, epoch_metrics(1, epoch))
        log.log_final(TRIALS["0001"]["hparams"], TRIALS["0001"]["final"], step=4, specs=SPECS)
        log.log_heatmap(TUTORIAL_TITLES, sim, step=4)
    return logdir


def test_layout(logdir):
    runs = ["base", "trial-0000", "trial-0001"]
    assert sorted(p.name for p in logdir.iterdir() if p.is_dir()) == runs
    assert [run_name(t) for t in TRIALS] == runs[1:]
    assert not list(logdir.glob("events.out.tfevents.*"))  # no "." run
    assert len(list((logdir / "base").glob("events.out.tfevents.*"))) == 1
    assert len(list((logdir / "trial-0000").glob("events.out.tfevents.*"))) == 1
    assert len(list((logdir / "trial-0001").glob("events.out.tfevents.*"))) == 2  # resumed


def test_epoch_and_final_scalars(logdir):
    s0 = read_scalars(logdir / "trial-0000")
    assert set(s0) == {"loss", "val_loss", "mae", "val_mae", *map(final_tag, METRICS)}
    assert [step for step, _ in s0["loss"]] == [0, 1, 2]
    np.testing.assert_allclose(
        [v for _, v in s0["loss"]], [epoch_metrics(0, e)["loss"] for e in range(3)], rtol=1e-6
    )
    # Final metrics: a flat line over steps 0..3, so the outlier filter keeps them in view.
    assert s0["final/objective"] == [(s, pytest.approx(0.61, rel=1e-6)) for s in range(4)]
    assert [step for step, _ in s0["val_loss"]] == [0, 1, 2]  # epoch values, untouched

    s1 = read_scalars(logdir / "trial-0001")  # both event files are read
    assert [step for step, _ in s1["loss"]] == [0, 1, 2, 3]
    np.testing.assert_allclose(
        [v for _, v in s1["loss"]], [epoch_metrics(1, e)["loss"] for e in range(4)], rtol=1e-6
    )
    assert s1["final/sts_pearson"] == [(s, pytest.approx(0.75, rel=1e-6)) for s in range(5)]


def test_read_scalars_last_write_wins(tmp_path):
    with TrialLogger(tmp_path, "t") as log:
        log.log_epoch(0, {"loss": 1.0})
        log.log_epoch(1, {"loss": 0.9})
    time.sleep(0.01)
    with TrialLogger(tmp_path, "t") as log:  # resumed from epoch 1's checkpoint
        log.log_epoch(1, {"loss": 0.5})
    assert read_scalars(tmp_path / "trial-t") == {"loss": [(0, 1.0), (1, 0.5)]}


def test_read_scalars_missing_dir(tmp_path):
    with pytest.raises(UserError, match="does not exist"):
        read_scalars(tmp_path / "nope")


def test_experiment_config_declares_the_searched_hparams(logdir):
    data = read_hparams(logdir / "base", "_hparams_/experiment")
    infos = {h.name: h for h in data.experiment.hparam_infos}
    assert set(infos) == SEARCHED  # the fixed epochs and loss are in the text instead
    lr = infos["learning_rate"]
    assert lr.domain_interval.min_value == pytest.approx(1e-5)
    assert lr.domain_interval.max_value == pytest.approx(1e-3)

    def discrete(name):
        return [getattr(v, v.WhichOneof("kind")) for v in infos[name].domain_discrete.values]

    # Integers as integer strings (TensorBoard shows numbers as 8.0000), padded to
    # one width: TensorBoard sorts strings as text.
    assert discrete("batch_size") == [" 8", "16", "32"]
    assert discrete("dense_units") == [str(v) for v in range(16, 65)]
    assert infos["steps"].domain_interval.max_value == 5000
    assert sorted(discrete("pooling")) == ["cls", "mean"]
    assert discrete("margin") == [0.25, 0.5, 1.0]
    assert discrete("freeze_encoder") == [False, True]
    assert [m.name.tag for m in data.experiment.metric_infos] == list(map(final_tag, METRICS))
    assert [m.display_name for m in data.experiment.metric_infos] == METRICS


def test_base_run(logdir):
    base = logdir / "base"
    scalars = read_scalars(base)
    assert set(scalars) == set(map(final_tag, METRICS))  # val_pearson (None): not written
    assert scalars["final/val_mse"] == [(s, pytest.approx(0.4)) for s in range(4)]
    session = read_hparams(base, "_hparams_/session_start_info").session_start_info
    assert session.group_name == "base" and not session.hparams  # a row of the table
    text = read_text(base, "search")
    assert "**STS-B guard ON**" in text and "`--tolerance`" in text
    assert "| batch_size | {8, 16, 32} |" in text  # searched
    assert "| epochs | 3 |" in text and "| loss | angular_mse |" in text  # fixed
    (event,) = accumulator(base).Tensors("similarity_heatmap")
    assert event.step == 0


def test_base_run_rewrite_replaces_config(tmp_path):
    tmp_path.joinpath("events.out.tfevents.1.old.v2").write_bytes(b"")  # an older layout's
    write_base_run(tmp_path, SPECS[:1], ["objective"])
    write_base_run(tmp_path, SPECS, METRICS)
    assert not list(tmp_path.glob("events.out.tfevents.*"))
    assert len(list((tmp_path / "base").glob("events.out.tfevents.*"))) == 1
    data = read_hparams(tmp_path / "base", "_hparams_/experiment")
    assert len(data.experiment.hparam_infos) == len(SEARCHED)


def test_session_start_per_trial(logdir):
    for trial_id, trial in TRIALS.items():
        data = read_hparams(logdir / run_name(trial_id), "_hparams_/session_start_info")
        info = data.session_start_info
        assert info.group_name == run_name(trial_id)  # the table's "Trial ID" is the run
        hp = info.hparams
        values = trial["hparams"]
        assert set(hp) == set(values)
        assert hp["learning_rate"].number_value == pytest.approx(float(values["learning_rate"]))
        assert hp["dense_units"].string_value == str(int(values["dense_units"]))
        assert hp["batch_size"].string_value == f"{int(values['batch_size']):2d}"
        assert hp["steps"].number_value == int(values["steps"])
        assert hp["pooling"].string_value == values["pooling"]
        assert hp["margin"].number_value == values["margin"]
        assert hp["freeze_encoder"].bool_value is bool(values["freeze_encoder"])


def test_no_sts_values_without_sts(tmp_path):
    """A search without STS-B logs no sts_* value, not even one an objective reports as 0."""
    with TrialLogger(tmp_path, "0") as log:
        log.log_final({}, {"objective": 0.9, "sts_term": 0.0, "sts_delta": 0.0}, step=1)
    assert set(read_scalars(tmp_path / "trial-0")) == {"final/objective"}


def test_heatmap_image(logdir, tmp_path, monkeypatch):
    acc = accumulator(logdir / "trial-0000")
    assert acc.SummaryMetadata("similarity_heatmap").plugin_data.plugin_name == "images"
    (event,) = acc.Tensors("similarity_heatmap")
    assert event.step == 3
    width, height, png = event.tensor_proto.string_val
    # Card size: about as wide as TensorBoard's image card, so its type stays legible.
    assert 300 < int(width) <= 700 and 200 < int(height) <= 600
    assert png.startswith(PNG_SIGNATURE) and len(png) > 1000

    titles = []
    render = plotting.similarity_heatmap_png

    def spy(names, sim, title, **kwargs):
        titles.append(title)
        return render(names, sim, title, **kwargs)

    monkeypatch.setattr(plotting, "similarity_heatmap_png", spy)
    with TrialLogger(tmp_path, "7") as log:
        log.log_heatmap(["a", "b"], np.eye(2))
    assert titles == ["trial-7: cosine similarity"]


def test_trial_metric_names_without_sts():
    base = {
        "val_mse": 0.1,
        "val_pearson": 0.5,
        "val_spearman": 0.4,
        "retrieval_r1": 0.3,
        "retrieval_r5": 0.6,
        "retrieval_mrr": 0.4,
        "sts_pearson": None,
    }
    # An objective that still reports a 0.0 sts_term without STS: not declared either.
    scores = {"objective": 1.0, "domain_term": 1.0, "domain_only": 1.0, "sts_term": 0.0}
    declared = trial_metric_names(base, scores)
    assert declared[:5] == ["objective", "val_mse", "val_spearman", "retrieval_r1", "retrieval_mrr"]
    assert set(declared) == {*base, *scores, "epochs_run"} - {"sts_pearson", "sts_term"}


def test_trial_metric_names_with_sts_and_interpolation():
    base = {"val_mse": 0.1, "retrieval_r1": 0.3, "sts_pearson": 0.8}
    scores = {
        "objective": 1.0,
        "domain_term": 1.0,
        "sts_term": 0.0,
        "sts_delta": 0.0,
        "guard_violated": 0.0,
        "domain_only": 0.0,
    }
    declared = trial_metric_names(base, scores, domain_metric="retrieval", interpolates=True)
    assert declared[:5] == ["objective", "retrieval_r1", "sts_delta", "guard_violated", "val_mse"]
    assert {"sts_pearson", "sts_term", "alpha", "epochs_run"} <= set(declared)


def test_hparam_spec_searched_describe_logged():
    assert [s.name for s in SPECS if s.searched] == [s.name for s in SPECS if s.name in SEARCHED]
    assert not HParamSpec("lr", "float", (1e-3, 1e-3)).searched
    assert HParamSpec("lr", "float", (1e-6, 1e-4)).describe() == "[1e-06, 0.0001]"
    assert HParamSpec("bs", "choice", [8, 16]).describe() == "{8, 16}"
    assert HParamSpec("bs", "choice", [8]).describe() == "8"
    assert HParamSpec("bs", "choice", [8, 16]).logged(np.int64(8)) == " 8"
    assert HParamSpec("bs", "choice", [8, 16]).logged(16) == "16"
    assert HParamSpec("n", "int", (1, 4)).logged(3) == "3"
    assert HParamSpec("n", "int", (0, 10**6)).logged(3) == 3
    assert HParamSpec("lr", "float", (1e-6, 1e-4)).logged(np.float32(1e-5)) == pytest.approx(1e-5)


def test_hparam_spec_validation():
    with pytest.raises(ValueError, match="min, max"):
        HParamSpec("lr", "float", (1e-3,))
    with pytest.raises(ValueError, match="min > max"):
        HParamSpec("units", "int", (10, 1))
    with pytest.raises(ValueError, match="all str"):
        HParamSpec("x", "choice", ["a", 1])
    with pytest.raises(ValueError, match="unknown kind"):
        HParamSpec("x", "log", (1, 2))
    with pytest.raises(ValueError, match="duplicate"):
        write_base_run(Path("/nonexistent"), [SPECS[0], SPECS[0]], [])


def test_trial_logger_rejects_bad_ids_and_closed_use(tmp_path):
    for bad in ("", "..", "a/b"):
        with pytest.raises(ValueError):
            TrialLogger(tmp_path, bad)
    log = TrialLogger(tmp_path, "t")
    with pytest.raises(RuntimeError, match="closed"):
        log.log_epoch(0, {"loss": 1.0})


def test_tensorboard_logdir_takes_a_project_or_its_logs(tmp_path, logdir):
    project = logdir.parent
    assert tensorboard_logdir(project) == logdir
    assert tensorboard_logdir(logdir) == logdir  # no logs/logs
    with pytest.raises(UserError, match="does not exist") as missing:
        tensorboard_logdir(tmp_path / "nope")
    assert "logs/logs" not in str(missing.value) and "project directory" in str(missing.value)
    with pytest.raises(UserError, match="holds no TensorBoard logs"):
        tensorboard_logdir(tmp_path)


def test_tensorboard_command_warns_when_not_local(tmp_path):
    result = CliRunner().invoke(main, ["tensorboard", str(tmp_path / "WRONG"), "--host", "0.0.0.0"])
    assert result.exit_code == 1
    assert "Warning: binding to 0.0.0.0" in result.stderr
    assert "no TensorBoard logs at" in result.stderr and "logs/logs" not in result.stderr
    local = CliRunner().invoke(main, ["tensorboard", str(tmp_path / "WRONG")])
    assert local.exit_code == 1 and "Warning" not in local.stderr
