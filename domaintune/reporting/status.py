"""What a search's numbers mean: which metric its objective reads, whether the
STS-B guard ran, and where its best trial is worse than the untuned base.

One wording for the start banner, the end summary, ``domaintune results``, the
progress lines and the export's model card.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from domaintune.evaluation import names

#: Every objective is minimised.
DIRECTION = "lower is better"
#: How to turn the STS-B guard on.
GUARD_HINT = (
    "turn it on with --sts PATH (a folder with sts-dev.csv, or the Stsbenchmark.tar.gz archive)"
)
#: Metrics where a higher value is better (the others: lower).
HIGHER_BETTER = frozenset(
    {
        names.VAL_PEARSON,
        names.VAL_SPEARMAN,
        names.RETRIEVAL_R1,
        names.RETRIEVAL_R5,
        names.RETRIEVAL_MRR,
        names.STS_PEARSON,
    }
)
#: What a trial measures of the domain, by the ``--domain-metric`` that selects on it.
DOMAIN_FAMILIES: dict[str, tuple[str, ...]] = {
    "mse": (names.VAL_MSE,),
    "spearman": (names.VAL_SPEARMAN, names.VAL_PEARSON),
    "retrieval": (names.RETRIEVAL_R1, names.RETRIEVAL_MRR, names.RETRIEVAL_R5),
}
#: Changes smaller than this (relative to the base's value) are float noise, not worse.
_NOISE = 1e-9


def objective_metric(config: Mapping[str, Any]) -> str:
    """The metric the search's objective reads (``val_mse``, ``retrieval_r1``, ...)."""
    objective = config.get("objective") or "guarded"
    if objective == names.VAL_MSE:
        return names.VAL_MSE
    if objective == names.STS_PEARSON:
        return names.STS_PEARSON
    return names.DOMAIN_METRICS[domain_metric(config)][0]


def domain_metric(config: Mapping[str, Any]) -> str:
    """The search's ``--domain-metric`` (a search made before the option: ``mse``)."""
    chosen = config.get("domain_metric") or names.DEFAULT_DOMAIN_METRIC
    return chosen if chosen in names.DOMAIN_METRICS else names.DEFAULT_DOMAIN_METRIC


def describe_objective(config: Mapping[str, Any]) -> str:
    """``guarded on val_mse``, ``val_mse``, ``-sts_pearson``, or a custom name."""
    objective = config.get("objective") or "guarded"
    if objective == "guarded":
        return f"guarded on {objective_metric(config)}"
    if objective == names.STS_PEARSON:
        return f"-{names.STS_PEARSON}"
    return str(objective)


@dataclass(frozen=True)
class Guard:
    """The STS-B guard of a search: ``on`` when the objective is ``guarded``
    and STS-B was measured; ``measured`` whether STS-B was measured at all."""

    on: bool
    measured: bool
    objective: str
    metric: str
    tolerance: float | None
    weight: float | None

    def status(self) -> str:
        """One sentence: ``STS-B guard ON: ...`` or ``STS-B guard OFF: ...``."""
        if self.on:
            return (
                f"STS-B guard ON: a trial that loses more than {self.tolerance:g} STS-B dev "
                "Pearson against the base ranks below every trial that does not (--tolerance)."
            )
        if not self.measured:
            return (
                "STS-B guard OFF: no STS-B data, so trials are ranked on "
                f"{self.metric} alone and may lose general language skill unnoticed; "
                f"{GUARD_HINT}."
            )
        if self.objective == names.STS_PEARSON:
            return "STS-B guard OFF: --objective sts_pearson ranks on STS-B Pearson itself."
        return (
            f"STS-B guard OFF: --objective {self.objective} ranks on {self.metric} alone "
            "(STS-B is measured, not enforced); --objective guarded turns it on."
        )

    def card(self, trial: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """The model card's ``sts_guard`` entry (``trial``: its ``sts_delta``)."""
        delta = None if trial is None else trial.get(names.STS_DELTA)
        entry: dict[str, Any] = {
            "on": self.on,
            "status": self.status(),
            "tolerance": self.tolerance if self.on else None,
            "weight": self.weight if self.on else None,
            "sts_delta": delta,
        }
        if self.on and trial is not None:
            violated = trial.get(names.GUARD_VIOLATED)
            entry["violated"] = None if violated is None else bool(violated)
        return entry


def guard_of(
    config: Mapping[str, Any], base: Mapping[str, Any], trials: Sequence[Mapping[str, Any]] = ()
) -> Guard:
    """The guard of a search from its ``search_config.json``, base metrics (and trials)."""
    measured = (
        bool(config.get("sts_source"))
        or base.get(names.STS_PEARSON) is not None
        or any(t.get(names.STS_PEARSON) is not None for t in trials)
    )
    objective = str(config.get("objective") or "guarded")
    return Guard(
        on=measured and objective == "guarded",
        measured=measured,
        objective=objective,
        metric=objective_metric(config),
        tolerance=config.get("tolerance", 0.005),
        weight=config.get("objective_weight", 1.0),
    )


@dataclass(frozen=True)
class Worse:
    """A metric on which a trial is worse than the base."""

    metric: str
    base: float
    trial: float

    def __str__(self) -> str:
        return f"{self.metric} ({self.base:.4g} -> {self.trial:.4g})"


def is_worse(metric: str, value: float, base: float) -> bool:
    """Whether ``value`` is worse than the base's ``base`` on ``metric`` (beyond float noise)."""
    change = value - base if metric not in HIGHER_BETTER else base - value
    return change > _NOISE * max(1.0, abs(base))


def worse_than_base(trial: Mapping[str, Any], base: Mapping[str, Any], guard: Guard) -> list[Worse]:
    """The domain metrics (and STS-B beyond the tolerance) on which ``trial``
    is worse than the untuned base, of those both measured."""
    found = []
    for family in DOMAIN_FAMILIES.values():
        for metric in family:
            value, reference = trial.get(metric), base.get(metric)
            if value is not None and reference is not None and is_worse(metric, value, reference):
                found.append(Worse(metric, float(reference), float(value)))
    value, reference = trial.get(names.STS_PEARSON), base.get(names.STS_PEARSON)
    tolerance = guard.tolerance if guard.tolerance is not None else 0.0
    if value is not None and reference is not None and reference - value > tolerance + 1e-9:
        found.append(Worse(names.STS_PEARSON, float(reference), float(value)))
    return found


def worse_warning(
    trial: Mapping[str, Any],
    base: Mapping[str, Any],
    config: Mapping[str, Any],
    who: str = "the best trial",
) -> str | None:
    """``Warning: the best trial (2) is worse than the untuned base on ...``
    with the hint that fits, or None when it is not worse on anything measured."""
    guard = guard_of(config, base)
    worse = worse_than_base(trial, base, guard)
    if not worse:
        return None
    shown = ", ".join(map(str, worse))
    hints = _hints([w.metric for w in worse], config, guard, best=who == "the best trial")
    return (
        f"Warning: {who} ({trial['trial_id']}) is worse than the untuned base on "
        f"{shown}. " + " ".join(hints)
    )


def _hints(
    metrics: Sequence[str], config: Mapping[str, Any], guard: Guard, *, best: bool
) -> list[str]:
    """What to change; ``best``: the trial is the search's best (what holds
    for it holds for every trial)."""
    read = objective_metric(config)
    objective = guard.objective
    hints = []
    if read in metrics and read != names.STS_PEARSON:
        who = "No trial beat" if best else "It did not beat"
        hints.append(
            f"{who} the base on {read}, the metric the search ranks on: try more "
            "--max-trials or --epochs, or another --hp learning_rate range."
        )
    switches = []
    for family, members in DOMAIN_FAMILIES.items():
        # val_pearson is no --domain-metric: its family is selected on val_spearman
        flagged = [m for m in members if m in metrics and m != names.VAL_PEARSON]
        if read in members or not flagged:
            continue
        option = f"--domain-metric {family}"
        if objective != "guarded":
            option = f"--objective guarded {option}"
        switches.append(f"on {members[0]}, rerun with {option}")
    if switches:
        hints.append(
            f"The search ranks on {read}; to select {' or '.join(switches)} (in a new "
            "--project-dir, or with --overwrite)."
        )
    if names.STS_PEARSON in metrics:
        if not guard.on:
            hints.append(
                "It lost STS-B Pearson beyond the tolerance: --objective guarded keeps "
                "trials within it."
            )
        else:
            who = "Every trial" if best else "It"
            hints.append(
                f"{who} lost more STS-B Pearson than the tolerance: lower --hp "
                "learning_rate, or raise --tolerance."
            )
    return hints


def pareto_unavailable(
    config: Mapping[str, Any], base: Mapping[str, Any], trials: Sequence[Mapping[str, Any]]
) -> str | None:
    """Why a search has no domain / STS-B Pareto front (STS-B never measured), or None."""
    if guard_of(config, base, trials).measured:
        return None
    domain = names.DOMAIN_METRICS[domain_metric(config)][0]
    return (
        f"No Pareto front: this search did not measure STS-B (STS-B guard OFF), so {domain} "
        "is its only axis and the best trial by the objective is the whole answer. To weigh "
        "the domain against general language skill, rerun the search with --sts PATH (a "
        "folder with sts-dev.csv, or the Stsbenchmark.tar.gz archive)."
    )
