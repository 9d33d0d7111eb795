"""The search's progress report: one line per finished trial with n/N, its
metrics, the elapsed time and an ETA, logged at INFO."""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from pathlib import Path

from domaintune.errors import UserError
from domaintune.evaluation import names
from domaintune.reporting.results import failure_reason, load_trials
from domaintune.search.callbacks import SearchCallback

log = logging.getLogger(__name__)


class Reporter(SearchCallback):
    """Logs one progress line per trial: n/N, metrics, elapsed, ETA.

    n counts the finished trials in the project directory, so it stays right
    when several workers share it.
    """

    SHOWN = (names.OBJECTIVE, names.VAL_MSE, names.STS_PEARSON, names.ALPHA)

    def __init__(self, total: int, project_dir: Path):
        self.total, self.project_dir = total, project_dir
        self.started = time.monotonic()
        self.ran = 0

    def on_trial_end(
        self,
        trial_id: str,
        status: str,
        metrics: Mapping[str, float],
        seconds: float,
        message: str | None = None,
    ) -> None:
        self.ran += 1
        done = finished_trials(self.project_dir)
        elapsed = time.monotonic() - self.started
        eta = elapsed / self.ran * max(self.total - done, 0)
        shown = "  ".join(f"{k}={metrics[k]:.4f}" for k in self.SHOWN if metrics.get(k) is not None)
        if status != "COMPLETED":
            shown = f"FAILED: {failure_reason(message) or 'unknown error'}"
        log.info(
            f"Trial {done}/{self.total} (#{trial_id})  {shown}  "
            f"[{seconds:.0f}s, elapsed {_duration(elapsed)}, ETA {_duration(eta)}]"
        )


def finished_trials(project_dir: Path) -> int:
    """Completed + failed trials on disk (0 while a file is being written)."""
    try:
        return sum(t["status"] in ("COMPLETED", "FAILED") for t in load_trials(project_dir))
    except UserError:  # another process is writing a trial.json right now
        return 0


def _duration(seconds: float) -> str:
    minutes, secs = divmod(int(seconds), 60)
    return f"{minutes}m{secs:02d}s" if minutes else f"{secs}s"
