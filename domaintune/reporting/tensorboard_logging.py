"""TensorBoard output of a search: per-epoch scalars, HParams, heatmaps.

Layout: ``<project_dir>/logs/`` is the TensorBoard logdir. It holds the
HParams experiment config (:func:`write_experiment_config`) at its root and
one run per trial, ``<project_dir>/logs/<trial_id>/``, written by
:class:`TrialLogger` with TF2 ``tf.summary`` writers and the HParams plugin
API. The HParams table shows, for each trial, its hyperparameters and the
last value of each metric named in the config, read from the scalar of the
same tag in the trial's run; :meth:`TrialLogger.log_final` writes those.

Independent of keras_tuner: hyperparameters are described by
:class:`HParamSpec`.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from numbers import Real
from pathlib import Path
from typing import Any, Literal

import numpy as np

from domaintune import tf_runtime
from domaintune.errors import UserError
from domaintune.reporting import plotting

__all__ = ["HParamSpec", "TrialLogger", "launch_tensorboard", "write_experiment_config"]

HParamKind = Literal["float", "int", "choice", "bool"]
_EVENT_PREFIX = "events.out.tfevents."


@dataclass(frozen=True)
class HParamSpec:
    """One hyperparameter's domain, for the HParams dashboard.

    ``kind`` and ``values``:

    - ``"float"``: ``values = (min, max)``, a real interval;
    - ``"int"``: ``values = (min, max)``, an integer interval (inclusive);
    - ``"choice"``: ``values`` = the allowed values, all str, all bool, or
      all numbers (ints and floats mixed are stored as floats);
    - ``"bool"``: ``values`` is ignored (the domain is ``{False, True}``).
    """

    name: str
    kind: HParamKind
    values: Sequence[Any] = ()

    def __post_init__(self) -> None:
        if not self.name:
            raise ValueError("HParamSpec.name must be non-empty")
        if self.kind in ("float", "int"):
            if len(self.values) != 2 or not all(_is_number(v) for v in self.values):
                raise ValueError(
                    f"hparam {self.name!r}: {self.kind} needs values=(min, max), "
                    f"got {self.values!r}"
                )
            if self.values[0] > self.values[1]:
                raise ValueError(f"hparam {self.name!r}: min > max in {self.values!r}")
        elif self.kind == "choice":
            _choice_values(self.name, self.values)  # validates
        elif self.kind != "bool":
            raise ValueError(
                f"hparam {self.name!r}: unknown kind {self.kind!r} (float, int, choice, bool)"
            )

    def to_hparam(self, hp_api: Any) -> Any:
        """This spec as an ``hp_api.HParam``."""
        lo_hi = [_scalar(v) for v in self.values]
        if self.kind == "float":
            domain = hp_api.RealInterval(float(lo_hi[0]), float(lo_hi[1]))
        elif self.kind == "int":
            domain = hp_api.IntInterval(int(lo_hi[0]), int(lo_hi[1]))
        elif self.kind == "bool":
            domain = hp_api.Discrete([False, True])
        else:
            domain = hp_api.Discrete(_choice_values(self.name, self.values))
        return hp_api.HParam(self.name, domain)


def _scalar(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value


def _is_number(value: Any) -> bool:
    value = _scalar(value)
    return isinstance(value, Real) and not isinstance(value, bool)


def _choice_values(name: str, values: Iterable[Any]) -> list[Any]:
    vals = [_scalar(v) for v in values]
    if not vals:
        raise ValueError(f"hparam {name!r}: choice needs at least one value")
    if all(isinstance(v, bool) for v in vals) or all(isinstance(v, str) for v in vals):
        return vals
    if all(_is_number(v) for v in vals):
        return vals if all(isinstance(v, int) for v in vals) else [float(v) for v in vals]
    raise ValueError(
        f"hparam {name!r}: choice values must be all str, all bool or all numbers: {vals!r}"
    )


def _hp_api() -> Any:
    tf_runtime.load()  # TF first, the project's way
    from tensorboard.plugins.hparams import api as hp_api

    return hp_api


def _event_files(directory: Path) -> set[Path]:
    return {p for p in directory.glob(_EVENT_PREFIX + "*") if p.is_file()}


def write_experiment_config(
    logdir: Path, hparams: Iterable[HParamSpec], metric_names: Sequence[str]
) -> None:
    """Write the HParams experiment config at the root of ``logdir``.

    ``metric_names`` are the scalar tags shown as HParams table columns (the
    ones :meth:`TrialLogger.log_final` writes). Calling it again (a resumed
    search) replaces the previous config: TensorBoard keeps the first config
    it sees, so older root-level event files are removed once the new one is
    written. Trial runs live in subdirectories and are never touched.
    """
    logdir = Path(logdir)
    specs = list(hparams)
    names = [s.name for s in specs]
    if len(set(names)) != len(names):
        raise ValueError(f"duplicate hparam names in {names}")
    tf = tf_runtime.load().tf
    hp_api = _hp_api()
    logdir.mkdir(parents=True, exist_ok=True)
    before = _event_files(logdir)
    writer = tf.summary.create_file_writer(str(logdir))
    try:
        with writer.as_default():
            hp_api.hparams_config(
                hparams=[s.to_hparam(hp_api) for s in specs],
                metrics=[hp_api.Metric(m, display_name=m) for m in metric_names],
            )
    finally:
        writer.close()
    if _event_files(logdir) - before:  # the new config is on disk
        for old in before:
            old.unlink(missing_ok=True)


class TrialLogger:
    """Writes one trial's TensorBoard run, ``<logdir>/<trial_id>/``.

    Use as a context manager; each ``with`` opens a new event file in the same
    directory, so a resumed trial just adds to its run. Every ``log_*`` call
    flushes, so a running TensorBoard shows progress live.
    """

    def __init__(self, logdir: Path, trial_id: str) -> None:
        trial_id = str(trial_id)
        if not trial_id or trial_id in (".", "..") or "/" in trial_id or "\\" in trial_id:
            raise ValueError(f"trial_id must be a plain directory name, got {trial_id!r}")
        self.logdir = Path(logdir)
        self.trial_id = trial_id
        self.trial_dir = self.logdir / trial_id
        self._writer: Any = None

    def __enter__(self) -> TrialLogger:
        self.open()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def open(self) -> None:
        if self._writer is None:
            self.trial_dir.mkdir(parents=True, exist_ok=True)
            self._writer = tf_runtime.load().tf.summary.create_file_writer(str(self.trial_dir))

    def close(self) -> None:
        if self._writer is not None:
            writer, self._writer = self._writer, None
            writer.flush()
            writer.close()

    def _active_writer(self) -> Any:
        if self._writer is None:
            raise RuntimeError("TrialLogger is closed; use it as `with TrialLogger(...) as log:`")
        return self._writer

    def _scalars(self, metrics: Mapping[str, float], step: int) -> None:
        tf = tf_runtime.load().tf
        for tag, value in metrics.items():
            tf.summary.scalar(str(tag), float(value), step=int(step))

    def log_epoch(self, epoch: int, metrics: Mapping[str, float]) -> None:
        """Scalars ``metrics`` (tags as given, e.g. ``loss``, ``val_loss``) at step ``epoch``."""
        writer = self._active_writer()
        with writer.as_default():
            self._scalars(metrics, epoch)
        writer.flush()

    def log_final(
        self,
        hparams: Mapping[str, float | int | str | bool],
        metrics: Mapping[str, float],
        step: int,
    ) -> None:
        """The trial's HParams session (group = ``trial_id``) and final metrics.

        ``metrics`` (the objective and its components) are written as scalars
        at ``step`` so the HParams table shows them. ``None`` hparam values
        (inactive conditional hyperparameters) are left out.
        """
        hp_api = _hp_api()
        values = {k: _scalar(v) for k, v in hparams.items() if v is not None}
        writer = self._active_writer()
        with writer.as_default():
            hp_api.hparams(values, trial_id=self.trial_id, start_time_secs=time.time())
            self._scalars(metrics, step)
        writer.flush()

    def log_heatmap(self, titles: Sequence[str], similarity: np.ndarray, step: int = 0) -> None:
        """The similarity heatmap as image ``similarity_heatmap`` at ``step``."""
        tf = tf_runtime.load().tf
        png = plotting.similarity_heatmap_png(titles, similarity)
        image = tf.io.decode_png(png, channels=3)
        writer = self._active_writer()
        with writer.as_default():
            tf.summary.image("similarity_heatmap", tf.expand_dims(image, 0), step=int(step))
        writer.flush()


def launch_tensorboard(logdir: Path, port: int = 6006, host: str = "127.0.0.1") -> None:
    """Serve TensorBoard on ``logdir``, print its URL and block until Ctrl-C.

    ``port=0`` lets the OS pick a free port (the printed URL has it).
    """
    logdir = Path(logdir)
    if not logdir.is_dir():
        raise UserError(
            f"no TensorBoard logs at {logdir}: directory does not exist; "
            "run `domaintune search` first or pass the project's logs directory"
        )
    from tensorboard import program

    tb = program.TensorBoard()
    tb.configure(argv=[None, "--logdir", str(logdir), "--host", host, "--port", str(port)])
    try:
        url = tb.launch()
    except program.TensorBoardServerException as e:
        raise UserError(f"cannot start TensorBoard on {host}:{port}: {e.msg}") from e
    print(f"TensorBoard serving {logdir} at {url} (press Ctrl-C to stop)", flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        print("TensorBoard stopped.", flush=True)
