"""In-trial checkpoints: a running trial's state every ``--checkpoint-minutes``,
continued by a rerun.

Without them a kill (SIGKILL, out of memory, a lost machine) loses the whole
running trial, hours over 498k pairs. Every M minutes of training the state is
written atomically to ``trial_<id>/running_state.npz``; a rerun of the same
command gets the same trial again (KerasTuner's ``Oracle.reload`` queues the
trials that were running for a retry, under their id and values) and
continues it from there, so a kill loses at most M minutes. The state holds:

- the encoder where the trial changed it since its start (the base, or a
  Hyperband parent's checkpoint, restored as before): the rows lazy Adam
  wrote, other trained variables whole;
- the optimizer's state: step count, moments (on the written rows), row flags;
- the data position: the epoch and the batches of it already trained (an
  epoch's batches are a function of the trial's seed and the epoch number,
  see :func:`~domaintune.models.siamese.pair_dataset`: they are planned again
  and the trained ones skipped), the epoch's running loss/mae and the hard
  negatives it mined at its start;
- early stopping's best val_loss, epochs waited and best-epoch weights (by
  changed rows too), and the logs of the finished epochs.

A resumed trial trains exactly as an uninterrupted one. A state whose key
(trial, values, seed, start epoch, data size, variable shapes) differs is not
used. The file is deleted once its trial has ended (:func:`prune_states`).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import math
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from domaintune import tf_runtime
from domaintune._io import temp_glob, write_atomic
from domaintune.models.trainable_encoder import TrainableEncoder
from domaintune.search.fit_callbacks import RestoreBestEpoch, changed_rows
from domaintune.search.state_file import StateReader, StateWriter

#: The running trial's state, in its trial directory.
STATE_NAME = "running_state.npz"
#: Bumped when the file's content changes meaning: older states are not used.
FORMAT = 1

log = logging.getLogger("domaintune.search")


def state_key(trial_id: str, values: dict, *, seed: int, start_epoch: int, encoder, **facts) -> str:
    """What a state is valid for: the same trial with the same values and seed,
    started from the same epoch (a Hyperband parent's checkpoint found), on
    variables of the same shapes, and ``facts`` (e.g. the number of pairs)."""
    shapes = [(v.name, [int(d) for d in v.shape], v.dtype.name) for v in encoder.variables]
    described = dict(
        format=FORMAT,
        trial=trial_id,
        values=values,
        seed=seed,
        start_epoch=start_epoch,
        shapes=shapes,
        **facts,
    )
    text = json.dumps(described, sort_keys=True, default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def trial_checkpoints(
    trial_dir: Path,
    trial_id: str,
    values: dict,
    *,
    minutes: float,
    seed: int,
    start_epoch: int,
    encoder: TrainableEncoder,
    pairs: int,
) -> TrialCheckpoints:
    """The :class:`TrialCheckpoints` of a trial about to train (``seed``: its
    batches'; ``start_epoch``: where it starts, > 0 warm-started from a
    Hyperband parent; ``pairs``: the training pairs' count)."""
    key = state_key(
        trial_id, values, seed=seed, start_epoch=start_epoch, encoder=encoder, pairs=pairs
    )
    return TrialCheckpoints(
        trial_dir, minutes=minutes, key=key, encoder=encoder, label=f"trial #{trial_id}"
    )


class _ResumePoint:
    """Where fit starts: tf_keras asks ``model._training_state`` (the hook of
    its own BackupAndRestore) for the first epoch and step. Starting the step
    count there also keeps fit's inferred steps per epoch right."""

    def __init__(self, epoch: int, step: int):
        self.epoch, self.step = epoch, step

    def maybe_load_initial_counters_from_ckpt(self, steps_per_epoch, initial_epoch, mode=None):
        return self.epoch, self.step


class TrialCheckpoints(tf_runtime.load().tf_keras.callbacks.Callback):
    """Saves the trial's state every ``minutes`` of training and restores a
    saved one (0 minutes: never saves; a saved state is still continued).

    Use: :meth:`dataset` wraps the training batches, :meth:`watching` names
    the fit callbacks with state of their own, and the callback goes last in
    fit. ``key`` (:func:`state_key`) says which saved state is this trial's.
    """

    def __init__(
        self,
        trial_dir: Path,
        *,
        minutes: float,
        key: str,
        encoder: TrainableEncoder,
        label: str = "trial",
    ):
        super().__init__()
        self.path = Path(trial_dir) / STATE_NAME
        self.interval = minutes * 60.0
        self.key, self.encoder, self.label = key, encoder, label
        self.best_epoch: RestoreBestEpoch | None = None
        self.miners: Sequence[Any] = ()
        self.saved: StateReader | None = self._read()
        self.logs: list[dict[str, float]] = []
        self.epoch = self.batch = 0
        self._skip = self._produced = None  # variables of the wrapped dataset
        self._resume_epoch: int | None = None
        self._mined: list[list[str]] | None = None
        self._last_save = self._last_batch = time.monotonic()
        self._batch_seconds = 0.0
        self.save_seconds: list[float] = []  # what each save took (benchmarks)

    # -- set up ------------------------------------------------------------------
    def _read(self) -> StateReader | None:
        """The saved state, if there is one for this trial as it is set up now."""
        if not self.path.is_file():
            return None
        try:
            saved = StateReader(self.path)
        except ValueError as exc:
            return self._discard(f"unreadable ({exc})")
        if saved.meta.get("key") != self.key:
            saved.close()
            return self._discard("written for other settings")
        return saved

    def _discard(self, why: str) -> None:
        log.warning(f"  {self.label}: its saved state {self.path} is {why}; starting it afresh")
        self.path.unlink(missing_ok=True)
        return None

    @property
    def active(self) -> bool:
        return self.interval > 0 or self.saved is not None

    def dataset(self, train):
        """``train`` with the position bookkeeping: the first batches of a
        resumed epoch skipped, and a count of the batches produced so far
        (one is prefetched: a save waits until the next batch exists, so a
        resumed epoch is never empty)."""
        if not self.active:
            return train
        tf = tf_runtime.load().tf
        skip = self.saved.meta["batch"] if self.saved is not None else 0
        with tf.init_scope():
            self._skip = tf.Variable(skip, dtype=tf.int64, trainable=False, name="skip")
            self._produced = tf.Variable(0, dtype=tf.int64, trainable=False, name="produced")
        skip_var, produced = self._skip, self._produced

        def count(index, batch):
            with tf.control_dependencies([produced.assign(index + 1)]):
                return tf.nest.map_structure(tf.identity, batch)

        return train.enumerate().filter(lambda i, _: i >= skip_var).map(count).prefetch(1)

    def watching(self, best_epoch: RestoreBestEpoch, miners: Sequence[Any]) -> TrialCheckpoints:
        """The fit callbacks whose state is saved too (placed before this one)."""
        self.best_epoch, self.miners = best_epoch, list(miners)
        return self

    # -- fit hooks -----------------------------------------------------------------
    def on_train_begin(self, logs=None):
        self._last_save = self._last_batch = time.monotonic()
        if self.saved is None:
            return
        try:
            self._restore(self.saved)
        except ValueError as exc:  # checked before anything is written
            self.saved.close()
            self.saved = self._discard(f"damaged ({exc})")
            if self._skip is not None:
                self._skip.assign(0)

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch, self.batch = epoch, 0
        self._mined = _mined_columns(self.miners)
        if epoch != self._resume_epoch or self.saved is None or not self.saved.meta["batch"]:
            return  # (a state saved at an epoch's end resumes the next from its start)
        saved, self.batch = self.saved, self.saved.meta["batch"]
        for i, variable in enumerate(_metric_variables(self.model)):
            variable.assign(saved[f"metric{i}"])  # the epoch's running loss/mae
        if saved.meta["mined"]:
            self._mined = [saved.texts(f"mined{j}") for j in range(saved.meta["mined"])]
            _set_mined_columns(self.miners, self._mined)

    def on_train_batch_end(self, batch, logs=None):
        self.batch += 1
        now = time.monotonic()
        self._batch_seconds, self._last_batch = now - self._last_batch, now
        # Only where the epoch goes on: a state at its very end would resume an
        # empty epoch (its end is saved at on_epoch_end instead).
        if self._due() and self._produced is not None and int(self._produced.numpy()) > self.batch:
            self.save()

    def on_epoch_end(self, epoch, logs=None):
        self.logs.append({k: float(v) for k, v in (logs or {}).items()})
        self.epoch, self.batch = epoch + 1, 0
        if self._resume_epoch == epoch:
            self._resume_epoch = None
            self._skip.assign(0)
            self.saved.close()
            self.saved = None
        if self._due() and not self.model.stop_training and epoch + 1 < self.params["epochs"]:
            self.save()

    def on_train_end(self, logs=None):
        self.model._training_state = None
        if self.saved is not None:
            self.saved.close()
            self.saved = None

    def _due(self) -> bool:
        """Time to start a save that ends by ``minutes`` after the last one (it
        may wait a batch for the next to exist): a kill loses at most that."""
        if self.interval <= 0:
            return False
        took = self.save_seconds[-1] if self.save_seconds else 0.0
        margin = min(took + self._batch_seconds, self.interval / 2)
        return time.monotonic() - self._last_save >= self.interval - margin

    # -- restore -------------------------------------------------------------------
    def _restore(self, saved: StateReader) -> None:
        model, meta = self.model, saved.meta
        optimizer = model.optimizer
        # A fresh process has not built the optimizer yet (the first step would).
        optimizer.build(model.tuned_variables())
        groups = {"encoder": self.encoder.variables, "optimizer": optimizer.variables}
        for group, variables in groups.items():
            if meta[f"{group}_variables"] != len(variables):
                raise ValueError(f"{meta[f'{group}_variables']} {group} variables saved")
            for i, variable in enumerate(variables):
                saved.check_variable(f"{group}{i}", variable)
        # The snapshot is completed from the trial's start, still in the variables.
        self._restore_best_epoch(saved)
        for group, variables in groups.items():
            for i, variable in enumerate(variables):
                saved.write_variable(f"{group}{i}", variable)
        self.logs = [dict(epoch_logs) for epoch_logs in meta["logs"]]
        history = {}
        for epoch_logs in self.logs:
            for name, value in epoch_logs.items():
                history.setdefault(name, []).append(value)
        model.history.history = history  # fit returns every epoch's logs
        model._training_state = _ResumePoint(meta["epoch"], meta["batch"])
        self._resume_epoch = meta["epoch"]
        log.info(
            f"  {self.label}: continuing from its state saved "
            f"{time.strftime('%H:%M:%S', time.localtime(meta['saved_at']))} "
            f"(epoch {meta['epoch'] + 1}, batch {meta['batch']})"
        )

    def _restore_best_epoch(self, saved: StateReader) -> None:
        meta, best = saved.meta, self.best_epoch
        if best is None:
            return
        best.best = math.inf if meta["best"] is None else float(meta["best"])
        best.wait = int(meta.get("wait", 0))  # states written before patience had none
        best.saved = bool(meta["snapshot"])
        if not best.saved:
            return
        taken = saved.snapshot(self.encoder.variables)
        self.encoder.put_snapshot(taken)

    # -- save ------------------------------------------------------------------------
    def save(self) -> None:
        """Write the state now (atomically: a kill mid-write keeps the last one)."""
        started = time.perf_counter()
        changed = changed_rows(self.model)
        optimizer = self.model.optimizer
        slot_rows = optimizer.written_slot_rows()  # moments of lazy tables: written rows
        best = self.best_epoch
        snapshot = self.encoder.snapshot_taken() if best is not None and best.saved else None
        mined = self._mined if self.batch else None  # at batch 0 the epoch mines afresh
        meta = {
            "format": FORMAT,
            "key": self.key,
            "epoch": self.epoch,
            "batch": self.batch,
            "logs": self.logs,
            "best": None if best is None or math.isinf(best.best) else best.best,
            "wait": 0 if best is None else best.wait,
            "snapshot": snapshot is not None,
            "mined": len(mined) if mined else 0,
            "encoder_variables": len(self.encoder.variables),
            "optimizer_variables": len(optimizer.variables),
        }

        def write(file) -> None:
            with StateWriter(file) as out:
                for i, variable in enumerate(self.encoder.variables):
                    out.variable(f"encoder{i}", variable, changed(variable))
                for i, variable in enumerate(optimizer.variables):
                    out.variable(f"optimizer{i}", variable, slot_rows.get(id(variable)))
                for i, variable in enumerate(_metric_variables(self.model)):
                    out.array(f"metric{i}", variable.numpy())
                if snapshot is not None:
                    out.snapshot(snapshot, self.encoder.variables, changed)
                for j, column in enumerate(mined or ()):
                    out.texts(f"mined{j}", column)
                meta["saved_at"] = time.time()
                meta["write_seconds"] = time.perf_counter() - started
                out.meta(meta)

        write_atomic(self.path, write)
        self.save_seconds.append(time.perf_counter() - started)
        self._last_save = time.monotonic()


def _metric_variables(model) -> list:
    return [v for metric in model.metrics for v in metric.variables]


def _mined_columns(miners: Sequence[Any]) -> list[list[str]] | None:
    """The hard negatives this epoch's batches are planned with (mined at its
    start by the MinedNegatives callback, which runs before this one)."""
    for miner in miners:
        return getattr(miner, "_columns", None)
    return None


def _set_mined_columns(miners: Sequence[Any], columns: list[list[str]]) -> None:
    """Replace what the miner just mined with the weights of the resumed
    moment by what the interrupted epoch mined at its start."""
    for miner in miners:
        miner._columns = columns


def prune_states(project_dir: Path, status_of: Callable[[str], str | None]) -> None:
    """Delete the states of ended trials (COMPLETED, FAILED) and the temp files
    of state writes a killed process left. An INVALID trial keeps its state:
    KerasTuner retries it (a distributed worker that stopped responding), and
    the retry continues from it."""
    project = Path(project_dir)
    paths = [
        *project.glob(f"trial_*/{STATE_NAME}"),
        *project.glob(f"trial_*/{temp_glob(STATE_NAME)}"),
    ]
    for path in paths:
        with contextlib.suppress(KeyError):  # a trial dir the oracle does not know
            status = status_of(path.parent.name.removeprefix("trial_"))
            # A temp file's writer is gone once its trial ended, retried or not.
            if status in ("COMPLETED", "FAILED") or (
                status == "INVALID" and path.name != STATE_NAME
            ):
                path.unlink(missing_ok=True)
