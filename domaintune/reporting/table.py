"""The table of a search's trials, and its JSON records: one implementation for
``domaintune results``, :meth:`domaintune.SearchResult.table` and the summary
that ends a search.

The table ranks the trials by the objective (lower is better) and marks the
best; a row shows each measured metric with its change against the untuned
base, and only the hyperparameters that differ between the rows (the others
are listed once above it). It fits :data:`WIDTH` columns: columns that do not
fit go to a further block of rows below, keyed by the same rank and trial
(``wide=True``: one block, however wide).
"""

from __future__ import annotations

import textwrap
from collections.abc import Mapping, Sequence
from typing import Any

from domaintune.errors import UserError
from domaintune.evaluation import names
from domaintune.reporting.results import ranked
from domaintune.reporting.status import DIRECTION, describe_objective, domain_metric, guard_of

#: The terminal width the table fits.
WIDTH = 120
#: The metrics the table shows, in order, when any row has them.
TABLE_METRICS = (
    names.VAL_MSE,
    names.VAL_SPEARMAN,
    names.RETRIEVAL_R1,
    names.RETRIEVAL_MRR,
    names.STS_PEARSON,
    names.ALPHA,  # a search with --interpolate only
)
#: Metrics shown without a change against the base (the base has none).
_NO_DELTA = frozenset({names.ALPHA})
#: Keys of a JSON record that are not metrics.
RECORD_KEYS = ("trial_id", "status", "rank", "best", "hyperparameters", "message", "delta_vs_base")
_GAP = "  "


def fmt(value: Any) -> str:
    """A value as the table prints it: ``%g``-style, 4 significant digits."""
    if value is None:
        return "-"
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, int):
        return str(value)
    return f"{value:.4g}"


def fmt_delta(value: float | None, base: float | None) -> str:
    """A change against the base, signed: ``+0.012``, ``-2.8e-05``."""
    if value is None or base is None:
        return "-"
    return f"{value - base:+.3g}"


def ranked_order(trials: Sequence[Mapping]) -> tuple[list[Mapping], dict[str, int]]:
    """The trials best first (completed, by objective; then the others in
    trial order) and each ranked trial's rank (1 = best)."""
    scored = ranked(trials)
    ranks = {t["trial_id"]: i for i, t in enumerate(scored, 1)}
    return [*scored, *(t for t in trials if t["trial_id"] not in ranks)], ranks


def base_objective(config: Mapping[str, Any], base: Mapping[str, Any]) -> float | None:
    """The objective the untuned base scores (guarded: 1.0), or None."""
    from domaintune.objectives import get_objective

    try:
        objective = get_objective(
            str(config.get("objective") or "guarded"),
            weight=config.get("objective_weight", 1.0),
            tolerance=config.get("tolerance", 0.005),
            domain_metric=domain_metric(config),
        )
        return float(objective.score(base, base)[names.OBJECTIVE])
    except (UserError, ValueError, KeyError, TypeError):  # no base metrics, custom objective
        return None


def split_hyperparameters(trials: Sequence[Mapping]) -> tuple[list[str], dict[str, Any]]:
    """``(names that differ between the trials, {name: value} of those that do not)``."""
    order: list[str] = []
    values: dict[str, list[Any]] = {}
    for trial in trials:
        for name, value in trial.get("hyperparameters", {}).items():
            if name not in values:
                order.append(name)
                values[name] = []
            values[name].append(value)
    varying = [
        n for n in order if len(values[n]) < len(trials) or len({repr(v) for v in values[n]}) > 1
    ]
    fixed = {n: values[n][0] for n in order if n not in varying}
    return varying, fixed


def shown_metrics(trials: Sequence[Mapping], base: Mapping[str, Any]) -> list[str]:
    return [m for m in TABLE_METRICS if any(r.get(m) is not None for r in [*trials, base])]


def note(trial: Mapping) -> str | None:
    """Why a trial is not ranked, or was stopped early; None for a plain one."""
    status = trial.get("status")
    if status != "COMPLETED":
        reason = trial.get("message") or {"RUNNING": "still running", "IDLE": "not started"}.get(
            status, "no reason recorded"
        )
        return f"{status}: {reason}"
    if trial.get(names.OBJECTIVE) is None:
        return "COMPLETED without an objective"
    stopped = trial.get(names.STOPPED_AT_EPOCH)
    if stopped is not None:
        return f"stopped after epoch {int(stopped)} by --prune median (worse than the median)"
    return None


def format_results(
    trials: Sequence[Mapping],
    base: Mapping[str, Any],
    config: Mapping[str, Any],
    *,
    limit: int | None = None,
    wide: bool = False,
    width: int = WIDTH,
) -> str:
    """The heading (ranking, STS-B guard, hyperparameters common to every
    row), the table and the notes on failed or stopped trials.

    ``limit``: only the best ``limit`` ranked trials (the end-of-search summary).
    """
    order, ranks = ranked_order(trials)
    if limit is not None:
        order = [t for t in order if t["trial_id"] in ranks][:limit]
    against = "; metrics as value (Δ against the untuned base)" if base else ""
    heading = [
        f"Ranked by the objective, {describe_objective(config)} ({DIRECTION}){against}.",
        guard_of(config, base, trials).status(),
    ]
    varying, fixed = split_hyperparameters(order)
    if fixed:
        heading.append(
            "Same in every trial: " + ", ".join(f"{k}={fmt(v)}" for k, v in fixed.items())
        )
    lines = [textwrap.fill(text, width, subsequent_indent="  ") for text in heading]
    columns = _columns(order, ranks, base, config, varying)
    lines += ["", *_blocks(columns, width=None if wide else width)]
    notes = [(t["trial_id"], note(t)) for t in order]
    notes = [(trial_id, text) for trial_id, text in notes if text]
    if notes:
        lines.append("")
        lines += [
            textwrap.fill(f"trial {trial_id}: {text}", width, subsequent_indent="  ")
            for trial_id, text in notes
        ]
    return "\n".join(lines)


def _columns(
    order: Sequence[Mapping],
    ranks: Mapping[str, int],
    base: Mapping[str, Any],
    config: Mapping[str, Any],
    varying: Sequence[str],
) -> list[tuple[str, list[str]]]:
    """``(header, cells)`` per column; the first two (rank, trial) key every block."""
    has_base = bool(base)
    base_score = base_objective(config, base) if has_base else None
    metrics = shown_metrics(order, base)

    def rank(t: Mapping) -> str:
        number = ranks.get(t["trial_id"])
        return "-" if number is None else f"{number} best" if number == 1 else str(number)

    def objective(t: Mapping) -> str:
        if t["trial_id"] not in ranks:
            return str(t.get("status") or "-")
        return _with_delta(t[names.OBJECTIVE], base_score)

    columns = [
        ("rank", [*([""] if has_base else []), *map(rank, order)]),
        ("trial", [*(["base"] if has_base else []), *(t["trial_id"] for t in order)]),
        ("objective", [*([fmt(base_score)] if has_base else []), *map(objective, order)]),
    ]
    for metric in metrics:
        reference = None if metric in _NO_DELTA else base.get(metric)
        cells = [fmt(base.get(metric))] if has_base else []
        cells += [_with_delta(t.get(metric), reference) for t in order]
        columns.append((metric, cells))
    for name in varying:
        cells = [""] if has_base else []
        cells += [fmt(t.get("hyperparameters", {}).get(name)) for t in order]
        columns.append((name, cells))
    return columns


def _with_delta(value: float | None, reference: float | None) -> str:
    if value is None or reference is None:
        return fmt(value)
    return f"{fmt(value)} ({fmt_delta(value, reference)})"


def _blocks(columns: list[tuple[str, list[str]]], width: int | None) -> list[str]:
    """The columns as text lines: all in one block (``width`` None), or in
    blocks that each fit ``width``, every block keyed by the first two columns."""
    sizes = [max(len(h), *(len(c) for c in cells)) for h, cells in columns]
    key, rest = [0, 1], list(range(2, len(columns)))
    blocks: list[list[int]] = []
    used = sum(sizes[i] for i in key) + len(_GAP) * (len(key) - 1)
    current: list[int] = []
    for i in rest:
        extra = len(_GAP) + sizes[i]
        if width is not None and current and used + extra > width:
            blocks.append(current)
            current, used = [], sum(sizes[k] for k in key) + len(_GAP) * (len(key) - 1)
        current.append(i)
        used += extra
    blocks.append(current)
    lines: list[str] = []
    rows = len(columns[0][1])
    for number, block in enumerate(blocks):
        if number:
            lines.append("")
        shown = [*key, *block]
        lines.append(_GAP.join(columns[i][0].ljust(sizes[i]) for i in shown).rstrip())
        for row in range(rows):
            if number and not any(columns[i][1][row] for i in block):
                continue  # the base row of a block of hyperparameters
            lines.append(_GAP.join(columns[i][1][row].ljust(sizes[i]) for i in shown).rstrip())
    return lines


def records(
    trials: Sequence[Mapping], base: Mapping[str, Any], config: Mapping[str, Any]
) -> list[dict[str, Any]]:
    """``domaintune results --json``: the base first, then the trials best
    first, each with ``rank`` (None when not ranked), ``best``, every metric
    any entry has (None where missing) and ``delta_vs_base``."""
    order, ranks = ranked_order(trials)
    metrics: list[str] = []
    for entry in [base, *order]:
        for name, value in entry.items():
            if name not in metrics and name not in RECORD_KEYS and _is_metric(value):
                metrics.append(name)
    known = [m for m in (names.OBJECTIVE, *names.ENCODER_METRICS) if m in metrics]
    metrics = [*known, *(m for m in metrics if m not in known)]
    base_score = base_objective(config, base) if base else None
    listed: list[dict[str, Any]] = []
    if base:
        listed.append(
            {
                "trial_id": "base",
                "status": "BASE",
                "rank": None,
                "best": False,
                "hyperparameters": {},
                "message": None,
                **{m: base.get(m) for m in metrics},
                names.OBJECTIVE: base_score,
            }
        )
    for trial in order:
        rank = ranks.get(trial["trial_id"])
        reference = {**base, names.OBJECTIVE: base_score}
        listed.append(
            {
                "trial_id": trial["trial_id"],
                "status": trial["status"],
                "rank": rank,
                "best": rank == 1,
                "hyperparameters": dict(trial.get("hyperparameters", {})),
                "message": trial.get("message"),
                **{m: trial.get(m) for m in metrics},
                "delta_vs_base": {
                    m: trial[m] - reference[m]
                    for m in (names.OBJECTIVE, *names.ENCODER_METRICS)
                    if _is_number(trial.get(m)) and _is_number(reference.get(m))
                },
            }
        )
    return listed


def _is_metric(value: Any) -> bool:
    return value is None or _is_number(value)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)
