"""TensorBoard output of a search: per-epoch scalars, HParams, heatmaps.

Layout: ``<project_dir>/logs/`` is the TensorBoard logdir, one run per
directory:

- ``base/``, the untuned base model, written by :func:`write_base_run` when
  a search starts (again when it resumes): the HParams experiment config (the
  searched hyperparameters and the metrics every trial has), the base's
  metrics, its similarity heatmap, and the text summary ``search`` (whether
  the STS-B guard is on, the objective, the searched and the fixed
  hyperparameters).
- ``trial-<id>/``, one per trial, named as the console names it
  (:func:`run_name`), written by :class:`TrialLogger` with TF2
  ``tf.summary`` writers and the HParams plugin API: epoch scalars, the
  HParams session, the final metrics and the trial's heatmap.

A trial's final metrics (the objective, its components, the encoder metrics)
are the scalars ``final/<metric>`` (:func:`final_tag`), one chart group; the
HParams table shows each trial's hyperparameters and the last value of each
declared ``final/`` scalar, under the metric's name. They are written at
every step from 0 to the trial's last epoch (the base's up to the search's
epochs), so the charts draw each as a flat line: TensorBoard's "Ignore
outliers in chart scaling" (on by default; it drops the top and bottom 5% of
a chart's points) keeps those in view, where it would hide the single points
of the best and the worst trial.

Integer hyperparameters are logged as strings (TensorBoard has no integer
type), see :mod:`domaintune.reporting.hparams`. Serving the logs:
:mod:`domaintune.reporting.tensorboard_serve`.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from domaintune import tf_runtime
from domaintune.evaluation import names
from domaintune.reporting import plotting
from domaintune.reporting.hparams import HParamSpec, experiment_config_pb, scalar_value

__all__ = [
    "BASE_RUN",
    "HParamSpec",
    "TrialLogger",
    "event_files",
    "final_tag",
    "run_name",
    "trial_metric_names",
    "write_base_run",
]

_EVENT_PREFIX = "events.out.tfevents."
#: The run of the untuned base model (and of the search's HParams config).
BASE_RUN = "base"
#: The chart group of the final metrics.
FINAL = "final"


def run_name(trial_id: str) -> str:
    """A trial's TensorBoard run and HParams trial name: ``trial-<id>``."""
    return f"trial-{trial_id}"


def final_tag(metric: str) -> str:
    """The scalar tag of a final metric: ``final/<metric>``."""
    return f"{FINAL}/{metric}"


def _hp_api() -> Any:
    tf_runtime.load()  # TF first, the project's way
    from tensorboard.plugins.hparams import api as hp_api

    return hp_api


def event_files(directory: Path) -> set[Path]:
    """The TensorBoard event files directly in ``directory``."""
    return {p for p in directory.glob(_EVENT_PREFIX + "*") if p.is_file()}


# -- what is declared ----------------------------------------------------------

#: HParams column order (TensorBoard ticks the first five metrics): the
#: objective, the search's domain metric (inserted second), generality, then
#: the rest. Without STS-B the guard's flags go last: they never change.
_METRIC_ORDER = (
    names.OBJECTIVE,
    names.STS_DELTA,
    names.GUARD_VIOLATED,
    names.VAL_MSE,
    names.VAL_SPEARMAN,
    names.RETRIEVAL_R1,
    names.RETRIEVAL_MRR,
    names.STS_PEARSON,
    names.RETRIEVAL_R5,
    names.VAL_PEARSON,
    names.ALPHA,
    names.DOMAIN_TERM,
    names.STS_TERM,
    names.EPOCHS_RUN,
    names.DOMAIN_ONLY,
)


def _is_sts(metric: str) -> bool:
    return metric.startswith("sts_")


def trial_metric_names(
    base_metrics: Mapping[str, float | None],
    base_scores: Mapping[str, float],
    *,
    domain_metric: str | None = None,
    interpolates: bool = False,
) -> list[str]:
    """The metrics every trial of a search has, in HParams column order.

    A trial has what the base has: the encoder metrics measured (not None)
    and what the objective scores (``base_scores``, the objective's score of
    the base against itself), plus ``epochs_run`` and, with ``--interpolate``,
    ``alpha``. Without STS-B (no ``sts_pearson``) no ``sts_*`` metric is
    declared: a declared metric without values blanks the parallel
    coordinates. ``domain_metric`` (a ``--domain-metric`` choice) comes
    second, after the objective.
    """
    have = {k for k, v in {**base_metrics, **base_scores}.items() if v is not None}
    have.add(names.EPOCHS_RUN)
    if interpolates:
        have.add(names.ALPHA)
    if names.STS_PEARSON not in have:
        have = {k for k in have if not _is_sts(k)}
    order = list(_METRIC_ORDER)
    if names.STS_PEARSON not in have:
        order.remove(names.GUARD_VIOLATED)
        order.append(names.GUARD_VIOLATED)
    if domain_metric in names.DOMAIN_METRICS:
        order.insert(1, names.DOMAIN_METRICS[domain_metric][0])
    first = list(dict.fromkeys(m for m in order if m in have))
    return first + sorted(have - set(first))


_GUARD = re.compile(r"(STS-B guard (?:ON|OFF))")


def _search_text(specs: Sequence[HParamSpec], notes: Sequence[str]) -> str:
    """The base run's text summary ``search``: the notes (``STS-B guard ON``/
    ``OFF`` in bold, options as code), then the hyperparameters."""
    parts = [
        re.sub(r"(?<![\w`-])(--[a-z][\w-]*)", r"`\1`", re.sub(_GUARD, r"**\1**", note))
        for note in notes
    ]
    for title, group in (
        ("Searched", [s for s in specs if s.searched]),
        ("Fixed", [s for s in specs if not s.searched]),
    ):
        if group:
            rows = "\n".join(f"| {s.name} | {s.describe()} |" for s in group)
            parts.append(f"**{title} hyperparameters**\n\n| name | value |\n|---|---|\n{rows}")
    return "\n\n".join(parts)


# -- writing -----------------------------------------------------------------


def _flat_scalars(metrics: Mapping[str, float], steps: Iterable[int]) -> None:
    tf = tf_runtime.load().tf
    steps = list(steps)
    for tag, value in metrics.items():
        for step in steps:
            tf.summary.scalar(str(tag), float(value), step=int(step))


HEATMAP_TAG = "similarity_heatmap"


def heatmap_title(run: str) -> str:
    """The title of a run's similarity heatmap."""
    return f"{run}: cosine similarity"


def heatmap_png(titles: Sequence[str], similarity: np.ndarray, title: str) -> bytes:
    """The TensorBoard card's similarity heatmap, as PNG bytes."""
    return plotting.similarity_heatmap_png(titles, similarity, title, card=True)


def _image(tag: str, png: bytes, step: int) -> None:
    tf = tf_runtime.load().tf
    image = tf.io.decode_png(png, channels=3)
    tf.summary.image(tag, tf.expand_dims(image, 0), step=int(step))


_METRIC_HELP = {
    names.OBJECTIVE: "What the search minimises: lower is better.",
    names.DOMAIN_TERM: "The domain metric relative to the base (1 = as good as the base).",
    names.STS_DELTA: "STS-B dev Pearson minus the base's (negative: general skill lost).",
    names.STS_TERM: "The STS-B drop relative to the base's headroom (objective term).",
    names.GUARD_VIOLATED: "1: the trial lost more STS-B than the tolerance.",
    names.DOMAIN_ONLY: "1: ranked on the domain alone (no STS-B).",
    names.VAL_MSE: "Validation pairs: MSE of the similarity (lower is better).",
    names.VAL_PEARSON: "Validation pairs: Pearson of similarity and score (higher is better).",
    names.VAL_SPEARMAN: "Validation pairs: Spearman of similarity and score (higher is better).",
    names.RETRIEVAL_R1: "Recall@1 of the same-concept retrieval (higher is better).",
    names.RETRIEVAL_R5: "Recall@5 of the same-concept retrieval (higher is better).",
    names.RETRIEVAL_MRR: "Mean reciprocal rank of the same-concept retrieval (higher is better).",
    names.STS_PEARSON: "STS-B dev Pearson: general language skill (higher is better).",
    names.ALPHA: "--interpolate: the weight of the trained model the objective chose.",
    names.EPOCHS_RUN: "Epochs trained (early stopping on val_loss).",
}


def write_base_run(
    logdir: Path,
    hparams: Iterable[HParamSpec],
    metric_names: Sequence[str],
    *,
    base_metrics: Mapping[str, float | None] | None = None,
    notes: Sequence[str] = (),
    heatmap: tuple[Sequence[str], np.ndarray] | None = None,
    last_step: int = 1,
) -> Path:
    """Write the ``base`` run: the HParams experiment config and the base model.

    ``hparams``: the search space; only the searched ones are declared
    (the fixed ones are listed in the text summary ``search``, after the
    markdown ``notes``). ``metric_names``: the HParams metric columns, in
    order (see :func:`trial_metric_names`). ``base_metrics`` of those names
    are logged at every step 0..``last_step``; ``heatmap`` is ``(titles,
    similarity)`` of the base model.

    The run is one event file, replaced when called again (a resumed
    search): TensorBoard keeps the first HParams config it reads, so older
    event files of the run go once the new one is on disk (and so do those
    at the root of ``logdir``, where older versions wrote the config). Trial
    runs are never touched. Returns the run's directory.
    """
    logdir = Path(logdir)
    specs = list(hparams)
    spec_names = [s.name for s in specs]
    if len(set(spec_names)) != len(spec_names):
        raise ValueError(f"duplicate hparam names in {spec_names}")
    tf = tf_runtime.load().tf
    hp_api = _hp_api()
    run_dir = logdir / BASE_RUN
    run_dir.mkdir(parents=True, exist_ok=True)
    before = event_files(run_dir) | event_files(logdir)
    writer = tf.summary.create_file_writer(str(run_dir))
    try:
        with writer.as_default():
            config = experiment_config_pb(
                hp_api,
                [s for s in specs if s.searched],
                [
                    hp_api.Metric(final_tag(m), display_name=m, description=_METRIC_HELP.get(m, ""))
                    for m in metric_names
                ],
            )
            tf.summary.experimental.write_raw_pb(config.SerializeToString(), step=0)
            # A session without hyperparameters: the base is a row of the
            # HParams table (the plots leave it out), to compare the trials with.
            hp_api.hparams({}, trial_id=BASE_RUN, start_time_secs=time.time())
            tf.summary.text("search", _search_text(specs, notes), step=0)
            values = {
                final_tag(m): v
                for m, v in (base_metrics or {}).items()
                if m in metric_names and v is not None
            }
            _flat_scalars(values, range(last_step + 1))
            if heatmap is not None:
                titles, similarity = heatmap
                _image(HEATMAP_TAG, heatmap_png(titles, similarity, heatmap_title("base")), 0)
    finally:
        writer.close()
    if event_files(run_dir) - before:  # the new run is on disk
        for old in before:
            old.unlink(missing_ok=True)
    return run_dir


class TrialLogger:
    """Writes one trial's TensorBoard run, ``<logdir>/trial-<trial_id>/``.

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
        self.run = run_name(trial_id)
        self.trial_dir = self.logdir / self.run
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

    def log_epoch(self, epoch: int, metrics: Mapping[str, float]) -> None:
        """Scalars ``metrics`` (tags as given, e.g. ``loss``, ``val_loss``) at step ``epoch``."""
        writer = self._active_writer()
        with writer.as_default():
            _flat_scalars(metrics, [epoch])
        writer.flush()

    def log_final(
        self,
        hparams: Mapping[str, float | int | str | bool],
        metrics: Mapping[str, float],
        step: int,
        specs: Iterable[HParamSpec] = (),
    ) -> None:
        """The trial's HParams session (named :attr:`run`) and final metrics.

        ``metrics`` (the objective, its components, the encoder metrics) are
        written as ``final/<metric>`` at every step 0..``step`` (see the
        module doc), so the HParams table and the charts show them. Without
        ``sts_pearson`` (no STS-B) no ``sts_*`` value is written. ``None``
        hparam values (inactive conditional hyperparameters) are left out; a
        value of one of ``specs`` is logged as the config declares it
        (integers as strings), the others as they are.
        """
        hp_api = _hp_api()
        by_name = {s.name: s for s in specs}
        values = {
            k: by_name[k].logged(v) if k in by_name else scalar_value(v)
            for k, v in hparams.items()
            if v is not None
        }
        if names.STS_PEARSON not in metrics:
            metrics = {k: v for k, v in metrics.items() if not _is_sts(k)}
        writer = self._active_writer()
        with writer.as_default():
            hp_api.hparams(values, trial_id=self.run, start_time_secs=time.time())
            _flat_scalars({final_tag(k): v for k, v in metrics.items()}, range(int(step) + 1))
        writer.flush()

    def log_heatmap(
        self, titles: Sequence[str], similarity: np.ndarray, step: int = 0, title: str = ""
    ) -> None:
        """The similarity heatmap as image ``similarity_heatmap`` at ``step``,
        titled with the run's name unless ``title`` is given."""
        png = heatmap_png(titles, similarity, title or heatmap_title(self.run))
        self.log_heatmap_png(png, step)

    def log_heatmap_png(self, png: bytes, step: int = 0) -> None:
        """A heatmap drawn already (:func:`heatmap_png`), as :meth:`log_heatmap` logs it."""
        writer = self._active_writer()
        with writer.as_default():
            _image(HEATMAP_TAG, png, step)
        writer.flush()
