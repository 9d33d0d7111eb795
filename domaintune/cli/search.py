"""``domaintune search``: :func:`domaintune.api.search` from command-line options."""

from __future__ import annotations

from pathlib import Path

import click

from domaintune import kt_compat
from domaintune.cli.options import STS_HELP, pair_format_options
from domaintune.search.project import CHECKPOINT_MINUTES
from domaintune.search.recipes import RECIPES


@click.command()
@click.option(
    "--train",
    "train_path",
    type=click.Path(path_type=Path),
    help="Domain pairs base,ref,similarity (default: the bundled job-title sample).",
)
@click.option(
    "--val",
    "val_path",
    type=click.Path(path_type=Path),
    help="Validation pairs; default: a grouped --val-split of --train.",
)
@click.option(
    "--val-split",
    default=0.2,
    show_default=True,
    type=click.FloatRange(0, 1, min_open=True, max_open=True),
    help="Fraction of --train held out for validation (pairs sharing a text stay together; "
    "if they all do, whole concepts or a sample of texts, see README).",
)
@click.option(
    "--val-max-pairs",
    default=None,
    type=click.IntRange(0),
    help="Score validation on a seeded sample of at most N pairs, so scoring stays seconds "
    "(a retrieval query keeps its gold targets); 0 = all. [default: 2000, or the recipe's]",
)
@click.option(
    "--pairs-per-epoch",
    default=None,
    type=click.IntRange(0),
    help="Train each epoch on a seeded sample of N pairs, a different one each epoch, "
    "covering the data over the epochs; Hyperband's budget counts these epochs. "
    "0 = all pairs every epoch. [default: 0, or the recipe's]",
)
@click.option(
    "--base",
    default="use-m3",
    show_default=True,
    help="Base encoder: 'use-m3', a TF-Hub handle/URL, or a SavedModel directory.",
)
@click.option("--sts", "sts_spec", default="auto", show_default=True, help=STS_HELP)
@click.option("--tuner", type=click.Choice(kt_compat.TUNERS), default="random", show_default=True)
@click.option("--max-trials", default=5, show_default=True, type=click.IntRange(1, 10_000))
@click.option(
    "--epochs",
    default=None,
    type=click.IntRange(1, 1000),
    help="Maximum epochs per trial (early stopping on val_loss: --hp patience=N, 0 = "
    "off); same as --hp epochs=N. [default: 2]",
)
@click.option(
    "--objective",
    default="guarded",
    show_default=True,
    help="guarded (domain fit + STS-B guard), val_mse, or sts_pearson.",
)
@click.option(
    "--domain-metric",
    type=click.Choice(["mse", "spearman", "retrieval"]),
    default=None,
    help="What the objective reads of the validation pairs: val MSE, Spearman, or "
    "retrieval recall@1 (pairs at score 1.0 as query -> target). [default: mse, or the "
    "recipe's]",
)
@click.option(
    "--recipe",
    type=click.Choice(list(RECIPES)),
    default=None,
    help="A named starting point: tutorial (angular MSE, guarded val MSE; the default) or "
    "retrieval (in-batch negatives, case folding, large batches, interpolation, selected on "
    "retrieval). --hp and the options override any of its settings.",
)
@click.option(
    "--prune",
    type=click.Choice(["none", "median"]),
    default="none",
    show_default=True,
    help="median: score every epoch and stop a trial whose objective is worse than the "
    "median of the completed trials at the same epoch (from the 2nd epoch, once 3 trials "
    "completed).",
)
@click.option(
    "--checkpoint-minutes",
    default=CHECKPOINT_MINUTES,
    show_default=True,
    type=click.FloatRange(0),
    help="Save the running trial's state every M minutes of training (0: never); "
    "rerunning after a kill continues the trial from it, so a kill loses at most M minutes.",
)
@click.option(
    "--objective-weight",
    default=1.0,
    show_default=True,
    type=float,
    help="Weight of the STS-B term in the guarded objective.",
)
@click.option(
    "--tolerance",
    default=0.005,
    show_default=True,
    type=float,
    help="STS-B Pearson drop below the base that the guarded objective tolerates.",
)
@click.option(
    "--project-dir",
    default="domaintune_runs/search",
    show_default=True,
    type=click.Path(path_type=Path),
    help="Where trials, logs and checkpoints go.",
)
@click.option("--overwrite", is_flag=True, help="Start afresh instead of resuming the project dir.")
@click.option(
    "--keep-best",
    default=1,
    show_default=True,
    type=click.IntRange(1, 1000),
    help="How many best trials keep their encoder checkpoint.",
)
@click.option("--seed", default=0, show_default=True, type=int)
@click.option(
    "--max-consecutive-failures", default=3, show_default=True, type=click.IntRange(1, 1000)
)
@click.option(
    "--hp",
    "hp_options",
    multiple=True,
    metavar="NAME=VALUE|V1,V2|MIN:MAX",
    help="Fix or narrow a hyperparameter (repeatable).",
)
@click.option(
    "--hp-file",
    type=click.Path(path_type=Path),
    help="YAML/JSON mapping of hyperparameter overrides.",
)
@click.option(
    "--role",
    type=click.Choice(["chief", "worker"]),
    help="Distributed search: the chief serves the oracle, workers run trials "
    "(or set KERASTUNER_TUNER_ID/_ORACLE_IP/_ORACLE_PORT).",
)
@click.option(
    "--oracle",
    "oracle_address",
    metavar="HOST:PORT",
    help="The chief's oracle address (the chief listens on it).",
)
@click.option("--worker-id", help="A worker's unique name, e.g. 1.")
@click.option(
    "--lease-timeout",
    default=60.0,
    show_default=True,
    type=click.FloatRange(1),
    help="Chief: seconds without a worker heartbeat before its trial is retried elsewhere.",
)
@click.option(
    "--connect-timeout",
    default=120.0,
    show_default=True,
    type=click.FloatRange(1),
    help="Worker: seconds to wait for the chief before giving up.",
)
@click.option(
    "--strategy",
    type=click.Choice(["none", "mirrored"]),
    default="none",
    show_default=True,
    help="mirrored: each trial on all local GPUs (MirroredStrategy).",
)
@click.option(
    "--interpolate",
    default=None,
    metavar="A1,A2,...",
    help="Score each trained trial at base + A * (trained - base) for each weight A in "
    "[0, 1] and keep the best (WiSE-FT), e.g. 0.5,0.75,1.0; 1.0 = no interpolation. "
    "[default: 1.0, or the recipe's]",
)
@click.option(
    "--augment",
    default="none",
    show_default=True,
    metavar="KINDS",
    help="Add surface variants of the training pairs' texts, paired with the text at "
    "score 1.0: upper, lower, title, accents, gender (comma-separated), all, or none.",
)
@pair_format_options
def search(
    columns,
    scale,
    dedupe,
    role,
    oracle_address,
    worker_id,
    lease_timeout,
    connect_timeout,
    strategy,
    train_path,
    val_path,
    val_split,
    val_max_pairs,
    pairs_per_epoch,
    base,
    sts_spec,
    tuner,
    max_trials,
    epochs,
    objective,
    domain_metric,
    objective_weight,
    tolerance,
    project_dir,
    overwrite,
    keep_best,
    seed,
    max_consecutive_failures,
    hp_options,
    hp_file,
    augment,
    interpolate,
    recipe,
    prune,
    checkpoint_minutes,
) -> None:
    """Search for the best fine-tuning of --base on domain pairs.

    With no options, runs a short demo search on the bundled job-title sample.
    Rerunning the same command resumes it.
    """
    from domaintune import api
    from domaintune.cli.interrupt import RememberedInterrupt
    from domaintune.search.overrides import parse_hp_options

    # NAME=MIN:MAX parses to (min, max, "range"); the API's range is (min, max).
    hp = {
        name: spec[:2] if isinstance(spec, tuple) else spec
        for name, spec in parse_hp_options(hp_options).items()
    }
    with RememberedInterrupt() as interrupt:  # a Ctrl-C during a trial is never lost
        api.search(
            train_path,
            val_path,
            val_split=val_split,
            val_max_pairs=val_max_pairs,
            pairs_per_epoch=pairs_per_epoch,
            base=base,
            sts=sts_spec,
            tuner=tuner,
            max_trials=max_trials,
            epochs=epochs,
            hp=hp,
            hp_file=hp_file,
            objective=objective,
            domain_metric=domain_metric,
            objective_weight=objective_weight,
            tolerance=tolerance,
            project_dir=project_dir,
            overwrite=overwrite,
            keep_best=keep_best,
            seed=seed,
            max_consecutive_failures=max_consecutive_failures,
            columns=columns,
            scale=scale,
            dedupe=dedupe,
            augment=augment,
            role=role,
            oracle=oracle_address,
            worker_id=worker_id,
            lease_timeout=lease_timeout,
            connect_timeout=connect_timeout,
            strategy=strategy,
            interpolate=interpolate,
            recipe=recipe,
            prune=prune,
            checkpoint_minutes=checkpoint_minutes,
            callbacks=[interrupt],
        )
