"""KerasTuner's oracles over a search space: which one, and how many trials it runs."""

from __future__ import annotations

import keras_tuner as kt

from domaintune import kt_compat
from domaintune.evaluation import names
from domaintune.search.space import SearchSpace


def make_oracle(
    kind: str,
    space: SearchSpace,
    *,
    max_trials: int,
    max_epochs: int,
    seed: int,
    max_consecutive_failures: int,
    max_retries_per_trial: int = 0,
):
    """One of KerasTuner's oracles over ``space``, minimising ``objective``."""
    objective = kt.Objective(names.OBJECTIVE, "min")
    common = dict(
        objective=objective,
        seed=kt_compat.oracle_seed(seed),
        tune_new_entries=False,
        allow_new_entries=False,
        max_retries_per_trial=max_retries_per_trial,
        max_consecutive_failed_trials=max_consecutive_failures,
    )
    hp = space.kt_hyperparameters(grid=(kind == "grid"))
    if kind == "random":
        return kt.oracles.RandomSearchOracle(max_trials=max_trials, hyperparameters=hp, **common)
    if kind == "bayesian":
        return kt.oracles.BayesianOptimizationOracle(
            max_trials=max_trials, hyperparameters=hp, **common
        )
    if kind == "grid":
        return kt.oracles.GridSearchOracle(max_trials=max_trials, hyperparameters=hp, **common)
    if kind == "hyperband":
        # Hyperband sizes itself from max_epochs: it has no max_trials.
        return kt.oracles.HyperbandOracle(
            max_epochs=max_epochs, factor=3, hyperband_iterations=1, hyperparameters=hp, **common
        )
    raise ValueError(f"unknown tuner {kind!r}; choose from {kt_compat.TUNERS}")


def planned_trials(oracle, max_trials: int) -> int:
    """How many trials the oracle will run (Hyperband decides for itself)."""
    if isinstance(oracle, kt.oracles.HyperbandOracle):
        return kt_compat.hyperband_planned_trials(oracle)
    return max_trials
