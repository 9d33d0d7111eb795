"""The base encoder held in memory for a whole search.

A search loads the base SavedModel once and keeps a copy of its initial
weights; each trial restores them in memory (no re-read from disk; only the
rows the last trial changed, when that is known), fine-tunes the same
variables, and a checkpoint stores only those encoder variables (no optimizer
state: Adam's two slots per variable would about triple it). Big variables move
in row chunks (:mod:`domaintune.models.weights_io`).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from domaintune import tf_runtime
from domaintune._io import write_atomic
from domaintune.models import weights_io
from domaintune.models.encoding import EncodeFn, batched_encoder, load_saved_model
from domaintune.models.normalization import case_folding

CHECKPOINT_NAME = "encoder.npz"

# variable -> ids of the rows that changed (None: any part may have changed)
ChangedRows = Callable[[Any], Any]
# per variable: (row ids or None for all, their values or None for "unchanged")
Changes = list[tuple[np.ndarray | None, np.ndarray | None]]


class TrainableEncoder:
    """A loaded TF-Hub style SavedModel plus its pristine base weights."""

    def __init__(self, saved_model_dir: Path, strategy=None):
        # Under a distribution strategy the variables must be created in its
        # scope (mirrored on every device).
        with strategy.scope() if strategy else contextlib.nullcontext():
            self.module = load_saved_model(saved_model_dir)  # damaged: a UserError
        self.variables = list(self.module.variables)
        self._base = [weights_io.read_into(v) for v in self.variables]
        self._snapshot: list[tuple[np.ndarray | None, np.ndarray]] | None = None

    def snapshot(self, changed_rows: ChangedRows | None = None) -> None:
        """Copy the current weights aside (see :meth:`restore_snapshot`).

        With ``changed_rows`` (what changed since the base, as for
        :meth:`restore_base`) only those rows are copied: a few MB instead of
        the whole table.
        """
        tf = tf_runtime.load().tf
        self._snapshot = None
        taken = []
        for variable in self.variables:
            rows = _rows(changed_rows, variable)
            if rows is None:
                taken.append((None, weights_io.read_into(variable)))
            else:
                values = tf.gather(variable, rows).numpy() if len(rows) else None
                taken.append((rows, values))
        self._snapshot = taken

    def drop_snapshot(self) -> None:
        self._snapshot = None

    def snapshot_taken(self) -> list[tuple[np.ndarray | None, np.ndarray | None]] | None:
        """The last :meth:`snapshot` (per variable: ``(rows, their values)``,
        or ``(None, whole value)``), or None: what a trial's saved state keeps."""
        return self._snapshot

    def put_snapshot(self, taken: list[tuple[np.ndarray | None, np.ndarray | None]]) -> None:
        """Make ``taken`` (as :meth:`snapshot_taken` gave it, e.g. read back
        from a trial's saved state) the snapshot :meth:`restore_snapshot` restores."""
        self._snapshot = list(taken)

    def restore_snapshot(self, changed_rows: ChangedRows | None = None) -> None:
        """Put back the weights of the last :meth:`snapshot`; ``changed_rows``
        says what changed since the base (needed after a by-rows snapshot)."""
        if self._snapshot is None:
            raise RuntimeError("restore_snapshot() before any snapshot()")
        if any(rows is not None for rows, _ in self._snapshot):
            self.restore_base(changed_rows)  # rows outside the snapshot: base values
        for variable, (rows, value) in zip(self.variables, self._snapshot):
            if value is not None:
                weights_io.write(variable, value, rows)

    def restore_base(self, changed_rows: ChangedRows | None = None) -> None:
        """Put the untuned base weights back into the variables.

        ``changed_rows(variable)`` may say which rows changed since the base
        (None: possibly all): only those are rewritten. A trial with lazy Adam
        changes a few thousand of USE-m3's 128k table rows, and rewriting the
        whole table would cost time and a temporary copy of it.
        """
        for variable, value in zip(self.variables, self._base):
            rows = _rows(changed_rows, variable)
            if rows is None:
                weights_io.write(variable, value)
            elif len(rows):
                weights_io.write(variable, value[rows], rows)

    def changes(self, changed_rows: ChangedRows | None = None) -> Changes:
        """The current weights where they differ from the base, for
        :meth:`interpolate_with_base`; per variable ``(rows, their values)``,
        ``(None, whole value)``, or ``(rows, None)`` when nothing differs (or
        the variable is not a float one: those cannot be interpolated).

        ``changed_rows`` (since the base, as for :meth:`restore_base`) says
        which rows to read; without it, big variables are compared with the
        base chunk by chunk (a warm-started trial), never copied whole.
        """
        tf = tf_runtime.load().tf
        found: Changes = []
        for variable, base in zip(self.variables, self._base):
            rows = _rows(changed_rows, variable)
            if not variable.dtype.is_floating:
                found.append((np.zeros(0, np.int64), None))
            elif rows is None:
                found.append(weights_io.read_changed(variable, base))
            else:
                found.append((rows, tf.gather(variable, rows).numpy() if len(rows) else None))
        return found

    def interpolate_with_base(self, alpha: float, trained: Changes) -> None:
        """Set the weights to ``base + alpha * (trained - base)`` (WiSE-FT).

        ``trained`` is :meth:`changes` of the trained weights, taken while the
        variables held them or an interpolation of them: only those rows are
        written, the others are the base's already, so :meth:`restore_base`
        with the trial's ``changed_rows`` still undoes it exactly. Computed as
        ``(1 - alpha) * base + alpha * trained``: exact at 0 (the base) and 1.
        """
        for variable, base, (rows, values) in zip(self.variables, self._base, trained):
            if values is None:
                continue
            if rows is None:
                weights_io.write(variable, _mix(base, values, alpha))
                continue
            for start in range(0, len(rows), weights_io.CHUNK_ROWS):  # small temporaries
                part = rows[start : start + weights_io.CHUNK_ROWS]
                mixed = _mix(base[part], values[start : start + len(part)], alpha)
                weights_io.write(variable, mixed, part)

    def keras_layer(self, trainable: bool = True):
        """A fresh ``hub.KerasLayer`` over the shared variables."""
        return tf_runtime.load().hub.KerasLayer(self.module, trainable=trainable)

    def encode_fn(self, batch_size: int = 256, case_fold: bool = False) -> EncodeFn:
        """Batched numpy encoding with the current weights; ``case_fold`` folds
        every text first, as a trial with ``case_fold`` trains and exports."""
        return batched_encoder(case_folding(self.module) if case_fold else self.module, batch_size)

    def save_weights(self, path: Path) -> None:
        """Write the encoder variables (only) atomically to ``path`` (.npz)."""
        path.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(path, lambda f: weights_io.save_npz(f, self.variables))  # streamed

    def load_weights(self, path: Path) -> None:
        """Assign variables from a checkpoint written by :meth:`save_weights`."""
        weights_io.load_npz(path, self.variables)

    def all_finite(self, changed_rows: ChangedRows | None = None) -> bool:
        """No NaN/inf in the variables (in ``changed_rows`` only, if given:
        reading a whole table copies it once it had sparse updates)."""
        tf = tf_runtime.load().tf

        def finite(variable) -> bool:
            rows = _rows(changed_rows, variable)
            if rows is not None and not len(rows):
                return True  # unchanged
            values = variable if rows is None else tf.gather(variable, rows)
            return bool(tf.reduce_all(tf.math.is_finite(values)))

        return all(finite(v) for v in self.variables if v.dtype.is_floating)


def _rows(changed_rows: ChangedRows | None, variable) -> np.ndarray | None:
    """The ids of ``variable``'s changed rows, or None for "possibly all"."""
    rows = changed_rows(variable) if changed_rows else None
    return None if rows is None else np.asarray(rows)


def _mix(base: np.ndarray, trained: np.ndarray, alpha: float) -> np.ndarray:
    """``base + alpha * (trained - base)`` in the lerp form exact at 0 and 1."""
    return ((1.0 - alpha) * base + alpha * trained).astype(base.dtype, copy=False)
