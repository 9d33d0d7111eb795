"""Which Hyperband trials keep their checkpoints: every trial the real
KerasTuner oracle later promotes, and few others (no model: trials are ended
by hand with random scores, so every bracket shape is walked in a second)."""

from __future__ import annotations

import random

import pytest

from domaintune import kt_compat
from domaintune.evaluation import names
from domaintune.search.oracles import make_oracle
from domaintune.search.space import SearchSpace


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_pruned_trials_are_never_promoted_and_rounds_keep_few(tmp_path, seed):
    space = SearchSpace().with_overrides({"learning_rate": (1e-5, 1e-1, "range")})
    oracle = make_oracle(
        "hyperband", space, max_trials=0, max_epochs=9, seed=seed, max_consecutive_failures=3
    )
    kt_compat.set_project_dir(oracle, tmp_path / "p")
    scores = random.Random(seed)
    pruned: set[str] = set()  # completed trials whose checkpoint was given up
    kept_counts, promoted = [], []
    while True:
        trial = oracle.create_trial("tuner0")
        if trial.status == "STOPPED":
            break
        parent = trial.hyperparameters.values.get("tuner/trial_id")
        if parent:
            assert parent not in pruned, f"trial {parent} was promoted after its checkpoint went"
            promoted.append(parent)
        _complete(oracle, trial, scores.random())
        kept = kt_compat.hyperband_parent_ids(oracle)
        completed = {t.trial_id for t in oracle.trials.values() if t.status == "COMPLETED"}
        pruned |= completed - kept
        kept_counts.append(len(kept & completed))
    # Brackets of 9, 5 and 3 first-round trials; 3, 2 and 1 promoted from each.
    assert len(oracle.trials) == 23 and len(promoted) == 6
    # A round keeps at most as many as its next round has places (3 of 9),
    # plus a promoted parent whose child just ended.
    assert max(kept_counts) <= 4, kept_counts
    assert kept_counts[-1] == 0  # all brackets done: no parent left


def test_a_running_trial_may_promote_only_if_its_score_could_place(tmp_path):
    """The check a trial's own checkpoint write asks before the oracle has its
    score: better than the round's third best (3 places) or not."""
    space = SearchSpace().with_overrides({"learning_rate": (1e-5, 1e-1, "range")})
    oracle = make_oracle(
        "hyperband", space, max_trials=0, max_epochs=9, seed=0, max_consecutive_failures=3
    )
    kt_compat.set_project_dir(oracle, tmp_path / "p")
    for score in (0.1, 0.2, 0.3):
        _complete(oracle, oracle.create_trial("tuner0"), score)
    running = oracle.create_trial("tuner0")
    assert kt_compat.hyperband_may_promote(oracle, running.trial_id, 0.25)
    assert not kt_compat.hyperband_may_promote(oracle, running.trial_id, 0.35)
    assert kt_compat.hyperband_may_promote(oracle, running.trial_id, None)  # not scored yet


def _complete(oracle, trial, score: float) -> None:
    oracle.update_trial(trial.trial_id, {names.OBJECTIVE: score})
    trial.status = "COMPLETED"
    oracle.end_trial(trial)
