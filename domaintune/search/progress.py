"""The search's progress report: one line per finished trial with n/N, the
objective and the metric it reads against the base, the elapsed time and an
ETA, logged at INFO."""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from pathlib import Path

from domaintune.errors import UserError
from domaintune.evaluation import names
from domaintune.reporting.results import failure_reason, load_base_metrics, load_config, load_trials
from domaintune.reporting.status import objective_metric
from domaintune.reporting.table import base_objective, fmt, fmt_delta
from domaintune.search.callbacks import SearchCallback

log = logging.getLogger(__name__)


class Reporter(SearchCallback):
    """Logs one progress line per trial: n/N, the objective and the metric it
    reads (with STS-B when measured), each against the base, elapsed, ETA.

    n counts the finished trials in the project directory, so it stays right
    when several workers share it. The trial is named ``trial-<id>``, as its
    TensorBoard run.
    """

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
        if status == "COMPLETED":
            shown = self._metrics(metrics)
        else:
            shown = f"{status}: {failure_reason(message) or 'unknown error'}"
        log.info(
            f"Trial {done}/{self.total} (trial-{trial_id})  {shown}  "
            f"[{seconds:.0f}s, elapsed {_duration(elapsed)}, ETA {_duration(eta)}]"
        )

    def _metrics(self, metrics: Mapping[str, float]) -> str:
        """``objective=0.81 (-0.19)  retrieval_r1=0.6 (+0.1)  ...``: the deltas
        are against the untuned base."""
        try:
            config, base = load_config(self.project_dir), load_base_metrics(self.project_dir)
        except UserError:  # another process is writing it right now
            config, base = {}, {}
        read = objective_metric(config)
        shown = [read, *SECONDARY.get(read, ()), names.STS_PEARSON, names.ALPHA]
        reference = {**base, names.OBJECTIVE: base_objective(config, base) if base else None}
        cells = []
        for name in dict.fromkeys([names.OBJECTIVE, *shown]):
            value = metrics.get(name)
            if value is None:
                continue
            if reference.get(name) is None or name == names.ALPHA:
                cells.append(f"{name}={fmt(value)}")
            else:
                cells.append(f"{name}={fmt(value)} ({fmt_delta(value, reference[name])})")
        if metrics.get(names.GUARD_VIOLATED) == 1.0:
            cells.append("(STS-B guard violated: ranked below every trial within the tolerance)")
        return "  ".join(cells)


#: Shown beside the metric the objective reads.
SECONDARY = {names.RETRIEVAL_R1: (names.RETRIEVAL_MRR,)}


def finished_trials(project_dir: Path) -> int:
    """Completed + failed trials on disk (0 while a file is being written)."""
    try:
        return sum(t["status"] in ("COMPLETED", "FAILED") for t in load_trials(project_dir))
    except UserError:  # another process is writing a trial.json right now
        return 0


def _duration(seconds: float) -> str:
    minutes, secs = divmod(int(seconds), 60)
    return f"{minutes}m{secs:02d}s" if minutes else f"{secs}s"
