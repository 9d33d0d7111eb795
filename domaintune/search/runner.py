"""Running a search end to end: data, base metrics, tuner, progress, summary.

Progress and the summary go to the ``domaintune.search`` logger at INFO (the
CLI prints them on stdout); nothing here prints.
"""

from __future__ import annotations

import json
import logging
import shutil
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from domaintune import kt_compat
from domaintune._io import write_atomic
from domaintune.errors import UserError
from domaintune.evaluation import names
from domaintune.reporting.results import (
    BASE_METRICS_FILE,
    CONFIG_FILE,
    failure_reason,
    format_table,
    load_base_metrics,
    load_trials,
    ranked,
    read_json,
)
from domaintune.search.callbacks import SearchCallback

# Settings that define a search; resuming with different ones would mix trials
# that are not comparable.
# STS-B is compared by content: the same file from the cache, a download or a
# --sts path is the same benchmark.
RESUME_KEYS = (
    "base",
    "train_sha256",
    "val_sha256",
    "val_split",
    "pair_format",
    "seed",
    "sts_sha256",
    "objective",
    "domain_metric",
    "objective_weight",
    "tolerance",
    "tuner",
    "space",
)
STRATEGIES = ("none", "mirrored")
#: Where the pairs of a DataFrame given as train/val are kept in the project dir.
FRAME_FILES = {"train": "train_pairs.csv", "val": "val_pairs.csv"}

log = logging.getLogger(__name__)


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
    sts_sha256: str | None = None
    space: str = ""


class Reporter(SearchCallback):
    """Logs one progress line per trial: n/N, metrics, elapsed, ETA.

    n counts the finished trials in the project directory, so it stays right
    when several workers share it.
    """

    SHOWN = (names.OBJECTIVE, names.VAL_MSE, names.STS_PEARSON)

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


@dataclass
class Inputs:
    """Everything read and checked before any model is loaded."""

    space: Any
    objective: Any
    train: Any
    val: Any
    retrieval: Any
    sts: Any


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
    files, hashed as CSV and kept in the project dir (:data:`FRAME_FILES`).
    """
    frames = dict(frames or {})
    _check_choices(config, strategy)
    inputs = _load_inputs(config, objective, frames)
    # Import the heavy stack only once the inputs are known to be good, and
    # resolve the base before touching the project dir (a bad --base must
    # leave nothing behind).
    from domaintune.models.resolver import resolve_base

    base_dir = resolve_base(config.base)
    if cluster is not None and cluster.role == "worker":
        if overwrite:
            raise UserError(
                "--overwrite is for the chief (or a single process); a worker "
                "must never delete the shared project directory."
            )
        from domaintune.search.distributed import wait_for_oracle

        wait_for_oracle(cluster, connect_timeout)
    project_dir = Path(config.project_dir)
    _prepare_project_dir(project_dir, config, overwrite)
    _keep_frames(frames, config)
    log.info(f"Search space: {config.space}")
    oracle = _make_oracle(config, inputs.space, distributed=cluster is not None)
    if cluster is not None and cluster.role == "chief":
        _serve_as_chief(oracle, project_dir, inputs, cluster, lease_seconds)
    else:
        if cluster is not None:
            cluster.export_environment()
        _run_trials(
            config,
            inputs,
            oracle,
            base_dir,
            project_dir,
            distributed=cluster is not None,
            strategy=strategy,
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


def _pairs_source(name: str, config: SearchConfig, frames: Mapping[str, Any]):
    """A DataFrame given for ``name`` (train/val), else the file's path; a
    DataFrame's config entry names the CSV copy the project dir will hold."""
    if name not in frames:
        return getattr(config, name)
    setattr(config, name, str(Path(config.project_dir) / FRAME_FILES[name]))
    return frames[name]


def _keep_frames(frames: Mapping[str, Any], config: SearchConfig) -> None:
    """Write the DataFrames' pairs into the project dir: the search's record of
    its data (the export's model card names the file)."""
    from domaintune.data.pairs import DEFAULT_COLUMNS, frame_csv

    for name, frame in frames.items():
        columns = config.pair_format.get("columns", DEFAULT_COLUMNS)
        write_atomic(getattr(config, name), frame_csv(frame, columns))


def _load_inputs(config: SearchConfig, objective, frames: Mapping[str, Any]) -> Inputs:
    from domaintune.data.pairs import (
        DEFAULT_COLUMNS,
        file_sha256,
        load_pairs,
        pairs_sha256,
        split_pairs,
    )
    from domaintune.data.sts import load_sts
    from domaintune.objectives import get_objective
    from domaintune.search.space import SearchSpace

    space = SearchSpace().with_overrides(config.hp_overrides)
    if objective is None:
        objective = get_objective(
            config.objective,
            weight=config.objective_weight,
            tolerance=config.tolerance,
            domain_metric=config.domain_metric,
        )
    train_source = _pairs_source("train", config, frames)
    train, report = load_pairs(train_source, name="train DataFrame", **config.pair_format)
    log.info(report.summary())
    val_source = _pairs_source("val", config, frames)
    if val_source is not None:
        val, val_report = load_pairs(val_source, name="val DataFrame", **config.pair_format)
        log.info(val_report.summary())
    else:
        train, val = split_pairs(train, config.val_split, config.seed)
    log.info(f"Train: {len(train)} pairs, validation: {len(val)} pairs")
    _check_positive_pairs(space, train)
    retrieval = _validation_retrieval(val, config)
    sts = load_sts(config.sts, "dev", required=config.sts.lower() not in ("auto", ""))
    objective.validate(sts_available=sts is not None)
    if sts is None:
        log.info("STS-B not used: the objective is domain-only (marked as such in results).")
    columns = config.pair_format.get("columns", DEFAULT_COLUMNS)
    config.train_sha256 = pairs_sha256(train_source, columns)
    config.val_sha256 = pairs_sha256(val_source, columns) if val_source is not None else None
    config.sts_source = sts.source if sts is not None else None
    config.sts_sha256 = file_sha256(sts.source) if sts is not None else None
    config.space = space.summary()
    return Inputs(space, objective, train, val, retrieval, sts)


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


def _write_experiment_config(project_dir: Path, space) -> None:
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
        ],
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
    _write_experiment_config(project_dir, inputs.space)
    try:
        serve_oracle(oracle, cluster, lease_seconds)
    except RuntimeError as exc:
        _raise_if_consecutive_failures(exc, oracle.max_consecutive_failed_trials, project_dir)


def _run_trials(
    config: SearchConfig,
    inputs: Inputs,
    oracle,
    base_dir: Path,
    project_dir: Path,
    *,
    distributed: bool,
    strategy: str | None,
    oracle_patience: float,
    callbacks: Sequence[SearchCallback] = (),
) -> None:
    from domaintune.models.trainable_encoder import TrainableEncoder
    from domaintune.search.tuner import SearchData, SiameseTuner, planned_trials

    distribution = _make_strategy(strategy)
    encoder = TrainableEncoder(base_dir, strategy=distribution)
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
        strategy=distribution,
        oracle_patience=oracle_patience,
    )
    if not distributed:  # the chief writes it in a distributed search
        _write_experiment_config(project_dir, inputs.space)
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


def _prepare_project_dir(project_dir: Path, config: SearchConfig, overwrite: bool) -> None:
    if project_dir.exists() and not project_dir.is_dir():
        raise UserError(
            f"--project-dir '{project_dir}' is a file; pass a folder (it is created if missing)."
        )
    config_path = project_dir / CONFIG_FILE
    if overwrite and project_dir.exists():
        if not config_path.is_file() and any(project_dir.iterdir()):
            raise UserError(
                f"--overwrite: '{project_dir}' is not a domaintune search directory; "
                "refusing to delete it. Choose another --project-dir."
            )
        shutil.rmtree(project_dir)
    if config_path.is_file():
        previous = read_json(config_path)
        # A key an older version did not record is not compared.
        changed = [k for k in RESUME_KEYS if k in previous and previous[k] != asdict(config).get(k)]
        if changed:
            raise UserError(
                f"'{project_dir}' holds a search with different settings ({', '.join(changed)}). "
                "Rerun with the same settings to resume, add --overwrite to start afresh, or "
                "choose another --project-dir."
            )
    elif project_dir.exists() and any(project_dir.iterdir()):
        raise UserError(
            f"'{project_dir}' exists and is not a domaintune search directory; "
            "choose another --project-dir."
        )
    project_dir.mkdir(parents=True, exist_ok=True)
    write_atomic(config_path, json.dumps(asdict(config), indent=2, default=str))


def _check_positive_pairs(space, train) -> None:
    """A searched loss that trains on positives only needs some."""
    from domaintune.models.losses import LOSSES

    loss = space.params["loss"]
    names = [
        n
        for n in (loss.values if loss.kind == "choice" else (loss.default,))
        if LOSSES[n].positives_only
    ]
    if not names:
        return
    threshold = space.params["positive_threshold"]  # such a loss declares it
    lowest = (
        threshold.low
        if threshold.kind in ("float", "int")
        else min(threshold.values or (threshold.default,))
    )
    positives = int((train.scores >= lowest).sum())
    if positives < 2:
        raise UserError(
            f"--hp loss={names[0]} trains on pairs scored >= positive_threshold "
            f"({lowest:g}), and the training pairs have {positives}. Lower it, e.g. "
            "--hp positive_threshold=0.9, or add same-concept pairs (score 1.0)."
        )


def _validation_retrieval(val, config: SearchConfig):
    """Retrieval queries from the validation pairs at the top score, if any."""
    from domaintune.data.retrieval_sets import retrieval_from_pairs

    retrieval = retrieval_from_pairs(val)
    if retrieval is None and config.domain_metric == "retrieval":
        raise UserError(
            "--domain-metric retrieval: the validation pairs define no retrieval task (it "
            "needs pairs scored 1.0, same concept, with at least 2 distinct refs). Pass a "
            "--val file with such pairs, or use --domain-metric mse|spearman."
        )
    if retrieval is not None and config.domain_metric == "mse":
        log.info(
            "Hint: the validation pairs define a retrieval task; selecting on "
            "--domain-metric retrieval tracks what retrieval users care about "
            "better than val_mse (see README, 'Choosing the loss and the domain metric')."
        )
    return retrieval


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
