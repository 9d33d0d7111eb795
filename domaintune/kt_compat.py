"""The one module that reaches into KerasTuner's private internals.

keras-tuner 1.4 has no public handle for some of what a long, resumable,
distributed search needs (oracle bookkeeping, Hyperband's bracket plan, the
chief's gRPC service, its DEBUG switch). Every such use lives here, each with
the behaviour it works around, so a keras-tuner upgrade touches this file only.

``keras_tuner`` imports Keras 3 and TensorFlow, so it is imported inside the
functions: the constants can be read (e.g. by :mod:`domaintune.reporting`)
without loading either.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

#: The KerasTuner oracles a search can use (``--tuner``).
TUNERS = ("random", "bayesian", "hyperband", "grid")


def oracle_seed(seed: int) -> int:
    """The seed to give a KerasTuner oracle for our ``seed``.

    Oracles do ``self.seed = seed or random.randint(1, 10000)``: seed 0 (our
    default) would mean "unseeded" and two runs would sample different
    trials. 0 maps to a fixed value outside that range; others pass as is.
    """
    return seed if seed else 10_007


#: How the last line of a failed trial's stored traceback starts when the
#: failure is a ``keras_tuner.errors.FailedTrialError`` (the class lives in a
#: private module, and the traceback names it by that module's path).
FAILED_TRIAL_PREFIX = "keras_tuner.src.errors.FailedTrialError: "


def strip_failed_trial_prefix(line: str) -> str:
    """``FailedTrialError: training diverged ...`` -> ``training diverged ...``
    (the exception's private module path says nothing to a user)."""
    return line[len(FAILED_TRIAL_PREFIX) :] if line.startswith(FAILED_TRIAL_PREFIX) else line


def quiet_failed_trials() -> None:
    """Stop KerasTuner printing each failed trial's traceback.

    It prints them while ``keras_tuner.src.config.DEBUG`` is true (the
    default) and offers no public switch; the traceback stays in the trial's
    ``message`` either way.
    """
    from keras_tuner.src import config

    config.DEBUG = False


# -- oracle state --------------------------------------------------------------


def hyperband_planned_trials(oracle: Any) -> int:
    """How many trials a ``HyperbandOracle`` runs: it sizes itself from
    ``max_epochs`` and has no public count, so sum its private bracket sizes."""
    return oracle.hyperband_iterations * sum(
        oracle._get_size(b, r)
        for b in range(oracle._get_num_brackets())
        for r in range(oracle._get_num_rounds(b))
    )


def hyperband_parent_ids(oracle: Any) -> set[str] | None:
    """Trials whose checkpoints a Hyperband oracle may still warm-start from,
    read from its private ``_brackets``: in every open bracket's rounds but the
    last, the trials that may still be promoted (see
    :func:`hyperband_may_promote`) and the promoted ones whose child trial has
    not ended for good (it may still be restoring, or be retried: INVALID).
    None when the oracle does not show its brackets (a worker's
    ``OracleClient``)."""
    brackets = getattr(oracle, "_brackets", None)
    if brackets is None:
        return None
    keep = set()
    for bracket in brackets:
        rounds = bracket["rounds"]
        future = _future_promotions(oracle, bracket)
        for round_num, (this_round, next_round) in enumerate(zip(rounds, rounds[1:])):
            keep |= {
                info["past_id"]
                for info in next_round
                if _status(oracle, info["id"]) not in ("COMPLETED", "FAILED")
            }
            for info in this_round:
                trial = oracle.trials.get(info["id"])
                score = None if trial is None else trial.score
                if _may_promote(oracle, bracket, round_num, future, info["id"], score):
                    keep.add(info["id"])
    return keep


def hyperband_may_promote(oracle: Any, trial_id: str, score: float | None) -> bool:
    """Could a Hyperband oracle still promote this trial, had it ``score``?

    True for a trial its brackets do not place (safe: kept) and when they are
    not shown; False in a bracket's last round. See :func:`_may_promote`.
    """
    for bracket in getattr(oracle, "_brackets", None) or ():
        for round_num, this_round in enumerate(bracket["rounds"]):
            if trial_id in {info["id"] for info in this_round}:
                future = _future_promotions(oracle, bracket)
                return _may_promote(oracle, bracket, round_num, future, trial_id, score)
    return True


def _future_promotions(oracle: Any, bracket: dict) -> list[int]:
    """Per round but the last, how many more of its trials can be promoted.

    The oracle promotes while more of a round's unpromoted trials are
    completed than the next round leaves out (``size - next size``). So the
    promotions to come are what the round's completed and still-pending trials
    (and those still to join it: random ones in round 0, later promotions
    after) can trigger, capped by the next round's open places.
    """
    rounds, number = bracket["rounds"], bracket["bracket_num"]
    joining = oracle._get_size(number, 0) - len(rounds[0])
    future = []
    for round_num, (this_round, next_round) in enumerate(zip(rounds, rounds[1:])):
        size, next_size = (
            oracle._get_size(number, round_num),
            oracle._get_size(number, round_num + 1),
        )
        promoted = {info["past_id"] for info in next_round}
        pending = sum(
            _status(oracle, info["id"]) != "FAILED"
            for info in this_round
            if info["id"] not in promoted
        )
        joining = max(0, min(next_size - len(next_round), pending + joining - (size - next_size)))
        future.append(joining)
    return future


def _may_promote(oracle: Any, bracket: dict, round_num: int, future: list[int], trial_id, score):
    """A trial with at least as many strictly better completed candidates as
    its round has promotions to come is never picked: each pick takes the
    best candidate, one of those or a better one."""
    if round_num >= len(future):  # the last round
        return False
    promoted = {info["past_id"] for info in bracket["rounds"][round_num + 1]}
    if trial_id in promoted:
        return False
    if score is None:  # not scored yet (running) may still be; failed never is
        return _status(oracle, trial_id) in (None, "RUNNING")
    if math.isnan(score):  # the oracle ends a NaN objective as INVALID
        return False
    sign = -1.0 if oracle.objective.direction == "max" else 1.0
    better = 0
    for info in bracket["rounds"][round_num]:
        other = oracle.trials.get(info["id"])
        if info["id"] in promoted or info["id"] == trial_id or other is None:
            continue
        if other.status == "COMPLETED" and other.score is not None:
            better += sign * other.score < sign * score
    return better < future[round_num]


def _status(oracle: Any, trial_id: str) -> str | None:
    trial = oracle.trials.get(trial_id)
    return None if trial is None else trial.status


def set_project_dir(oracle: Any, project_dir: Path) -> None:
    """Point an oracle that no Tuner owns (a chief's, or a test's) at
    ``project_dir``: a Tuner does this itself, only through the private
    ``_set_project_dir``."""
    project_dir = Path(project_dir)
    oracle._set_project_dir(str(project_dir.parent), project_dir.name)


def record_failed_end(oracle: Any, trial_id: str) -> None:
    """Record the trial that hit the consecutive-failure limit.

    ``Oracle.end_trial`` raises before writing that trial and before dropping
    it from the ongoing trials, so a resume would run it again.
    """
    oracle._save_trial(oracle.get_trial(trial_id))
    for tuner_id, ongoing in list(oracle.ongoing_trials.items()):
        if ongoing.trial_id == trial_id:
            oracle.ongoing_trials.pop(tuner_id)
    oracle.save()


def resume_oracle(oracle: Any, state_file: Path) -> None:
    """Reload a chief's saved oracle, keeping its workers' trials running.

    ``Oracle.reload`` sends every trial that was running to the private retry
    queue (even one that had just completed). A restarted chief's workers are
    usually still training, so their trials stay theirs; the lease hands the
    trial of a worker that does not come back to another one.
    """
    ongoing = json.loads(Path(state_file).read_text()).get("ongoing_trials", {})
    oracle.reload()
    for tuner_id, trial_id in ongoing.items():
        trial = oracle.trials[trial_id]
        if trial_id in oracle._retry_queue:
            oracle._retry_queue.remove(trial_id)
        if trial.status not in ("COMPLETED", "FAILED"):
            trial.status = "RUNNING"  # a retried trial is RUNNING only in memory
            oracle.ongoing_trials[tuner_id] = trial
            oracle.tuner_ids.add(tuner_id)


# -- the chief's gRPC service ----------------------------------------------------


def oracle_servicer_class() -> type:
    """KerasTuner's gRPC ``OracleServicer`` (a private module), to subclass:
    its ``start_server`` cannot be given a servicer of ours."""
    from keras_tuner.src.distribute.oracle_chief import OracleServicer

    return OracleServicer


def add_oracle_servicer(servicer: Any, server: Any) -> None:
    """Register ``servicer`` on a ``grpc.Server`` with KerasTuner's private protos."""
    from keras_tuner.src import protos

    protos.get_service_grpc().add_OracleServicer_to_server(servicer, server)


def chief_finished(servicer: Any, oracle: Any) -> bool:
    """Has the oracle stopped and every worker's trial ended? (What the
    private ``oracle_chief.start_server`` loop waits for.)"""
    from keras_tuner.src.distribute.oracle_chief import exit_chief

    return servicer.stop_triggered and exit_chief(oracle)


def stopped_trial_response(oracle: Any) -> Any:
    """The ``CreateTrial`` answer that tells a worker the search is over."""
    from keras_tuner.src import protos
    from keras_tuner.src.engine.trial import Trial, TrialStatus

    trial = Trial(hyperparameters=oracle.hyperparameters.copy(), status=TrialStatus.STOPPED)
    return protos.get_service().CreateTrialResponse(trial=trial.to_proto())


def end_trial_response() -> Any:
    """An empty ``EndTrial`` answer (KerasTuner's private protos)."""
    from keras_tuner.src import protos

    return protos.get_service().EndTrialResponse()
