"""Reading and checking a search's inputs (pairs, STS-B, space, objective)
before any model is loaded, so a mistake fails at once and leaves nothing behind."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from domaintune.errors import UserError
from domaintune.search.project import SearchConfig, pairs_source

if TYPE_CHECKING:
    from domaintune.data.pair_set import PairSet

log = logging.getLogger(__name__)


@dataclass
class Inputs:
    """Everything read and checked before any model is loaded."""

    space: Any
    objective: Any
    train: Any
    val: Any
    retrieval: Any
    sts: Any


def load_inputs(config: SearchConfig, objective, frames: Mapping[str, Any]) -> Inputs:
    from domaintune.data.pairs import DEFAULT_COLUMNS, file_sha256, load_pairs, pairs_sha256
    from domaintune.data.split import cap_validation, split_validation
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
    train_source = pairs_source("train", config, frames)
    train, report = load_pairs(train_source, name="train DataFrame", **config.pair_format)
    log.info(report.summary())
    val_source = pairs_source("val", config, frames)
    if val_source is not None:
        val, val_report = load_pairs(val_source, name="val DataFrame", **config.pair_format)
        log.info(val_report.summary())
    else:
        split = split_validation(train, config.val_split, config.seed)
        log.info(split.summary())
        train, val = split.train, split.val
    capped = cap_validation(val, config.val_max_pairs, config.seed)
    if len(capped) < len(val):  # scoring a trial stays seconds at any data size
        note = f"--val-max-pairs {config.val_max_pairs:,}"
        if val_source is None:  # held out of train, yet not sampled: say what it costs
            note += (
                f"; the other {len(val) - len(capped):,} held-out pairs train nothing, "
                "a smaller --val-split keeps them for training"
            )
        log.info(f"Validation: sampled {len(capped):,} of {len(val):,} pairs ({note})")
        val = capped
    log.info(f"Train: {len(train)} pairs, validation: {len(val)} pairs")
    if 0 < config.pairs_per_epoch < len(train):
        log.info(
            f"Pairs budget: each epoch trains on a seeded sample of {config.pairs_per_epoch:,} "
            "of the pairs its loss uses, a different one each epoch (--pairs-per-epoch)"
        )
    if config.augment:
        train = _augmented(train, val, config.augment)
    _check_positive_pairs(space, train)
    retrieval = _validation_retrieval(val, config)
    sts = load_sts(config.sts, "dev", required=config.sts.lower() not in ("auto", ""))
    objective.validate(sts_available=sts is not None)
    _log_guard(config, sts is not None)
    columns = config.pair_format.get("columns", DEFAULT_COLUMNS)
    config.train_sha256 = pairs_sha256(train_source, columns)
    config.val_sha256 = pairs_sha256(val_source, columns) if val_source is not None else None
    config.sts_source = sts.source if sts is not None else None
    config.sts_sha256 = file_sha256(sts.source) if sts is not None else None
    config.space = space.summary()
    return Inputs(space, objective, train, val, retrieval, sts)


def _log_guard(config: SearchConfig, sts_measured: bool) -> None:
    """The start banner's word on the STS-B guard: a warning when it is off."""
    from domaintune.reporting.status import guard_of

    guard = guard_of({**vars(config), "sts_source": "STS-B" if sts_measured else None}, {})
    (log.info if guard.on else log.warning)(guard.status())


def _augmented(train: PairSet, val: PairSet, kinds: Sequence[str]) -> PairSet:
    """``train`` plus surface variants of its texts at score 1.0 (after the
    split: validation stays as given, and no variant is a validation text)."""
    from domaintune.data.augment import augment_pair_set

    val_texts = {*val.texts_a, *val.texts_b}
    augmented, counts = augment_pair_set(train, kinds, score=1.0, exclude=val_texts)
    shown = ", ".join(f"{kind} {n}" for kind, n in counts.items())
    log.info(f"Augmented the training pairs: +{sum(counts.values())} pairs ({shown})")
    return augmented


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
