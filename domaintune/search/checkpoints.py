"""Which trials' encoder checkpoints a search keeps on disk, and the pruning of
the rest: the ``--keep-best`` trials, and Hyperband's possible warm-start
parents (:func:`domaintune.kt_compat.hyperband_parent_ids`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from domaintune import kt_compat
from domaintune._io import temp_glob
from domaintune.models.trainable_encoder import CHECKPOINT_NAME
from domaintune.search.trial_state import prune_states


def worth_keeping(
    oracle: Any, trial_id: str, objective: float, keep_best: int, hyperband: bool
) -> bool:
    """Would this trial's checkpoint survive pruning? (Writing a USE-m3
    checkpoint only to delete it is most of a short trial's cost.)"""
    if hyperband and kt_compat.hyperband_may_promote(oracle, trial_id, objective):
        return True  # a possible warm-start parent
    scores = [t.score for t in oracle.get_best_trials(keep_best) if t.score is not None]
    return len(scores) < keep_best or objective < scores[-1]


def protected_trial_ids(oracle: Any, keep_best: int, hyperband: bool) -> set[str] | None:
    """Trials whose checkpoints must stay: the best, and Hyperband parents
    (None: keep everything, for Hyperband seen from a worker)."""
    keep = {t.trial_id for t in oracle.get_best_trials(keep_best)}
    if hyperband:
        parents = kt_compat.hyperband_parent_ids(oracle)
        if parents is None:  # an OracleClient does not show them
            return None
        keep |= parents
    return keep


def prune_checkpoints(oracle: Any, project_dir: Path, keep_best: int, hyperband: bool) -> None:
    """Delete the checkpoints of ended trials not kept, and the temp files
    of ended trials' checkpoint writes (a kill mid-write leaves them).
    Works from the files on disk: in a distributed search each worker
    prunes the shared directory, leaving trials running elsewhere alone."""
    keep = protected_trial_ids(oracle, keep_best, hyperband)
    project = Path(project_dir)
    paths = list(project.glob(f"trial_*/{temp_glob(CHECKPOINT_NAME)}"))
    if keep is not None:
        paths += project.glob(f"trial_*/{CHECKPOINT_NAME}")

    def status(trial_id: str) -> str | None:
        return trial_status(oracle, trial_id)

    for path in paths:
        trial_id = path.parent.name.removeprefix("trial_")
        if path.name == CHECKPOINT_NAME and trial_id in keep:
            continue
        if status(trial_id) in ("COMPLETED", "FAILED", "INVALID"):
            path.unlink(missing_ok=True)
    prune_states(project, status)


def trial_status(oracle: Any, trial_id: str) -> str | None:
    """The oracle's status of a trial dir's trial; None for a dir it does not
    know (e.g. ids padded to another --max-trials' digits by an earlier run
    whose last oracle state was never saved): not ours to delete."""
    try:
        return oracle.get_trial(trial_id).status
    except KeyError:
        return None
