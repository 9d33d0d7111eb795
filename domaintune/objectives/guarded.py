"""## How trials are ranked: the `guarded` objective

Every search trial fine-tunes the base encoder, and the tuner needs one number
per trial to rank them; **lower is better**. The default objective, `guarded`,
rewards fitting the domain but refuses to pay for it with general language
skill, measured as the STS-Benchmark dev Pearson correlation `p`. Every term is
relative to the untuned base model (evaluated once per search), so the score
does not depend on the scale of the metrics.

**Domain term** `d` (1.0 = as good as the base; lower is better), clipped to
`[0, 10]`:

| `domain_metric` | metric read | `d` |
|---|---|---|
| `mse` (default) | `val_mse` | `val_mse / base_val_mse` |
| `spearman` | `val_spearman` | `(1 - val_spearman) / (1 - base_val_spearman)` |
| `retrieval` | `retrieval_r1` | `(1 - retrieval_r1) / (1 - base_retrieval_r1)` |

For the higher-is-better metrics `d` is the trial's remaining error relative
to the base's remaining error.

**STS term** `s`: the same "relative remaining error" for STS-B,

    s = (1 - p) / (1 - p_base) - 1  =  (p_base - p) / (1 - p_base)

`s = 0` means STS is unchanged, `s < 0` better than the base, `s = 0.1` means
the trial's remaining STS error is 10% larger than the base's. Because `d`
and `s` are in the same units, weight `w = 1` trades 1% of remaining domain
error for 1% of remaining STS error. Measuring headroom rather than raw
Pearson points also makes a point lost near the ceiling cost more: 0.90 ->
0.89 is `s = 0.10`, 0.60 -> 0.59 only `s = 0.025`.

**Score**, with weight `w` (default 1.0) and tolerance `t` (default 0.005):

    objective = min(d + w * s, 15)       if p >= p_base - t   (within tolerance)
    objective = 20 + (p_base - p)        otherwise            (guard violated)

An in-tolerance score is at most 15 and a violator's is above 20, so **every
trial that loses more than `t` STS Pearson ranks below every trial that does
not**, however good its domain fit; violators rank among themselves by how
much STS they lost. The clip of `d` at 10 (a trial ten times worse than the
base is useless anyway) keeps scores in a small range for the Bayesian
oracle; the clip at 15 only bites for extreme weights.

Without STS-B (no STS data, or a trial whose STS score is missing) the
objective is `d` alone and the trial is logged with `domain_only = 1` and no
`sts_term`, `sts_delta` or `guard_violated`: the **STS-B guard is OFF**, and
the start banner, the end summary, `domaintune results` and the export's
model card say so (`--sts PATH` turns it on).

**Worked example** (`domain_metric = mse`, `w = 1`, `t = 0.005`; base:
`val_mse = 0.040`, `p_base = 0.850`, so `1 - p_base = 0.15`):

| trial | `val_mse` | `p` | `d` | `s` | guard | objective | rank |
|---|---|---|---|---|---|---|---|
| A | 0.030 | 0.847 | 0.75 | +0.02 | ok | **0.77** | 1 |
| B | 0.034 | 0.853 | 0.85 | -0.02 | ok | **0.83** | 2 |
| C | 0.020 | 0.830 | 0.50 | +0.133 | violated (drop 0.020) | **20.02** | 4 |
| D | 4.000 | 0.850 | 10 (100, clipped) | 0 | ok | **10.00** | 3 |

C has the best domain fit but loses 0.02 STS Pearson, four times the
tolerance, so it ranks last, even below D whose MSE is 100 times the base's.
With `w = 10`, B (`0.85 - 0.20 = 0.65`) would beat A (`0.75 + 0.20 = 0.95`).

Per trial, the logged components are `objective`, `domain_term` (`d` after
clipping), `domain_only` (0/1) and, when STS-B was measured, `sts_term` (`s`),
`sts_delta` (`p - p_base`) and `guard_violated` (0/1).
"""

from __future__ import annotations

import math
from typing import Final

from domaintune.errors import UserError
from domaintune.evaluation import names
from domaintune.objectives.base import Metrics, Objective, read_metric

#: The markdown above, for the README / ``docs/objective.md`` (kept in sync by
#: a test). Empty under ``python -OO``, which strips docstrings.
FORMULA_MARKDOWN: Final[str] = __doc__ or ""

#: Domain terms are clipped to ``[0, DOMAIN_TERM_MAX]``: beyond ten times the
#: base's error the ordering of hopeless trials does not matter, and a bounded
#: term keeps the Bayesian oracle's targets in a narrow range.
DOMAIN_TERM_MAX: Final[float] = 10.0
#: In-tolerance scores are clipped to at most this. With the domain clip this
#: only binds for extreme weights, but it makes the guard hold for ANY weight.
IN_TOLERANCE_MAX: Final[float] = 15.0
#: Offset added to guard violators; strictly above :data:`IN_TOLERANCE_MAX`,
#: so violators rank under every in-tolerance trial. Kept modest because the
#: Bayesian oracle normalises targets and a huge offset would flatten the
#: differences between in-tolerance trials.
GUARD_PENALTY: Final[float] = 20.0
#: Slack on the tolerance test so that float rounding of a drop of exactly
#: ``tolerance`` (0.850 - 0.845 = 0.0050000000000000044) does not trip it.
GUARD_SLACK: Final[float] = 1e-9
#: Floor for ``1 - base`` and ``base_val_mse`` denominators, so a perfect
#: base does not divide by zero (its terms then saturate at the clips).
_EPS: Final[float] = 1e-12

#: Valid range of each domain metric (a value outside is a bug, not a score).
_RANGES: Final[dict[str, tuple[float, float]]] = {
    names.VAL_MSE: (0.0, math.inf),
    names.VAL_SPEARMAN: (-1.0, 1.0),
    names.RETRIEVAL_R1: (0.0, 1.0),
}
#: ``domain_metric`` -> (metric key, higher_is_better, valid range).
DOMAIN_METRICS: Final[dict[str, tuple[str, bool, tuple[float, float]]]] = {
    choice: (key, higher_better, _RANGES[key])
    for choice, (key, higher_better) in names.DOMAIN_METRICS.items()
}


def check_options(*, weight: float, tolerance: float, domain_metric: str) -> None:
    """Validate the guarded objective's user-facing options.

    Args:
        weight: Weight of the STS term.
        tolerance: Largest acceptable STS Pearson drop.
        domain_metric: A key of :data:`DOMAIN_METRICS`.

    Raises:
        UserError: Negative/non-finite weight or tolerance, or an unknown
            domain metric.
    """
    if not (math.isfinite(weight) and weight >= 0):
        raise UserError(f"--objective-weight must be a number >= 0, got {weight}")
    if not (math.isfinite(tolerance) and tolerance >= 0):
        raise UserError(f"--tolerance (the STS tolerance) must be a number >= 0, got {tolerance}")
    if domain_metric not in DOMAIN_METRICS:
        raise UserError(
            f"unknown domain metric {domain_metric!r}; choose one of: " + ", ".join(DOMAIN_METRICS)
        )


class GuardedObjective(Objective):
    """Domain fit plus weighted relative STS-B loss, with a hard STS guard.

    See the module docstring (:data:`FORMULA_MARKDOWN`) for the formula and a
    worked example.

    Args:
        weight: ``w``, the weight of the STS term (>= 0).
        tolerance: ``t``, the largest STS Pearson drop below the base that is
            still acceptable (>= 0).
        domain_metric: ``"mse"`` (``val_mse``), ``"spearman"``
            (``val_spearman``) or ``"retrieval"`` (``retrieval_r1``).

    Raises:
        UserError: Negative/non-finite weight or tolerance, or an unknown
            domain metric.
    """

    name = "guarded"
    # STS is optional: without it the objective falls back to domain-only.
    requires_sts = False

    def __init__(
        self, weight: float = 1.0, tolerance: float = 0.005, domain_metric: str = "mse"
    ) -> None:
        check_options(weight=weight, tolerance=tolerance, domain_metric=domain_metric)
        self.weight = float(weight)
        self.tolerance = float(tolerance)
        self.domain_metric = domain_metric

    @classmethod
    def from_options(
        cls, *, weight: float, tolerance: float, domain_metric: str
    ) -> GuardedObjective:
        """Build from the CLI options (all three are used)."""
        return cls(weight=weight, tolerance=tolerance, domain_metric=domain_metric)

    def domain_term(self, trial: Metrics, base: Metrics) -> float:
        """Compute ``d``, the clipped domain error relative to the base.

        Args:
            trial: The trial's metrics.
            base: The base model's metrics.

        Returns:
            ``d`` in ``[0, DOMAIN_TERM_MAX]``; 1.0 means as good as the base.

        Raises:
            UserError: The base lacks the domain metric (so every trial will).
            ValueError: The trial lacks it, or a value is NaN/inf/out of range.
        """
        key, higher_better, (low, high) = DOMAIN_METRICS[self.domain_metric]
        base_value = read_metric(base, key, who="base", low=low, high=high)
        if base_value is None:
            raise UserError(
                f"domain metric {self.domain_metric!r} needs {key!r}, which the "
                "search does not compute; choose another --domain-metric"
            )
        value = read_metric(trial, key, who="trial", low=low, high=high)
        if value is None:
            raise ValueError(f"trial metrics lack {key!r}")
        if higher_better:
            raw = (1.0 - value) / max(1.0 - base_value, _EPS)
        else:
            raw = value / max(base_value, _EPS)
        return min(max(raw, 0.0), DOMAIN_TERM_MAX)

    def score(self, trial: Metrics, base: Metrics) -> dict[str, float]:
        """Score a trial; see the module docstring for the formula.

        Args:
            trial: The trial's metrics (needs the domain metric; uses
                ``sts_pearson`` when present).
            base: The base model's metrics (same keys).

        Returns:
            ``objective``, ``domain_term``, ``domain_only`` and, when STS is
            available, ``sts_term``, ``sts_delta`` and ``guard_violated``.

        Raises:
            UserError: The base lacks the domain metric.
            ValueError: A metric is missing from the trial, NaN/inf or out of
                range.
        """
        d = self.domain_term(trial, base)
        p = read_metric(trial, names.STS_PEARSON, who="trial", low=-1.0, high=1.0)
        p_base = read_metric(base, names.STS_PEARSON, who="base", low=-1.0, high=1.0)
        if p is None or p_base is None:
            # STS-B was not measured: no sts_term/sts_delta/guard_violated
            # (a 0.0 would read as "STS unchanged, guard passed").
            return {names.OBJECTIVE: d, names.DOMAIN_TERM: d, names.DOMAIN_ONLY: 1.0}
        drop = p_base - p
        s = drop / max(1.0 - p_base, _EPS)
        violated = drop > self.tolerance + GUARD_SLACK
        if violated:
            # The domain term is deliberately ignored: a violator is only
            # "less bad" than another by losing less STS.
            objective = GUARD_PENALTY + drop
        else:
            objective = min(d + self.weight * s, IN_TOLERANCE_MAX)
        return {
            names.OBJECTIVE: objective,
            names.DOMAIN_TERM: d,
            names.STS_TERM: s,
            names.STS_DELTA: p - p_base,
            names.GUARD_VIOLATED: 1.0 if violated else 0.0,
            names.DOMAIN_ONLY: 0.0,
        }

    def __repr__(self) -> str:
        return (
            f"GuardedObjective(weight={self.weight}, tolerance={self.tolerance}, "
            f"domain_metric={self.domain_metric!r})"
        )
