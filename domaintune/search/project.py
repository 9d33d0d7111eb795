"""A search's project directory: its settings (:class:`SearchConfig`, saved as
``search_config.json``), the check that a rerun resumes the same search, and
the CSV copies of pairs given as DataFrames."""

from __future__ import annotations

import errno
import json
import shutil
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from domaintune._io import write_atomic
from domaintune.errors import UserError
from domaintune.reporting.results import CONFIG_FILE, read_json

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
    "augment",
    "seed",
    "sts_sha256",
    "objective",
    "domain_metric",
    "objective_weight",
    "tolerance",
    "tuner",
    "space",
    "interpolate",
    "recipe",
    "prune",
    "val_max_pairs",
    "pairs_per_epoch",
)
#: --prune choices (see search/pruning.py).
PRUNERS = ("none", "median")
#: --checkpoint-minutes default: a running trial's state is saved this often.
CHECKPOINT_MINUTES = 10.0
#: Where the pairs of a DataFrame given as train/val are kept in the project dir.
FRAME_FILES = {"train": "train_pairs.csv", "val": "val_pairs.csv"}


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
    recipe: str = "tutorial"  # see search/recipes.py; its settings are in the fields below
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
    augment: list[str] = field(default_factory=list)  # surface-variant kinds added to train
    # --interpolate: weights of base + a * (trained - base) scored per trial ([1.0]: none)
    interpolate: list[float] = field(default_factory=lambda: [1.0])
    prune: str = "none"  # --prune: "median" stops trials worse than the median per epoch
    val_max_pairs: int = 2000  # --val-max-pairs: validation sampled to at most this (0: all)
    pairs_per_epoch: int = 0  # --pairs-per-epoch: a seeded sample of train per epoch (0: all)
    # --checkpoint-minutes: a running trial's state every M minutes (0: never).
    # Not a resume key: how often a state is saved does not change the trials.
    checkpoint_minutes: float = CHECKPOINT_MINUTES
    # Filled in by run_search:
    train_sha256: str = ""
    val_sha256: str | None = None
    sts_source: str | None = None
    sts_sha256: str | None = None
    space: str = ""


def pairs_source(name: str, config: SearchConfig, frames: Mapping[str, Any]):
    """A DataFrame given for ``name`` (train/val), else the file's path; a
    DataFrame's config entry names the CSV copy the project dir will hold."""
    if name not in frames:
        return getattr(config, name)
    setattr(config, name, str(Path(config.project_dir) / FRAME_FILES[name]))
    return frames[name]


def keep_frames(frames: Mapping[str, Any], config: SearchConfig) -> None:
    """Write the DataFrames' pairs into the project dir: the search's record of
    its data (the export's model card names the file)."""
    from domaintune.data.pairs import DEFAULT_COLUMNS, frame_csv

    for name, frame in frames.items():
        columns = config.pair_format.get("columns", DEFAULT_COLUMNS)
        write_atomic(getattr(config, name), frame_csv(frame, columns))


def prepare_project_dir(project_dir: Path, config: SearchConfig, overwrite: bool) -> None:
    """Create, resume (same settings only) or, with ``overwrite``, empty the
    project dir; save ``config`` in it."""
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
        try:
            shutil.rmtree(project_dir)
        except OSError as exc:
            raise UserError(
                f"--overwrite: cannot delete '{project_dir}' ({_reason(exc)}). Delete it "
                "yourself or choose another --project-dir."
            ) from None
    if config_path.is_file():
        previous = read_json(config_path)
        # A key an older version did not record is not compared.
        now = asdict(config)
        changed = [
            k
            for k in RESUME_KEYS
            if k in previous
            and previous[k] != now.get(k)
            and not (k == "space" and _same_space(previous[k], now[k]))
        ]
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
    # The first folder this call creates, if any: removed again after a failure.
    missing = [p for p in [*reversed(project_dir.parents), project_dir] if not p.exists()]
    created = missing[0] if missing else None
    try:
        project_dir.mkdir(parents=True, exist_ok=True)
        write_atomic(config_path, json.dumps(asdict(config), indent=2, default=str))
    except OSError as exc:  # read-only place, no permission, a file in the path, disk full
        if created is not None:  # leave nothing behind
            shutil.rmtree(created, ignore_errors=True)
        raise UserError(
            f"--project-dir '{project_dir}' cannot be written ({_reason(exc)}). "
            "Choose a folder you can write to."
        ) from None


def _reason(exc: OSError) -> str:
    """Why, in words (``Read-only file system``), without errno and temp file names."""
    if exc.errno == errno.ENOTDIR:
        return "a part of the path is a file, not a folder"
    return exc.strerror or str(exc)


def _same_space(previous: str, current: str) -> bool:
    """Are two space summaries the same search? A hyperparameter a later
    version added (``LATE_PARAMS``, absent from ``previous``) is, at its
    default: the old trials ran as that default does."""
    from domaintune.search.space import LATE_PARAMS, SearchSpace

    def entries(summary: str) -> dict[str, str]:
        return dict(entry.split("=", 1) for entry in summary.split("; ") if "=" in entry)

    old, new, default = entries(previous), entries(current), entries(SearchSpace().summary())
    return old.keys() <= new.keys() and all(
        old.get(name, default[name] if name in LATE_PARAMS else None) == value
        for name, value in new.items()
    )
