"""Running a search end to end: data, base metrics, tuner, progress, summary.

Progress and the summary go to the ``domaintune.search`` logger at INFO (the
CLI prints them on stdout); nothing here prints.
"""

from __future__ import annotations

import json
import logging
import textwrap
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from domaintune import kt_compat
from domaintune._io import write_atomic
from domaintune.errors import UserError
from domaintune.reporting.results import (
    BASE_METRICS_FILE,
    failure_reason,
    load_base_metrics,
    load_config,
    load_trials,
    ranked,
)
from domaintune.reporting.status import guard_of, worse_warning
from domaintune.reporting.table import WIDTH, format_results
from domaintune.search.callbacks import SearchCallback
from domaintune.search.inputs import Inputs, load_inputs
from domaintune.search.interpolation import interpolates, parse_alphas
from domaintune.search.progress import Reporter, finished_trials
from domaintune.search.project import PRUNERS, SearchConfig, keep_frames, prepare_project_dir

STRATEGIES = ("none", "mirrored")
#: How many of the best trials the end-of-search summary shows.
SUMMARY_TRIALS = 5

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
        _serve_as_chief(oracle, project_dir, inputs, cluster, lease_seconds)
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
    minutes = config.checkpoint_minutes
    if isinstance(minutes, bool) or not isinstance(minutes, (int, float)) or not minutes >= 0:
        raise UserError(
            f"--checkpoint-minutes {config.checkpoint_minutes!r}: give minutes >= 0 (0: never)."
        )
    if config.prune not in PRUNERS:
        raise UserError(f"--prune {config.prune!r}: choose one of {', '.join(PRUNERS)}.")
    for option in ("val_max_pairs", "pairs_per_epoch"):
        value = getattr(config, option)
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise UserError(
                f"--{option.replace('_', '-')} {value!r}: give a whole number of pairs >= 0 "
                "(0: no limit)."
            )


def _make_oracle(config: SearchConfig, space, *, distributed: bool):
    from domaintune.search.oracles import make_oracle

    # Distributed: a trial whose worker died is retried once on another worker.
    return make_oracle(
        config.tuner,
        space,
        max_trials=config.max_trials,
        max_epochs=_max_epochs(space),
        seed=config.seed,
        max_consecutive_failures=config.max_consecutive_failures,
        max_retries_per_trial=1 if distributed else 0,
    )


def _max_epochs(space) -> int:
    epochs = space.params["epochs"]
    return int(
        {"choice": lambda: max(epochs.values), "fixed": lambda: epochs.default}.get(
            epochs.kind, lambda: epochs.high
        )()
    )


def _write_base_run(
    project_dir: Path, config: SearchConfig, inputs: Inputs, encoder, base: dict, scores: dict
) -> None:
    """TensorBoard's ``base`` run: the HParams config (the searched
    hyperparameters, the metrics the trials have), the base's metrics (its
    ``scores`` by the objective too) and heatmap, and the STS-B guard's state."""
    from dataclasses import asdict

    from domaintune.data.titles import TUTORIAL_TITLES
    from domaintune.reporting.plotting import cosine_similarity_matrix
    from domaintune.reporting.status import guard_of
    from domaintune.reporting.tensorboard_logging import trial_metric_names, write_base_run

    titles = list(TUTORIAL_TITLES)
    write_base_run(
        project_dir / "logs",
        inputs.space.hparam_specs(),
        trial_metric_names(
            base,
            scores,
            domain_metric=config.domain_metric,
            interpolates=interpolates(config.interpolate),
        ),
        base_metrics={**base, **scores},
        notes=[guard_of(asdict(config), base).status()],
        heatmap=(titles, cosine_similarity_matrix(encoder.encode_fn()(titles))),
        last_step=_max_epochs(inputs.space),
    )


def _serve_as_chief(
    oracle, project_dir: Path, inputs: Inputs, cluster, lease_seconds: float
) -> None:
    from domaintune import kt_compat
    from domaintune.search.distributed import serve_oracle

    kt_compat.set_project_dir(oracle, project_dir)
    if (project_dir / "oracle.json").is_file():
        kt_compat.resume_oracle(oracle, project_dir / "oracle.json")
        log.info(f"Resuming the search's oracle state from {project_dir}")
    oracle.verbose = 0
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
    from domaintune.search.oracles import planned_trials
    from domaintune.search.tuner import SearchData, SiameseTuner

    data = SearchData(
        inputs.train,
        inputs.val,
        inputs.sts,
        {},
        retrieval=inputs.retrieval,
        pairs_per_epoch=config.pairs_per_epoch,
    )
    data.base_metrics = _base_metrics(project_dir, encoder, data)
    base_scores = inputs.objective.score(data.base_metrics, data.base_metrics)  # fails now
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
        prune=config.prune,
        checkpoint_minutes=config.checkpoint_minutes,
    )
    _write_base_run(project_dir, config, inputs, encoder, data.base_metrics, base_scores)
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
    """The best trials against the base, whether the STS-B guard was on, a
    warning when the best is worse than the base on a measured metric."""
    trials = load_trials(project_dir)
    config = load_config(project_dir)
    best = ranked(trials)
    if not best:
        log.info(f"No trial completed. {guard_of(config, base).status()}")
        return
    shown = min(len(best), SUMMARY_TRIALS)
    more = (
        f" ({shown} of {len(trials)}; all of them: domaintune results {project_dir})"
        if len(trials) > shown
        else ""
    )
    log.info(f"\nBest trials{more}:")
    log.info(format_results(trials, base, config, limit=SUMMARY_TRIALS))
    warning = worse_warning(best[0], base, config)
    if warning:
        log.info("\n" + textwrap.fill(warning, WIDTH))  # part of the summary, on stdout
    log.info(f"\nExport the best: domaintune export {project_dir} --out exported-model")
