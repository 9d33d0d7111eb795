"""Hooks into a running search, Keras-callback style.

A :class:`SearchCallback` is told when a trial begins, when each timed phase
of it ends (:data:`PHASES`), and when it ends. The CLI's progress lines, the
Python API's ``on_trial_end`` and ``bench/run.py``'s phase timings are all
callbacks; none of them patches the tuner.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

#: The timed phases of a trial, in the order they run.
PHASES = ("restore", "build", "fit", "score", "checkpoint", "heatmap")


class SearchCallback:
    """Override the hooks you need; each one does nothing by default."""

    def on_trial_begin(self, trial_id: str, hyperparameters: Mapping[str, Any]) -> None:
        """A trial starts with these hyperparameter values (without
        KerasTuner's internal ``tuner/*`` keys, as in the results)."""

    def on_phase_end(self, trial_id: str, phase: str, seconds: float) -> None:
        """One of :data:`PHASES` of the trial took ``seconds``."""

    def on_trial_end(
        self,
        trial_id: str,
        status: str,
        metrics: Mapping[str, float],
        seconds: float,
        message: str | None = None,
    ) -> None:
        """The trial ended: ``status`` is KerasTuner's (COMPLETED, FAILED, ...),
        ``metrics`` what it reported, ``message`` why it failed (or None)."""
