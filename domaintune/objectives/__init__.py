"""Objectives: how a search ranks its trials, plus the Pareto front.

Each objective is a small :class:`Objective` class in :data:`OBJECTIVES`;
:func:`get_objective` builds one from CLI options. All objectives are
"lower is better", so the tuner always minimises the ``"objective"`` value
that :meth:`Objective.score` returns::

    obj = get_objective("guarded", weight=1.0, tolerance=0.005)
    obj.validate(sts_available=sts is not None)
    metrics = obj.score(trial_metrics, base_metrics)  # {"objective": ..., ...}

The default, ``guarded``, is documented (formula and worked example) in
:mod:`domaintune.objectives.guarded` and ``docs/objective.md``.
"""

from __future__ import annotations

from domaintune.errors import UserError
from domaintune.objectives.base import Metrics, Objective, read_metric
from domaintune.objectives.guarded import (
    DOMAIN_METRICS,
    DOMAIN_TERM_MAX,
    FORMULA_MARKDOWN,
    GUARD_PENALTY,
    IN_TOLERANCE_MAX,
    GuardedObjective,
    check_options,
)
from domaintune.objectives.pareto import pareto_axes, pareto_front
from domaintune.objectives.simple import StsPearsonObjective, ValMseObjective

__all__ = [
    "DOMAIN_METRICS",
    "DOMAIN_TERM_MAX",
    "FORMULA_MARKDOWN",
    "GUARD_PENALTY",
    "IN_TOLERANCE_MAX",
    "OBJECTIVES",
    "GuardedObjective",
    "Metrics",
    "Objective",
    "StsPearsonObjective",
    "ValMseObjective",
    "get_objective",
    "pareto_axes",
    "pareto_front",
    "read_metric",
]

#: Registry: ``--objective`` name -> objective class.
OBJECTIVES: dict[str, type[Objective]] = {
    cls.name: cls for cls in (GuardedObjective, ValMseObjective, StsPearsonObjective)
}


def get_objective(
    name: str, *, weight: float = 1.0, tolerance: float = 0.005, domain_metric: str = "mse"
) -> Objective:
    """Build a registered objective from CLI options.

    Options an objective does not use are still validated, so a bad flag is
    reported even when it would be ignored.

    Args:
        name: Registry name (case-insensitive), e.g. ``"guarded"``.
        weight: Weight of the STS term (>= 0).
        tolerance: Largest acceptable STS Pearson drop below the base (>= 0).
        domain_metric: ``"mse"``, ``"spearman"`` or ``"retrieval"``.

    Returns:
        The objective instance.

    Raises:
        UserError: Unknown name (the message lists the valid ones), negative
            or non-finite weight/tolerance, or unknown domain metric.
    """
    key = name.strip().lower()
    if key not in OBJECTIVES:
        raise UserError(f"unknown objective {name!r}; choose one of: " + ", ".join(OBJECTIVES))
    check_options(weight=weight, tolerance=tolerance, domain_metric=domain_metric)
    return OBJECTIVES[key].from_options(
        weight=weight, tolerance=tolerance, domain_metric=domain_metric
    )
