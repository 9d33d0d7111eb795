"""A search's results as Python objects: :class:`Trial` records and the
:class:`SearchResult` that reads a project directory (trials, best, table, export)."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

#: Keys of a trial's record (and of ``results --json``'s entries) that are not metrics.
_META = ("trial_id", "status", "hyperparameters", "message", "rank", "best", "delta_vs_base")


@dataclass(frozen=True)
class Trial:
    """One trial of a search: what it tried and what it measured.

    ``status`` is KerasTuner's (``COMPLETED``, ``FAILED``, ``RUNNING``, ...),
    ``metrics`` every metric the trial reported (``objective``, ``val_mse``,
    ``sts_pearson``, ...; empty for a failed trial), ``message`` why it failed.

    Example::

        import domaintune as dt

        for trial in dt.load_search("runs/demo").trials:
            print(trial.trial_id, trial.status, trial.objective, trial.hyperparameters)
    """

    trial_id: str
    status: str
    hyperparameters: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)
    message: str | None = None

    @property
    def objective(self) -> float | None:
        """The search's objective (lower is better), or None if not scored."""
        return self.metrics.get("objective")

    def to_dict(self) -> dict[str, Any]:
        """The flat record of the trial (as :mod:`domaintune.reporting.results`
        reads it): its keys, then every metric it reported."""
        record = {
            "trial_id": self.trial_id,
            "status": self.status,
            "hyperparameters": dict(self.hyperparameters),
            "message": self.message,
            **self.metrics,
        }
        record.setdefault("objective", None)
        return record

    @classmethod
    def from_dict(cls, record: Mapping[str, Any]) -> Trial:
        """The inverse of :meth:`to_dict`."""
        return cls(
            str(record["trial_id"]),
            record["status"],
            dict(record["hyperparameters"]),
            {k: v for k, v in record.items() if k not in _META and v is not None},
            record.get("message"),
        )


class SearchResult:
    """A search's project directory, read live: trials, best, table, export.

    Returned by :func:`domaintune.search` and :func:`domaintune.load_search`;
    every property reads the directory again, so it follows a search that is
    still running.

    Example::

        import domaintune as dt

        result = dt.load_search("runs/demo")
        print(result.table())               # what `domaintune results runs/demo` prints
        print(result.best.hyperparameters)
        result.export("demo-encoder")        # a SavedModel for hub.KerasLayer
    """

    def __init__(self, project_dir: str | os.PathLike[str]):
        from domaintune.reporting.results import load_trials

        self.project_dir = Path(project_dir)
        load_trials(self.project_dir)  # a UserError unless it is a search's directory

    def __repr__(self) -> str:
        return f"SearchResult({str(self.project_dir)!r})"

    @property
    def config(self) -> dict[str, Any]:
        """The search's settings (``search_config.json``)."""
        from domaintune.reporting.results import CONFIG_FILE, read_json

        return read_json(self.project_dir / CONFIG_FILE)

    @property
    def base_metrics(self) -> dict[str, float | None]:
        """The untuned base model's metrics ({} until the search computed them)."""
        from domaintune.reporting.results import load_base_metrics

        return load_base_metrics(self.project_dir)

    @property
    def trials(self) -> list[Trial]:
        """Every trial so far, in trial-id order."""
        from domaintune.reporting.results import load_trials

        return [Trial.from_dict(t) for t in load_trials(self.project_dir)]

    @property
    def best(self) -> Trial | None:
        """The completed trial with the lowest objective (None if none completed)."""
        from domaintune.reporting.results import ranked

        best = ranked([t.to_dict() for t in self.trials])
        return Trial.from_dict(best[0]) if best else None

    def pareto_front(self) -> list[Trial]:
        """The completed trials no other one beats on both the search's domain
        metric and STS-B Pearson (``domaintune results --pareto``)."""
        from domaintune.objectives import pareto_front
        from domaintune.reporting.results import search_domain_metric

        done = [t.to_dict() for t in self.trials if t.status == "COMPLETED"]
        front = pareto_front(done, search_domain_metric(self.project_dir))
        return [Trial.from_dict(t) for t in front]

    def table(self, trials: Sequence[Trial] | None = None, *, wide: bool = False) -> str:
        """What ``domaintune results`` prints (default: every trial): the
        trials ranked by the objective (lower is better) with the best marked,
        the base model's row, each metric's change against it, the
        hyperparameters that differ between trials (the others once above),
        whether the STS-B guard was on, and why a trial failed or stopped.
        Fits 120 columns (further columns in a block below); ``wide``: one
        block, however wide."""
        from domaintune.reporting.table import format_results

        shown = self.trials if trials is None else trials
        return format_results(
            [t.to_dict() for t in shown], self.base_metrics, self.config, wide=wide
        )

    def records(self, trials: Sequence[Trial] | None = None) -> list[dict[str, Any]]:
        """What ``domaintune results --json`` prints (default: every trial):
        the base model as an entry, then the trials best first, each with its
        ``rank`` (None when not ranked), ``best``, every metric (None where it
        was not measured) and ``delta_vs_base``."""
        from domaintune.reporting.table import records

        shown = self.trials if trials is None else trials
        return records([t.to_dict() for t in shown], self.base_metrics, self.config)

    def warning(self) -> str | None:
        """A warning when the best trial is worse than the untuned base on a
        measured metric, with the option that fits (e.g. ``--domain-metric
        retrieval``); None otherwise."""
        from domaintune.reporting.status import worse_warning

        best = self.best
        if best is None:
            return None
        return worse_warning(best.to_dict(), self.base_metrics, self.config)

    def export(self, out: str | os.PathLike[str], trial_id: str | None = None) -> Path:
        """Write the best (or ``trial_id``'s) encoder to the new folder ``out``
        as a TF-Hub SavedModel with a ``model_card.json``; return its path."""
        from domaintune.export import export_trial

        return export_trial(self.project_dir, Path(out), trial_id)
