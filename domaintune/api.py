"""The Python API: search, inspect, export and evaluate in a few lines.

Everything the ``domaintune`` command does goes through these calls (the CLI
only parses options and prints), so a script and a shell user get the same
searches, the same project directories and the same errors
(:class:`~domaintune.errors.UserError`, whose message says what to fix).

Nothing heavy is imported here: TensorFlow and KerasTuner load inside the
calls, after the inputs are checked. Progress is logged to the ``domaintune``
logger (``logging.basicConfig(level=logging.INFO)`` shows it).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Union

from domaintune.errors import UserError
from domaintune.search.callbacks import SearchCallback
from domaintune.search_result import SearchResult, Trial

# Under the logger the CLI prints to stdout (the search's own progress lines).
_log = logging.getLogger("domaintune.search.recipes")

if TYPE_CHECKING:
    import pandas as pd

    from domaintune.objectives import Objective

#: A pair file's path, or a pandas DataFrame with the same columns.
Pairs = Union[str, "os.PathLike[str]", "pd.DataFrame"]


def load_search(project_dir: str | os.PathLike[str]) -> SearchResult:
    """Open a finished or running search's project directory.

    Raises :class:`UserError` when ``project_dir`` is not one.

    Example::

        import domaintune as dt

        result = dt.load_search("runs/demo")
        print(len(result.trials), result.best)
    """
    return SearchResult(project_dir)


class _TrialEnd(SearchCallback):
    """Hands a :class:`Trial` record to a plain function when a trial ends."""

    def __init__(self, function: Callable[[Trial], None]):
        self.function = function
        self.values: dict[str, dict[str, Any]] = {}

    def on_trial_begin(self, trial_id: str, hyperparameters: Mapping[str, Any]) -> None:
        self.values[trial_id] = dict(hyperparameters)

    def on_trial_end(
        self,
        trial_id: str,
        status: str,
        metrics: Mapping[str, float],
        seconds: float,
        message: str | None = None,
    ) -> None:
        values = {name: float(value) for name, value in metrics.items()}  # not numpy's
        self.function(Trial(trial_id, status, self.values.pop(trial_id, {}), values, message))


def search(
    train: Pairs | None = None,
    val: Pairs | None = None,
    *,
    val_split: float = 0.2,
    base: str = "use-m3",
    sts: str = "auto",
    tuner: str = "random",
    max_trials: int = 5,
    epochs: int | None = None,
    hp: Mapping[str, Any] | None = None,
    hp_file: str | os.PathLike[str] | None = None,
    loss: Any = None,
    objective: str | Objective = "guarded",
    domain_metric: str | None = None,
    objective_weight: float = 1.0,
    tolerance: float = 0.005,
    project_dir: str | os.PathLike[str] = "domaintune_runs/search",
    overwrite: bool = False,
    keep_best: int = 1,
    seed: int = 0,
    max_consecutive_failures: int = 3,
    columns: str | Sequence[str] = ("base", "ref", "similarity"),
    scale: str = "angular",
    dedupe: str = "error",
    augment: str | Sequence[str] | None = None,
    role: str | None = None,
    oracle: str | None = None,
    worker_id: str | None = None,
    lease_timeout: float = 60.0,
    connect_timeout: float = 120.0,
    strategy: str = "none",
    interpolate: str | float | Sequence[float] | None = None,
    recipe: str | None = None,
    val_max_pairs: int | None = None,
    pairs_per_epoch: int | None = None,
    prune: str = "none",
    checkpoint_minutes: float = 10.0,
    on_trial_end: Callable[[Trial], None] | None = None,
    callbacks: Iterable[SearchCallback] = (),
) -> SearchResult:
    """Search (or resume) the fine-tuning of ``base`` on domain pairs; the
    options are those of ``domaintune search`` (see the README).

    ``train``/``val``: a pair file or a DataFrame (columns base, ref, similarity
    [, hard_negative]), checked as strictly as a file; ``train=None`` is the
    bundled job-title sample, ``val=None`` a grouped ``val_split`` of ``train``.
    ``hp`` fixes or narrows hyperparameters: a value (fixed), a list (choice)
    or a ``(min, max)`` tuple (range). ``loss`` is a loss name, a list of names,
    or an instance (``InBatchNegatives(scale=30.0)`` fixes its settings too);
    ``objective`` a name or an :class:`~domaintune.objectives.Objective`.
    ``augment`` adds surface variants of the training pairs' texts at score 1.0
    (kinds of :mod:`domaintune.data.augment`: ``["upper", "accents"]``, ``"all"``).
    ``interpolate`` weights in [0, 1]: each trial is scored at ``base + alpha *
    (trained - base)`` for each and keeps the best (``(1.0,)``: no interpolation).
    ``val_max_pairs`` (2000; 0: all) samples validation down to that size;
    ``pairs_per_epoch`` (0: all) trains each epoch on a seeded sample of as many pairs.
    ``prune="median"`` scores every epoch and stops trials worse than the
    median of the completed trials at that epoch.
    ``checkpoint_minutes``: save the running trial's state every so many
    minutes of training (fractions allowed; 0: never), so that a rerun after a
    kill continues the trial instead of starting it again.
    ``on_trial_end`` gets each finished :class:`Trial`; ``callbacks`` are
    :class:`~domaintune.search.callbacks.SearchCallback` objects. ``role``,
    ``oracle``, ``worker_id``: a distributed search's part of this process.

    Rerunning with the same settings resumes; other settings are refused
    unless ``overwrite``. Returns the search's :class:`SearchResult`.

    Example::

        import domaintune as dt

        result = dt.search(sts="none", max_trials=2, epochs=1, project_dir="runs/demo",
                           hp={"learning_rate": (1e-5, 5e-5), "batch_size": [16, 32]},
                           on_trial_end=lambda trial: print(trial.trial_id, trial.objective))
        print(result.best)
    """
    from domaintune.data.augment import parse_kinds
    from domaintune.data.pairs import is_frame, parse_columns, sample_path
    from domaintune.search.distributed import cluster_from_options
    from domaintune.search.interpolation import parse_alphas
    from domaintune.search.overrides import hp_overrides
    from domaintune.search.recipes import apply_recipe, get_recipe
    from domaintune.search.runner import SearchConfig, run_search
    from domaintune.search.space import SearchSpace

    if role not in (None, "chief", "worker"):
        raise UserError(f"--role {role!r}: use 'chief' or 'worker'.")
    for option, value in (
        ("max-trials", max_trials),
        ("keep-best", keep_best),
        ("max-consecutive-failures", max_consecutive_failures),
    ):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise UserError(f"--{option} must be a whole number >= 1, got {value!r}.")
    frames = {name: value for name, value in (("train", train), ("val", val)) if is_frame(value)}
    overrides = hp_overrides(hp, hp_file, epochs, loss)
    chosen = get_recipe(recipe)
    recipe_hp, options, made = apply_recipe(
        chosen,
        set(overrides),
        {
            "domain_metric": domain_metric,
            "interpolate": interpolate,
            "augment": augment,
            "val_max_pairs": val_max_pairs,
            "pairs_per_epoch": pairs_per_epoch,
        },
        known=set(SearchSpace().params),
    )
    overrides = {**hp_overrides(recipe_hp, None, None, None), **overrides}
    if made:
        _log.info("Recipe %s: %s (any can be overridden)", chosen.name, ", ".join(made))
    domain_metric = options["domain_metric"] or "mse"
    interpolate = options["interpolate"] if options["interpolate"] is not None else (1.0,)
    augment = options["augment"]
    objective_name, objective = (
        (objective, None) if isinstance(objective, str) else (_objective_name(objective), objective)
    )
    config = SearchConfig(
        train="" if "train" in frames else str(train if train is not None else sample_path()),
        val="" if "val" in frames else (str(val) if val is not None else None),
        val_split=val_split,
        base=str(base),
        sts=str(sts),
        tuner=tuner,
        max_trials=max_trials,
        recipe=chosen.name,
        prune=prune,
        # Given or the recipe's, else SearchConfig's defaults:
        **{k: options[k] for k in ("val_max_pairs", "pairs_per_epoch") if options[k] is not None},
        checkpoint_minutes=checkpoint_minutes,
        objective=objective_name,
        domain_metric=getattr(objective, "domain_metric", domain_metric),
        objective_weight=getattr(objective, "weight", objective_weight),
        tolerance=getattr(objective, "tolerance", tolerance),
        project_dir=str(project_dir),
        keep_best=keep_best,
        seed=seed,
        max_consecutive_failures=max_consecutive_failures,
        hp_overrides=overrides,
        pair_format={
            "columns": list(parse_columns(columns) if isinstance(columns, str) else columns),
            "scale": scale,
            "dedupe": dedupe,
        },
        augment=list(parse_kinds(augment)),
        interpolate=parse_alphas(interpolate),
    )
    hooks = [*callbacks, *([_TrialEnd(on_trial_end)] if on_trial_end else [])]
    run_search(
        config,
        overwrite=overwrite,
        cluster=cluster_from_options(role, oracle, worker_id),
        lease_seconds=lease_timeout,
        connect_timeout=connect_timeout,
        strategy=strategy,
        objective=objective,
        frames=frames,
        callbacks=hooks,
    )
    return SearchResult(config.project_dir)


def _objective_name(objective: Any) -> str:
    from domaintune.objectives import Objective

    if not isinstance(objective, Objective):
        raise UserError(
            f"objective={objective!r}: give a name (e.g. 'guarded') or an "
            "instance of a domaintune.objectives.Objective subclass."
        )
    return objective.name


def evaluate(
    model: str | os.PathLike[str] = "use-m3",
    *,
    sts: str = "auto",
    split: str = "dev",
    pairs: Pairs | None = None,
    retrieval: str | os.PathLike[str] | None = None,
    heatmap: str | os.PathLike[str] | None = None,
    titles: str | os.PathLike[str] | Sequence[str] | None = None,
    batch_size: int = 256,
    columns: str | Sequence[str] = ("base", "ref", "similarity"),
    scale: str = "angular",
    dedupe: str = "error",
    case_fold: bool = False,
) -> dict[str, Any]:
    """Score an encoder (``use-m3``, an export, a SavedModel folder or a TF-Hub
    handle) on STS-B (``sts="none"`` skips it), and optionally on domain
    ``pairs`` (a file or DataFrame), a ``retrieval`` set (ESCO export or
    query,target CSV), and draw a similarity ``heatmap`` PNG of ``titles`` (a
    file, one per line, or a list; default the tutorial's nine). ``case_fold``
    folds every text to NFKC lower case before the encoder, as a search's
    ``case_fold`` trial and its export do (for a base used untuned).

    Returns the dict ``domaintune evaluate --json`` prints (``sts_pearson``,
    ``pairs_mse``, ``retrieval_r1``, ...).

    Example::

        import domaintune as dt

        scores = dt.evaluate("use-m3", sts="none", pairs=dt.sample_pairs())
        print(scores["pairs_mse"], scores["pairs_spearman"])
    """
    from domaintune.data.pairs import load_pairs, parse_columns
    from domaintune.data.retrieval_sets import load_retrieval_set
    from domaintune.data.sts import load_sts
    from domaintune.data.titles import TUTORIAL_TITLES, read_titles

    if isinstance(columns, str):
        columns = parse_columns(columns)
    # Read every input before the (slow) model load, so mistakes surface at once.
    sts_pairs = load_sts(sts, split)
    domain = (
        load_pairs(
            pairs, columns=tuple(columns), scale=scale, dedupe=dedupe, name="pairs DataFrame"
        )[0]
        if pairs is not None
        else None
    )
    rset = load_retrieval_set(retrieval) if retrieval is not None else None
    if titles is None:
        titles = list(TUTORIAL_TITLES)
    elif isinstance(titles, (str, os.PathLike)):
        titles = read_titles(titles)
    heatmap = Path(heatmap) if heatmap is not None else None
    if heatmap and not heatmap.parent.is_dir():
        raise UserError(f"--heatmap: folder '{heatmap.parent}' does not exist; create it first.")
    if sts_pairs is None and domain is None and rset is None and heatmap is None:
        raise UserError(
            "Nothing to evaluate: with --sts none, pass --pairs CSV, "
            "--retrieval CSV or --heatmap PNG."
        )

    from domaintune.evaluation.metrics import pair_metrics, sts_metrics
    from domaintune.evaluation.retrieval import retrieval_metrics
    from domaintune.models.encoding import batched_encoder, load_encoder_layer
    from domaintune.models.resolver import resolve_base

    layer = load_encoder_layer(resolve_base(str(model)))
    if case_fold:
        from domaintune.models.normalization import case_folding

        layer = case_folding(layer)
    encode = batched_encoder(layer, batch_size)
    result: dict[str, Any] = {"model": str(model), **({"case_fold": True} if case_fold else {})}
    if sts_pairs is not None:
        result.update(sts_metrics(encode, sts_pairs), sts_split=split, sts_source=sts_pairs.source)
    if domain is not None:
        result.update(pair_metrics(encode, domain), pairs_source=domain.source)
    if rset is not None:
        result.update(retrieval_metrics(encode, rset), retrieval_source=str(retrieval))
    if heatmap:
        from domaintune.reporting.plotting import cosine_similarity_matrix, save_similarity_heatmap

        save_similarity_heatmap(
            heatmap,
            list(titles),
            cosine_similarity_matrix(encode(titles)),
            title=f"Cosine similarity: {model}",
        )
        result["heatmap"] = str(heatmap)
    return {k: float(v) if isinstance(v, float) else v for k, v in result.items()}  # not numpy's


def sample_pairs() -> Path:
    """The bundled sample of 385 scored job-title pairs (what ``search(train=None)``
    trains on), e.g. to try the API before bringing your own pairs.

    Example::

        import pandas as pd
        import domaintune as dt

        print(pd.read_csv(dt.sample_pairs()).head())
    """
    from domaintune.data.pairs import sample_path

    return sample_path()
