"""The optional ``concept`` column: read from every format and from DataFrames,
kept through dedupe, subset and split, and written by ``data esco``."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from domaintune.data.pair_set import PairSet
from domaintune.data.pairs import frame_csv, load_pairs, split_pairs
from domaintune.errors import UserError

FIX = Path(__file__).resolve().parent / "fixtures" / "esco"
# 12 pairs: even ones same-concept (two per concept), odd ones unrelated (no concept).
CONCEPTS = [f"http://example.org/c{i // 4}" if i % 2 == 0 else "" for i in range(12)]
FRAME = pd.DataFrame(
    {
        "base": [f"title {i}" for i in range(12)],
        "ref": [f"alias {i}" for i in range(12)],
        "similarity": [1.0 if i % 2 == 0 else 0.5 for i in range(12)],
        "hard_negative": [f"sibling {i}" if i % 3 == 0 else "" for i in range(12)],
        "concept": CONCEPTS,
    }
)


def _write(tmp_path: Path, fmt: str, frame: pd.DataFrame = FRAME) -> Path:
    path = tmp_path / f"pairs.{fmt}"
    if fmt == "csv":
        frame.to_csv(path, index=False)
    elif fmt == "tsv":
        frame.to_csv(path, index=False, sep="\t")
    elif fmt == "jsonl":
        frame.to_json(path, orient="records", lines=True, force_ascii=False)
    else:
        frame.to_parquet(path)
    return path


@pytest.mark.parametrize("fmt", ["csv", "tsv", "jsonl", "parquet"])
def test_concept_column_is_read_from_every_format(tmp_path, fmt):
    pairs, report = load_pairs(_write(tmp_path, fmt))
    assert pairs.concepts == CONCEPTS
    assert pairs.hard_negatives == list(FRAME["hard_negative"])  # both optional columns
    assert report.concepts == 6 and "6 with a concept" in report.summary()


def test_concept_column_from_a_dataframe_and_in_its_csv_copy(tmp_path):
    pairs, report = load_pairs(FRAME, name="train DataFrame")
    assert pairs.concepts == CONCEPTS and report.concepts == 6
    # The CSV copy a search keeps of a DataFrame (and hashes) has the column too.
    copy = tmp_path / "copy.csv"
    copy.write_text(frame_csv(FRAME), encoding="utf-8")
    assert load_pairs(copy)[0].concepts == CONCEPTS


def test_concept_absent_is_none(tmp_path):
    pairs, report = load_pairs(_write(tmp_path, "csv", FRAME.drop(columns="concept")))
    assert pairs.concepts is None and report.concepts is None
    assert "concept" not in report.summary()
    assert PairSet(["a"], ["b"], np.array([0.5])).concepts is None


def test_concept_ids_of_any_format_become_text(tmp_path):
    rows = [{"base": f"t{i}", "ref": f"u{i}", "similarity": 1.0} for i in range(10)]
    rows[0]["concept"], rows[1]["concept"], rows[2]["concept"] = 42, 7.0, "  c3 "
    path = tmp_path / "ids.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    assert load_pairs(path)[0].concepts[:4] == ["42", "7", "c3", ""]
    # An int column with gaps arrives from Parquet as floats.
    frame = pd.DataFrame(rows[3:] + rows[:3]).assign(concept=[None] * 7 + [42, None, 3])
    assert load_pairs(_write(tmp_path, "parquet", frame))[0].concepts[7:] == ["42", "", "3"]


def test_a_concept_that_is_not_a_text_is_an_error(tmp_path):
    rows = [{"base": f"t{i}", "ref": f"u{i}", "similarity": 1.0} for i in range(10)]
    rows[4]["concept"] = ["c1", "c2"]
    path = tmp_path / "bad.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    with pytest.raises(UserError, match=r"line 5: concept \['c1', 'c2'\] is not a text"):
        load_pairs(path)


def test_concepts_follow_dedupe_subset_and_split(tmp_path):
    dup = pd.concat([FRAME, FRAME.iloc[[0]].assign(concept="other")])  # exact duplicate
    pairs, _ = load_pairs(dup)
    assert len(pairs) == 12 and pairs.concepts == CONCEPTS  # the first row's concept
    merged = pd.concat([FRAME.assign(concept=""), FRAME.iloc[[2]].assign(similarity=0.9)])
    pairs, _ = load_pairs(merged, dedupe="mean")
    assert pairs.concepts[2] == CONCEPTS[2]  # the first non-empty one
    pairs, _ = load_pairs(FRAME)
    assert pairs.subset([3, 0, 2]).concepts == [CONCEPTS[3], CONCEPTS[0], CONCEPTS[2]]
    for part in split_pairs(pairs, 0.25, seed=0):
        assert [CONCEPTS[int(a.split()[1])] for a in part.texts_a] == part.concepts


def test_esco_output_has_the_occupation_of_same_concept_pairs(tmp_path):
    from domaintune.data import esco, esco_exports, esco_output

    occupations = esco_exports.read_occupations(
        [FIX / "occupations_en.csv", FIX / "occupations_de.csv"]
    )
    result = esco.build_pairs(occupations, seed=0)
    out = tmp_path / "esco.csv"
    esco_output.write_pairs(result, out)
    pairs, _ = load_pairs(out, min_pairs=1)
    assert len(pairs) == len(result.train)
    with_concept = set()
    for i, row in enumerate(result.train):
        assert (pairs.texts_a[i], pairs.texts_b[i]) == (row.base, row.ref)
        same = row.pair_type in esco.SAME_CONCEPT_TYPES
        assert pairs.concepts[i] == (row.base_uri if same else "")
        if pairs.concepts[i]:
            with_concept.add(row.pair_type)
    assert with_concept == {"alt", "description", "cross_lang", "cross_lang_alt"}
