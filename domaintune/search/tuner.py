"""The KerasTuner tuner that fine-tunes a siamese encoder per trial.

keras-tuner 1.4 always imports Keras 3 and rejects tf_keras models (issue
#1039), so :class:`SiameseTuner` uses its documented extension point: it owns
``run_trial``, ``save_model`` and ``load_model`` and returns the trial's
metrics; the oracles (random, bayesian, hyperband, grid) work unchanged.
"""

from __future__ import annotations

import contextlib
import gc
import logging
import math
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import keras_tuner as kt

from domaintune import kt_compat, tf_runtime
from domaintune.evaluation import names
from domaintune.evaluation.trial import encoder_metrics
from domaintune.models.siamese import build_model
from domaintune.models.trainable_encoder import CHECKPOINT_NAME, TrainableEncoder
from domaintune.objectives import Objective
from domaintune.reporting.results import failure_reason
from domaintune.reporting.tensorboard_logging import TrialLogger, run_name
from domaintune.search.callbacks import SearchCallback
from domaintune.search.checkpoints import prune_checkpoints, worth_keeping
from domaintune.search.distributed import Heartbeat, RetryingOracle
from domaintune.search.fit_callbacks import (
    EpochLog,
    RestoreBestEpoch,
    StopOnNonFinite,
    changed_rows,
)
from domaintune.search.interpolation import NO_INTERPOLATION, score_interpolations
from domaintune.search.project import CHECKPOINT_MINUTES
from domaintune.search.pruning import EpochScoring, MedianRule
from domaintune.search.space import SearchSpace
from domaintune.search.trial_batches import trial_batches
from domaintune.search.trial_heatmap import TrialHeatmap
from domaintune.search.trial_progress import TrainingProgress
from domaintune.search.trial_state import trial_checkpoints

log = logging.getLogger("domaintune.search")


@dataclass
class SearchData:
    """Everything a trial trains and is judged on (loaded once per search)."""

    train: Any  # PairSet
    val: Any  # PairSet
    sts: Any | None  # StsPairs, or None for a domain-only search
    base_metrics: dict[str, float | None]
    retrieval: Any | None = None  # RetrievalSet from the validation pairs, if any
    pairs_per_epoch: int = 0  # --pairs-per-epoch: each epoch's sample of train (0: all)


class SiameseTuner(kt.Tuner):
    """Runs each trial as a siamese fine-tuning of the in-memory base encoder.

    ``callbacks`` are told when each trial begins and ends and how long each
    of its phases took (see :mod:`domaintune.search.callbacks`).
    """

    def __init__(
        self,
        oracle,
        *,
        encoder: TrainableEncoder,
        objective: Objective,
        space: SearchSpace,
        project_dir: Path,
        keep_best: int = 1,
        seed: int = 0,
        callbacks: Sequence[SearchCallback] = (),
        distributed: bool = False,
        strategy=None,
        oracle_patience: float = 300.0,
        alphas: Sequence[float] = NO_INTERPOLATION,
        prune: str = "none",
        checkpoint_minutes: float = CHECKPOINT_MINUTES,
    ):
        self.encoder = encoder
        self.checkpoint_minutes = checkpoint_minutes  # in-trial state saves (0: none)
        self.prune = prune  # --prune: "median" scores every epoch and stops hopeless trials
        self.alphas = tuple(alphas)  # --interpolate weights, scored after training
        self.space = space
        self.distributed = distributed
        self.strategy = strategy
        # Hyperband warm-starts from parents: their checkpoints must stay. (A
        # worker's OracleClient hides the oracle's type, so remember it here.)
        self.hyperband = isinstance(oracle, kt.oracles.HyperbandOracle)
        self.objective = objective
        self.keep_best = keep_best
        self.seed = seed
        self.callbacks = list(callbacks)
        self._model = self._model_key = None  # reused while the graph stays the same
        self._from_base = False  # did the last trial start from the base weights?
        project_dir = Path(project_dir)
        super().__init__(
            oracle=oracle, directory=str(project_dir.parent), project_name=project_dir.name
        )
        if distributed:  # KerasTuner wrapped the oracle in its gRPC client
            self.oracle = RetryingOracle(self.oracle, oracle_patience)
        self.oracle.verbose = 0  # the callbacks report the progress
        # The failure reason is recorded in the trial and given to on_trial_end.
        kt_compat.quiet_failed_trials()

    # -- paths ---------------------------------------------------------------
    @property
    def logdir(self) -> Path:
        return Path(self.project_dir) / "logs"

    def checkpoint_path(self, trial_id: str) -> Path:
        return Path(self.get_trial_dir(trial_id)) / CHECKPOINT_NAME

    # -- the trial -----------------------------------------------------------
    def run_trial(self, trial, data: SearchData) -> dict[str, float]:
        if not self.distributed:
            return self._train_and_score(trial, data)
        with Heartbeat(self.oracle, trial.trial_id):
            return self._train_and_score(trial, data)

    def _train_and_score(self, trial, data: SearchData) -> dict[str, float]:
        trial_id = trial.trial_id
        values = dict(trial.hyperparameters.values)
        with self._phase(trial_id, "restore"):
            initial_epoch = self._warm_start(values)  # before a rebuild drops the last model
        with self._phase(trial_id, "build"):
            model = self._model_for(trial.hyperparameters, values)
        epochs = int(values.get("tuner/epochs", values["epochs"]))
        checkpoints = trial_checkpoints(
            Path(self.get_trial_dir(trial_id)),
            trial_id,
            values,
            minutes=self.checkpoint_minutes,
            seed=self.seed + int(trial_id),
            start_epoch=initial_epoch,
            encoder=self.encoder,
            pairs=len(data.train),
        )
        # The loss decides the batches (unique texts? positives only?), the
        # values their hard negatives (mined ones: by a callback, per epoch).
        train, val, mining = trial_batches(
            model.pair_loss,
            values,
            data.train,
            data.val,
            seed=self.seed + int(trial.trial_id),
            encode=lambda: self.encoder.encode_fn(case_fold=bool(values.get("case_fold"))),
            pairs_per_epoch=data.pairs_per_epoch,
            sample_seed=self.seed,  # the search's: trials' epochs are comparable samples
        )
        changed = changed_rows(model) if self._from_base else None
        patience = int(values.get("patience", self.space.params["patience"].default))
        best_epoch = RestoreBestEpoch(self.encoder, epochs - 1, changed, patience)
        with TrialLogger(self.logdir, trial.trial_id) as logger:
            scoring = self._epoch_scoring(trial_id, data, values, logger)
            with self._phase(trial_id, "fit"):
                history = model.fit(
                    checkpoints.dataset(train),
                    validation_data=val,
                    epochs=epochs,
                    initial_epoch=initial_epoch,
                    verbose=0,
                    callbacks=[
                        EpochLog(logger),
                        TrainingProgress(
                            run_name(trial_id),
                            epochs=epochs,
                            pairs_per_epoch=min(
                                data.pairs_per_epoch or len(data.train), len(data.train)
                            ),
                            batch_size=int(values["batch_size"]),
                        ),
                        StopOnNonFinite(),
                        # Scored before a restore can change the weights:
                        *([scoring] if scoring is not None else []),
                        best_epoch,
                        *mining,
                        checkpoints.watching(best_epoch, mining),  # last: saves what they did
                    ],
                )
            losses = history.history.get("loss", [])
            if any(not math.isfinite(x) for x in losses) or not self.encoder.all_finite(
                changed_rows(model)
            ):
                raise kt.errors.FailedTrialError(
                    f"training diverged (loss {losses}); lower learning_rate or clipnorm"
                )
            case_fold = bool(values.get("case_fold"))
            # Drawn while the trial scores, unless scoring picks other weights.
            early = self.alphas == NO_INTERPOLATION
            heatmap = TrialHeatmap(self.encoder, trial_id, case_fold) if early else None
            with self._phase(trial_id, "score"):  # at each --interpolate weight
                results = score_interpolations(
                    self.encoder, self.alphas, changed, lambda: self._score(data, values)
                )
            heatmap = heatmap or TrialHeatmap(self.encoder, trial_id, case_fold)
            results[names.EPOCHS_RUN] = float(len(losses))
            if scoring is not None:
                if scoring.stopped_at is not None:
                    results[names.STOPPED_AT_EPOCH] = float(scoring.stopped_at)
                scoring.finish()
            if worth_keeping(
                self.oracle, trial_id, results[names.OBJECTIVE], self.keep_best, self.hyperband
            ):
                with self._phase(trial_id, "checkpoint"):
                    self.save_model(trial_id, model)
            last_epoch = initial_epoch + len(losses)
            logger.log_final(_loggable(values), results, last_epoch, self.space.hparam_specs())
            with self._phase(trial_id, "heatmap"):  # what drawing is left
                heatmap.log(logger, last_epoch)
        return results

    def _epoch_scoring(self, trial_id: str, data: SearchData, values: dict, logger):
        """The fit callback that scores every epoch (``--prune median``), or None."""
        if self.prune == "none":
            return None
        return EpochScoring(
            Path(self.get_trial_dir(trial_id)),
            MedianRule(Path(self.project_dir), trial_id),
            lambda: self._score(data, values),
            lambda epoch, metrics: logger.log_epoch(
                epoch, {names.OBJECTIVE: metrics[names.OBJECTIVE]}
            ),
        )

    def _score(self, data: SearchData, values: dict) -> dict[str, float]:
        """The metrics and objective of the encoder's current weights."""
        metrics = encoder_metrics(
            self.encoder.encode_fn(case_fold=bool(values.get("case_fold"))),
            data.val,
            data.sts,
            data.retrieval,
        )
        if metrics[names.VAL_MSE] is None:  # NaN/inf embeddings: weights finite but overflowing
            raise kt.errors.FailedTrialError(
                "training diverged (NaN/inf validation embeddings); lower learning_rate or clipnorm"
            )
        if data.sts is not None and metrics[names.STS_PEARSON] is None:
            raise kt.errors.FailedTrialError(
                "STS-B Pearson is undefined (collapsed embeddings); lower learning_rate"
            )
        try:
            scored = self.objective.score(metrics, data.base_metrics)
        except ValueError as exc:  # NaN/inf metrics
            raise kt.errors.FailedTrialError(str(exc)) from None
        return {**{k: float(v) for k, v in metrics.items() if v is not None}, **scored}

    @contextlib.contextmanager
    def _phase(self, trial_id: str, phase: str) -> Iterator[None]:
        """Time one of the trial's phases for the callbacks (one that raises
        is not reported: the trial's end says why it failed)."""
        started = time.perf_counter()
        yield
        seconds = time.perf_counter() - started
        for callback in self.callbacks:
            callback.on_phase_end(trial_id, phase, seconds)

    def _model_for(self, hp, values: dict):
        """The built model for this trial: the previous trial's, given this
        trial's values, when the graph-shaping ones are the same."""
        key = self.space.graph_key(values)
        if self._model is None or self._model_key != key:
            self._model = None
            rt = tf_runtime.load()
            rt.tf_keras.backend.clear_session()  # free the previous graph
            gc.unfreeze()  # its cycles were frozen at the end of trials
            gc.collect()
            # Seeded per build, not per trial: set_seed makes TF re-instantiate
            # the traced functions (~2-5 s). The graph has no random ops; the
            # shuffle is seeded per trial in pair_dataset.
            rt.tf.random.set_seed(self.seed)
        with self.strategy.scope() if self.strategy else contextlib.nullcontext():
            if self._model is None:
                self._model = build_model(
                    self.space.declare(hp), self.encoder.keras_layer(trainable=True)
                )
                self._model_key = key
            self._model.start_trial(values)
        return self._model

    def _warm_start(self, values: dict) -> int:
        """Restore base weights, or a Hyperband parent's; return the first epoch."""
        parent = values.get("tuner/trial_id")
        last_from_base, self._from_base = self._from_base, False
        if parent and self.checkpoint_path(parent).exists():
            self.encoder.load_weights(self.checkpoint_path(parent))
            return int(values.get("tuner/initial_epoch", 0))
        if parent:  # e.g. deleted by hand: train the whole budget from the base
            log.warning(f"  trial {parent}'s checkpoint is gone; its child starts from the base")
        # After a trial that started from the base, only what it trained changed.
        known = last_from_base and self._model is not None
        self.encoder.restore_base(changed_rows(self._model) if known else None)
        self._from_base = True
        return 0

    # -- checkpoints -----------------------------------------------------------
    def save_model(self, trial_id, model=None, step=0) -> None:
        self.encoder.save_weights(self.checkpoint_path(trial_id))

    def load_model(self, trial) -> TrainableEncoder:
        """Load the trial's fine-tuned weights into the shared encoder."""
        self.encoder.load_weights(self.checkpoint_path(trial.trial_id))
        self._from_base = False
        return self.encoder

    def search(self, *args, **kwargs) -> None:
        try:
            super().search(*args, **kwargs)
        finally:
            gc.unfreeze()  # what on_trial_end froze can be collected again

    def on_trial_begin(self, trial) -> None:
        super().on_trial_begin(trial)
        self._trial_started = time.monotonic()
        values = {
            k: v for k, v in trial.hyperparameters.values.items() if not k.startswith("tuner/")
        }
        for callback in self.callbacks:
            callback.on_trial_begin(trial.trial_id, values)

    def on_trial_end(self, trial) -> None:
        try:
            super().on_trial_end(trial)
        except RuntimeError:  # too many consecutive failures
            kt_compat.record_failed_end(self.oracle, trial.trial_id)
            raise
        finally:
            prune_checkpoints(self.oracle, self.project_dir, self.keep_best, self.hyperband)
            # A trial leaves cyclic garbage (matplotlib figures, tf.data
            # pipelines): collected now, not in a rare full collection, or peak
            # memory would creep up. What survives is long-lived (encoder,
            # traced steps): frozen, the next collection skips it (0.5 s).
            gc.collect()
            gc.freeze()
            self._report_trial_end(trial.trial_id)

    def _report_trial_end(self, trial_id: str) -> None:
        """Tell the callbacks how the trial ended, from the oracle's copy of
        it: its status, metrics and failure message."""
        if not self.callbacks:
            return
        seconds = time.monotonic() - self._trial_started
        ended = self.oracle.get_trial(trial_id)
        metrics = {name: ended.metrics.get_last_value(name) for name in ended.metrics.metrics}
        metrics = {name: value for name, value in metrics.items() if value is not None}
        message = None if ended.status == "COMPLETED" else failure_reason(ended.message)
        for callback in self.callbacks:
            callback.on_trial_end(trial_id, ended.status, metrics, seconds, message)


def _loggable(values: dict) -> dict:
    return {k: v for k, v in values.items() if not k.startswith("tuner/") or k == "tuner/epochs"}
