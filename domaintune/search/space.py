"""THE search space: what a search tunes, and where each value lives.

Every hyperparameter of a fine-tuning is a :class:`Param` of
:func:`search_space`. The optimizer's, the data pipeline's and the model's
are declared here; the ``loss`` choices and the losses' settings come from
the loss registry (:mod:`domaintune.models.losses`), so a registered loss is
searchable with no edit here. Users fix or narrow any of them from the CLI
(``--hp learning_rate=2e-5``, ``--hp batch_size=8,16``,
``--hp learning_rate=1e-6:1e-5``) or from a YAML/JSON file mapping names to
the same forms (a value, a list, or ``{min: .., max: ..}``): see
:mod:`domaintune.search.overrides`.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import replace
from typing import Any

from domaintune.errors import UserError
from domaintune.models.losses import CLIP_EPSILON, DEFAULT_LOSS, LOSSES, Setting, loss_settings
from domaintune.models.mining import HARD_NEGATIVE_MODES
from domaintune.search.overrides import override
from domaintune.search.param import GRAPH, OUTSIDE, VARIABLE, Param

_OPTIMIZER: tuple[Param, ...] = (
    Param(
        "learning_rate",
        "float",
        2e-5,
        1e-6,
        1e-4,
        log=True,
        grid_step=10,
        minimum=0,
        exclusive_minimum=True,
        lives=VARIABLE,
        help="Adam learning rate.",
    ),
    Param(
        "clipnorm",
        "float",
        1.0,
        0.1,
        10.0,
        log=True,
        grid_step=10,
        minimum=0,
        exclusive_minimum=True,
        lives=VARIABLE,
        help="Adam gradient clipping norm, per variable (tf_keras semantics).",
    ),
)
_PIPELINE: tuple[Param, ...] = (
    Param(
        "batch_size",
        "choice",
        16,
        values=(8, 16, 32),
        minimum=1,
        lives=OUTSIDE,
        help="Pairs per training step.",
    ),
    Param(
        "epochs",
        "fixed",
        2,
        minimum=1,
        lives=OUTSIDE,
        help="Maximum epochs (early stopping on val_loss).",
    ),
    Param(
        "patience",
        "fixed",
        1,
        minimum=0,
        lives=OUTSIDE,
        help="Stop a trial after this many epochs without a better val_loss, keeping the "
        "best epoch's weights; 0 = train every epoch (e.g. with --pairs-per-epoch, whose "
        "small epochs are a budget).",
    ),
)
#: Hyperparameters added after searches existed: left out of KerasTuner's space
#: while fixed (its oracles spend one seed step per hyperparameter, so one more
#: would change every seeded search's trials), and a resumed search whose saved
#: space lacks one ran as its default does.
LATE_PARAMS = ("patience",)
_GRAPH_OPTIONS: tuple[Param, ...] = (
    Param(
        "clipnorm_scope",
        "fixed",
        "variable",
        help="'variable': clipnorm per variable (tf_keras clipnorm, the tutorial's); "
        "'global': one norm over all gradients (global_clipnorm).",
        allowed=("variable", "global"),
    ),
    Param(
        "train_embeddings",
        "fixed",
        True,
        help="Fine-tune the token embedding table (false freezes it).",
    ),
    Param(
        "sparse_updates",
        "fixed",
        True,
        help="Lazy Adam: update only the embedding rows a batch touches.",
    ),
    Param(
        "case_fold",
        "fixed",
        False,
        help="Fold every input to NFKC lower case inside the model (training, scoring and "
        "the export), so 'DATA SCIENTIST' and 'data scientist' are one text.",
        lives=GRAPH,  # the folding op is part of the traced step
    ),
    Param(
        "grad_cache_chunk",
        "fixed",
        0,
        minimum=0,
        help="GradCache: a batch of more pairs than this trains with at most this many "
        "texts per encoder pass (same gradients, less memory); 0 = off.",
        lives=GRAPH,  # another train step (chunked passes)
    ),
    Param(
        "hard_negatives",
        "fixed",
        "taxonomy",
        allowed=HARD_NEGATIVE_MODES,
        help="Extra negatives of in-batch losses: 'taxonomy' = the pair file's hard_negative "
        "column, 'mined' = before each epoch the current encoder's top mined_k most "
        "similar targets of other concepts, 'none'.",
        lives=GRAPH,  # the number of input columns of the train step
    ),
    Param(
        "mined_k",
        "fixed",
        1,
        minimum=1,
        help="hard_negatives=mined: mined negatives per pair.",
        lives=GRAPH,  # the number of input columns
    ),
    Param(
        "mined_skip",
        "fixed",
        0,
        minimum=0,
        help="hard_negatives=mined: skip the n most similar other-concept targets "
        "(likely unlabelled synonyms) before taking mined_k.",
        lives=OUTSIDE,  # only the batches change
    ),
)


def _setting_param(name: str, setting: Setting) -> Param:
    return Param(
        name,
        "fixed" if setting.low is None else "float",
        setting.default,
        setting.low,
        setting.high,
        log=setting.log,
        grid_step=setting.grid_step,
        help=setting.help,
        minimum=setting.minimum,
        maximum=setting.maximum,
        exclusive_minimum=setting.exclusive_minimum,
        lives=GRAPH if setting.shapes_graph else VARIABLE,
    )


def search_space() -> tuple[Param, ...]:
    """The full space over the losses registered now: the declared parameters
    (in their historical order: a search's summary must not change), ``loss``
    and, after it, every loss's settings (a shared setting once)."""
    settings = loss_settings()
    # The model's similarity output clips too, whatever the loss: its place is fixed.
    clip = settings.pop("clip_epsilon", CLIP_EPSILON)
    own = {p.name for p in _OPTIMIZER + _PIPELINE + _GRAPH_OPTIONS} | {"loss"}
    if clip != CLIP_EPSILON or own & settings.keys():
        clash = sorted(own & settings.keys()) or ["clip_epsilon"]
        raise ValueError(f"loss settings {clash} clash with the search space's own parameters")
    loss = Param(
        "loss",
        "fixed",
        DEFAULT_LOSS,
        allowed=tuple(LOSSES),
        help=f"Pair loss: {', '.join(LOSSES)} (see domaintune.models.losses).",
    )
    return (
        *_OPTIMIZER,
        _setting_param("clip_epsilon", clip),
        *_PIPELINE,
        loss,
        *(_setting_param(name, s) for name, s in settings.items()),
        *_GRAPH_OPTIONS,
    )


#: The space with the built-in losses, as at import. ``SearchSpace()`` reads
#: the registry when it is created, so it also holds losses registered later.
SEARCH_SPACE: tuple[Param, ...] = search_space()
PARAM_NAMES = tuple(p.name for p in SEARCH_SPACE)


class SearchSpace:
    """The declared space with the user's overrides applied."""

    def __init__(self, params: Iterable[Param] | None = None):
        self.params = {p.name: p for p in (search_space() if params is None else params)}

    def declare(self, hp) -> dict[str, Any]:
        """Declare every parameter KerasTuner's space holds on ``hp``; return
        ``{name: value}`` of all (a fixed late parameter: its value)."""
        return {
            name: param.declare(hp) if _in_oracle(param) else param.default
            for name, param in self.params.items()
        }

    def names(self, lives: str) -> tuple[str, ...]:
        """The parameters whose value lives in ``GRAPH``, ``VARIABLE`` or ``OUTSIDE``."""
        return tuple(name for name, param in self.params.items() if param.lives == lives)

    def graph_key(self, values: Mapping[str, Any]) -> tuple:
        """The values that shape the traced graph: trials with equal keys can
        share one built model. A value the space does not know counts."""
        reusable = set(self.names(VARIABLE) + self.names(OUTSIDE))
        return tuple(
            sorted(
                (k, v)
                for k, v in values.items()
                if k not in reusable and not k.startswith("tuner/")
            )
        )

    def kt_hyperparameters(self, grid: bool = False):
        """A fresh ``keras_tuner.HyperParameters`` holding this space.

        For grid search, float ranges without an explicit step get their
        ``grid_step`` so the grid is small and log-spaced (KerasTuner would
        otherwise sample 10 linear points), and their default is moved onto
        the nearest grid point: KerasTuner's grid tries the default first and
        then every grid value, so an off-grid default (or one differing from
        a grid value by float round-off, 1e-5 vs 9.999999999999999e-06) would
        add a near-duplicate value to every combination.
        """
        import keras_tuner as kt

        hp = kt.HyperParameters()
        for param in self.params.values():
            if not _in_oracle(param):
                continue  # the tuner reads its value from the space
            if param.kind in ("float", "int"):
                if not grid:
                    param = replace(param, grid_step=None)
                elif param.grid_step is not None:
                    param = replace(param, default=_nearest_grid_value(param))
            param.declare(hp)
        return hp

    def with_overrides(self, overrides: Mapping[str, Any]) -> SearchSpace:
        """Return a space where each named parameter is fixed or narrowed."""
        params = dict(self.params)
        for name, spec in overrides.items():
            if name not in params:
                raise UserError(
                    f"--hp: unknown hyperparameter '{name}'. Known: {', '.join(self.params)}."
                )
            params[name] = override(params[name], spec)
        return SearchSpace(params.values())

    def summary(self) -> str:
        return "; ".join(f"{p.name}={p.describe()}" for p in self.params.values())

    def hparam_specs(self):
        """The space as TensorBoard HParams specs."""
        from domaintune.reporting.tensorboard_logging import HParamSpec

        specs = []
        for p in self.params.values():
            if p.kind in ("float", "int"):
                specs.append(HParamSpec(p.name, p.kind, (p.low, p.high)))
            else:
                values = p.values if p.kind == "choice" else (p.default,)
                specs.append(HParamSpec(p.name, "choice", tuple(values)))
        return specs


def _in_oracle(param: Param) -> bool:
    """Is ``param`` in KerasTuner's space? Not a fixed late one."""
    return not (param.name in LATE_PARAMS and param.kind == "fixed")


def _nearest_grid_value(param: Param) -> Any:
    """The value of ``param``'s KerasTuner grid closest to its default."""
    import keras_tuner as kt

    probe = kt.HyperParameters()
    param.declare(probe)
    grid = list(probe.space[0].values)

    def distance(value):
        if param.log:
            return abs(math.log(value) - math.log(param.default))
        return abs(value - param.default)

    return min(grid, key=distance)
