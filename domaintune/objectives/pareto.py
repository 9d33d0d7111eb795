"""The domain-fit / general-skill Pareto front of a finished search.

The guarded objective picks one trial; the front shows every trial that no
other trial beats on both axes at once, so a user can pick another trade-off.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

_AXES = ("val_mse", "sts_pearson")


def _point(trial: Mapping[str, Any]) -> tuple[float, float] | None:
    """Return ``(val_mse, -sts_pearson)`` (both lower-better), or None."""
    values = []
    for key in _AXES:
        value = trial.get(key)
        if value is None:
            return None
        value = float(value)
        if not math.isfinite(value):  # a diverged trial is not a trade-off
            return None
        values.append(value)
    return values[0], -values[1]


def pareto_front(trials: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """Return the trials not dominated on ``val_mse`` and ``sts_pearson``.

    Trial ``a`` dominates ``b`` when ``a`` has lower-or-equal ``val_mse`` and
    higher-or-equal ``sts_pearson``, and is strictly better on at least one.
    Trials with identical metrics do not dominate each other, so both stay.

    Args:
        trials: Flat metric mappings (extra keys such as a trial id are kept
            untouched).

    Returns:
        The non-dominated trials, as the same objects and in input order.
        Trials lacking either metric (``None``, missing, NaN or inf) are
        excluded.
    """
    points = [(trial, _point(trial)) for trial in trials]
    candidates = [(trial, pt) for trial, pt in points if pt is not None]
    front = []
    # O(n^2) is fine: a search has tens to hundreds of trials.
    for trial, (mse, neg_p) in candidates:
        dominated = any(
            o_mse <= mse and o_neg_p <= neg_p and (o_mse, o_neg_p) != (mse, neg_p)
            for _, (o_mse, o_neg_p) in candidates
        )
        if not dominated:
            front.append(trial)
    return front
