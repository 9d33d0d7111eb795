"""--prune median: per-epoch objectives on disk, and the median stopping rule
applied to them, in a real search on the tiny model."""

from __future__ import annotations

import statistics

import pytest

from domaintune.evaluation import names
from domaintune.reporting.results import load_trials
from domaintune.search.pruning import (
    STARTUP_TRIALS,
    WARMUP_EPOCHS,
    MedianRule,
    read_curve,
    write_curve,
)

from .test_search import search


def test_median_rule_counts_only_completed_unstopped_trials(tmp_path):
    for trial_id, value in (("0", 0.1), ("1", 0.2), ("2", 0.3)):
        (tmp_path / f"trial_{trial_id}").mkdir()
        write_curve(tmp_path / f"trial_{trial_id}", {1: 9.0, 2: value}, None, done=True)
    (tmp_path / "trial_3").mkdir()  # still running: not a reference yet
    write_curve(tmp_path / "trial_3", {2: 0.0}, None, done=False)
    (tmp_path / "trial_4").mkdir()  # stopped by the rule: not a reference either
    write_curve(tmp_path / "trial_4", {2: 0.0}, 2, done=True)
    rule = MedianRule(tmp_path, "5")
    assert sorted(rule.others_at(2)) == [0.1, 0.2, 0.3]
    assert rule.should_stop(2, 0.25) and not rule.should_stop(2, 0.15)
    assert not rule.should_stop(WARMUP_EPOCHS, 100.0), "the first epoch is never judged"
    assert not rule.should_stop(3, 100.0), "no completed trial reached epoch 3"
    write_curve(tmp_path / "trial_2", {2: 0.3}, None, done=False)
    assert not rule.should_stop(2, 100.0), f"fewer than {STARTUP_TRIALS} references"


def test_prune_median_stops_trials_worse_than_the_median(tmp_path, tiny_model_dir):
    project = tmp_path / "p"
    output = search(
        project,
        tiny_model_dir,
        "--tuner",
        "grid",
        "--max-trials",
        "6",
        "--epochs",
        "4",
        "--prune",
        "median",
        "--hp",
        "learning_rate=3e-3",  # still improving after epoch 2
    )
    trials = {t["trial_id"]: t for t in load_trials(project)}
    assert all(t["status"] == "COMPLETED" for t in trials.values())
    curves = {i: read_curve(project / f"trial_{i}") for i in trials}
    assert all(c["done"] and c["objective"] for c in curves.values())
    stopped = [i for i, c in curves.items() if c["stopped_at"] is not None]
    assert stopped, "this search stops some trials; the test would check nothing"
    assert "worse than the median" in output
    # Replay the rule in trial order: references are the earlier, unstopped trials.
    for i in sorted(curves, key=int):
        references = [c for j, c in curves.items() if int(j) < int(i) and c["stopped_at"] is None]
        expected = None
        for epoch, value in sorted(curves[i]["objective"].items()):
            at = [c["objective"][epoch] for c in references if epoch in c["objective"]]
            enough = epoch > WARMUP_EPOCHS and len(at) >= STARTUP_TRIALS
            if enough and value > statistics.median(at):
                expected = epoch
                break
        assert curves[i]["stopped_at"] == expected, i
        assert trials[i].get(names.STOPPED_AT_EPOCH) == (
            pytest.approx(expected) if expected else None
        )
        if expected:  # it trained no further than the stop
            assert max(curves[i]["objective"]) == expected


def test_prune_is_a_resume_setting(tmp_path, tiny_model_dir):
    project = tmp_path / "p"
    search(project, tiny_model_dir, "--max-trials", "1")
    from click.testing import CliRunner

    from domaintune.cli import main

    result = CliRunner().invoke(
        main,
        ["search", "--base", str(tiny_model_dir), "--sts", "none", "--project-dir", str(project)]
        + ["--hp", "batch_size=32", "--epochs", "1", "--seed", "1", "--max-trials", "1"]
        + ["--prune", "median"],
    )
    assert result.exit_code == 1 and "different settings (prune)" in result.output


def test_unknown_prune_is_a_user_error_before_anything_is_written(tmp_path):
    import domaintune as dt
    from domaintune.errors import UserError

    with pytest.raises(UserError, match="--prune 'mean': choose one of none, median"):
        dt.search(prune="mean", sts="none", project_dir=tmp_path / "p")
    assert not (tmp_path / "p").exists()
