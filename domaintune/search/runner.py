"""Running a search end to end: data, base metrics, tuner, progress, summary.

Progress and the summary go to the ``domaintune.search`` logger at INFO (the
CLI prints them on stdout); nothing here prints.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from domaintune import kt_compat
from domaintune._io import write_atomic
from domaintune.errors import UserError
from domaintune.evaluation import names
from domaintune.reporting.results import (
    BASE_METRICS_FILE,
    failure_reason,
    format_table,
    load_base_metrics,
    load_trials,
    ranked,
)
from domaintune.search.callbacks import SearchCallback
from domaintune.search.inputs import Inputs, load_inputs
from domaintune.search.interpolation import interpolates, parse_alphas
from domaintune.search.progress import Reporter, finished_trials
from domaintune.search.project import SearchConfig, keep_frames, prepare_project_dir

STRATEGIES = ("none", "mirrored")

log = logging.getLogger(__name__)


def run_search(
    config: SearchConfig,
    *,
    overwrite: bool = False,
    cluster=None,
    lease_seconds: float = 60.0,
    connect_timeout: float = 120.0,
    strategy: str | None = None,
    callbacks: Sequence[SearchCallback] = (),
    objective=None,
    frames: Mapping[str, Any] | None = None,
) -> Path:
    """Run (or resume) a search; return the project directory.

    With a ``cluster`` (see :mod:`domaintune.search.distributed`) this process
    is the chief, serving the oracle, or a worker running trials from it.
    ``callbacks`` hear of this process's trials and their phases (after the
    progress :class:`Reporter`). ``objective``: an Objective instance to use
    instead of building ``config.objective``. ``frames``: pandas DataFrames
    given as ``"train"``/``"val"`` instead of files; they are validated like
    files, hashed as CSV and kept in the project dir
    (:data:`~domaintune.search.project.FRAME_FILES`).
    """
    frames = dict(frames or {})
    _check_choices(config, strategy)
    inputs = load_inputs(config, objective, frames)
    # Import the heavy stack only once the inputs are known to be good, and
    # resolve and load the base before touching the project dir (a missing or
    # damaged --base must leave nothing behind).
    from domaintune.models.resolver import resolve_base

    base_dir = resolve_base(config.base)
    if cluster is not None and cluster.role == "worker" and overwrite:
        raise UserError(
            "--overwrite is for the chief (or a single process); a worker "
            "must never delete the shared project directory."
        )
    chief = cluster is not None and cluster.role == "chief"
    encoder, distribution = _load_base(base_dir, strategy, check_only=chief)
    if cluster is not None and cluster.role == "worker":
        from domaintune.search.distributed import wait_for_oracle

        wait_for_oracle(cluster, connect_timeout)
    project_dir = Path(config.project_dir)
    prepare_project_dir(project_dir, config, overwrite)
    keep_frames(frames, config)
    log.info(f"Search space: {config.space}")
    if interpolates(config.interpolate):
        shown = ", ".join(f"{a:g}" for a in config.interpolate)
        log.info(f"Each trial is scored at base + alpha * (trained - base), alpha in {shown}")
    oracle = _make_oracle(config, inputs.space, distributed=cluster is not None)
    if chief:
        _serve_as_chief(oracle, project_dir, inputs, cluster, lease_seconds, config.interpolate)
    else:
        if cluster is not None:
            cluster.export_environment()
        _run_trials(
            config,
            inputs,
            oracle,
            encoder,
            project_dir,
            distributed=cluster is not None,
            strategy=distribution,
            oracle_patience=connect_timeout,
            callbacks=callbacks,
        )
    _log_summary(project_dir, load_base_metrics(project_dir))
    return project_dir


def _check_choices(config: SearchConfig, strategy: str | None) -> None:
    """What the CLI's option types check, for callers of the Python API."""
    if config.tuner not in kt_compat.TUNERS:
        raise UserError(f"--tuner {config.tuner!r}: choose one of {', '.join(kt_compat.TUNERS)}.")
    if strategy not in (None, *STRATEGIES):
        raise UserError(f"--strategy {strategy!r}: choose one of {', '.join(STRATEGIES)}.")
    config.interpolate = parse_alphas(config.interpolate)  # canonical: the resume key


def _make_oracle(config: SearchConfig, space, *, distributed: bool):
    from domaintune.search.tuner import make_oracle

    epochs = space.params["epochs"]
    max_epochs = int(
        {"choice": lambda: max(epochs.values), "fixed": lambda: epochs.default}.get(
            epochs.kind, lambda: epochs.high
        )()
    )
    # Distributed: a trial whose worker died is retried once on another worker.
    return make_oracle(
        config.tuner,
        space,
        max_trials=config.max_trials,
        max_epochs=max_epochs,
        seed=config.seed,
        max_consecutive_failures=config.max_consecutive_failures,
        max_retries_per_trial=1 if distributed else 0,
    )


def _write_experiment_config(project_dir: Path, space, alphas: Sequence[float]) -> None:
    from domaintune.reporting.tensorboard_logging import write_experiment_config

    write_experiment_config(
        project_dir / "logs",
        space.hparam_specs(),
        [
            names.OBJECTIVE,
            names.VAL_MSE,
            names.VAL_SPEARMAN,
            names.RETRIEVAL_R1,
            names.STS_PEARSON,
            names.DOMAIN_TERM,
            names.STS_TERM,
            *([names.ALPHA] if interpolates(alphas) else []),
        ],
    )


def _serve_as_chief(
    oracle,
    project_dir: Path,
    inputs: Inputs,
    cluster,
    lease_seconds: float,
    alphas: Sequence[float],
) -> None:
    from domaintune import kt_compat
    from domaintune.search.distributed import serve_oracle

    kt_compat.set_project_dir(oracle, project_dir)
    if (project_dir / "oracle.json").is_file():
        kt_compat.resume_oracle(oracle, project_dir / "oracle.json")
        log.info(f"Resuming the search's oracle state from {project_dir}")
    oracle.verbose = 0
    _write_experiment_config(project_dir, inputs.space, alphas)
    try:
        serve_oracle(oracle, cluster, lease_seconds)
    except RuntimeError as exc:
        _raise_if_consecutive_failures(exc, oracle.max_consecutive_failed_trials, project_dir)


def _load_base(base_dir: Path, strategy: str | None, *, check_only: bool):
    """``(encoder, distribution strategy)`` for a process that trains; the
    chief, which trains nothing, only checks that the base loads (a damaged
    SavedModel is a UserError) and gets ``(None, None)``."""
    if check_only:
        from domaintune.models.encoding import load_saved_model

        load_saved_model(base_dir)
        return None, None
    from domaintune.models.trainable_encoder import TrainableEncoder

    distribution = _make_strategy(strategy)
    return TrainableEncoder(base_dir, strategy=distribution), distribution


def _run_trials(
    config: SearchConfig,
    inputs: Inputs,
    oracle,
    encoder,
    project_dir: Path,
    *,
    distributed: bool,
    strategy,
    oracle_patience: float,
    callbacks: Sequence[SearchCallback] = (),
) -> None:
    """Run this process's trials with ``encoder`` (under the distribution
    ``strategy``, or None)."""
    from domaintune.search.tuner import SearchData, SiameseTuner, planned_trials

    data = SearchData(inputs.train, inputs.val, inputs.sts, {}, retrieval=inputs.retrieval)
    data.base_metrics = _base_metrics(project_dir, encoder, data)
    inputs.objective.score(data.base_metrics, data.base_metrics)  # fails now, not per trial
    done = finished_trials(project_dir)
    reporter = Reporter(planned_trials(oracle, config.max_trials), project_dir)
    tuner = SiameseTuner(
        oracle,
        encoder=encoder,
        objective=inputs.objective,
        space=inputs.space,
        project_dir=project_dir,
        keep_best=config.keep_best,
        seed=config.seed,
        callbacks=[reporter, *callbacks],
        distributed=distributed,
        strategy=strategy,
        oracle_patience=oracle_patience,
        alphas=config.interpolate,
    )
    if not distributed:  # the chief writes it in a distributed search
        _write_experiment_config(project_dir, inputs.space, config.interpolate)
    if done:
        log.info(f"Resuming: {done} trial(s) already finished in {project_dir}")
    try:
        tuner.search(data=data)
    except RuntimeError as exc:
        _raise_if_consecutive_failures(exc, config.max_consecutive_failures, project_dir)


def _make_strategy(name: str | None):
    if name in (None, "none"):
        return None
    from domaintune import tf_runtime

    tf = tf_runtime.load().tf
    strategy = tf.distribute.MirroredStrategy()
    log.info(f"MirroredStrategy over {strategy.num_replicas_in_sync} device(s)")
    return strategy


def _raise_if_consecutive_failures(exc: RuntimeError, limit: int, project_dir: Path):
    if "consecutive failures" not in str(exc):
        raise exc
    raise UserError(
        f"Stopped after {limit} consecutive failed trials "
        f"(last: {failure_reason(str(exc))}). Narrow the search space, e.g. "
        "--hp learning_rate=1e-6:3e-5, or raise --max-consecutive-failures, in a new "
        f"--project-dir (or with --overwrite). Finished trials are kept in {project_dir}."
    ) from None


def _base_metrics(project_dir: Path, encoder, data) -> dict:
    """The untuned base model's metrics, computed once per search."""
    from domaintune.evaluation.trial import encoder_metrics

    if (project_dir / BASE_METRICS_FILE).is_file():
        return load_base_metrics(project_dir)
    log.info("Scoring the untuned base model (once per search)...")
    metrics = encoder_metrics(encoder.encode_fn(), data.val, data.sts, data.retrieval)
    # Several processes (on several machines) of a distributed search may write it.
    write_atomic(project_dir / BASE_METRICS_FILE, json.dumps(metrics, indent=2))
    shown = ", ".join(f"{k}={v:.4f}" for k, v in metrics.items() if v is not None)
    log.info(f"Base model: {shown}")
    return metrics


def _log_summary(project_dir: Path, base: dict) -> None:
    best = ranked(load_trials(project_dir))[:5]
    if not best:
        log.info("No trial completed.")
        return
    log.info("\nBest trials (deltas against the untuned base model):")
    log.info(format_table(best, base))
    log.info(f"\nExport the best: domaintune export {project_dir} --out exported-model")
