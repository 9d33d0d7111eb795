"""``--interpolate``: WiSE-FT (Wortsman et al., 2022) inside each trial.

After a trial trains, its encoder is scored at ``base + alpha * (trained -
base)`` for each ``alpha`` asked for, and the objective keeps the best one:
the encoder is left at it, so the checkpoint, TensorBoard and an export carry
those weights. The base is always the untuned base model, also for a
Hyperband trial warm-started from its parent's (interpolated) checkpoint.
Interpolating trades domain fit for general skill (STS-B) continuously,
instead of the guard's all-or-nothing rejection.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from numbers import Real
from typing import Any

from domaintune.errors import UserError
from domaintune.evaluation import names

#: No interpolation: the trained weights as they are (the default).
NO_INTERPOLATION = (1.0,)


def parse_alphas(value: str | float | Iterable[Any]) -> list[float]:
    """``--interpolate`` as sorted distinct weights in [0, 1]: from
    ``"0.5,0.75,1"``, a number or a sequence of numbers.

    Raises:
        UserError: No weight, or one that is not a number in [0, 1].
    """
    items = value.split(",") if isinstance(value, str) else value
    if isinstance(items, Real):
        items = [items]
    alphas = []
    for item in items:
        try:
            if isinstance(item, bool):
                raise ValueError
            alpha = float(item.strip() if isinstance(item, str) else item)
        except (TypeError, ValueError):
            alpha = math.nan
        if not 0.0 <= alpha <= 1.0:  # NaN too
            raise UserError(
                f"--interpolate {value!r}: every weight must be a number in [0, 1] "
                "(0 = the base model, 1 = the trained weights), e.g. 0.5,0.75,1.0."
            )
        alphas.append(alpha)
    if not alphas:
        raise UserError("--interpolate: give at least one weight in [0, 1], e.g. 0.5,0.75,1.0.")
    return sorted(set(alphas))


def interpolates(alphas: Iterable[float]) -> bool:
    """Whether a search with these weights interpolates at all."""
    return tuple(alphas) != NO_INTERPOLATION


def score_interpolations(
    encoder, alphas: Iterable[float], changed_rows, score: Callable[[], dict[str, float]]
) -> dict[str, float]:
    """Score the trained encoder at each weight; leave it at the best one.

    Args:
        encoder: The ``TrainableEncoder``, holding the trial's trained weights.
        alphas: The weights (see :func:`parse_alphas`).
        changed_rows: What the trial changed since the base (None: unknown,
            e.g. warm-started from a Hyperband parent).
        score: The trial's results for the encoder's current weights (metrics
            and objective); raises ``FailedTrialError`` when they cannot be
            scored.

    Returns:
        The best weight's results (lowest objective; a tie goes to the larger
        weight), plus ``alpha`` and ``objective_alpha_<a>`` for each weight
        scored, unless the search does not interpolate.

    Raises:
        FailedTrialError: No weight could be scored (the largest's reason).
    """
    alphas = sorted(alphas, reverse=True)
    if not interpolates(alphas):
        return score()
    import keras_tuner as kt

    trained = encoder.changes(changed_rows)  # before the first write
    best: dict[str, float] | None = None
    best_alpha = alphas[0]
    per_alpha: dict[str, float] = {}
    failure: Exception | None = None
    for alpha in alphas:
        if alpha != 1.0:  # at 1 the variables hold the trained weights already
            encoder.interpolate_with_base(alpha, trained)
        try:
            results = score()
        except kt.errors.FailedTrialError as exc:
            failure = failure or exc
            continue
        per_alpha[names.objective_at_alpha(alpha)] = results[names.OBJECTIVE]
        if best is None or results[names.OBJECTIVE] < best[names.OBJECTIVE]:
            best, best_alpha = results, alpha
    if best is None:
        assert failure is not None
        raise failure
    if best_alpha != alphas[-1]:  # the variables hold the last weight scored
        encoder.interpolate_with_base(best_alpha, trained)
    return {**best, names.ALPHA: best_alpha, **per_alpha}
