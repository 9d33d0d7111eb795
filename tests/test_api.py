"""The Python API (``import domaintune as dt``) against the CLI it underlies.

Real components throughout: the tiny TF-Hub model for the fast tests, USE-m3
and the shared STS-B for the README example.
"""

from __future__ import annotations

import ast
import gc
import json
import logging
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner

import domaintune as dt
from domaintune.cli import main
from domaintune.reporting.results import load_trials
from domaintune.search.callbacks import SearchCallback

from .conftest import REPO, run_cli, shared_path

FAST = dict(
    sts="none", max_trials=2, epochs=1, seed=1, hp={"batch_size": 32, "learning_rate": (1e-3, 1e-1)}
)
FAST_CLI = (
    "--sts",
    "none",
    "--max-trials",
    "2",
    "--epochs",
    "1",
    "--seed",
    "1",
    "--hp",
    "batch_size=32",
    "--hp",
    "learning_rate=1e-3:1e-1",
)


def _same_trials(a: list[dt.Trial], b: list[dt.Trial], tol: float = 1e-6) -> None:
    assert [(t.trial_id, t.status) for t in a] == [(t.trial_id, t.status) for t in b]
    for x, y in zip(a, b):
        assert x.hyperparameters.keys() == y.hyperparameters.keys()
        for name, value in x.hyperparameters.items():
            assert y.hyperparameters[name] == (
                pytest.approx(value, rel=tol) if isinstance(value, float) else value
            ), name
        assert x.metrics.keys() == y.metrics.keys()
        for name, value in x.metrics.items():
            assert y.metrics[name] == pytest.approx(value, rel=tol, abs=tol), name


def test_import_is_light_and_search_stays_the_function():
    probe = (
        "import sys, domaintune as dt\n"
        "heavy = [m for m in ('tensorflow', 'keras_tuner', 'keras', 'pandas') "
        "if m in sys.modules]\n"
        "import domaintune.search.runner\n"
        "print(heavy, callable(dt.search), dt.search is dt.api.search)"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=120, check=True
    ).stdout
    assert out.split() == ["[]", "True", "True"]


@pytest.mark.slow
def test_readme_python_example_matches_the_cli(tmp_path):
    """The README's example, run as written, gives the CLI's search, table and export."""
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    section = readme.split("\n## Python API\n", 1)[1].split("\n## ", 1)[0]
    (code,) = re.findall(r"```python\n(.*?)```", section, flags=re.S)
    env = {**os.environ, "DOMAINTUNE_STS_DIR": str(shared_path("stsbenchmark"))}
    (tmp_path / "api").mkdir()
    printed = subprocess.run(
        [sys.executable, "-c", code],
        cwd=tmp_path / "api",
        env=env,
        capture_output=True,
        text=True,
        timeout=1800,
    )
    assert printed.returncode == 0, printed.stdout + printed.stderr[-3000:]

    # The same settings through the CLI, into another project dir.
    cli = tmp_path / "cli"
    cli.mkdir()
    args = (
        "--train",
        dt.sample_pairs(),
        "--sts",
        "auto",
        "--max-trials",
        "2",
        "--epochs",
        "1",
        "--seed",
        "1",
        "--hp",
        "learning_rate=1e-5:5e-5",
        "--hp",
        "batch_size=16,32",
        "--project-dir",
        cli / "runs/titles",
    )
    subprocess.run(
        [sys.executable, "-m", "domaintune.cli", "search", *map(str, args)],
        env=env,
        check=True,
        capture_output=True,
        timeout=1800,
    )
    run_cli("export", cli / "runs/titles", "--out", cli / "titles-encoder")

    ours, theirs = dt.load_search(tmp_path / "api/runs/titles"), dt.load_search(cli / "runs/titles")
    assert [t.status for t in ours.trials] == ["COMPLETED"] * 2
    _same_trials(ours.trials, theirs.trials, tol=1e-3)  # two processes: float round-off
    assert ours.best.trial_id == theirs.best.trial_id
    # The example printed the table `domaintune results` prints for its project.
    table = run_cli("results", tmp_path / "api/runs/titles").stdout.split("\n\nWarning: ")[0]
    assert table.rstrip("\n") + "\n" in printed.stdout
    # ...and the evaluation of its export: the best trial's STS-B Pearson.
    evaluated = ast.literal_eval(printed.stdout.strip().splitlines()[-1])
    assert evaluated["sts_pearson"] == pytest.approx(ours.best.metrics["sts_pearson"], abs=1e-4)

    from domaintune import tf_runtime

    rt = tf_runtime.load()
    texts = rt.tf.constant(["Data Scientist", "Krankenpfleger", "chef de cuisine", ""])
    embeddings = [
        rt.hub.KerasLayer(str(path))(texts).numpy()
        for path in (tmp_path / "api/titles-encoder", cli / "titles-encoder")
    ]
    assert abs(embeddings[0] - embeddings[1]).max() < 1e-3
    cards = [
        json.loads((path / "model_card.json").read_text())
        for path in (tmp_path / "api/titles-encoder", cli / "titles-encoder")
    ]
    assert cards[0]["hyperparameters"] == pytest.approx(cards[1]["hyperparameters"], rel=1e-3)


def test_dataframe_input_equals_file_input_and_resumes(tmp_path, tiny_model_dir):
    frame = pd.read_csv(dt.sample_pairs())
    from_file = dt.search(
        dt.sample_pairs(), base=tiny_model_dir, project_dir=tmp_path / "f", **FAST
    )
    from_frame = dt.search(frame, base=tiny_model_dir, project_dir=tmp_path / "d", **FAST)
    assert len(from_frame.trials) == 2
    _same_trials(from_file.trials, from_frame.trials)
    assert from_frame.table() == from_file.table()

    # The frame's pairs are kept in the project dir; the same frame resumes...
    kept = Path(from_frame.config["train"])
    assert kept == tmp_path / "d" / "train_pairs.csv"
    assert pd.read_csv(kept).equals(frame)
    again = dt.search(frame.copy(), base=tiny_model_dir, project_dir=tmp_path / "d", **FAST)
    assert len(again.trials) == 2
    # ...another one is refused.
    changed = frame.assign(similarity=frame["similarity"] * 0.99)
    with pytest.raises(dt.UserError, match=r"different settings \(train_sha256\)"):
        dt.search(changed, base=tiny_model_dir, project_dir=tmp_path / "d", **FAST)


def test_dataframe_is_checked_like_a_file(tmp_path):
    frame = pd.read_csv(dt.sample_pairs())
    frame.loc[4, "ref"] = None
    with pytest.raises(dt.UserError) as raised:
        dt.search(frame, sts="none", project_dir=tmp_path / "p")
    assert str(raised.value) == (
        "train DataFrame, row index 4: the second text is empty. Fill it in or delete the row."
    )
    frame.to_csv(tmp_path / "bad.csv", index=False)
    with pytest.raises(dt.UserError, match=r"bad\.csv, line 6: the second text is empty"):
        dt.search(tmp_path / "bad.csv", sts="none", project_dir=tmp_path / "p")
    with pytest.raises(dt.UserError, match="missing column"):
        dt.evaluate(pairs=frame.drop(columns="similarity"), sts="none")
    assert not (tmp_path / "p").exists()


def _bad_inputs(tmp_path: Path, tiny_model_dir: Path) -> list[tuple[dict, list[str]]]:
    empty = tmp_path / "empty.csv"
    empty.write_text(
        "base,ref,similarity\n" + "".join(f"a{i},b{i},0.6\n" for i in range(20)) + ",b,0.5\n"
    )
    base = {"base": str(tiny_model_dir), "sts": "none", "project_dir": str(tmp_path / "p")}
    cli = ["--base", str(tiny_model_dir), "--sts", "none", "--project-dir", str(tmp_path / "p")]
    return [
        ({**base, "train": str(empty)}, [*cli, "--train", str(empty)]),
        (
            {**base, "train": str(tmp_path / "missing.csv")},
            [*cli, "--train", str(tmp_path / "missing.csv")],
        ),
        ({**base, "hp": {"batch_size": "many"}}, [*cli, "--hp", "batch_size=many"]),
        (
            {**base, "hp": {"learning_rate": ("1e-3", "1e-4")}},
            [*cli, "--hp", "learning_rate=1e-3:1e-4"],
        ),
        ({**base, "epochs": 2, "hp": {"epochs": 3}}, [*cli, "--epochs", "2", "--hp", "epochs=3"]),
        ({**base, "columns": "a,b"}, [*cli, "--columns", "a,b"]),
        (
            {**base, "role": "worker", "worker_id": "1"},
            [*cli, "--role", "worker", "--worker-id", "1"],
        ),
    ]


def test_bad_input_is_the_same_error_as_in_the_cli(tmp_path, tiny_model_dir):
    for kwargs, args in _bad_inputs(tmp_path, tiny_model_dir):
        with pytest.raises(dt.UserError) as raised:
            dt.search(**kwargs)
        result = CliRunner().invoke(main, ["search", *args])
        assert result.exit_code == 1, result.output
        assert result.output == f"Error: {raised.value}\n", kwargs
    assert not (tmp_path / "p").exists()


def test_load_search_of_a_non_project_dir_is_the_cli_error(tmp_path):
    (tmp_path / "notes.txt").write_text("not a search")
    with pytest.raises(dt.UserError) as raised:
        dt.load_search(tmp_path)
    assert "is not a domaintune search directory" in str(raised.value)
    for command in ("results", "export"):
        extra = ["--out", str(tmp_path / "out")] if command == "export" else []
        result = CliRunner().invoke(main, [command, str(tmp_path), *extra])
        assert result.output == f"Error: {raised.value}\n"


class _Phases(SearchCallback):
    def __init__(self):
        self.events: list[tuple] = []

    def on_trial_begin(self, trial_id, hyperparameters):
        self.events.append(("begin", trial_id))

    def on_phase_end(self, trial_id, phase, seconds):
        self.events.append(("phase", trial_id, phase))

    def on_trial_end(self, trial_id, status, metrics, seconds, message=None):
        self.events.append(("end", trial_id, status))


def test_on_trial_end_gets_trial_records_and_progress_is_logged(
    tmp_path, tiny_model_dir, caplog, capsys
):
    ended: list[dt.Trial] = []
    phases = _Phases()
    with caplog.at_level(logging.INFO, logger="domaintune"):
        result = dt.search(
            base=tiny_model_dir,
            sts="none",
            tuner="grid",
            max_trials=2,
            epochs=1,
            seed=1,
            project_dir=tmp_path / "p",
            hp={
                "learning_rate": [1e30, 1e-2],
                "clipnorm": 1e30,
                "clip_epsilon": 1e-5,
                "batch_size": 32,
            },
            on_trial_end=ended.append,
            callbacks=[phases],
        )
    assert all(isinstance(t, dt.Trial) for t in ended)
    assert ended == result.trials  # the same records the project dir holds
    assert [t.to_dict() for t in ended] == load_trials(tmp_path / "p")
    failed, done = ended
    assert failed.status == "FAILED" and "diverged" in failed.message and not failed.metrics
    assert done.status == "COMPLETED" and done.objective == result.best.objective
    assert all(type(v) is float for v in done.metrics.values())
    assert [e[0] for e in phases.events].count("end") == 2
    assert ("phase", done.trial_id, "fit") in phases.events

    # Progress went to the "domaintune" loggers, and nothing was printed.
    lines = [r.getMessage() for r in caplog.records if r.name.startswith("domaintune")]
    assert any(line.startswith("Trial 2/2 (trial-1)") for line in lines)
    assert any("FAILED: training diverged" in line for line in lines)
    assert capsys.readouterr().out == ""


def test_trials_freeze_what_survives_them_and_the_search_unfreezes_it(tmp_path, tiny_model_dir):
    # With TensorFlow loaded a full collection after each trial took 0.5 s:
    # what survives a trial is frozen, so the next collections skip it, and
    # the collector gets it back when the search ends (a notebook that runs
    # searches must not keep their garbage cycles for good).
    frozen: list[int] = []

    class Frozen(SearchCallback):
        def on_trial_begin(self, trial_id, hyperparameters):
            frozen.append(gc.get_freeze_count())

    gc.unfreeze()
    dt.search(base=tiny_model_dir, project_dir=tmp_path / "p", callbacks=[Frozen()], **FAST)
    assert frozen[0] == 0 and frozen[1] > 0
    assert gc.get_freeze_count() == 0


def test_cli_prints_the_progress_on_stdout(tmp_path, tiny_model_dir):
    result = CliRunner().invoke(
        main,
        ["search", "--base", str(tiny_model_dir), "--project-dir", str(tmp_path / "p"), *FAST_CLI],
    )
    assert result.exit_code == 0, result.output
    assert "Trial 2/2 (trial-1)" in result.stdout and "Best trials" in result.stdout
    assert "Trial" not in result.stderr
    # The CLI's handlers are gone afterwards: a library caller's logging is its own.
    assert not logging.getLogger("domaintune.search").handlers
    assert logging.getLogger("domaintune.search").propagate


def test_loss_and_objective_instances(tmp_path, tiny_model_dir):
    from domaintune.models.losses import InBatchNegatives
    from domaintune.objectives import GuardedObjective

    result = dt.search(
        base=tiny_model_dir,
        sts="none",
        max_trials=1,
        epochs=1,
        seed=1,
        hp={"batch_size": 32},
        project_dir=tmp_path / "p",
        loss=InBatchNegatives(scale=30.0, positive_threshold=0.95),
        objective=GuardedObjective(weight=2.0, domain_metric="spearman"),
    )
    (trial,) = result.trials
    assert trial.status == "COMPLETED", trial.message
    assert trial.hyperparameters["loss"] == "in_batch_negatives"
    assert trial.hyperparameters["scale"] == 30.0
    assert trial.hyperparameters["positive_threshold"] == 0.95
    config = result.config
    assert (config["objective"], config["objective_weight"], config["domain_metric"]) == (
        "guarded",
        2.0,
        "spearman",
    )
    base = result.base_metrics
    assert trial.metrics["domain_term"] == pytest.approx(
        (1 - trial.metrics["val_spearman"]) / (1 - base["val_spearman"]), rel=1e-6
    )
    with pytest.raises(dt.UserError, match="both set the loss's scale"):
        dt.search(
            base=tiny_model_dir,
            project_dir=tmp_path / "q",
            hp={"scale": 10.0},
            loss=InBatchNegatives(),
        )


def test_results_and_export_through_the_api_equal_the_cli(tmp_path, tiny_model_dir):
    project = tmp_path / "p"
    result = dt.search(base=tiny_model_dir, project_dir=project, **FAST)
    # One table: the CLI prints the API's (and the best trial's warning, if any).
    warning = result.warning()
    wrapped = "" if warning is None else "\n\n" + textwrap.fill(warning, 120)
    assert run_cli("results", project).stdout == result.table() + wrapped + "\n"
    listed = json.loads(run_cli("results", project, "--json").stdout)
    assert listed == result.records()
    assert [t["trial_id"] for t in listed[1:]] == [
        t.trial_id for t in sorted(result.trials, key=lambda t: t.objective)
    ]
    assert [dt.Trial.from_dict(t) for t in listed[1:]] == sorted(  # the same trials
        result.trials, key=lambda t: t.objective
    )
    # No STS-B in this search: no Pareto front, and the CLI says so.
    assert result.pareto_front() == []
    assert json.loads(run_cli("results", project, "--pareto", "--json").stdout) == []

    path = result.export(tmp_path / "api-export")
    run_cli("export", project, "--out", tmp_path / "cli-export")
    exports = (path, tmp_path / "cli-export")
    cards = [json.loads((p / "model_card.json").read_text()) for p in exports]
    assert cards[0]["trial_id"] == cards[1]["trial_id"] == result.best.trial_id
    from domaintune import tf_runtime

    rt = tf_runtime.load()
    texts = rt.tf.constant(["nurse", "chef de cuisine", "data scientist"])
    a, b = (rt.hub.KerasLayer(str(p))(texts).numpy() for p in exports)
    assert (a == b).all()


def test_evaluate_equals_the_cli_json(tmp_path, tiny_model_dir):
    frame = pd.read_csv(dt.sample_pairs())
    scores = dt.evaluate(
        tiny_model_dir,
        sts="none",
        pairs=frame,
        titles=["nurse", "chef"],
        heatmap=tmp_path / "heat.png",
    )
    cli = json.loads(
        run_cli(
            "evaluate",
            "--model",
            tiny_model_dir,
            "--sts",
            "none",
            "--pairs",
            dt.sample_pairs(),
            "--json",
        ).stdout
    )
    assert scores.pop("pairs_source") == "pairs DataFrame"
    assert scores.pop("heatmap") == str(tmp_path / "heat.png")
    assert (tmp_path / "heat.png").stat().st_size > 0
    assert cli.pop("pairs_source") == str(dt.sample_pairs())
    assert scores.keys() == cli.keys()
    for key, value in cli.items():
        assert scores[key] == (
            pytest.approx(value, rel=1e-5) if isinstance(value, float) else value
        ), key
