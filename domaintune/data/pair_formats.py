"""Format readers for :func:`domaintune.data.pairs.load_pairs`.

Each reader turns one file into raw :data:`Record` tuples ``(where, text a, text b,
score, hard negative)``, validating only the file's structure (encoding, header,
JSON syntax); values are checked by ``pairs``. The optional ``hard_negative``
column (CSV/TSV header, JSONL key, Parquet column) is read when present.
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
FORMATS = {".csv": "csv", ".tsv": "tsv", ".jsonl": "jsonl", ".json": "jsonl", ".parquet": "parquet"}

#: (where, text a, text b, raw score, raw hard negative or None). ``where`` ("line 7",
#: "row index 3") names the row in error messages.
Record = tuple[str, Any, Any, Any, Any]


def read_records(p: Path, fmt: str, columns: Sequence[str]) -> tuple[list[Record], bool]:
    """All records of ``p`` and whether it has a ``hard_negative`` column.

    The hard negative is read only if ``hard_negative`` is not one of ``columns``;
    for JSON Lines the column counts as present if any object has the key.
    """
    extra = HARD_NEGATIVE_COLUMN if HARD_NEGATIVE_COLUMN not in columns else None
    if fmt == "parquet":
        return _parquet_records(p, columns, extra)
    text = read_utf8(p, if_empty="Add a header and rows of pairs.")
    if fmt == "jsonl":
        return _jsonl_records(p, text, columns, extra)
    return _delimited_records(p, text, columns, extra, "\t" if fmt == "tsv" else ",")


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
    p: Path, text: str, columns: Sequence[str], extra: str | None, delim: str
) -> tuple[list[Record], bool]:
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
    has_extra = extra is not None and extra in header
    idx.append(header.index(extra) if has_extra else len(header))  # past the end -> None
    out: list[Record] = []
    for line, row in records:
        if not row or not any(f.strip() for f in row):
            continue  # blank line
        fields = (row[i] if i < len(row) else None for i in idx)
        out.append((f"line {line}", *fields))  # type: ignore[arg-type]
    return out, has_extra


def _jsonl_records(
    p: Path, text: str, columns: Sequence[str], extra: str | None
) -> tuple[list[Record], bool]:
    if text.lstrip().startswith("["):
        raise UserError(f"{p}: is a JSON array; write JSON Lines instead (one object per line).")
    out: list[Record] = []
    has_extra = False
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
        has_extra = has_extra or (extra is not None and extra in obj)
        out.append((f"line {n}", *(obj[c] for c in columns), obj.get(extra) if extra else None))
    return out, has_extra


def _parquet_records(
    p: Path, columns: Sequence[str], extra: str | None
) -> tuple[list[Record], bool]:
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
    has_extra = extra is not None and extra in table.column_names
    data = [table.column(c).to_pylist() for c in columns]
    data.append(table.column(extra).to_pylist() if has_extra else [None] * table.num_rows)
    return [(f"row index {i}", a, b, s, h) for i, (a, b, s, h) in enumerate(zip(*data))], has_extra


def frame_records(frame: Any, name: str, columns: Sequence[str]) -> tuple[list[Record], bool]:
    """Records of a pandas DataFrame, read like a Parquet table: rows are named by
    their index label ("row index 3"), missing values (NaN, None, pd.NA) are None."""
    found = [str(c) for c in frame.columns]
    if len(set(found)) != len(found):
        raise UserError(f"{name}: duplicate column names {found}; give each column one name.")
    if any(c not in found for c in columns):
        raise _missing_columns(name, "columns", found, columns)  # type: ignore[arg-type]
    extra = HARD_NEGATIVE_COLUMN if HARD_NEGATIVE_COLUMN not in columns else None
    has_extra = extra is not None and extra in found
    wanted = [*columns, extra] if has_extra else list(columns)
    named = frame.set_axis(found, axis=1)[wanted].astype(object)
    values = named.where(named.notna(), None).values.tolist()
    return [
        (f"row index {label}", *row, *([] if has_extra else [None]))
        for label, row in zip(frame.index, values)
    ], has_extra
