"""Running a search end to end: data, base metrics, tuner, progress, summary."""

from __future__ import annotations

import json
import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import click

from domaintune.errors import UserError
from domaintune.search.results import (
    BASE_METRICS_FILE, CONFIG_FILE, failure_reason, format_table, load_trials, ranked)

# Settings that define a search; resuming with different ones would mix trials
# that are not comparable.
RESUME_KEYS = ("base", "train_sha256", "val_sha256", "val_split", "pair_format", "seed", "sts_source",
               "objective", "domain_metric", "objective_weight", "tolerance", "tuner", "space")


@dataclass
class SearchConfig:
    """What ``domaintune search`` was asked to do (saved in the project dir)."""

    train: str
    val: str | None = None
    val_split: float = 0.2
    base: str = "use-m3"
    sts: str = "auto"
    tuner: str = "random"
    max_trials: int = 5
    objective: str = "guarded"
    domain_metric: str = "mse"
    objective_weight: float = 1.0
    tolerance: float = 0.005
    project_dir: str = "domaintune_runs/search"
    keep_best: int = 1
    seed: int = 0
    max_consecutive_failures: int = 3
    hp_overrides: dict[str, Any] = field(default_factory=dict)
    pair_format: dict[str, Any] = field(default_factory=dict)  # columns/scale/dedupe
    # Filled in by run_search:
    train_sha256: str = ""
    val_sha256: str | None = None
    sts_source: str | None = None
    space: str = ""


class Reporter:
    """One progress line per trial: n/N, metrics, elapsed, ETA."""

    def __init__(self, total: int, done: int, base: dict):
        self.total, self.done, self.base = total, done, base
        self.started = time.monotonic()
        self.ran = 0

    def trial_done(self, trial, seconds: float) -> None:
        self.done += 1
        self.ran += 1
        elapsed = time.monotonic() - self.started
        eta = elapsed / self.ran * max(self.total - self.done, 0)
        metrics = {name: trial.metrics.get_last_value(name)
                   for name in ("objective", "val_mse", "sts_pearson")
                   if trial.metrics.exists(name)}
        shown = "  ".join(f"{k}={v:.4f}" for k, v in metrics.items() if v is not None)
        if trial.status != "COMPLETED":
            shown = f"FAILED: {failure_reason(trial.message) or 'unknown error'}"
        click.echo(f"Trial {self.done}/{self.total} (#{trial.trial_id})  {shown}  "
                   f"[{seconds:.0f}s, elapsed {_duration(elapsed)}, ETA {_duration(eta)}]")


def _duration(seconds: float) -> str:
    minutes, secs = divmod(int(seconds), 60)
    return f"{minutes}m{secs:02d}s" if minutes else f"{secs}s"


def run_search(config: SearchConfig, *, overwrite: bool = False) -> Path:
    """Run (or resume) a search; return the project directory."""
    from domaintune.data.pairs import file_sha256, load_pairs, split_pairs
    from domaintune.data.sts import load_sts
    from domaintune.objectives import get_objective
    from domaintune.search.space import SEARCH_SPACE, SearchSpace

    space = SearchSpace(SEARCH_SPACE).with_overrides(config.hp_overrides)
    objective = get_objective(config.objective, weight=config.objective_weight,
                              tolerance=config.tolerance, domain_metric=config.domain_metric)
    train, report = load_pairs(config.train, **config.pair_format)
    click.echo(report.summary())
    if config.val:
        val, val_report = load_pairs(config.val, **config.pair_format)
        click.echo(val_report.summary())
    else:
        train, val = split_pairs(train, config.val_split, config.seed)
    click.echo(f"Train: {len(train)} pairs, validation: {len(val)} pairs")
    retrieval = _validation_retrieval(val, config)
    sts = load_sts(config.sts, "dev", required=config.sts.lower() not in ("auto", ""))
    objective.validate(sts_available=sts is not None)
    if sts is None:
        click.echo("STS-B not used: the objective is domain-only (marked as such in results).")

    config.train_sha256 = file_sha256(config.train)
    config.val_sha256 = file_sha256(config.val) if config.val else None
    config.sts_source = sts.source if sts is not None else None
    config.space = space.summary()
    # Import the heavy stack only once the inputs are known to be good, and
    # resolve the base before touching the project dir (a bad --base must
    # leave nothing behind).
    from domaintune.models.resolver import resolve_base
    from domaintune.search.encoder_state import EncoderState
    from domaintune.search.tensorboard_logging import write_experiment_config
    from domaintune.search.tuner import SearchData, SiameseTuner, make_oracle, planned_trials

    base_dir = resolve_base(config.base)
    project_dir = Path(config.project_dir)
    _prepare_project_dir(project_dir, config, overwrite)
    click.echo(f"Search space: {config.space}")
    encoder = EncoderState(base_dir)
    base_metrics = _base_metrics(project_dir, encoder,
                                 SearchData(train, val, sts, {}, retrieval=retrieval))
    data = SearchData(train=train, val=val, sts=sts, base_metrics=base_metrics,
                      retrieval=retrieval)
    epochs = space.params["epochs"]
    max_epochs = int({"choice": lambda: max(epochs.values), "fixed": lambda: epochs.default}
                     .get(epochs.kind, lambda: epochs.high)())
    oracle = make_oracle(config.tuner, space, max_trials=config.max_trials,
                         max_epochs=max_epochs, seed=config.seed,
                         max_consecutive_failures=config.max_consecutive_failures)
    done = len([t for t in load_trials(project_dir) if t["status"] in ("COMPLETED", "FAILED")])
    reporter = Reporter(planned_trials(oracle, config.max_trials), done, base_metrics)
    tuner = SiameseTuner(oracle, encoder=encoder, objective=objective, space=space,
                         project_dir=project_dir,
                         keep_best=config.keep_best, seed=config.seed, reporter=reporter)
    write_experiment_config(tuner.logdir, space.hparam_specs(),
                            ["objective", "val_mse", "val_spearman", "sts_pearson",
                             "domain_term", "sts_term"])
    if done:
        click.echo(f"Resuming: {done} trial(s) already finished in {project_dir}")
    try:
        tuner.search(data=data)
    except RuntimeError as exc:
        if "consecutive failures" not in str(exc):
            raise
        raise UserError(
            f"Stopped after {config.max_consecutive_failures} consecutive failed trials "
            f"(last: {failure_reason(str(exc))}). Narrow the search space, e.g. "
            "--hp learning_rate=1e-6:3e-5, or raise --max-consecutive-failures. "
            f"Finished trials are kept in {project_dir}.") from None
    _print_summary(project_dir, base_metrics)
    return project_dir


def _prepare_project_dir(project_dir: Path, config: SearchConfig, overwrite: bool) -> None:
    config_path = project_dir / CONFIG_FILE
    if overwrite and project_dir.exists():
        if not config_path.is_file() and any(project_dir.iterdir()):
            raise UserError(f"--overwrite: '{project_dir}' is not a domaintune search directory; "
                            "refusing to delete it. Choose another --project-dir.")
        shutil.rmtree(project_dir)
    if config_path.is_file():
        previous = json.loads(config_path.read_text())
        changed = [k for k in RESUME_KEYS if previous.get(k) != asdict(config).get(k)]
        if changed:
            raise UserError(
                f"'{project_dir}' holds a search with different settings ({', '.join(changed)}). "
                "Rerun with the same settings to resume, add --overwrite to start afresh, or "
                "choose another --project-dir.")
    elif project_dir.exists() and any(project_dir.iterdir()):
        raise UserError(f"'{project_dir}' exists and is not a domaintune search directory; "
                        "choose another --project-dir.")
    project_dir.mkdir(parents=True, exist_ok=True)
    config_path.write_text(json.dumps(asdict(config), indent=2, default=str))


def _validation_retrieval(val, config: SearchConfig):
    """Retrieval queries from the validation pairs at the top score, if any."""
    from domaintune.retrieval import retrieval_from_pairs

    retrieval = retrieval_from_pairs(val)
    if retrieval is None and config.domain_metric == "retrieval":
        raise UserError(
            "--domain-metric retrieval: the validation pairs define no retrieval task (it "
            "needs pairs scored 1.0, same concept, with at least 2 distinct refs). Pass a "
            "--val file with such pairs, or use --domain-metric mse|spearman.")
    if retrieval is not None and config.domain_metric == "mse":
        click.echo("Hint: the validation pairs define a retrieval task; selecting on "
                   "--domain-metric retrieval tracks what retrieval users care about "
                   "better than val_mse (see README, 'Choosing the loss and metric').")
    return retrieval


def _base_metrics(project_dir: Path, encoder, data) -> dict:
    """The untuned base model's metrics, computed once per search."""
    from domaintune.search.tuner import encoder_metrics

    path = project_dir / BASE_METRICS_FILE
    if path.is_file():
        return json.loads(path.read_text())
    click.echo("Scoring the untuned base model (once per search)...")
    encoder.restore_base()
    metrics = encoder_metrics(encoder, data)
    path.write_text(json.dumps(metrics, indent=2))
    shown = ", ".join(f"{k}={v:.4f}" for k, v in metrics.items() if v is not None)
    click.echo(f"Base model: {shown}")
    return metrics


def _print_summary(project_dir: Path, base: dict) -> None:
    best = ranked(load_trials(project_dir))[:5]
    if not best:
        click.echo("No trial completed.")
        return
    click.echo("\nBest trials (deltas against the untuned base model):")
    click.echo(format_table(best, base))
    click.echo(f"\nExport the best: domaintune export {project_dir} --out exported-model")
