"""Reading a search project: trials written by real KerasTuner oracles (no training)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from domaintune import kt_compat
from domaintune.cli import main
from domaintune.errors import UserError
from domaintune.reporting.results import (
    BASE_METRICS_FILE,
    CONFIG_FILE,
    best_trial,
    load_base_metrics,
    load_trials,
    ranked,
)
from domaintune.reporting.table import WIDTH, format_results, records
from domaintune.search.oracles import make_oracle
from domaintune.search.overrides import parse_hp_options
from domaintune.search.space import LATE_PARAMS, PARAM_NAMES, SearchSpace

BASE = {"val_mse": 0.05, "val_pearson": 0.6, "val_spearman": 0.7, "sts_pearson": 0.80}
TRACEBACK = (
    "Traceback (most recent call last):\n"
    '  File ".../keras_tuner/src/engine/base_tuner.py", line 274, in _try_run_and_update_trial\n'
    "    self._run_and_update_trial(trial, *fit_args, **fit_kwargs)\n"
    '  File ".../domaintune/search/tuner.py", line 120, in run_trial\n'
    "    raise kt.errors.FailedTrialError(\n"
    "keras_tuner.src.errors.FailedTrialError: training diverged (loss [nan]); "
    "lower learning_rate or clipnorm\n\n"
)
REASON = "training diverged (loss [nan]); lower learning_rate or clipnorm"

# Per trial: the metrics reported at each step (the last step's values count),
# or None for a failed trial.
REPORTS = [
    [
        {"objective": 0.9, "val_mse": 0.045, "val_spearman": 0.71, "sts_pearson": 0.79},
        {
            "objective": 0.3,
            "val_mse": 0.020,
            "val_spearman": 0.85,
            "sts_pearson": 0.78,
            "domain_term": 0.3,
            "epochs_run": 2.0,
        },
    ],
    None,
    [{"objective": 0.1, "val_mse": 0.030, "val_spearman": 0.80, "sts_pearson": 0.82}],
    [{"objective": 0.5, "val_mse": 0.040, "val_spearman": 0.75, "sts_pearson": 0.70}],
]


def oracle_for(kind: str, project_dir: Path, max_trials: int, *hp: str):
    space = SearchSpace().with_overrides(parse_hp_options(hp))
    oracle = make_oracle(
        kind, space, max_trials=max_trials, max_epochs=2, seed=3, max_consecutive_failures=3
    )
    kt_compat.set_project_dir(oracle, project_dir)
    oracle.verbose = 0
    return oracle


def run_trial(oracle, reports: list[dict] | None):
    """One trial through the oracle, as SiameseTuner's search loop would run it."""
    trial = oracle.create_trial("tuner0")
    assert trial.status == "RUNNING"
    if reports is None:
        trial.status = "FAILED"
        trial.message = TRACEBACK
    else:
        for step, metrics in enumerate(reports):
            oracle.update_trial(trial.trial_id, metrics, step=step)
        trial.status = "COMPLETED"
    oracle.end_trial(trial)
    oracle.save()  # as BaseTuner.on_trial_end does, once the trial is no longer ongoing
    return trial


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Path:
    project_dir = tmp_path_factory.mktemp("runs") / "search"
    oracle = oracle_for("random", project_dir, len(REPORTS), "epochs=3", "batch_size=8,16")
    for reports in REPORTS:
        run_trial(oracle, reports)
    (project_dir / CONFIG_FILE).write_text("{}")
    (project_dir / BASE_METRICS_FILE).write_text(json.dumps(BASE))
    return project_dir


def invoke(*args: str):
    return CliRunner().invoke(main, list(map(str, args)))


# -- load_trials ----------------------------------------------------------------


def test_keras_tuner_wrote_its_own_trial_files(project):
    assert sorted(p.parent.name for p in project.glob("trial_*/trial.json")) == [
        "trial_0",
        "trial_1",
        "trial_2",
        "trial_3",
    ]
    assert (project / "oracle.json").is_file()


def test_load_trials(project):
    trials = load_trials(project)
    assert [t["trial_id"] for t in trials] == ["0", "1", "2", "3"]
    assert [t["status"] for t in trials] == ["COMPLETED", "FAILED", "COMPLETED", "COMPLETED"]
    for t in trials:
        # No tuner/* keys; a fixed late parameter is not in KerasTuner's space.
        assert set(t["hyperparameters"]) == set(PARAM_NAMES) - set(LATE_PARAMS)
        assert t["hyperparameters"]["epochs"] == 3
        assert t["hyperparameters"]["batch_size"] in (8, 16)
        assert 1e-6 <= t["hyperparameters"]["learning_rate"] <= 1e-4
    first = trials[0]
    # The last reported value of each metric, not the first.
    assert first["objective"] == 0.3 and first["val_mse"] == 0.02
    assert first["sts_pearson"] == 0.78 and first["val_spearman"] == 0.85
    assert first["domain_term"] == 0.3 and first["epochs_run"] == 2.0
    assert first["message"] is None
    failed = trials[1]
    assert failed["objective"] is None
    assert "val_mse" not in failed
    # Only the traceback's last line: what failed.
    assert failed["message"].endswith(REASON)
    assert "\n" not in failed["message"] and "Traceback" not in failed["message"]


def test_ranked_and_best(project):
    trials = load_trials(project)
    assert [t["trial_id"] for t in ranked(trials)] == ["2", "0", "3"]
    best = best_trial(project)
    assert best["trial_id"] == "2" and best["objective"] == 0.1


def test_base_metrics(project, tmp_path):
    assert load_base_metrics(project) == BASE
    assert load_base_metrics(tmp_path) == {}


def _rows(table: str) -> dict[str, list[str]]:
    """The table's first block: trial id -> its cells (rank and trial dropped)."""
    block = table.split("\n\n")[1].splitlines()
    rows = {}
    for line in block[1:]:
        cells = line.split()
        if cells[0] == "base":
            rows["base"] = cells[1:]
        else:
            start = 3 if cells[1] == "best" else 2
            rows[cells[start - 1]] = [cells[0], *cells[start:]]
    return rows


def test_format_table(project):
    table = format_results(load_trials(project), load_base_metrics(project), {})
    heading, first = table.split("\n\n")[:2]
    assert "Ranked by the objective, guarded on val_mse (lower is better)" in heading
    assert "STS-B guard ON" in heading
    assert "Same in every trial:" in heading and "epochs=3" in heading
    header = first.splitlines()[0].split()
    assert header[:7] == [
        "rank",
        "trial",
        "objective",
        "val_mse",
        "val_spearman",
        "sts_pearson",
        "learning_rate",
    ]
    assert "epochs" not in header  # the same in every trial: above the table
    rows = _rows(table)
    assert list(rows) == ["base", "2", "0", "3", "1"]  # ranked by the objective, failed last
    assert rows["base"][:4] == ["1", "0.05", "0.7", "0.8"]
    # trial 2, the best: objective 0.1 (base 1.0), val_mse 0.03 - 0.05, sts 0.82 - 0.80.
    assert rows["2"][:8] == ["1", "0.1", "(-0.9)", "0.03", "(-0.02)", "0.8", "(+0.1)", "0.82"]
    assert "1 best  2" in table
    # trial 0: val_mse 0.02 - 0.05, sts 0.78 - 0.80.
    assert rows["0"][:8] == ["2", "0.3", "(-0.7)", "0.02", "(-0.03)", "0.85", "(+0.15)", "0.78"]
    assert rows["1"][:5] == ["-", "FAILED", "-", "-", "-"]
    assert table.splitlines()[-1] == f"trial 1: FAILED: {REASON}"
    assert max(map(len, table.splitlines())) <= WIDTH


def test_format_table_without_base(project):
    table = format_results(load_trials(project), {}, {})
    first = table.split("\n\n")[1]  # the table's first block: no deltas without a base
    assert "base" not in _rows(table) and "(-" not in first and "(+" not in first
    assert "Δ" not in table.splitlines()[0]
    assert list(_rows(table)) == ["2", "0", "3", "1"]


# -- the `results` command ------------------------------------------------------


def test_results_table_cli(project):
    result = invoke("results", project)
    assert result.exit_code == 0, result.output
    assert result.stdout == format_results(load_trials(project), BASE, {}) + "\n"


def test_results_json_cli(project):
    result = invoke("results", project, "--json")
    assert result.exit_code == 0, result.output
    listed = json.loads(result.stdout)
    assert listed == records(load_trials(project), BASE, {})
    assert [(t["trial_id"], t["rank"]) for t in listed] == [
        ("base", None),
        ("2", 1),
        ("0", 2),
        ("3", 3),
        ("1", None),
    ]
    failed = listed[-1]
    assert failed["status"] == "FAILED" and failed["objective"] is None
    assert failed["val_mse"] is None and failed["message"].endswith(REASON)
    assert listed[0]["status"] == "BASE" and listed[0]["sts_pearson"] == 0.80


def test_results_pareto_cli(project):
    # 0 (mse 0.02, sts 0.78) and 2 (mse 0.03, sts 0.82) trade off; 3 is dominated
    # by both; the failed trial 1 has no metrics.
    result = invoke("results", project, "--json", "--pareto")
    assert result.exit_code == 0, result.output
    listed = json.loads(result.stdout)
    assert [t["trial_id"] for t in listed] == ["base", "2", "0"]
    table = invoke("results", project, "--pareto")
    assert table.exit_code == 0
    assert table.stdout.startswith(
        "Pareto front on val_mse (lower is better) and sts_pearson (higher is better): "
        "2 of 3 completed trials"
    )
    assert list(_rows(table.stdout.split("\n\n", 1)[1])) == ["base", "2", "0"]


RETRIEVAL_REPORTS = [  # (val_mse, retrieval_r1, sts_pearson)
    [{"objective": 0.4, "val_mse": 0.020, "retrieval_r1": 0.50, "sts_pearson": 0.78}],
    [{"objective": 0.2, "val_mse": 0.030, "retrieval_r1": 0.70, "sts_pearson": 0.80}],
    [{"objective": 0.3, "val_mse": 0.040, "retrieval_r1": 0.60, "sts_pearson": 0.82}],
    [{"objective": 0.5, "val_mse": 0.025, "retrieval_r1": 0.40, "sts_pearson": 0.79}],
]


@pytest.mark.parametrize(
    "config, front",
    [
        ({"domain_metric": "retrieval"}, ["1", "2"]),  # 0 and 3 lose to 1 on both axes
        ({"domain_metric": "mse"}, ["0", "1", "2", "3"]),  # on val_mse every trial trades off
        ({}, ["0", "1", "2", "3"]),  # a search made before --domain-metric: mse
    ],
)
def test_results_pareto_follows_the_domain_metric(tmp_path, config, front):
    project_dir = tmp_path / "search"
    oracle = oracle_for("random", project_dir, len(RETRIEVAL_REPORTS))
    for reports in RETRIEVAL_REPORTS:
        run_trial(oracle, reports)
    (project_dir / CONFIG_FILE).write_text(json.dumps(config))
    result = invoke("results", project_dir, "--json", "--pareto")
    assert result.exit_code == 0, result.output
    listed = json.loads(result.stdout)  # best (lowest objective) first
    assert sorted(t["trial_id"] for t in listed) == front


def test_results_pareto_without_trials_names_the_axes(tmp_path):
    config = {"domain_metric": "retrieval", "sts_source": "sts-dev.csv"}
    (tmp_path / CONFIG_FILE).write_text(json.dumps(config))
    result = invoke("results", tmp_path, "--pareto")
    assert result.exit_code == 0
    assert result.stdout == (
        "No completed trials with retrieval_r1 and sts_pearson yet (the Pareto front needs both).\n"
    )


@pytest.mark.parametrize(
    "make_dir",
    [
        lambda tmp: tmp,  # an existing folder without search_config.json
        lambda tmp: tmp / "does-not-exist",
    ],
)
def test_results_on_a_non_project_dir(tmp_path, make_dir):
    (tmp_path / "trial_0").mkdir()
    target = make_dir(tmp_path)
    result = invoke("results", target)
    assert result.exit_code == 1
    assert result.output.startswith("Error: ")
    assert f"'{target}' is not a domaintune search directory (no {CONFIG_FILE})" in result.output
    assert "Traceback" not in result.output
    assert not isinstance(result.exception, UserError)  # handled, not escaped
    with pytest.raises(UserError, match="not a domaintune search directory"):
        load_trials(target)


def test_results_on_a_damaged_trial_file(tmp_path):
    (tmp_path / CONFIG_FILE).write_text("{}")
    (tmp_path / "trial_0").mkdir()
    (tmp_path / "trial_0" / "trial.json").write_text('{"trial_id": "0", ')
    result = invoke("results", tmp_path)
    assert result.exit_code == 1
    assert "Error: Cannot read" in result.output and "may be damaged" in result.output
    assert "Traceback" not in result.output


def test_project_without_trials(tmp_path):
    (tmp_path / CONFIG_FILE).write_text("{}")
    assert load_trials(tmp_path) == []
    result = invoke("results", tmp_path)
    assert result.exit_code == 0 and result.stdout == "No trials yet.\n"
    pareto = invoke("results", tmp_path, "--pareto")  # STS-B not measured: no front
    assert pareto.exit_code == 0 and "No Pareto front" in pareto.stdout
    assert json.loads(invoke("results", tmp_path, "--json").stdout) == []
    with pytest.raises(UserError, match="No completed trial"):
        best_trial(tmp_path)


def test_only_failed_trials_have_no_best(tmp_path):
    project_dir = tmp_path / "search"
    oracle = oracle_for("random", project_dir, 5)
    run_trial(oracle, None)
    (project_dir / CONFIG_FILE).write_text("{}")
    assert [t["status"] for t in load_trials(project_dir)] == ["FAILED"]
    assert ranked(load_trials(project_dir)) == []
    with pytest.raises(UserError, match="No completed trial in"):
        best_trial(project_dir)


# -- KerasTuner specifics ---------------------------------------------------------


def test_hyperband_internal_keys_are_dropped(tmp_path):
    project_dir = tmp_path / "search"
    oracle = oracle_for("hyperband", project_dir, 0)
    trial = run_trial(oracle, [{"objective": 0.2, "val_mse": 0.01}])
    (project_dir / CONFIG_FILE).write_text("{}")
    raw = json.loads((project_dir / f"trial_{trial.trial_id}" / "trial.json").read_text())
    assert any(k.startswith("tuner/") for k in raw["hyperparameters"]["values"])
    (loaded,) = load_trials(project_dir)
    assert not any(k.startswith("tuner/") for k in loaded["hyperparameters"])
    assert "learning_rate" in loaded["hyperparameters"]
    assert loaded["objective"] == 0.2


def test_trials_stay_in_id_order_when_resumed_with_more_trials(tmp_path):
    # KerasTuner pads trial ids to the width of max_trials: a search of 3 trials
    # resumed with --max-trials 12 continues with "03", which sorts before "1".
    project_dir = tmp_path / "search"
    first = oracle_for("random", project_dir, 3)
    for objective in (0.3, 0.2, 0.1):
        run_trial(first, [{"objective": objective}])
    resumed = oracle_for("random", project_dir, 12)
    resumed.reload()
    run_trial(resumed, [{"objective": 0.05}])
    (project_dir / CONFIG_FILE).write_text("{}")
    assert sorted(p.name for p in project_dir.glob("trial_*")) == [
        "trial_0",
        "trial_03",
        "trial_1",
        "trial_2",
    ]
    trials = load_trials(project_dir)
    assert [t["trial_id"] for t in trials] == ["0", "1", "2", "03"]
    assert [t["objective"] for t in trials] == [0.3, 0.2, 0.1, 0.05]
    assert best_trial(project_dir)["trial_id"] == "03"
