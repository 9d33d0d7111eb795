"""Format readers for :func:`domaintune.data.pairs.load_pairs`.

Each reader turns one file into raw :data:`Record` tuples ``(where, text a, text b,
score, hard negative, concept)``, validating only the file's structure (encoding,
header, JSON syntax); values are checked by ``pairs``. The optional columns
``hard_negative`` and ``concept`` (CSV/TSV header, JSONL key, Parquet column) are
read when present.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from domaintune._io import csv_records, read_utf8
from domaintune.errors import UserError

#: Optional column: a text that must NOT match the pair (an extra in-batch negative).
HARD_NEGATIVE_COLUMN = "hard_negative"
#: Optional column: the concept both texts of a same-concept pair name ("" = unknown).
CONCEPT_COLUMN = "concept"
#: The optional columns, in the order a :data:`Record` holds them.
OPTIONAL_COLUMNS = (HARD_NEGATIVE_COLUMN, CONCEPT_COLUMN)
FORMATS = {".csv": "csv", ".tsv": "tsv", ".jsonl": "jsonl", ".json": "jsonl", ".parquet": "parquet"}
#: The longest text, in characters, a pair file (any format) or DataFrame may hold.
#: Pair texts are titles, sentences or short paragraphs, well under 2,000 characters;
#: sentence encoders are trained on such texts (a long document embeds poorly) and
#: tokenise every character of every text each epoch. 10,000 characters (about
#: 1,500 words, four pages) leaves room for any real text; a longer one is almost
#: always a damaged file (in a CSV, an unclosed quote joins every line after it).
MAX_TEXT_CHARS = 10_000

#: (where, text a, text b, raw score, then the raw value of each of
#: :data:`OPTIONAL_COLUMNS` or None). ``where`` ("line 7", "row index 3") names the
#: row in error messages.
Record = tuple[Any, ...]


def read_records(p: Path, fmt: str, columns: Sequence[str]) -> tuple[list[Record], frozenset]:
    """All records of ``p`` and which :data:`OPTIONAL_COLUMNS` it has.

    An optional column is read only if it is not one of ``columns``; for JSON
    Lines a column counts as present if any object has the key.
    """
    extra = _optional(columns)
    if fmt == "parquet":
        return _parquet_records(p, columns, extra)
    text = read_utf8(p, if_empty="Add a header and rows of pairs.")
    if fmt == "jsonl":
        return _jsonl_records(p, text, columns, extra)
    return _delimited_records(p, text, columns, extra, "\t" if fmt == "tsv" else ",")


def check_text_lengths(p: Any, where: str, *texts: Any) -> None:
    """Refuse a text over :data:`MAX_TEXT_CHARS`; ``texts`` are a record's
    text a, text b and optional columns, in :data:`Record` order."""
    for column, text in zip(("first text", "second text", *OPTIONAL_COLUMNS), texts):
        if isinstance(text, str) and len(text) > MAX_TEXT_CHARS:
            raise UserError(
                f"{p}, {where}: the {column} is {len(text):,} characters long; the limit "
                f"is {MAX_TEXT_CHARS:,}. Shorten it or delete the row (in a CSV, check for "
                "an unclosed quote that joined the lines after it)."
            )


def _optional(columns: Sequence[str]) -> tuple[str | None, ...]:
    """The optional columns to read (None for one that is a pair column)."""
    return tuple(None if c in columns else c for c in OPTIONAL_COLUMNS)


def _present(extra: Sequence[str | None], found: Sequence[str]) -> frozenset:
    return frozenset(c for c in extra if c is not None and c in found)


def _missing_columns(
    p: Path, where: str, found: Sequence[str], columns: Sequence[str]
) -> UserError:
    missing = [c for c in columns if c not in found]
    hint = ",".join(found) if len(found) == 3 else "a,b,score"
    return UserError(
        f"{p}, {where}: missing column(s) {', '.join(map(repr, missing))}; found: "
        f"{', '.join(map(repr, found)) or '(none)'}. Rename the columns to "
        f"{','.join(columns)} or pass --columns {hint} (text A, text B, score)."
    )


def _delimited_records(
    p: Path, text: str, columns: Sequence[str], extra: Sequence[str | None], delim: str
) -> tuple[list[Record], frozenset]:
    # TSV is read unquoted: STS-style TSVs contain bare quote characters.
    records = csv_records(
        p,
        text,
        delimiter=delim,
        quoting=csv.QUOTE_NONE if delim == "\t" else csv.QUOTE_MINIMAL,
        kind="TSV" if delim == "\t" else "CSV",
        fix="Check quoting on that line.",
    )
    header = [h.strip() for h in next(records, (1, []))[1]]
    if any(c not in header for c in columns):
        raise _missing_columns(p, "line 1", header, columns)
    idx = [header.index(c) for c in columns]
    present = _present(extra, header)
    # An absent optional column reads past the end -> None.
    idx += [header.index(c) if c in present else len(header) for c in extra]
    out: list[Record] = []
    for line, row in records:
        if not row or not any(f.strip() for f in row):
            continue  # blank line
        fields = (row[i] if i < len(row) else None for i in idx)
        out.append((f"line {line}", *fields))
    return out, present


def _jsonl_records(
    p: Path, text: str, columns: Sequence[str], extra: Sequence[str | None]
) -> tuple[list[Record], frozenset]:
    if text.lstrip().startswith("["):
        raise UserError(f"{p}: is a JSON array; write JSON Lines instead (one object per line).")
    out: list[Record] = []
    present: frozenset = frozenset()
    for n, line in enumerate(text.split("\n"), 1):  # split("\n") keeps line numbers = file lines
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as err:
            raise UserError(
                f"{p}, line {n}: not valid JSON ({err.msg}). Write one JSON object per line."
            ) from None
        if not isinstance(obj, dict):
            raise UserError(
                f"{p}, line {n}: expected a JSON object like "
                f'{{"{columns[0]}": ..., "{columns[1]}": ..., "{columns[2]}": ...}}.'
            )
        if any(c not in obj for c in columns):
            raise _missing_columns(p, f"line {n}", list(obj), columns)
        present |= _present(extra, list(obj))
        out.append(
            (f"line {n}", *(obj[c] for c in columns), *(obj.get(c) if c else None for c in extra))
        )
    return out, present


def _parquet_records(
    p: Path, columns: Sequence[str], extra: Sequence[str | None]
) -> tuple[list[Record], frozenset]:
    try:
        import pyarrow.parquet as pq
    except ImportError:
        raise UserError(f"{p}: reading Parquet files needs pyarrow: pip install pyarrow") from None
    try:
        table = pq.read_table(p)
    except Exception as err:  # pyarrow raises several types for corrupt files
        raise UserError(
            f"{p}: could not read Parquet ({err}). Check the file is a Parquet file."
        ) from None
    if any(c not in table.column_names for c in columns):
        raise _missing_columns(p, "schema", table.column_names, columns)
    present = _present(extra, table.column_names)
    data = [table.column(c).to_pylist() for c in columns]
    data += [
        table.column(c).to_pylist() if c in present else [None] * table.num_rows for c in extra
    ]
    return [(f"row index {i}", *row) for i, row in enumerate(zip(*data))], present


def frame_records(frame: Any, name: str, columns: Sequence[str]) -> tuple[list[Record], frozenset]:
    """Records of a pandas DataFrame, read like a Parquet table: rows are named by
    their index label ("row index 3"), missing values (NaN, None, pd.NA) are None."""
    found = [str(c) for c in frame.columns]
    if len(set(found)) != len(found):
        raise UserError(f"{name}: duplicate column names {found}; give each column one name.")
    if any(c not in found for c in columns):
        raise _missing_columns(name, "columns", found, columns)  # type: ignore[arg-type]
    extra = _optional(columns)
    present = _present(extra, found)
    wanted = [*columns, *(c for c in extra if c in present)]
    named = frame.set_axis(found, axis=1)[wanted].astype(object)
    values = named.where(named.notna(), None).values.tolist()
    records = []
    for label, row in zip(frame.index, values):
        optional = dict(zip(wanted[len(columns) :], row[len(columns) :]))
        records.append((f"row index {label}", *row[: len(columns)], *map(optional.get, extra)))
    return records, present
