"""Reading a search's project directory: trials, base metrics, settings.

Reads KerasTuner's ``trial_*/trial.json`` files directly, so ``results`` and
``export`` start fast and work on any project directory, finished or not.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from domaintune.errors import UserError
from domaintune.evaluation import names
from domaintune.kt_compat import strip_failed_trial_prefix

BASE_METRICS_FILE = "base_metrics.json"
CONFIG_FILE = "search_config.json"


def _require_project(project_dir: Path) -> Path:
    project_dir = Path(project_dir)
    if not (project_dir / CONFIG_FILE).is_file():
        raise UserError(
            f"'{project_dir}' is not a domaintune search directory (no {CONFIG_FILE}). "
            "Pass the --project-dir of a `domaintune search` run."
        )
    return project_dir


def read_json(path: Path) -> Any:
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise UserError(
            f"Cannot read '{path}' ({exc}); the project directory may be damaged."
        ) from None


def load_base_metrics(project_dir: Path) -> dict[str, float | None]:
    path = Path(project_dir) / BASE_METRICS_FILE
    return read_json(path) if path.is_file() else {}


def load_config(project_dir: Path) -> dict[str, Any]:
    """The search's settings (``search_config.json``)."""
    return read_json(_require_project(project_dir) / CONFIG_FILE)


def search_domain_metric(project_dir: Path) -> str:
    """The search's ``--domain-metric`` (a search older than the option: ``mse``)."""
    config = load_config(project_dir)
    return config.get("domain_metric") or names.DEFAULT_DOMAIN_METRIC


def load_trials(project_dir: Path) -> list[dict[str, Any]]:
    """All trials, in trial-id order, as plain dicts.

    Each has ``trial_id``, ``status``, ``hyperparameters`` (the trial's values,
    without KerasTuner's internal ``tuner/*`` keys), ``message`` and every
    metric the trial reported (``objective``, ``val_mse``, ``sts_pearson``, ...).
    """
    project_dir = _require_project(project_dir)
    trials = []
    for path in sorted(project_dir.glob("trial_*/trial.json"), key=_trial_order):
        state = read_json(path)
        values = state.get("hyperparameters", {}).get("values", {})
        trial = {
            "trial_id": state["trial_id"],
            "status": state.get("status"),
            "hyperparameters": {k: v for k, v in values.items() if not k.startswith("tuner/")},
            "message": failure_reason(state.get("message")),
        }
        metrics = state.get("metrics", {}).get("metrics", {})
        for name, tracked in metrics.items():
            observations = tracked.get("observations") or []
            if observations:
                trial[name] = observations[-1]["value"][0]
        if trial.get(names.DOMAIN_ONLY) == 1.0:
            # Older versions logged these as 0.0 although STS-B was never measured.
            for stale in (names.STS_TERM, names.GUARD_VIOLATED):
                trial.pop(stale, None)
        trial.setdefault(names.OBJECTIVE, None)
        trials.append(trial)
    return trials


def _trial_order(path: Path) -> tuple:
    """Numeric trial-id order: KerasTuner pads ids to the width of --max-trials,
    so a search resumed with a larger --max-trials mixes "4" and "05"."""
    trial_id = path.parent.name.removeprefix("trial_")
    return (0, int(trial_id), "") if trial_id.isdigit() else (1, 0, trial_id)


def failure_reason(message: str | None) -> str | None:
    """KerasTuner stores the whole traceback; its last line says what failed.

    The exception's module path is dropped for a failure we raised ourselves
    (``FailedTrialError: training diverged ...`` -> ``training diverged ...``).
    """
    if not message:
        return None
    lines = [line for line in message.strip().splitlines() if line.strip()]
    if not lines:
        return None
    return strip_failed_trial_prefix(lines[-1].strip())


def completed(trials: Sequence[Mapping]) -> list[Mapping]:
    return [t for t in trials if t["status"] == "COMPLETED" and t.get(names.OBJECTIVE) is not None]


def ranked(trials: Sequence[Mapping]) -> list[Mapping]:
    """Completed trials, best (lowest objective) first."""
    return sorted(completed(trials), key=lambda t: t[names.OBJECTIVE])


def best_trial(project_dir: Path) -> Mapping:
    trials = ranked(load_trials(project_dir))
    if not trials:
        raise UserError(
            f"No completed trial in '{project_dir}' yet; run `domaintune search` "
            "to completion first (see `domaintune results` for failures)."
        )
    return trials[0]
