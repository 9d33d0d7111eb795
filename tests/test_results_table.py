"""What a user reads after a search: the ``results`` table, its JSON, the
summary that ends a search, and their word on the STS-B guard.

Trials are written as KerasTuner's ``trial.json`` files by hand, so every
number is known and the expected text is exact (snapshot style).
"""
# ruff: noqa: E501  (the snapshots are as wide as the table: up to 120 columns)

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
from click.testing import CliRunner

from domaintune.cli import main
from domaintune.reporting.results import BASE_METRICS_FILE, CONFIG_FILE
from domaintune.reporting.status import guard_of, worse_warning
from domaintune.reporting.table import WIDTH, format_results, records
from domaintune.search.runner import _log_summary

FIXED = {
    "epochs": 2,
    "loss": "angular_mse",
    "scale": 20.0,
    "positive_threshold": 0.99,
    "mix_weight": 1.0,
    "clipnorm_scope": "variable",
    "train_embeddings": True,
    "sparse_updates": True,
}
# The offline demo of issue 14: no STS-B, ranked on val_mse; the best trial
# lowered retrieval recall@1 and MRR against the base.
OFFLINE_CONFIG = {
    "objective": "guarded",
    "domain_metric": "mse",
    "objective_weight": 1.0,
    "tolerance": 0.005,
    "sts_source": None,
}
OFFLINE_BASE = {
    "val_mse": 0.0452,
    "val_pearson": 0.61,
    "val_spearman": 0.597,
    "sts_pearson": None,
    "retrieval_r1": 0.577,
    "retrieval_r5": 0.85,
    "retrieval_mrr": 0.713,
}


def _trial(trial_id, lr, clipnorm, batch, metrics=None, status="COMPLETED", message=None):
    return {
        "trial_id": trial_id,
        "status": status,
        "hyperparameters": {
            "learning_rate": lr,
            "clipnorm": clipnorm,
            "batch_size": batch,
            **FIXED,
        },
        "message": message,
        **(metrics or {}),
    }


def _domain(objective, val_mse, r1, mrr, spearman=0.6):
    return {
        "objective": objective,
        "domain_term": objective,
        "domain_only": 1.0,
        "val_mse": val_mse,
        "val_pearson": 0.62,
        "val_spearman": spearman,
        "retrieval_r1": r1,
        "retrieval_r5": 0.85,
        "retrieval_mrr": mrr,
        "epochs_run": 2.0,
    }


OFFLINE_TRIALS = [
    _trial("0", 3.259e-06, 0.1948, 16, _domain(0.9876, 0.04464, 0.577, 0.71)),
    _trial("1", 1e30, 0.8648, 8, status="FAILED", message="training diverged (loss [nan])"),
    _trial("2", 5.82e-05, 0.5249, 8, _domain(0.8412, 0.03802, 0.5, 0.664, spearman=0.612)),
    _trial("3", 2.027e-06, 2.5, 32, _domain(0.9921, 0.04484, 0.577, 0.713)),
]

OFFLINE_TABLE = """\
Ranked by the objective, guarded on val_mse (lower is better); metrics as value (Δ against the untuned base).
STS-B guard OFF: no STS-B data, so trials are ranked on val_mse alone and may lose general language skill unnoticed;
  turn it on with --sts PATH (a folder with sts-dev.csv, or the Stsbenchmark.tar.gz archive).
Same in every trial: epochs=2, loss=angular_mse, scale=20, positive_threshold=0.99, mix_weight=1,
  clipnorm_scope=variable, train_embeddings=True, sparse_updates=True

rank    trial  objective         val_mse             val_spearman    retrieval_r1  retrieval_mrr   learning_rate
        base   1                 0.0452              0.597           0.577         0.713
1 best  2      0.8412 (-0.159)   0.03802 (-0.00718)  0.612 (+0.015)  0.5 (-0.077)  0.664 (-0.049)  5.82e-05
2       0      0.9876 (-0.0124)  0.04464 (-0.00056)  0.6 (+0.003)    0.577 (+0)    0.71 (-0.003)   3.259e-06
3       3      0.9921 (-0.0079)  0.04484 (-0.00036)  0.6 (+0.003)    0.577 (+0)    0.713 (+0)      2.027e-06
-       1      FAILED            -                   -               -             -               1e+30

rank    trial  clipnorm  batch_size
1 best  2      0.5249    8
2       0      0.1948    16
3       3      2.5       32
-       1      0.8648    8

trial 1: FAILED: training diverged (loss [nan])"""


def test_offline_table_snapshot():
    table = format_results(OFFLINE_TRIALS, OFFLINE_BASE, OFFLINE_CONFIG)
    assert table == OFFLINE_TABLE


def test_table_fits_120_columns_marks_the_best_and_shows_only_varying_hyperparameters():
    table = format_results(OFFLINE_TRIALS, OFFLINE_BASE, OFFLINE_CONFIG)
    assert max(map(len, table.splitlines())) <= WIDTH
    header = next(line for line in table.splitlines() if line.startswith("rank"))
    assert not set(header.split()) & set(FIXED), "a fixed hyperparameter has a column"
    marked = [line.split()[2] for line in table.splitlines() if "best" in line.split()[:2]]
    assert marked and set(marked) == {"2"}  # trial 2, the lowest objective, in every block
    assert "lower is better" in table
    # --wide: one block, however wide.
    wide = format_results(OFFLINE_TRIALS, OFFLINE_BASE, OFFLINE_CONFIG, wide=True)
    assert sum(line.startswith("rank") for line in wide.splitlines()) == 1
    assert max(map(len, wide.splitlines())) > WIDTH


def test_numbers_are_g_style():
    table = format_results(OFFLINE_TRIALS, OFFLINE_BASE, OFFLINE_CONFIG)
    assert "1e+30" in table and "1000000000" not in table  # the diverged learning rate
    assert "3.259e-06" in table and "scale=20," in table and "20.0000" not in table


def test_json_records_have_the_base_a_rank_and_null_for_missing_metrics():
    listed = records(OFFLINE_TRIALS, OFFLINE_BASE, OFFLINE_CONFIG)
    assert [(r["trial_id"], r["rank"], r["best"]) for r in listed] == [
        ("base", None, False),
        ("2", 1, True),
        ("0", 2, False),
        ("3", 3, False),
        ("1", None, False),
    ]
    base, best, *_, failed = listed
    assert base["status"] == "BASE" and base["objective"] == 1.0
    assert base["retrieval_r1"] == 0.577 and base["epochs_run"] is None
    assert best["sts_pearson"] is None and "sts_term" not in best  # never measured, never 0
    assert failed["objective"] is None and failed["val_mse"] is None
    assert failed["message"] == "training diverged (loss [nan])"
    assert set(base) == set(failed) - {"delta_vs_base"}  # the same keys in every entry
    assert best["delta_vs_base"]["retrieval_r1"] == pytest.approx(-0.077)
    assert best["delta_vs_base"]["objective"] == pytest.approx(0.8412 - 1.0)


def test_worse_than_base_warning_and_its_hint():
    best = OFFLINE_TRIALS[2]
    warning = worse_warning(best, OFFLINE_BASE, OFFLINE_CONFIG)
    assert warning == (
        "Warning: the best trial (2) is worse than the untuned base on retrieval_r1 "
        "(0.577 -> 0.5), retrieval_mrr (0.713 -> 0.664). The search ranks on val_mse; to "
        "select on retrieval_r1, rerun with --domain-metric retrieval (in a new "
        "--project-dir, or with --overwrite)."
    )
    # Not worse on anything: no warning.
    assert worse_warning(OFFLINE_TRIALS[3], OFFLINE_BASE, OFFLINE_CONFIG) is None
    # Worse on the metric the search ranks on: no trial beat the base.
    retrieval = {**OFFLINE_CONFIG, "domain_metric": "retrieval"}
    assert "No trial beat the base on retrieval_r1" in worse_warning(best, OFFLINE_BASE, retrieval)
    # Worse on val_mse while selecting on retrieval: the hint is --domain-metric mse.
    worse_mse = {**best, "val_mse": 0.05, "retrieval_r1": 0.6, "retrieval_mrr": 0.72}
    assert "--domain-metric mse" in worse_warning(worse_mse, OFFLINE_BASE, retrieval)


def test_guard_status_sentences():
    off = guard_of(OFFLINE_CONFIG, OFFLINE_BASE)
    assert not off.on and not off.measured
    assert off.status().startswith("STS-B guard OFF") and "--sts PATH" in off.status()
    on = guard_of({**OFFLINE_CONFIG, "sts_source": "sts-dev.csv"}, {"sts_pearson": 0.83})
    assert on.on and on.status().startswith("STS-B guard ON") and "0.005" in on.status()
    plain = guard_of({"objective": "val_mse", "sts_source": "sts-dev.csv"}, {})
    assert not plain.on and plain.measured and "--objective guarded" in plain.status()
    assert on.card({"sts_delta": -0.002, "guard_violated": 0.0}) == {
        "on": True,
        "status": on.status(),
        "tolerance": 0.005,
        "weight": 1.0,
        "sts_delta": -0.002,
        "violated": False,
    }
    assert off.card({})["tolerance"] is None and off.card({})["sts_delta"] is None


# -- the same through a project directory: the summary and the command ----------------


def write_project(project: Path, trials, base, config) -> Path:
    """A project dir as a search leaves it: KerasTuner's trial.json files."""
    project.mkdir(parents=True)
    (project / CONFIG_FILE).write_text(json.dumps(config))
    (project / BASE_METRICS_FILE).write_text(json.dumps(base))
    for trial in trials:
        metrics = {
            k: v for k, v in trial.items() if k not in ("trial_id", "status", "hyperparameters")
        }
        metrics.pop("message")
        state = {
            "trial_id": trial["trial_id"],
            "status": trial["status"],
            "hyperparameters": {"values": trial["hyperparameters"]},
            "metrics": {
                "metrics": {
                    name: {"observations": [{"value": [value], "step": 1}]}
                    for name, value in metrics.items()
                }
            },
            "message": trial["message"],
        }
        folder = project / f"trial_{trial['trial_id']}"
        folder.mkdir()
        (folder / "trial.json").write_text(json.dumps(state))
    return project


@pytest.fixture
def offline_project(tmp_path) -> Path:
    return write_project(tmp_path / "demo", OFFLINE_TRIALS, OFFLINE_BASE, OFFLINE_CONFIG)


def test_offline_summary_says_the_guard_is_off_and_flags_the_worse_best(offline_project, caplog):
    with caplog.at_level(logging.INFO, logger="domaintune"):
        _log_summary(offline_project, OFFLINE_BASE)
    text = "\n".join(r.getMessage() for r in caplog.records)
    assert f"Best trials (3 of 4; all of them: domaintune results {offline_project}):" in text
    # The table of `domaintune results`, of the best (ranked) trials only.
    best = format_results(OFFLINE_TRIALS, OFFLINE_BASE, OFFLINE_CONFIG, limit=5)
    assert best in text and "1 best  2" in best and "FAILED" not in best
    assert "STS-B guard OFF" in text and "--sts PATH" in text
    (warning,) = [r for r in caplog.records if "Warning: the best trial" in r.getMessage()]
    assert "worse than the untuned base on retrieval_r1 (0.577 -> 0.5)" in warning.getMessage()
    assert "--domain-metric retrieval" in warning.getMessage()
    assert max(len(line) for line in warning.getMessage().splitlines()) <= WIDTH
    assert text.rstrip().endswith(f"domaintune export {offline_project} --out exported-model")


def test_results_command_snapshot(offline_project):
    result = CliRunner().invoke(main, ["results", str(offline_project)])
    assert result.exit_code == 0, result.output
    table, warning = result.stdout.split("\n\nWarning: ")
    assert table == OFFLINE_TABLE
    assert warning.startswith("the best trial (2) is worse than the untuned base")
    assert max(map(len, result.stdout.splitlines())) <= WIDTH


def test_results_json_and_pareto_without_sts(offline_project):
    listed = json.loads(
        CliRunner().invoke(main, ["results", str(offline_project), "--json"]).stdout
    )
    assert listed == records(OFFLINE_TRIALS, OFFLINE_BASE, OFFLINE_CONFIG)
    pareto = CliRunner().invoke(main, ["results", str(offline_project), "--pareto"])
    assert pareto.exit_code == 0
    assert pareto.stdout.startswith("No Pareto front: this search did not measure STS-B")
    assert "--sts PATH" in pareto.stdout and "val_mse is its only axis" in pareto.stdout
    as_json = CliRunner().invoke(main, ["results", str(offline_project), "--pareto", "--json"])
    assert as_json.exit_code == 0 and json.loads(as_json.stdout) == []
    assert "No Pareto front" in as_json.stderr


def test_pareto_axes_follow_the_domain_metric_with_sts(tmp_path):
    config = {**OFFLINE_CONFIG, "domain_metric": "retrieval", "sts_source": "sts-dev.csv"}
    base = {**OFFLINE_BASE, "sts_pearson": 0.83}
    trials = [
        _trial("0", 1e-5, 1.0, 8, {**_domain(0.5, 0.04, 0.70, 0.8), "sts_pearson": 0.80}),
        _trial("1", 2e-5, 1.0, 8, {**_domain(0.6, 0.04, 0.60, 0.7), "sts_pearson": 0.82}),
        _trial("2", 3e-5, 1.0, 8, {**_domain(0.7, 0.04, 0.55, 0.7), "sts_pearson": 0.81}),
    ]
    project = write_project(tmp_path / "p", trials, base, config)
    result = CliRunner().invoke(main, ["results", str(project), "--pareto"])
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith(
        "Pareto front on retrieval_r1 (higher is better) and sts_pearson (higher is better): "
        "2 of 3 completed trials"
    )
    assert "STS-B guard ON" in result.stdout
    rows = [line.split() for line in result.stdout.splitlines() if line[:1].isdigit()]
    trials = [row[2] if row[1] == "best" else row[1] for row in rows]
    assert trials == ["0", "1"]  # trial 2 is beaten by trial 1 on both axes
