"""Search hooks and the KerasTuner compatibility layer.

A SearchCallback given to a real (tiny) search hears each trial begin, each
phase it went through end, in order, and the trial end, failed ones with
their reason.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Mapping
from typing import Any

import pytest

from domaintune import kt_compat
from domaintune.reporting.results import load_trials
from domaintune.search.callbacks import PHASES, SearchCallback


class Recorder(SearchCallback):
    def __init__(self):
        self.events: list[tuple] = []

    def on_trial_begin(self, trial_id: str, hyperparameters: Mapping[str, Any]) -> None:
        self.events.append(("begin", trial_id, dict(hyperparameters)))

    def on_phase_end(self, trial_id: str, phase: str, seconds: float) -> None:
        self.events.append(("phase", trial_id, phase, seconds))

    def on_trial_end(
        self,
        trial_id: str,
        status: str,
        metrics: Mapping[str, float],
        seconds: float,
        message: str | None = None,
    ) -> None:
        self.events.append(("end", trial_id, status, dict(metrics), seconds, message))


def test_callback_hears_begin_phases_and_end_of_every_trial(tmp_path, tiny_model_dir):
    from domaintune.data.pairs import sample_path
    from domaintune.search.runner import SearchConfig, run_search

    recorder = Recorder()
    project = tmp_path / "p"
    # Grid over two learning rates: 1e30 diverges (a failed trial), 1e-2 trains.
    config = SearchConfig(
        train=str(sample_path()),
        base=str(tiny_model_dir),
        sts="none",
        tuner="grid",
        max_trials=2,
        seed=1,
        project_dir=str(project),
        hp_overrides={
            "learning_rate": [1e30, 1e-2],
            "clipnorm": [1e30],
            "clip_epsilon": [1e-5],
            "batch_size": [32],
            "epochs": [1],
        },
    )
    run_search(config, callbacks=[recorder])

    trials = {t["trial_id"]: t for t in load_trials(project)}
    events = recorder.events
    assert [e[0] for e in events].count("begin") == len(trials) == 2
    by_trial: dict[str, list[tuple]] = {}
    for event in events:  # one trial at a time, each opened by its begin event
        if event[0] == "begin":
            assert event[1] not in by_trial, events
            by_trial[event[1]] = []
        assert event[1] == list(by_trial)[-1], events
        by_trial[event[1]].append(event)
    assert set(by_trial) == set(trials)

    for trial_id, (begin, *phases, end) in by_trial.items():
        assert begin[0] == "begin" and end[0] == "end", by_trial[trial_id]
        assert {p[0] for p in phases} == {"phase"}
        names = [p[2] for p in phases]
        assert names == sorted(names, key=PHASES.index)  # in order, each at most once
        assert all(p[3] >= 0 for p in phases)
        hps = begin[2]
        assert not any(k.startswith("tuner/") for k in hps)
        _, _, status, metrics, seconds, message = end
        assert seconds >= sum(p[3] for p in phases)
        assert status == trials[trial_id]["status"]
        if hps["learning_rate"] == 1e30:
            assert status == "FAILED"
            # Diverged: detected after fit, so neither scored nor checkpointed.
            assert names == ["restore", "build", "fit"]
            assert "diverged" in message and message == trials[trial_id]["message"]
            assert "objective" not in metrics
        else:
            assert status == "COMPLETED" and message is None
            # The only completed trial is the best so far: its checkpoint is written.
            assert names == list(PHASES)
            assert metrics["objective"] == pytest.approx(trials[trial_id]["objective"])


def test_failed_trial_prefix_names_keras_tuners_class():
    import keras_tuner as kt

    error = kt.errors.FailedTrialError
    assert f"{error.__module__}.{error.__qualname__}: " == kt_compat.FAILED_TRIAL_PREFIX
    assert (
        kt_compat.strip_failed_trial_prefix(f"{kt_compat.FAILED_TRIAL_PREFIX}training diverged")
        == "training diverged"
    )


def test_reading_results_does_not_import_keras_tuner():
    """kt_compat is imported by the results reader: it must stay light."""
    code = (
        "import sys, domaintune.kt_compat, domaintune.reporting.results; "
        "sys.exit('keras_tuner' in sys.modules)"
    )
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0
