"""Strict loading and splitting of domain text pairs.

A pair file has two text columns and one similarity score per row (by default
``base,ref,similarity``), plus an optional ``hard_negative`` column: a text that
must not match the pair, used as an extra in-batch negative ("" = none), and an
optional ``concept`` column: the id of the concept both texts of a same-concept
pair name (e.g. an ESCO occupation URI; "" = unknown). Scores are stored
on the ANGULAR scale ``1 - arccos(cos) / pi`` in [0, 1]: 1.0 same concept, 0.5 unrelated
(orthogonal). Other scales are converted on load (see :func:`to_angular`).

Every problem a user can fix raises one :class:`~domaintune.errors.UserError`
naming the file, the line and the fix, so a bad row never silently trains.
"""

from __future__ import annotations

import hashlib
import math
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from domaintune.data.pair_formats import (
    CONCEPT_COLUMN,
    FORMATS,
    HARD_NEGATIVE_COLUMN,
    OPTIONAL_COLUMNS,
    check_text_lengths,
    frame_records,
    read_records,
)
from domaintune.data.pair_set import LoadReport, PairSet
from domaintune.data.split import split_validation
from domaintune.errors import UserError

DEFAULT_COLUMNS: tuple[str, str, str] = ("base", "ref", "similarity")
#: Allowed raw score range per scale.
SCALES: dict[str, tuple[float, float]] = {
    "angular": (0.0, 1.0),
    "sts": (0.0, 5.0),
    "cosine": (-1.0, 1.0),
}
DEDUPE_MODES = ("error", "mean")
# Scores closer than this (angular scale) count as equal: "0.75" vs "0.750000".
_SCORE_TOL = 1e-6
_SAMPLE = Path(__file__).resolve().parent / "samples" / "job_titles.csv"


@dataclass(frozen=True)
class _Row:
    where: str  # "line 7" / "row 3": used in error messages
    a: str
    b: str
    raw: float  # score as written, for messages
    score: float  # angular
    hard: str = ""  # hard negative, "" = none
    concept: str = ""  # "" = none


def sample_path() -> Path:
    """Path of the bundled sample ``job_titles.csv`` (see samples/README.md)."""
    return _SAMPLE


def file_sha256(path: str | Path) -> str:
    """Hex SHA-256 of a file's bytes, to record exactly which data trained a model."""
    p = _existing_file(Path(path))
    h = hashlib.sha256()
    with p.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def is_frame(value: Any) -> bool:
    """Whether ``value`` is a pandas DataFrame (without importing pandas)."""
    pd = sys.modules.get("pandas")
    return pd is not None and isinstance(value, pd.DataFrame)


def frame_csv(frame: Any, columns: Sequence[str] = DEFAULT_COLUMNS) -> str:
    """A DataFrame's pair columns (and ``hard_negative``, ``concept``, if any) as CSV text: the
    canonical form a search hashes, and stores, to know the data again on resume."""
    found = [str(c) for c in frame.columns]
    wanted = [c for c in (*columns, *OPTIONAL_COLUMNS) if c in found]
    return frame.set_axis(found, axis=1)[wanted].to_csv(index=False, lineterminator="\n")


def pairs_sha256(source: Any, columns: Sequence[str] = DEFAULT_COLUMNS) -> str:
    """Hex SHA-256 of a pair file's bytes, or of a DataFrame's :func:`frame_csv`."""
    if not is_frame(source):
        return file_sha256(source)
    return hashlib.sha256(frame_csv(source, columns).encode("utf-8")).hexdigest()


def parse_columns(spec: str) -> tuple[str, str, str]:
    """Parse a ``--columns a,b,score`` option into three column names."""
    names = tuple(c.strip() for c in spec.split(","))
    if len(names) != 3 or not all(names) or len(set(names)) != 3:
        raise UserError(
            f"--columns {spec!r} must name three different columns: "
            "text A, text B and the score, e.g. --columns base,ref,similarity."
        )
    return names  # type: ignore[return-value]


def to_angular(values: np.ndarray | Sequence[float], scale: str) -> np.ndarray:
    """Convert raw scores on ``scale`` to angular similarity in [0, 1].

    - ``angular``: unchanged.
    - ``cosine`` c in [-1, 1]: ``1 - arccos(c) / pi`` (-1 -> 0, 0 -> 0.5, 1 -> 1).
    - ``sts`` s in [0, 5]: first ``c = s / 5``, so 0 ("unrelated") is
      orthogonal rather than opposite, then as cosine (0 -> 0.5, 5 -> 1.0).
    """
    _check_scale(scale)
    v = np.asarray(values, dtype=np.float64)
    if scale == "angular":
        return v
    cos = v / 5.0 if scale == "sts" else v
    return 1.0 - np.arccos(np.clip(cos, -1.0, 1.0)) / np.pi


def load_pairs(
    path: str | Path | Any,
    *,
    columns: tuple[str, str, str] = DEFAULT_COLUMNS,
    scale: str = "angular",
    dedupe: str = "error",
    min_pairs: int = 10,
    name: str = "DataFrame",
) -> tuple[PairSet, LoadReport]:
    """Load and validate a pair file (.csv, .tsv, .jsonl/.json lines, .parquet) or a
    pandas DataFrame (its rows named ``row index <label>`` and the frame ``name`` in
    messages).

    Texts are stripped; scores are converted from ``scale`` to angular.
    Duplicate rows (same two texts in either order, same score) are dropped
    and counted. The same pair with different scores is an error naming both
    lines, unless ``dedupe="mean"``, which averages the distinct scores.

    An optional ``hard_negative`` column fills ``PairSet.hard_negatives`` and an
    optional ``concept`` column ``PairSet.concepts`` (stripped, "" where missing or
    blank); a deduplicated pair keeps the first row's, a merged one the first
    non-empty one.
    """
    _check_scale(scale)
    if dedupe not in DEDUPE_MODES:
        raise UserError(f"Unknown dedupe mode {dedupe!r}; use one of: {', '.join(DEDUPE_MODES)}.")
    if len(columns) != 3 or len(set(columns)) != 3:
        raise UserError(f"columns must be three different names, got {columns!r}.")
    if is_frame(path):
        p: Any = name
        records, present = frame_records(path, name, columns)
    else:
        p = _existing_file(Path(path))
        fmt = FORMATS.get(p.suffix.lower())
        if fmt is None:
            raise UserError(
                f"{p}: unsupported file type {p.suffix or '(none)'!r}; "
                f"use one of {', '.join(sorted(FORMATS))}."
            )
        records, present = read_records(p, fmt, columns)
    rows = [_make_row(p, where, a, b, s, h, c, scale) for where, a, b, s, h, c in records]
    if not rows:
        raise UserError(
            f"{p}: no pairs found (only a header or blank lines). Add rows of {','.join(columns)}."
        )
    pairs, dropped = _dedupe(p, rows, dedupe, present)
    n_hard = sum(map(bool, pairs.hard_negatives)) if pairs.hard_negatives is not None else None
    n_concepts = sum(map(bool, pairs.concepts)) if pairs.concepts is not None else None
    report = LoadReport(
        str(p),
        read=len(rows),
        kept=len(pairs),
        dropped=dropped,
        scale=scale,
        hard_negatives=n_hard,
        concepts=n_concepts,
    )
    if len(pairs) < min_pairs:
        raise UserError(
            f"{p}: only {len(pairs)} usable pairs ({report.summary()}); at least {min_pairs} "
            "are needed to fine-tune. Add more pairs to the file."
        )
    return pairs, report


def split_pairs(pairs: PairSet, fraction: float, seed: int) -> tuple[PairSet, PairSet]:
    """Split into ``(train, validation)`` with ~``fraction`` of pairs in validation
    and no text on both sides: :func:`~domaintune.data.split.split_validation`,
    which also says how it split. Deterministic for a given ``seed``."""
    split = split_validation(pairs, fraction, seed)
    return split.train, split.val


def _check_scale(scale: str) -> None:
    if scale not in SCALES:
        raise UserError(f"Unknown score scale {scale!r}; use one of: {', '.join(SCALES)}.")


def _existing_file(p: Path) -> Path:
    if not p.is_file():
        what = "is not a file" if p.exists() else "file not found"
        raise UserError(f"{p}: {what}. Pass the path of a pair file.")
    return p


def _is_missing(v: Any) -> bool:
    return (
        v is None
        or (isinstance(v, float) and math.isnan(v))
        or (isinstance(v, str) and not v.strip())
    )


def _make_row(
    p: Path, where: str, a: Any, b: Any, s: Any, hard: Any, concept: Any, scale: str
) -> _Row:
    for col, v in zip(("first text", "second text"), (a, b)):
        if _is_missing(v):
            raise UserError(f"{p}, {where}: the {col} is empty. Fill it in or delete the row.")
    check_text_lengths(p, where, a, b, hard, concept)
    if _is_missing(s):
        raise UserError(f"{p}, {where}: the score is missing. Add a number or delete the row.")
    try:
        if isinstance(s, bool):
            raise ValueError
        raw = float(s.strip() if isinstance(s, str) else s)
    except (TypeError, ValueError):
        raise UserError(
            f"{p}, {where}: score {s!r} is not a number. Use a number on the "
            f"{scale} scale {_fmt_range(scale)}."
        ) from None
    lo, hi = SCALES[scale]
    if not math.isfinite(raw) or not lo <= raw <= hi:
        fits = [k for k, (l2, h2) in SCALES.items() if k != scale and l2 <= raw <= h2]
        hint = (
            f" If the file uses another scale, pass --scale {' or --scale '.join(fits)}."
            if fits
            else ""
        )
        raise UserError(
            f"{p}, {where}: score {raw:g} is outside {_fmt_range(scale)} allowed for "
            f"--scale {scale}.{hint} Scales: "
            + ", ".join(f"{k} {_fmt_range(k)}" for k in SCALES)
            + "."
        )
    hard_text = _optional_text(p, where, HARD_NEGATIVE_COLUMN, hard, "no hard negative")
    concept_id = _optional_text(p, where, CONCEPT_COLUMN, concept, "no concept")
    angular = float(to_angular([raw], scale)[0])
    return _Row(where, str(a).strip(), str(b).strip(), raw, angular, hard_text, concept_id)


def _optional_text(p: Path, where: str, column: str, value: Any, empty_means: str) -> str:
    """An optional column's value as stripped text ("" when missing); a number
    counts as its text (an integer-valued float without ".0": Parquet turns an
    int column with gaps into floats)."""
    if _is_missing(value):
        return ""
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise UserError(
            f"{p}, {where}: {column} {value!r} is not a text. Write a text, "
            f"or leave it empty for {empty_means}."
        )
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return str(value).strip()


def _fmt_range(scale: str) -> str:
    return "[{:g}, {:g}]".format(*SCALES[scale])


def _dedupe(
    p: Path, rows: list[_Row], mode: str, present: frozenset
) -> tuple[PairSet, dict[str, int]]:
    # key: unordered exact texts, so (a, b) and (b, a) are one pair.
    groups: dict[tuple[str, str], list[_Row]] = {}
    n_dup = 0
    for r in rows:
        g = groups.setdefault((min(r.a, r.b), max(r.a, r.b)), [])
        if any(abs(q.score - r.score) <= _SCORE_TOL for q in g):
            n_dup += 1
            continue
        if g and mode == "error":
            q = g[0]
            raise UserError(
                f"{p}: {q.where} and {r.where} give the same pair ({r.a!r}, {r.b!r}) different "
                f"scores ({q.raw:g} vs {r.raw:g}). Fix or delete one, or pass --dedupe mean "
                "to average them."
            )
        g.append(r)
    n_merged = sum(len(g) - 1 for g in groups.values())
    firsts = [g[0] for g in groups.values()]  # keeps file order and orientation
    scores = np.array([np.mean([r.score for r in g]) for g in groups.values()], dtype=np.float32)
    # Exact duplicates never join a group, so the first row's hard negative (concept) wins for them;
    # merged rows (dedupe="mean") keep the first non-empty one.
    hard = [next((r.hard for r in g if r.hard), "") for g in groups.values()]
    concepts = [next((r.concept for r in g if r.concept), "") for g in groups.values()]
    pairs = PairSet(
        [r.a for r in firsts],
        [r.b for r in firsts],
        scores,
        str(p),
        hard if HARD_NEGATIVE_COLUMN in present else None,
        concepts if CONCEPT_COLUMN in present else None,
    )
    dropped = {"exact_duplicate": n_dup}
    if n_merged:
        dropped["contradictory_merged"] = n_merged
    return pairs, dropped
