"""The domain-fit / general-skill Pareto front of a finished search.

The guarded objective picks one trial; the front shows every trial that no
other trial beats on both axes at once, so a user can pick another trade-off.
The axes are the search's domain metric (``val_mse``, ``val_spearman`` or
``retrieval_r1``, see :data:`names.DOMAIN_METRICS`) and STS-B Pearson.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from domaintune.errors import UserError
from domaintune.evaluation import names


def pareto_axes(domain_metric: str = names.DEFAULT_DOMAIN_METRIC) -> tuple[str, str]:
    """The two metrics the front is taken on: ``(domain metric's key, sts_pearson)``.

    Raises:
        UserError: ``domain_metric`` is not a key of :data:`names.DOMAIN_METRICS`.
    """
    if domain_metric not in names.DOMAIN_METRICS:
        raise UserError(
            f"unknown domain metric {domain_metric!r}; choose one of: "
            + ", ".join(names.DOMAIN_METRICS)
        )
    return names.DOMAIN_METRICS[domain_metric][0], names.STS_PEARSON


def _point(trial: Mapping[str, Any], domain_metric: str) -> tuple[float, float] | None:
    """Both axes, lower-better (higher-better ones negated), or None."""
    key, higher_better = names.DOMAIN_METRICS[domain_metric]
    values = []
    for name, sign in ((key, -1.0 if higher_better else 1.0), (names.STS_PEARSON, -1.0)):
        value = trial.get(name)
        if value is None or not math.isfinite(float(value)):  # a diverged trial is no trade-off
            return None
        values.append(sign * float(value))
    return values[0], values[1]


def pareto_front(
    trials: Sequence[Mapping[str, Any]], domain_metric: str = names.DEFAULT_DOMAIN_METRIC
) -> list[Mapping[str, Any]]:
    """Return the trials not dominated on the domain metric and ``sts_pearson``.

    Trial ``a`` dominates ``b`` when ``a`` is at least as good on both axes
    (lower ``val_mse``; higher ``val_spearman``, ``retrieval_r1`` and
    ``sts_pearson``) and strictly better on one. Trials with identical
    metrics do not dominate each other, so both stay.

    Args:
        trials: Flat metric mappings (extra keys such as a trial id are kept
            untouched).
        domain_metric: The search's ``--domain-metric``: ``mse``,
            ``spearman`` or ``retrieval``.

    Returns:
        The non-dominated trials, as the same objects and in input order.
        Trials lacking either metric (``None``, missing, NaN or inf) are
        excluded.

    Raises:
        UserError: Unknown ``domain_metric``.
    """
    pareto_axes(domain_metric)  # validates it
    points = [(trial, _point(trial, domain_metric)) for trial in trials]
    candidates = [(trial, pt) for trial, pt in points if pt is not None]
    # O(n^2) is fine: a search has tens to hundreds of trials.
    return [
        trial
        for trial, point in candidates
        if not any(
            other[0] <= point[0] and other[1] <= point[1] and other != point
            for _, other in candidates
        )
    ]
