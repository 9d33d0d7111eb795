"""A hyperparameter of the search space (:class:`Param`) and where its value
lives, which decides what a trial may reuse from the previous one."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

# Where a value lives, which decides what a trial may reuse (building and
# tracing the model costs ~5 s for USE-m3):
GRAPH = "graph"  # shapes the traced train step: another value builds another model
VARIABLE = "variable"  # held in a TF variable of the built model, assigned per trial
OUTSIDE = "outside"  # never reaches the graph (data pipeline, fit loop)


@dataclass(frozen=True)
class Param:
    """One hyperparameter: a float/int range, a choice, or a fixed value."""

    name: str
    kind: str  # "float" | "int" | "choice" | "fixed"
    default: Any
    low: float | None = None
    high: float | None = None
    log: bool = False
    values: tuple = ()
    grid_step: float | None = None  # grid search: multiplicative (log) or additive step
    help: str = ""
    allowed: tuple = ()  # the valid values of a string parameter
    minimum: float | None = None  # valid numeric values (inclusive)
    maximum: float | None = None
    exclusive_minimum: bool = False  # minimum itself is invalid (e.g. a rate of 0)
    lives: str = GRAPH  # GRAPH | VARIABLE | OUTSIDE; GRAPH, the safe guess, never wrongly reuses

    def declare(self, hp) -> Any:
        """Register on KerasTuner ``HyperParameters`` and return the value."""
        if self.kind == "fixed":
            return hp.Fixed(self.name, self.default)
        if self.kind == "choice":
            return hp.Choice(self.name, list(self.values), default=self.default)
        sampling = "log" if self.log else "linear"
        make = hp.Float if self.kind == "float" else hp.Int
        return make(
            self.name,
            self.low,
            self.high,
            step=self.grid_step,
            sampling=sampling,
            default=self.default,
        )

    def describe(self) -> str:
        if self.kind == "fixed":
            return repr(self.default)
        if self.kind == "choice":
            return "{" + ", ".join(map(str, self.values)) + "}"
        return f"[{self.low:g}, {self.high:g}]{' log' if self.log else ''}"
