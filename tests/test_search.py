"""The search end to end: real KerasTuner oracles, real training, real files.

Most tests use the tiny TF-Hub-format model (trains in milliseconds) and the
bundled sample; the slow end-to-end test uses USE-m3 and the shared data.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from domaintune.cli import main
from domaintune.reporting.results import load_trials

from .conftest import run_cli, shared_path, trial_status, wait_until

FAST = ("--hp", "batch_size=32", "--epochs", "1", "--seed", "1")


def search(project: Path, base: Path, *extra: str):
    result = CliRunner().invoke(
        main,
        [
            "search",
            "--base",
            str(base),
            "--sts",
            "none",
            "--project-dir",
            str(project),
            *FAST,
            *extra,
        ],
    )
    assert result.exit_code == 0, result.output + repr(result.exception)
    return result.output


def test_keep_best_bounds_checkpoints_and_tensorboard_logs(tmp_path, tiny_model_dir):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    from tensorboard.plugins.hparams import plugin_data_pb2

    from tests.tensorboard_events import read_scalars

    project = tmp_path / "p"
    output = search(
        project,
        tiny_model_dir,
        "--max-trials",
        "4",
        "--keep-best",
        "1",
        "--hp",
        "learning_rate=1e-3:1e-1",
    )
    assert "Trial 4/4" in output and "STS-B guard OFF" in output
    trials = load_trials(project)
    assert [t["status"] for t in trials] == ["COMPLETED"] * 4
    assert all(t["domain_only"] == 1.0 for t in trials)
    assert not any("sts_term" in t or "sts_pearson" in t for t in trials)  # absent, not 0
    checkpoints = list(project.glob("trial_*/encoder.npz"))
    best = min(trials, key=lambda t: t["objective"])
    assert [p.parent.name for p in checkpoints] == [f"trial_{best['trial_id']}"]
    assert not list(project.rglob("*.index")), "no optimizer/keras checkpoints on disk"

    trial_dir = project / "logs" / f"trial-{best['trial_id']}"  # as the console names it
    scalars = read_scalars(trial_dir)
    for tag in ("loss", "val_loss", "mae", "val_mae"):
        assert tag in scalars, tag
    for tag in ("final/objective", "final/val_mse", "final/domain_term"):
        assert tag in scalars, tag
    assert not [tag for tag in scalars if tag.startswith("final/sts_")]  # no STS-B
    assert scalars["final/objective"][-1][1] == pytest.approx(best["objective"], rel=1e-5)
    acc = EventAccumulator(str(trial_dir), size_guidance={"tensors": 0, "images": 0})
    acc.Reload()
    assert "similarity_heatmap" in acc.Tags()["tensors"] + acc.Tags().get("images", [])
    content = acc.PluginTagToContent("hparams")
    session = plugin_data_pb2.HParamsPluginData.FromString(content["_hparams_/session_start_info"])
    assert session.session_start_info.hparams["learning_rate"].number_value == pytest.approx(
        best["hyperparameters"]["learning_rate"]
    )
    base = EventAccumulator(str(project / "logs" / "base"), size_guidance={"tensors": 0})
    base.Reload()
    assert "_hparams_/experiment" in base.PluginTagToContent("hparams")


def test_failed_trial_is_recorded_and_search_goes_on(tmp_path, tiny_model_dir):
    project = tmp_path / "p"
    output = search(
        project,
        tiny_model_dir,
        "--tuner",
        "grid",
        "--max-trials",
        "2",
        "--hp",
        "learning_rate=1e30,1e-2",
        "--hp",
        "clipnorm=1e30",
        "--hp",
        "clip_epsilon=1e-5",
    )
    trials = {t["hyperparameters"]["learning_rate"]: t for t in load_trials(project)}
    assert trials[1e30]["status"] == "FAILED"
    assert "diverged" in trials[1e30]["message"]
    assert trials[1e-2]["status"] == "COMPLETED"
    assert "FAILED: " in output


def test_divergence_in_the_last_update_is_reported_as_divergence(tmp_path, tiny_model_dir):
    """One training batch: its loss is finite (computed before the update), the
    update leaves finite but overflowing weights, and only the validation
    embeddings show it (NaN)."""
    few = tmp_path / "few.csv"
    few.write_text(
        "base,ref,similarity\n"
        + "".join(f"job title {i},other title {i % 5},{0.5 + 0.03 * i:.2f}\n" for i in range(14))
    )
    project = tmp_path / "p"
    output = search(project, tiny_model_dir, "--train", str(few), "--max-trials", "1",
                    "--hp", "learning_rate=1e30")  # fmt: skip
    assert int(re.search(r"Train: (\d+) pairs", output)[1]) <= 32  # one batch
    (trial,) = load_trials(project)
    assert trial["status"] == "FAILED"
    assert "FAILED: training diverged (NaN/inf validation embeddings)" in output
    assert "training diverged" in trial["message"] and "lack" not in trial["message"]


def test_consecutive_failures_stop_with_a_clear_error(tmp_path, tiny_model_dir):
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
            *FAST,
            "--max-trials",
            "5",
            "--max-consecutive-failures",
            "2",
            "--hp",
            "learning_rate=1e30",
            "--hp",
            "clipnorm=1e30",
        ],
    )
    assert result.exit_code == 1
    assert "Error: Stopped after 2 consecutive failed trials" in result.output
    assert "Traceback" not in result.output
    assert [t["status"] for t in load_trials(project)] == ["FAILED", "FAILED"]


def test_patience_zero_trains_every_epoch(tmp_path, tiny_model_dir):
    """``--hp patience=0``: no early stopping, every trial runs all its epochs
    (a fixed patience stays out of KerasTuner's space, and the trial still ends
    cleanly: declaring it on the trial's hyperparameters broke end_trial)."""
    project = tmp_path / "p"
    search(project, tiny_model_dir, "--epochs", "4", "--hp", "patience=0", "--max-trials", "2")
    states = [json.loads(p.read_text()) for p in sorted(project.glob("trial_*/trial.json"))]
    assert [s["status"] for s in states] == ["COMPLETED", "COMPLETED"]
    for state in states:
        assert "patience" not in state["hyperparameters"]["values"]
        runs = state["metrics"]["metrics"]["epochs_run"]["observations"][-1]["value"][0]
        assert runs == 4


def test_in_batch_epochs_of_varying_batch_counts_all_train(tmp_path, tiny_model_dir):
    """An in-batch plan (no text twice in a batch) yields a different number
    of batches each epoch; tf_keras takes the first epoch's count as the epoch
    length and ended the fit at a shorter epoch (2 of 5 epochs ran here)."""
    project = tmp_path / "p"
    search(
        project, tiny_model_dir, "--epochs", "5", "--hp", "patience=0", "--pairs-per-epoch", "50",
        "--hp", "loss=in_batch_negatives_symmetric", "--max-trials", "1",
    )  # fmt: skip
    state = json.loads(next(project.glob("trial_*/trial.json")).read_text())
    assert state["metrics"]["metrics"]["epochs_run"]["observations"][-1]["value"][0] == 5


def test_hyperband_honours_epoch_budgets(tmp_path, tiny_model_dir):
    project = tmp_path / "p"
    search(
        project,
        tiny_model_dir,
        "--tuner",
        "hyperband",
        "--epochs",
        "3",
        "--max-trials",
        "20",
        "--hp",
        "learning_rate=1e-3:1e-1",
    )
    states = [json.loads(p.read_text()) for p in sorted(project.glob("trial_*/trial.json"))]
    values = [s["hyperparameters"]["values"] for s in states]
    assert {v["tuner/epochs"] for v in values} == {1, 3}
    children = [v for v in values if v.get("tuner/trial_id")]
    assert children, "hyperband promoted no trial"
    for child, state in zip(values, states):
        if not child.get("tuner/trial_id"):
            continue
        assert child["tuner/initial_epoch"] == 1
        metrics = state["metrics"]["metrics"]
        # Trains only the epochs its parent did not (the weights: the next test).
        assert metrics["epochs_run"]["observations"][-1]["value"][0] <= 2


def test_hyperband_child_starts_from_its_parents_weights(tmp_path, tiny_model_dir):
    """Right after a promoted trial's restore, the encoder holds exactly its
    parent's checkpoint (the real tuner and oracle, assembled as the runner does,
    so that a callback can read the encoder); and only trials that can still be
    promoted keep theirs: round 0 of the 3-trial bracket promotes 1, so at most
    that one and the best are on disk (3 if every round member were kept)."""
    from domaintune.data.pairs import load_pairs, sample_path, split_pairs
    from domaintune.evaluation.trial import encoder_metrics
    from domaintune.models.trainable_encoder import CHECKPOINT_NAME, TrainableEncoder
    from domaintune.objectives import get_objective
    from domaintune.search.callbacks import SearchCallback
    from domaintune.search.oracles import make_oracle
    from domaintune.search.space import SearchSpace
    from domaintune.search.tuner import SearchData, SiameseTuner

    project = tmp_path / "p"
    space = SearchSpace().with_overrides(
        {"learning_rate": (1e-3, 1e-1, "range"), "batch_size": [32], "epochs": [3]}
    )
    oracle = make_oracle(
        "hyperband", space, max_trials=20, max_epochs=3, seed=1, max_consecutive_failures=3
    )
    encoder = TrainableEncoder(tiny_model_dir)
    base = [v.numpy().copy() for v in encoder.variables]
    train, val = split_pairs(load_pairs(sample_path())[0], 0.2, 1)
    starts: dict[str, tuple[bool, bool]] = {}  # child -> (== parent's, parent != base)
    on_disk: list[int] = []  # checkpoints after each trial's end

    class ReadStart(SearchCallback):
        def on_trial_end(self, trial_id, status, metrics, seconds, message):
            on_disk.append(len(list(project.glob(f"trial_*/{CHECKPOINT_NAME}"))))

        def on_phase_end(self, trial_id, phase, seconds):
            parent = oracle.get_trial(trial_id).hyperparameters.values.get("tuner/trial_id")
            if phase != "restore" or not parent:
                return
            with np.load(project / f"trial_{parent}" / CHECKPOINT_NAME) as saved:
                parents = [saved[f"v{i}"] for i in range(len(base))]
            now = [v.numpy() for v in encoder.variables]
            starts[trial_id] = (
                all(map(np.array_equal, now, parents)),
                not all(map(np.array_equal, parents, base)),
            )

    tuner = SiameseTuner(
        oracle,
        encoder=encoder,
        objective=get_objective("guarded"),
        space=space,
        project_dir=project,
        seed=1,
        callbacks=[ReadStart()],
    )
    tuner.search(data=SearchData(train, val, None, encoder_metrics(encoder.encode_fn(), val)))
    assert starts, "hyperband promoted no trial"
    assert all(parent_trained for _, parent_trained in starts.values())
    assert all(same for same, _ in starts.values()), starts
    assert len(on_disk) == 6 and max(on_disk) <= 2, on_disk


def test_resume_after_kill_keeps_finished_trials(tmp_path, tiny_model_dir):
    project = tmp_path / "p"
    args = [
        sys.executable,
        "-m",
        "domaintune.cli",
        "search",
        "--base",
        str(tiny_model_dir),
        "--sts",
        "none",
        "--project-dir",
        str(project),
        *FAST,
        "--max-trials",
        "3",
        "--hp",
        "learning_rate=1e-3:1e-1",
    ]
    proc = subprocess.Popen(
        args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True
    )
    try:
        first = project / "trial_0" / "trial.json"

        def first_done() -> bool:
            if trial_status(first) == "COMPLETED":
                return True
            assert proc.poll() is None, proc.stdout.read().decode()
            return False

        assert wait_until(first_done, 300), "the first trial never completed"
        os.killpg(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(timeout=60)
    finished = {t["trial_id"]: t for t in load_trials(project) if t["status"] == "COMPLETED"}
    assert "0" in finished and len(finished) < 3, "not killed mid-search"
    records = {i: (project / f"trial_{i}" / "trial.json").read_bytes() for i in finished}

    output = run_cli(*args[3:]).stdout
    assert f"Resuming: {len(finished)} trial(s) already finished" in output
    trials = {t["trial_id"]: t for t in load_trials(project)}
    assert sum(t["status"] == "COMPLETED" for t in trials.values()) == 3
    # Kept: same ids, same values and metrics; not rerun: no progress line, record untouched.
    assert all(trials[i] == before for i, before in finished.items())
    rerun = set(re.findall(r"^Trial \d+/\d+ \(trial-(\w+)\)", output, re.MULTILINE))
    assert rerun and not rerun & set(finished), output
    assert all((project / f"trial_{i}" / "trial.json").read_bytes() == records[i] for i in finished)


def test_resume_with_other_settings_is_refused(tmp_path, tiny_model_dir):
    project = tmp_path / "p"
    search(project, tiny_model_dir, "--max-trials", "1")
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
            *FAST,
            "--seed",
            "7",
        ],
    )
    assert result.exit_code == 1 and "different settings (seed)" in result.output
    search(project, tiny_model_dir, "--max-trials", "1", "--seed", "7", "--overwrite")


def _sts_dir(folder: Path, first_score: float) -> Path:
    """A small STS-B style split (dev) with its own copy of the file."""
    folder.mkdir()
    lines = [
        f"main-news\tx\t2012\t{i}\t{first_score if i == 0 else i % 6}\t"
        f"a nurse works at night {i}\ta night nurse {i % 3}"
        for i in range(12)
    ]
    (folder / "sts-dev.csv").write_text("\n".join(lines) + "\n")
    return folder


def test_resume_compares_sts_by_content_not_path(tmp_path, tiny_model_dir):
    project = tmp_path / "p"
    first, same = _sts_dir(tmp_path / "a", 5.0), _sts_dir(tmp_path / "b", 5.0)
    other = _sts_dir(tmp_path / "c", 4.0)

    def run(sts: Path, trials: str):
        return CliRunner().invoke(
            main,
            [
                "search",
                "--base",
                str(tiny_model_dir),
                "--sts",
                str(sts),
                "--project-dir",
                str(project),
                *FAST,
                "--max-trials",
                trials,
            ],
        )

    assert run(first, "1").exit_code == 0
    resumed = run(same, "2")  # another path to the same benchmark file
    assert resumed.exit_code == 0, resumed.output
    assert len(load_trials(project)) == 2
    refused = run(other, "3")
    assert refused.exit_code == 1 and "different settings (sts_sha256)" in refused.output


@pytest.mark.slow
def test_end_to_end_use_m3_search_results_export(tmp_path):
    seed = shared_path("seed", "training_data.csv")
    sts = shared_path("stsbenchmark")
    project, export = tmp_path / "search", tmp_path / "export"
    run_cli(
        "search",
        "--train",
        seed,
        "--sts",
        sts,
        "--max-trials",
        "2",
        "--epochs",
        "1",
        "--project-dir",
        project,
        "--hp",
        "learning_rate=1e-5:5e-5",
    )
    base, *trials = json.loads(run_cli("results", project, "--json").stdout)
    assert base["trial_id"] == "base" and np.isfinite(base["sts_pearson"])
    assert [t["status"] for t in trials] == ["COMPLETED", "COMPLETED"]
    for trial in trials:
        for metric in ("val_mse", "sts_pearson", "objective", "domain_term", "sts_term"):
            assert np.isfinite(trial[metric]), metric
    best = min(trials, key=lambda t: t["objective"])

    run_cli("export", project, "--out", export)
    card = json.loads((export / "model_card.json").read_text())
    assert card["trial_id"] == best["trial_id"] and card["base_model"] == "use-m3"
    assert card["embedding_dim"] == 512 and card["sts_guard"]["on"] is True
    assert card["sts_guard"]["sts_delta"] == pytest.approx(
        best["sts_pearson"] - base["sts_pearson"]
    )
    assert card["hyperparameters"] == best["hyperparameters"]

    # In a fresh process: the export equals the best trial's encoder...
    probe = tmp_path / "probe.py"
    probe.write_text(
        "import sys, numpy as np\n"
        "from domaintune import tf_runtime\n"
        "rt = tf_runtime.load()\n"
        "texts = ['Data Scientist', 'Krankenpfleger', 'chef de cuisine', '']\n"
        "a = rt.hub.KerasLayer(sys.argv[1])(rt.tf.constant(texts)).numpy()\n"
        "b = rt.tf.saved_model.load(sys.argv[1])(rt.tf.constant(texts)).numpy()\n"
        "from domaintune.models.resolver import resolve_base\n"
        "from domaintune.models.trainable_encoder import TrainableEncoder\n"
        "enc = TrainableEncoder(resolve_base('use-m3'))\n"
        "enc.load_weights(sys.argv[2])\n"
        "c = enc.module(rt.tf.constant(texts)).numpy()\n"
        "print(float(abs(a - c).max()), float(abs(b - c).max()))\n"
    )
    checkpoint = project / f"trial_{best['trial_id']}" / "encoder.npz"
    out = subprocess.run(
        [sys.executable, str(probe), str(export), str(checkpoint)],
        capture_output=True,
        text=True,
        timeout=600,
        check=True,
    )
    diffs = [float(x) for x in out.stdout.split()[-2:]]
    assert max(diffs) < 1e-6
    # ...and evaluating it reproduces the trial's STS-B Pearson.
    evaluated = json.loads(run_cli("evaluate", "--model", export, "--sts", sts, "--json").stdout)
    assert evaluated["sts_pearson"] == pytest.approx(best["sts_pearson"], abs=1e-4)


def test_build_model_from_hyperparameters(tiny_model_dir):
    import keras_tuner as kt

    from domaintune import tf_runtime
    from domaintune.models.encoding import load_encoder_layer
    from domaintune.models.siamese import build_model
    from domaintune.search.space import SearchSpace

    rt = tf_runtime.load()
    space = SearchSpace().with_overrides({"clip_epsilon": [1e-3], "learning_rate": [3e-4]})
    hp = kt.HyperParameters()
    model = build_model(space.declare(hp), load_encoder_layer(tiny_model_dir, trainable=True))
    assert hp.values["clip_epsilon"] == 1e-3 and hp.values["batch_size"] == 16
    assert float(model.optimizer.learning_rate) == pytest.approx(3e-4)
    assert float(model.optimizer.clip_norm) == pytest.approx(1.0)
    # One shared encoder: the same texts on both sides give cos = 1, clipped.
    same = model.predict(
        [rt.tf.constant(["nurse", "chef"]), rt.tf.constant(["nurse", "chef"])], verbose=0
    )
    assert same == pytest.approx(1 - np.arccos(1 - 1e-3) / np.pi, abs=1e-5)
    assert len(model.trainable_variables) == 2  # the tiny model's two, not two copies


def test_bayesian_search_completes(tmp_path, tiny_model_dir):
    project = tmp_path / "p"
    search(
        project,
        tiny_model_dir,
        "--tuner",
        "bayesian",
        "--max-trials",
        "3",
        "--hp",
        "learning_rate=1e-3:1e-1",
    )
    assert [t["status"] for t in load_trials(project)] == ["COMPLETED"] * 3


def test_search_reads_other_columns_and_scales_and_resumes(tmp_path, tiny_model_dir):
    import csv

    from domaintune.data.pairs import load_pairs, sample_path

    pairs, _ = load_pairs(sample_path())
    tsv = tmp_path / "pairs.tsv"
    with open(tsv, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f, delimiter="\t")
        writer.writerow(["left", "right", "sts_score"])
        for a, b, score in zip(pairs.texts_a, pairs.texts_b, pairs.scores):
            # angular -> cosine -> STS 0..5 (the inverse of --scale sts)
            writer.writerow([a, b, round(float(np.cos((1 - score) * np.pi)) * 5, 6)])
    project = tmp_path / "p"
    args = (
        "--train",
        str(tsv),
        "--columns",
        "left,right,sts_score",
        "--scale",
        "sts",
        "--max-trials",
        "1",
    )
    search(project, tiny_model_dir, *args)
    config = json.loads((project / "search_config.json").read_text())
    assert config["pair_format"] == {
        "columns": ["left", "right", "sts_score"],
        "scale": "sts",
        "dedupe": "error",
    }
    output = search(project, tiny_model_dir, *args)  # same settings: resumes, nothing to do
    assert "different settings" not in output


def test_in_batch_negatives_search_selects_on_retrieval(tmp_path, tiny_model_dir):
    project = tmp_path / "p"
    output = search(
        project,
        tiny_model_dir,
        "--max-trials",
        "2",
        "--domain-metric",
        "retrieval",
        "--hp",
        "loss=in_batch_negatives",
        "--hp",
        "learning_rate=1e-3:1e-1",
        "--hp",
        "clipnorm_scope=global",
    )
    trials = load_trials(project)
    assert [t["status"] for t in trials] == ["COMPLETED"] * 2
    base = json.loads((project / "base_metrics.json").read_text())
    for trial in trials:
        assert trial["hyperparameters"]["loss"] == "in_batch_negatives"
        for metric in ("retrieval_r1", "retrieval_r5", "retrieval_mrr", "val_spearman"):
            assert 0 <= trial[metric] <= 1, metric
        # The domain term is the retrieval error relative to the base's.
        expected = (1 - trial["retrieval_r1"]) / (1 - base["retrieval_r1"])
        assert trial["domain_term"] == pytest.approx(min(expected, 10), rel=1e-6)
    assert "retrieval_r1" in output  # the final table shows it
    # The Pareto front is on the search's domain metric; --sts none: no STS axis, said so.
    pareto = CliRunner().invoke(main, ["results", str(project), "--pareto"])
    said = " ".join(pareto.output.split())
    assert "No Pareto front" in said and "retrieval_r1 is its only axis" in said
    assert "--sts PATH" in said
    # The progress lines show the metric the objective reads, against the base.
    assert re.search(r"^Trial 1/2 \(trial-0\)  objective=\S+ \(\S+\)  retrieval_r1=", output, re.M)
    assert "val_mse=" not in "".join(re.findall(r"^Trial .*$", output, re.M))


def test_mse_with_retrieval_capable_validation_prints_a_hint(tmp_path, tiny_model_dir):
    output = search(tmp_path / "p", tiny_model_dir, "--max-trials", "1")
    assert "Hint: the validation pairs define a retrieval task" in output


def test_frozen_table_and_dense_adam_train(tmp_path, tiny_model_dir):
    project = tmp_path / "p"
    search(
        project,
        tiny_model_dir,
        "--max-trials",
        "1",
        "--hp",
        "train_embeddings=false",
        "--hp",
        "sparse_updates=false",
        "--hp",
        "learning_rate=0.05",
    )
    import numpy as np

    with np.load(project / "trial_0" / "encoder.npz") as trained:
        table, dense = trained["v0"], trained["v1"]
    from domaintune.models.trainable_encoder import TrainableEncoder

    base = TrainableEncoder(tiny_model_dir)
    assert np.array_equal(table, base.variables[0].numpy())  # the table was frozen
    assert not np.array_equal(dense, base.variables[1].numpy())  # the rest trained


@pytest.mark.parametrize(
    "extra, message",
    [
        (
            ["--hp", "loss=in_batch_negatives", "--hp", "positive_threshold=1.0", "--train", "LOW"],
            "trains on pairs scored >= positive_threshold (1), and the training pairs have 0",
        ),
        (["--epochs", "2", "--hp", "epochs=3"], "--epochs and --hp epochs=... both set"),
        (
            ["--role", "worker", "--oracle", "127.0.0.1:1", "--worker-id", "chief2"],
            "--worker-id 'chief2': use letters",
        ),
        (["--role", "worker", "--worker-id", "1"], "--role worker needs --oracle HOST:PORT"),
        (["--project-dir", "FILE"], "is a file; pass a folder"),
    ],
)
def test_search_option_mistakes_are_one_clear_error(tmp_path, tiny_model_dir, extra, message):
    low = tmp_path / "low.csv"
    low.write_text("base,ref,similarity\n" + "".join(f"a{i},b{i},0.6\n" for i in range(20)))
    (tmp_path / "file").write_text("")
    extra = [
        str(low) if e == "LOW" else str(tmp_path / "file") if e == "FILE" else e for e in extra
    ]
    args = ["search", "--base", str(tiny_model_dir), "--sts", "none", *extra]
    if "--project-dir" not in extra:
        args += ["--project-dir", str(tmp_path / "p")]
    result = CliRunner().invoke(main, args)
    assert result.exit_code != 0
    assert message in result.output and "Traceback" not in result.output
    assert not (tmp_path / "p").exists()


def test_export_of_a_damaged_checkpoint_is_a_clear_error(tmp_path, tiny_model_dir):
    project, out = tmp_path / "p", tmp_path / "export"
    search(project, tiny_model_dir, "--max-trials", "1")
    (checkpoint,) = project.glob("trial_*/encoder.npz")
    checkpoint.write_bytes(checkpoint.read_bytes()[:100])
    result = CliRunner().invoke(main, ["export", str(project), "--out", str(out)])
    assert result.exit_code == 1
    assert "cannot load trial" in result.output and "--trial" in result.output
    assert "Traceback" not in result.output
    assert not out.exists() and list(tmp_path.iterdir()) == [project]  # nothing half-written


def test_bad_input_is_reported_before_tensorflow_loads(tmp_path):
    """`domaintune search` checks its inputs before importing the heavy stack."""
    probe = (
        "import sys\nfrom click.testing import CliRunner\nfrom domaintune.cli import main\n"
        "r = CliRunner().invoke(main, ['search', '--train', sys.argv[1]])\n"
        "print(r.exit_code, 'tensorflow' in sys.modules, r.output.strip())"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe, str(tmp_path / "missing.csv")],
        capture_output=True,
        text=True,
        timeout=120,
    ).stdout
    assert out.startswith("1 False Error:") and "missing.csv" in out
