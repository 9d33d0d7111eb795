"""Scoring a trial at the end of every epoch and stopping the hopeless ones.

With ``--prune median`` each trial scores its objective after every epoch
(written to ``trial_<id>/epoch_objectives.json``, so every worker of a
distributed search sees every trial's curve) and stops when its objective is
worse than the median of what the completed trials reached at the same epoch
(the median stopping rule of Google Vizier, as Optuna's ``MedianPruner``).
"""

from __future__ import annotations

import json
import logging
import statistics
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from domaintune import tf_runtime
from domaintune._io import write_atomic

#: Per-epoch objectives of a trial (the epoch number as a string key).
EPOCHS_FILE = "epoch_objectives.json"
#: The rule needs this many completed trials that reached the epoch ...
STARTUP_TRIALS = 3
#: ... and judges a trial only from its second epoch on (one epoch is noise).
WARMUP_EPOCHS = 1

log = logging.getLogger(__name__)


def read_curve(trial_dir: Path) -> dict:
    """``{"objective": {epoch: value}, "stopped_at": epoch | None, "done": bool}``."""
    try:
        state = json.loads((trial_dir / EPOCHS_FILE).read_text("utf-8"))
    except (OSError, ValueError):  # absent, or being replaced right now
        return {"objective": {}, "stopped_at": None, "done": False}
    state["objective"] = {int(k): float(v) for k, v in state["objective"].items()}
    return state


def write_curve(trial_dir: Path, objective: dict[int, float], stopped_at: int | None, done: bool):
    state = {
        "objective": {str(k): v for k, v in sorted(objective.items())},
        "stopped_at": stopped_at,
        "done": done,
    }
    write_atomic(trial_dir / EPOCHS_FILE, json.dumps(state, indent=1))


class MedianRule:
    """Stop at epoch e when the trial's objective (lower is better) is worse
    than the median objective at epoch e of the completed, unstopped trials."""

    def __init__(self, project_dir: Path, trial_id: str):
        self.project_dir, self.trial_id = Path(project_dir), trial_id

    def others_at(self, epoch: int) -> list[float]:
        values = []
        for trial_dir in self.project_dir.glob("trial_*"):
            if trial_dir.name == f"trial_{self.trial_id}":
                continue
            curve = read_curve(trial_dir)
            if curve["done"] and curve["stopped_at"] is None and epoch in curve["objective"]:
                values.append(curve["objective"][epoch])
        return values

    def should_stop(self, epoch: int, objective: float) -> bool:
        if epoch <= WARMUP_EPOCHS:
            return False
        others = self.others_at(epoch)
        return len(others) >= STARTUP_TRIALS and objective > statistics.median(others)


class EpochScoring(tf_runtime.load().tf_keras.callbacks.Callback):
    """Scores the objective after each epoch, logs it, and applies the rule.

    ``score()`` returns the trial's metrics with the objective; ``log_epoch``
    gets ``(epoch, metrics)`` (TensorBoard). Epochs count from 1 and include a
    Hyperband parent's (``initial_epoch``), so curves of warm-started trials
    line up with their parents'.
    """

    def __init__(
        self,
        trial_dir: Path,
        rule: MedianRule | None,
        score: Callable[[], dict[str, float]],
        log_epoch: Callable[[int, dict[str, float]], None],
    ):
        super().__init__()
        self.trial_dir, self.rule, self.score, self.log_epoch = trial_dir, rule, score, log_epoch
        self.curve: dict[int, float] = read_curve(trial_dir)["objective"]
        self.stopped_at: int | None = None

    def on_epoch_end(self, epoch, logs=None):
        from domaintune.evaluation import names

        # As MinedNegatives: fit runs callbacks in its strategy's scope, where
        # the encoder's loaded functions cannot run; a thread starts outside it.
        with ThreadPoolExecutor(1) as pool:
            metrics = pool.submit(self.score).result()
        number = epoch + 1
        self.curve[number] = float(metrics[names.OBJECTIVE])
        self.log_epoch(number, metrics)
        if self.rule is not None and self.rule.should_stop(number, self.curve[number]):
            self.stopped_at = number
            self.model.stop_training = True
            log.info(
                f"Stopping the trial after epoch {number}: its objective "
                f"{self.curve[number]:.4f} is worse than the median of completed trials there."
            )
        write_curve(self.trial_dir, self.curve, self.stopped_at, done=False)

    def finish(self) -> None:
        """Mark the curve complete: other trials may now compare with it."""
        write_curve(self.trial_dir, self.curve, self.stopped_at, done=True)
