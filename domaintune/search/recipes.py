"""Recipes: named starting points for a search, each setting overridable.

A recipe fixes or narrows hyperparameters (as ``--hp`` would) and sets search
options (as the command-line flags would). What the user passes explicitly
wins: a recipe's ``hp`` entry yields to the same ``--hp`` name, a recipe's
option to the same flag. The chosen recipe and the settings it made are
recorded in ``search_config.json``.

- ``tutorial`` (the default): the TF-Hub domain-adaptation tutorial's
  formulation, angular MSE selected on validation MSE with the STS-B guard.
- ``retrieval``: what measured best for search and matching (bench/quality.py):
  the symmetric in-batch loss, case folding, batch 256 and learning rate 1e-4
  first (a list's first value is its default), the knobs that moved held-out
  recall searched around them (learning rate, batch size, the taxonomy's hard
  negatives or none), interpolation with the base, selected on validation
  recall@1. clipnorm and clip_epsilon are fixed: neither moves an in-batch
  loss under Adam, and a search should not spend trials on them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from domaintune.errors import UserError
from domaintune.models.losses import CLIP_EPSILON


@dataclass(frozen=True)
class Recipe:
    name: str
    description: str
    hp: Mapping[str, Any] = field(default_factory=dict)  # --hp forms: value, list, (lo, hi)
    options: Mapping[str, Any] = field(default_factory=dict)  # search() keyword -> value


RECIPES: dict[str, Recipe] = {
    recipe.name: recipe
    for recipe in (
        Recipe("tutorial", "angular MSE, selected on validation MSE with the STS-B guard"),
        Recipe(
            "retrieval",
            "symmetric in-batch negatives, case folding, batch 256, lr 1e-4 first, "
            "interpolation with the base, selected on retrieval recall@1",
            hp={
                "loss": "in_batch_negatives_symmetric",
                "learning_rate": [1e-4, 5e-5, 2e-4],
                "batch_size": [256, 64],
                "hard_negatives": ["taxonomy", "none"],
                "case_fold": True,
                "epochs": 1,
                "clipnorm": 1.0,
                "clip_epsilon": CLIP_EPSILON.default,
            },
            options={"domain_metric": "retrieval", "interpolate": (0.5, 0.75, 1.0)},
        ),
    )
}
DEFAULT_RECIPE = "tutorial"


def get_recipe(name: str | None) -> Recipe:
    """The recipe ``name`` (None: the default), or a UserError listing the valid ones."""
    key = (name or DEFAULT_RECIPE).strip().lower()
    if key not in RECIPES:
        raise UserError(f"--recipe {name!r}: choose one of {', '.join(RECIPES)}.")
    return RECIPES[key]


def apply_recipe(
    recipe: Recipe, user_hp: set[str], options: Mapping[str, Any], known: set[str]
) -> tuple[dict[str, Any], dict[str, Any], list[str]]:
    """What ``recipe`` adds under the user's settings.

    ``user_hp``: the hyperparameters the user fixed or narrowed; ``options``:
    the search options, None where the user did not set one. Recipe entries
    for hyperparameters this installation does not have (not in ``known``)
    are skipped. Returns the recipe's hyperparameter entries to apply (in the
    ``hp=`` forms of :func:`domaintune.search`), the options with the recipe's
    filled in, and one ``name=value`` line per setting the recipe made.
    """
    hp = {k: v for k, v in recipe.hp.items() if k in known and k not in user_hp}
    merged = dict(options)
    made = [f"{k}={_shown(v)}" for k, v in hp.items()]
    for key, value in recipe.options.items():
        if options.get(key) is None:
            merged[key] = value
            made.append(f"{key}={_shown(value)}")
    return hp, merged, made


def _shown(value: Any) -> str:
    if isinstance(value, tuple) and len(value) == 2 and all(isinstance(v, float) for v in value):
        return f"{value[0]:g}:{value[1]:g}"
    if isinstance(value, (list, tuple)):
        return ",".join(f"{v:g}" if isinstance(v, float) else str(v) for v in value)
    return str(value)
