"""The maximum text length of pair files: one rule, one error, for every format."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pandas as pd
import pytest

from domaintune.data.pair_formats import MAX_TEXT_CHARS
from domaintune.data.pairs import load_pairs
from domaintune.errors import UserError

BAD = 3  # the row (0-based) holding the long text


def _frame(long_text: str, column: str = "ref") -> pd.DataFrame:
    rows = [
        {"base": f"title {i}", "ref": f"other title {i}", "similarity": 0.75} for i in range(12)
    ]
    rows[BAD][column] = long_text
    return pd.DataFrame(rows)


def _write(frame: pd.DataFrame, path: Path) -> Path:
    """``frame`` as a pair file in the format of ``path``'s suffix."""
    if path.suffix == ".csv":
        frame.to_csv(path, index=False)
    elif path.suffix == ".tsv":
        frame.to_csv(path, sep="\t", index=False, quoting=csv.QUOTE_NONE)
    elif path.suffix == ".jsonl":
        path.write_text("".join(json.dumps(r) + "\n" for r in frame.to_dict("records")))
    else:
        frame.to_parquet(path)
    return path


# Where each format names the bad row: files by line (after the header), tables by index.
WHERE = {
    "csv": f"line {BAD + 2}",
    "tsv": f"line {BAD + 2}",
    "jsonl": f"line {BAD + 1}",
    "parquet": f"row index {BAD}",
    "frame": f"row index {BAD}",
}


@pytest.mark.parametrize("fmt", list(WHERE))
@pytest.mark.parametrize("length", [MAX_TEXT_CHARS + 1, 10_000_000])
def test_a_text_over_the_limit_is_one_error_naming_file_and_row(tmp_path, fmt, length):
    frame = _frame("x" * length)
    source = frame if fmt == "frame" else _write(frame, tmp_path / f"pairs.{fmt}")
    with pytest.raises(UserError) as exc:
        load_pairs(source, name="my DataFrame")
    message = str(exc.value)
    name = "my DataFrame" if fmt == "frame" else str(source)
    assert message.startswith(f"{name}, {WHERE[fmt]}: the second text is {length:,} characters")
    assert f"the limit is {MAX_TEXT_CHARS:,}" in message
    assert "quot" not in message.split(".")[0]  # about the length, not the CSV quoting


@pytest.mark.parametrize("column", ["base", "hard_negative"])
def test_every_text_column_has_the_limit(tmp_path, column):
    frame = _frame("y" * (MAX_TEXT_CHARS + 1), column)
    with pytest.raises(UserError, match=f"line {BAD + 2}: the "):
        load_pairs(_write(frame, tmp_path / "pairs.csv"))


def test_a_text_at_the_limit_loads(tmp_path):
    text = "z" * MAX_TEXT_CHARS
    pairs, _ = load_pairs(_write(_frame(text), tmp_path / "pairs.csv"))
    assert pairs.texts_b[BAD] == text


def test_csv_field_limit_is_restored_after_reading(tmp_path):
    before = csv.field_size_limit()
    with pytest.raises(UserError):
        load_pairs(_write(_frame("x" * 200_000), tmp_path / "pairs.csv"))
    assert csv.field_size_limit() == before
