"""The :class:`Objective` interface and the metric-reading helpers it shares.

An objective turns one trial's metrics (plus the untuned base model's metrics,
computed once per search) into a single number that KerasTuner minimises, and
into named components that are logged next to it.
"""

from __future__ import annotations

import abc
import math
from collections.abc import Mapping
from typing import ClassVar, Literal

from domaintune.errors import UserError

#: A trial's (or the base model's) metrics, e.g. ``{"val_mse": 0.03,
#: "sts_pearson": 0.84}``; a value may be ``None`` when it was not computed.
Metrics = Mapping[str, "float | None"]


class Objective(abc.ABC):
    """A rule that scores a trial against the base model; lower is better.

    Every objective is expressed so that *lower is better* (``direction`` is
    always ``"min"``), which lets the search minimise the ``"objective"`` key
    of :meth:`score` (``names.OBJECTIVE``) without knowing which objective it
    runs. That key is deliberately not :attr:`name`: the ``sts_pearson``
    objective is the *negated* ``sts_pearson`` metric, and the two must not
    share a metric name.

    Subclasses set :attr:`name` and :attr:`requires_sts` and implement
    :meth:`score`. Constructor options come from the CLI through
    :meth:`from_options`, so a new objective only has to be added to
    :data:`domaintune.objectives.OBJECTIVES`.
    """

    #: Registry name, as typed after ``--objective``.
    name: ClassVar[str]
    #: Always ``"min"``: objectives negate higher-is-better quantities.
    direction: ClassVar[Literal["min"]] = "min"
    #: Whether the objective is meaningless without STS-B Pearson.
    requires_sts: ClassVar[bool] = False

    @classmethod
    def from_options(cls, *, weight: float, tolerance: float, domain_metric: str) -> Objective:
        """Build the objective from the CLI options it cares about.

        Args:
            weight: ``--objective-weight``; ignored unless overridden.
            tolerance: STS guard tolerance; ignored unless overridden.
            domain_metric: ``mse``/``spearman``/``retrieval``; ignored unless
                overridden.

        Returns:
            A ready objective. The default ignores every option.
        """
        return cls()

    def validate(self, *, sts_available: bool) -> None:
        """Fail before any training if the objective cannot be computed.

        Args:
            sts_available: Whether the search will evaluate STS-B.

        Raises:
            UserError: The objective needs STS-B but it is unavailable.
        """
        if self.requires_sts and not sts_available:
            raise UserError(_sts_missing_message(self.name))

    @abc.abstractmethod
    def score(self, trial: Metrics, base: Metrics) -> dict[str, float]:
        """Score one trial.

        Args:
            trial: The trial's metrics.
            base: The untuned base model's metrics (same keys).

        Returns:
            At least ``{"objective": value}`` (lower is better) plus named
            components worth logging.

        Raises:
            ValueError: A metric is NaN/inf or out of range; the tuner marks
                the trial failed.
            UserError: A metric the objective needs is unavailable for the
                whole search (e.g. STS-B not configured).
        """

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


def _sts_missing_message(name: str) -> str:
    """The one wording for "this objective needs STS-B"."""
    return (
        f"objective {name!r} needs STS-Benchmark scores, but STS-B is "
        "unavailable for this search; pass --sts (path to the STS-B data) "
        "or choose another objective (e.g. --objective val_mse)"
    )


def read_metric(
    metrics: Metrics, key: str, *, who: str, low: float = -math.inf, high: float = math.inf
) -> float | None:
    """Read one metric as a float, or ``None`` when it is absent.

    Args:
        metrics: The trial's or base model's metrics.
        key: Metric name.
        who: ``"trial"`` or ``"base"``, for error messages.
        low: Smallest valid value (inclusive).
        high: Largest valid value (inclusive).

    Returns:
        The value, or ``None`` if the key is missing or its value is ``None``.

    Raises:
        ValueError: The value is NaN, infinite or outside ``[low, high]``.
            A diverged trial produces NaN; ranking it would be meaningless.
    """
    value = metrics.get(key)
    if value is None:
        return None
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"{who} metric {key!r} is not finite: {value}")
    # Small slack: correlations computed in float32 can exceed 1 by an ulp.
    if not (low - 1e-6 <= value <= high + 1e-6):
        raise ValueError(f"{who} metric {key!r} = {value} is outside [{low}, {high}]")
    return min(max(value, low), high)
