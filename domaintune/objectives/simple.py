"""Single-metric objectives: plain validation MSE and plain STS-B Pearson.

They ignore the trade-off that :class:`~domaintune.objectives.guarded.
GuardedObjective` manages, and exist for ablations and for users who only
care about one side.
"""

from __future__ import annotations

from domaintune.errors import UserError
from domaintune.evaluation import names
from domaintune.objectives.base import Metrics, Objective, _sts_missing_message, read_metric


class ValMseObjective(Objective):
    """Minimise the domain validation MSE; STS-B is not looked at."""

    name = "val_mse"
    requires_sts = False

    def score(self, trial: Metrics, base: Metrics) -> dict[str, float]:
        """Return the trial's ``val_mse`` as the objective.

        Args:
            trial: The trial's metrics (needs ``val_mse``).
            base: Unused beyond logging the ratio to the base when available.

        Returns:
            ``objective`` (= ``val_mse``) and, when the base has ``val_mse``,
            ``domain_term`` (the unclipped ratio to it, for comparison with
            ``guarded`` runs).

        Raises:
            ValueError: ``val_mse`` is missing, NaN/inf or negative.
        """
        value = read_metric(trial, names.VAL_MSE, who="trial", low=0.0)
        if value is None:
            raise ValueError(f"trial metrics lack {names.VAL_MSE!r}")
        out = {names.OBJECTIVE: value}
        base_value = read_metric(base, names.VAL_MSE, who="base", low=0.0)
        if base_value:  # None or 0.0: a ratio would be meaningless
            out[names.DOMAIN_TERM] = value / base_value
        return out


class StsPearsonObjective(Objective):
    """Maximise STS-B dev Pearson (reported negated, so lower is better)."""

    name = "sts_pearson"
    requires_sts = True

    def score(self, trial: Metrics, base: Metrics) -> dict[str, float]:
        """Return ``-sts_pearson`` as the objective.

        Args:
            trial: The trial's metrics (needs ``sts_pearson``).
            base: The base model's metrics (needs ``sts_pearson``: if the base
                has none, STS-B is not configured for this search).

        Returns:
            ``objective`` (= ``-sts_pearson``) and ``sts_delta``
            (``p - p_base``).

        Raises:
            UserError: STS-B is unavailable (base or trial lacks the score).
            ValueError: A Pearson value is NaN/inf or outside [-1, 1].
        """
        p = read_metric(trial, names.STS_PEARSON, who="trial", low=-1.0, high=1.0)
        p_base = read_metric(base, names.STS_PEARSON, who="base", low=-1.0, high=1.0)
        if p is None or p_base is None:
            raise UserError(_sts_missing_message(self.name))
        return {names.OBJECTIVE: -p, names.STS_DELTA: p - p_base}
