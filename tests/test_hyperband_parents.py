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
@pytest.mark.parametrize("fail_every", [0, 4])
def test_pruned_trials_are_never_promoted_and_rounds_keep_few(tmp_path, seed, fail_every):
    """With every 4th trial failed (fail_every=4), rounds promote fewer."""
    oracle = _oracle(tmp_path, max_epochs=9, seed=seed, failures=100)
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
        if fail_every and len(oracle.trials) % fail_every == 0:
            trial.status = "FAILED"
            oracle.end_trial(trial)
        else:
            _complete(oracle, trial, scores.random())
        kept = kt_compat.hyperband_parent_ids(oracle)
        completed = {t.trial_id for t in oracle.trials.values() if t.status == "COMPLETED"}
        pruned |= completed - kept
        kept_counts.append(len(kept & completed))
    # Brackets of 9, 5 and 3 first-round trials; 3, 2 and 1 promoted from each.
    # With failures: 7 of the 9 complete, 1 more than the 6 round 0 leaves
    # out, so it promotes 1 (whose round then never promotes); 4 of the 5, 1.
    assert (len(oracle.trials), len(promoted)) == ((23, 6) if not fail_every else (19, 2))
    # A round keeps at most as many as its next round has places (3 of 9),
    # plus a promoted parent whose child just ended.
    assert max(kept_counts) <= 4, kept_counts
    assert kept_counts[-1] == 0  # no promotion can come: no parent left


def test_a_running_trial_may_promote_only_if_its_score_could_place(tmp_path):
    """The check a trial's own checkpoint write asks before the oracle has its
    score: better than the round's third best (3 places) or not."""
    oracle = _oracle(tmp_path, max_epochs=9)
    for score in (0.1, 0.2, 0.3):
        _complete(oracle, oracle.create_trial("tuner0"), score)
    running = oracle.create_trial("tuner0")
    assert kt_compat.hyperband_may_promote(oracle, running.trial_id, 0.25)
    assert not kt_compat.hyperband_may_promote(oracle, running.trial_id, 0.35)
    assert kt_compat.hyperband_may_promote(oracle, running.trial_id, None)  # not scored yet
    assert not kt_compat.hyperband_may_promote(oracle, running.trial_id, float("nan"))


def test_a_round_with_a_failed_trial_keeps_no_checkpoint_it_cannot_promote(tmp_path):
    """Round 0 of the 3-trial bracket promotes once all 3 completed (more than
    the 2 it leaves out): with one failed, it never promotes, so the two
    completed trials are no parents (and the oracle indeed promotes neither)."""
    oracle = _oracle(tmp_path, max_epochs=3)
    first = oracle.create_trial("tuner0")
    first.status = "FAILED"
    oracle.end_trial(first)
    for score in (0.1, 0.2):
        _complete(oracle, oracle.create_trial("tuner0"), score)
    assert kt_compat.hyperband_parent_ids(oracle) == set()
    parents = set()
    while (trial := oracle.create_trial("tuner0")).status != "STOPPED":
        parents.add(trial.hyperparameters.values.get("tuner/trial_id"))
        _complete(oracle, trial, 0.5)
    assert parents == {None}


def test_a_parent_stays_while_its_child_may_be_retried(tmp_path):
    oracle = _oracle(tmp_path, max_epochs=3, retries=1)
    for score in (0.1, 0.2, 0.3):
        _complete(oracle, oracle.create_trial("tuner0"), score)
    child = oracle.create_trial("tuner0")
    parent = child.hyperparameters.values["tuner/trial_id"]
    child.status = "INVALID"  # e.g. a worker that stopped responding
    oracle.end_trial(child)
    assert parent in kt_compat.hyperband_parent_ids(oracle)
    retried = oracle.create_trial("tuner0")
    assert retried.hyperparameters.values["tuner/trial_id"] == parent
    _complete(oracle, retried, 0.05)
    assert parent not in kt_compat.hyperband_parent_ids(oracle)


def _oracle(tmp_path, max_epochs: int, seed: int = 0, retries: int = 0, failures: int = 3):
    space = SearchSpace().with_overrides({"learning_rate": (1e-5, 1e-1, "range")})
    oracle = make_oracle(
        "hyperband",
        space,
        max_trials=0,
        max_epochs=max_epochs,
        seed=seed,
        max_consecutive_failures=failures,
        max_retries_per_trial=retries,
    )
    kt_compat.set_project_dir(oracle, tmp_path / "p")
    return oracle


def _complete(oracle, trial, score: float) -> None:
    oracle.update_trial(trial.trial_id, {names.OBJECTIVE: score})
    trial.status = "COMPLETED"
    oracle.end_trial(trial)
