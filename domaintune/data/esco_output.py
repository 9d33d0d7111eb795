"""Writing the pairs of an ESCO build (:func:`domaintune.data.esco.build_pairs`) as CSV, and a
summary of what the build produced and dropped."""

from __future__ import annotations

import contextlib
import csv
from collections import Counter
from pathlib import Path

from domaintune._io import atomic_path
from domaintune.data.esco import BuildResult
from domaintune.errors import UserError

OUTPUT_COLUMNS = ("base", "ref", "similarity", "pair_type", "lang", "hard_negative", "concept")


def write_pairs(result: BuildResult, output: Path, holdout_output: Path | None = None) -> None:
    """Write ``train`` to ``output`` (and ``holdout`` to ``holdout_output``) atomically: via
    temporary files next to the targets, renamed once all are complete, so nothing is ever
    half-written."""
    targets = [(Path(output), result.train)] + (
        [(Path(holdout_output), result.holdout)] if holdout_output else []
    )
    try:
        with contextlib.ExitStack() as renames:  # renamed on leaving, once every file is written
            for path, rows in targets:
                tmp = renames.enter_context(atomic_path(path))
                with open(tmp, "w", encoding="utf-8", newline="") as fh:
                    csv.writer(fh, lineterminator="\n").writerows(
                        [
                            OUTPUT_COLUMNS,
                            *(
                                (
                                    r.base,
                                    r.ref,
                                    repr(float(r.similarity)),
                                    r.pair_type,
                                    r.lang,
                                    r.hard_negative,
                                    r.concept,
                                )
                                for r in rows
                            ),
                        ]
                    )
    except OSError as err:
        raise UserError(
            f"Cannot write {err.filename or output}: {err.strerror or err}; check the folder."
        ) from None


def summary(result: BuildResult) -> str:
    """Counts per pair type and language (train / holdout), the split, and what was dropped."""
    parts = [result.train] + ([result.holdout] if result.heldout_uris else [])
    lines = [f"{result.n_occupations:,} occupations, languages: {', '.join(result.languages)}"]
    for title, attr in (("pair type", "pair_type"), ("language", "lang")):
        counts = [Counter(getattr(r, attr) for r in part) for part in parts]
        table = (
            [(title, *("train", "holdout")[: len(parts)])]
            + [(k, *(f"{c[k]:,}" for c in counts)) for k in sorted(set().union(*counts))]
            + [("total", *(f"{sum(c.values()):,}" for c in counts))]
        )
        width = max(len(row[0]) for row in table)
        lines += [
            "",
            *(f"{row[0]:<{width}}" + "".join(f"  {v:>9}" for v in row[1:]) for row in table),
        ]
    lines.append("")
    st = result.stats
    if result.heldout_uris:
        n = len(result.heldout_uris)
        lines.append(
            f"holdout: {n:,} of {result.n_occupations:,} occupations "
            f"({n / result.n_occupations:.0%}); {st['dropped_mixed']:,} pairs mixing held-out "
            "and training occupations dropped"
        )
    lines.append(
        f"merged: {st['duplicates']:,} duplicate pairs, "
        f"{st['conflicts']:,} with conflicting scores (highest kept); "
        f"skipped: {st['self_pairs']:,} pairs of identical texts"
    )
    if result.augmented:
        counts = ", ".join(f"{kind} {n:,}" for kind, n in result.augmented.items())
        lines.append(f"augmented (training occupations only): {counts}")
    if st["negatives_short"]:
        lines.append(
            f"{st['negatives_short']:,} negatives not found "
            "(too few unused labels of other major groups)"
        )
    return "\n".join(lines)
