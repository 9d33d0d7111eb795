"""Tests for domaintune.data.pairs: strict loading, scales, dedupe, grouped split."""

from __future__ import annotations

import csv
import hashlib
import json
import math
from pathlib import Path

import numpy as np
import pytest

from domaintune.data.pairs import (
    LoadReport,
    PairSet,
    file_sha256,
    load_pairs,
    parse_columns,
    sample_path,
    split_pairs,
    to_angular,
)
from domaintune.errors import UserError
from tests.conftest import shared_path

HEADER = "base,ref,similarity\n"


def _rows(n: int, score: str = "0.75") -> str:
    """n distinct, valid CSV rows."""
    return "".join(f"title {i},other title {i},{score}\n" for i in range(n))


def _write(tmp_path: Path, text: str | bytes, name: str = "pairs.csv") -> Path:
    p = tmp_path / name
    if isinstance(text, bytes):
        p.write_bytes(text)
    else:
        p.write_text(text, encoding="utf-8")
    return p


def _error(path: Path, **kwargs) -> str:
    with pytest.raises(UserError) as exc:
        load_pairs(path, **kwargs)
    msg = str(exc.value)
    assert str(path) in msg, msg  # every error names the file
    return msg


# ----------------------------------------------------------------- validation errors


def test_missing_columns_lists_found_and_suggests_columns(tmp_path: Path) -> None:
    p = _write(tmp_path, "sentence1,sentence2,score\n" + _rows(12))
    msg = _error(p)
    assert "line 1" in msg
    assert "'sentence1'" in msg and "'score'" in msg
    assert "--columns sentence1,sentence2,score" in msg
    pairs, _ = load_pairs(p, columns=("sentence1", "sentence2", "score"))
    assert len(pairs) == 12


@pytest.mark.parametrize("bad_row", ["  ,ref text,0.5\n", "a text,,0.5\n", 'a text,"   ",0.5\n'])
def test_empty_or_whitespace_text(tmp_path: Path, bad_row: str) -> None:
    p = _write(tmp_path, HEADER + _rows(3) + bad_row + _rows(12))
    msg = _error(p)
    assert "line 5" in msg and "empty" in msg


@pytest.mark.parametrize("bad_row", ["a,b,\n", "a,b\n", "a,b,  \n"])
def test_missing_score(tmp_path: Path, bad_row: str) -> None:
    p = _write(tmp_path, HEADER + _rows(1) + bad_row + _rows(12))
    msg = _error(p)
    assert "line 3" in msg and "missing" in msg


def test_non_numeric_score(tmp_path: Path) -> None:
    p = _write(tmp_path, HEADER + _rows(2) + "a,b,high\n")
    msg = _error(p)
    assert "line 4" in msg and "'high'" in msg and "not a number" in msg


@pytest.mark.parametrize(
    ("scale", "value", "allowed", "hint"),
    [
        ("angular", "3", "[0, 1]", "--scale sts"),
        ("angular", "-0.4", "[0, 1]", "--scale cosine"),
        ("sts", "5.5", "[0, 5]", None),
        ("cosine", "1.2", "[-1, 1]", "--scale sts"),
        ("angular", "nan", "[0, 1]", None),
    ],
)
def test_out_of_range_score(
    tmp_path: Path, scale: str, value: str, allowed: str, hint: str | None
) -> None:
    p = _write(tmp_path, HEADER + _rows(4, "0.8") + f"a,b,{value}\n")
    msg = _error(p, scale=scale)
    assert "line 6" in msg and allowed in msg and "--scale" in msg
    if hint:
        assert hint in msg


def test_non_utf8_names_line(tmp_path: Path) -> None:
    data = (
        (HEADER + _rows(3)).encode()
        + "caf\xe9 worker,waiter,0.75\n".encode("latin-1")
        + _rows(10).encode()
    )
    msg = _error(_write(tmp_path, data))
    assert "line 5" in msg and "UTF-8" in msg


def test_utf8_bom_is_accepted(tmp_path: Path) -> None:
    p = _write(tmp_path, ("\ufeff" + HEADER + _rows(10)).encode("utf-8"))
    pairs, _ = load_pairs(p)
    assert len(pairs) == 10


@pytest.mark.parametrize("content", ["", "   \n\n"])
def test_empty_file(tmp_path: Path, content: str) -> None:
    assert "empty" in _error(_write(tmp_path, content))


def test_header_only(tmp_path: Path) -> None:
    assert "no pairs" in _error(_write(tmp_path, HEADER))


def test_too_few_pairs(tmp_path: Path) -> None:
    p = _write(tmp_path, HEADER + _rows(5) + _rows(2))  # 2 duplicates
    msg = _error(p)
    assert "only 5 usable pairs" in msg and "at least 10" in msg
    pairs, report = load_pairs(p, min_pairs=5)
    assert len(pairs) == 5 and report.read == 7


def test_line_numbers_follow_multiline_fields(tmp_path: Path) -> None:
    text = HEADER + 'a,"spans\ntwo lines",0.5\n' + "b,c,0.5\n" + "d,,0.5\n"
    msg = _error(_write(tmp_path, text), min_pairs=1)
    assert "line 5" in msg


def test_unknown_extension_missing_file_and_bad_options(tmp_path: Path) -> None:
    assert ".xlsx" in _error(_write(tmp_path, "x", "pairs.xlsx"))
    assert "not found" in _error(tmp_path / "nope.csv")
    p = _write(tmp_path, HEADER + _rows(12))
    for kwargs in ({"scale": "percent"}, {"dedupe": "keep"}, {"columns": ("a", "a", "b")}):
        with pytest.raises(UserError):
            load_pairs(p, **kwargs)


def test_parse_columns() -> None:
    assert parse_columns(" s1, s2 ,score") == ("s1", "s2", "score")
    for bad in ("a,b", "a,b,c,d", "a,,c", "a,a,b"):
        with pytest.raises(UserError, match="--columns"):
            parse_columns(bad)


# ---------------------------------------------------------------------- score scales


def test_to_angular_hand_computed() -> None:
    # 1 - arccos(c)/pi: arccos(0.5) = pi/3 -> 2/3; arccos(-0.5) = 2pi/3 -> 1/3.
    np.testing.assert_allclose(
        to_angular([-1, -0.5, 0, 0.5, 1], "cosine"), [0, 1 / 3, 0.5, 2 / 3, 1]
    )
    # sts s -> cosine s/5: 0 -> 0.5 (orthogonal), 2.5 -> cos 0.5 -> 2/3, 5 -> 1.
    np.testing.assert_allclose(to_angular([0, 2.5, 5], "sts"), [0.5, 2 / 3, 1])
    np.testing.assert_allclose(
        to_angular([0, 0.25, 0.746817, 1], "angular"), [0, 0.25, 0.746817, 1]
    )
    # sts 4 -> cos 0.8 -> 1 - arccos(0.8)/pi = 1 - 0.643501/pi
    assert to_angular([4], "sts")[0] == pytest.approx(1 - 0.6435011087932844 / math.pi)


@pytest.mark.parametrize(
    ("scale", "raw", "expected"),
    [
        ("angular", ["0.5", "1", "0.75"], [0.5, 1.0, 0.75]),
        ("cosine", ["0", "1", "0.5"], [0.5, 1.0, 2 / 3]),
        ("sts", ["0", "5", "2.5"], [0.5, 1.0, 2 / 3]),
    ],
)
def test_load_converts_scale(
    tmp_path: Path, scale: str, raw: list[str], expected: list[float]
) -> None:
    p = _write(tmp_path, HEADER + "".join(f"x{i},y{i},{s}\n" for i, s in enumerate(raw)))
    pairs, report = load_pairs(p, scale=scale, min_pairs=1)
    assert pairs.scores.dtype == np.float32 and report.scale == scale
    np.testing.assert_allclose(pairs.scores, expected, rtol=1e-6)


# ---------------------------------------------------------------------------- dedupe


def test_exact_duplicates_dropped_and_counted(tmp_path: Path) -> None:
    text = HEADER + _rows(10) + "title 1,other title 1,0.75\n" + "other title 2,title 2,0.750\n"
    pairs, report = load_pairs(_write(tmp_path, text, "job_titles.csv"))
    assert (report.read, report.kept, len(pairs)) == (12, 10, 10)
    assert report.dropped["exact_duplicate"] == 2
    assert report.summary() == "job_titles.csv: read 12 pairs, kept 10 (2 exact duplicates dropped)"


def test_summary_without_drops(tmp_path: Path) -> None:
    _, report = load_pairs(_write(tmp_path, HEADER + _rows(10)))
    assert report.summary() == "pairs.csv: read 10 pairs, kept 10"
    assert isinstance(report, LoadReport)


@pytest.mark.parametrize("second", ["title 3,other title 3,1.0\n", "other title 3,title 3,1.0\n"])
def test_contradictory_duplicates_name_both_lines(tmp_path: Path, second: str) -> None:
    p = _write(tmp_path, HEADER + _rows(10) + second)
    msg = _error(p)
    assert "line 5" in msg and "line 12" in msg and "--dedupe mean" in msg


def test_dedupe_mean_averages(tmp_path: Path) -> None:
    text = HEADER + _rows(10) + "other title 3,title 3,1.0\n" + "title 3,other title 3,0.75\n"
    pairs, report = load_pairs(_write(tmp_path, text), dedupe="mean")
    assert (report.read, report.kept) == (12, 10)
    assert report.dropped == {"exact_duplicate": 1, "contradictory_merged": 1}
    i = pairs.texts_a.index("title 3")
    assert pairs.scores[i] == pytest.approx(0.875)
    assert "1 exact duplicate dropped, 1 contradictory duplicate averaged" in report.summary()


# --------------------------------------------------------------------------- formats


def test_tsv(tmp_path: Path) -> None:
    text = "base\tref\tsimilarity\n" + "".join(f'a "{i}\tb {i}\t0.5\n' for i in range(10))
    pairs, _ = load_pairs(_write(tmp_path, text, "pairs.tsv"))
    assert pairs.texts_a[3] == 'a "3' and len(pairs) == 10
    msg = _error(_write(tmp_path, text + "c\t\t0.5\n", "bad.tsv"))
    assert "line 12" in msg


@pytest.mark.parametrize("name", ["pairs.jsonl", "pairs.json"])
def test_jsonl(tmp_path: Path, name: str) -> None:
    lines = [
        json.dumps({"base": f"Koch {i}", "ref": f"Cook {i}", "similarity": 1}) for i in range(10)
    ]
    p = _write(tmp_path, "\n".join(lines[:5]) + "\n\n" + "\n".join(lines[5:]) + "\n", name)
    pairs, _ = load_pairs(p)
    assert len(pairs) == 10 and pairs.texts_a[0] == "Koch 0"


def test_jsonl_errors_name_line(tmp_path: Path) -> None:
    good = "".join(
        json.dumps({"base": f"a{i}", "ref": f"b{i}", "similarity": 0.5}) + "\n" for i in range(10)
    )
    msg = _error(
        _write(tmp_path, good + '{"base": "x", "text2": "y", "similarity": 0.5}\n', "a.jsonl")
    )
    assert "line 11" in msg and "'text2'" in msg and "--columns" in msg
    assert "line 3" in _error(
        _write(tmp_path, "".join(good.splitlines(True)[:2]) + "{not json\n", "b.jsonl")
    )
    msg = _error(
        _write(tmp_path, good + '{"base": "x", "ref": "y", "similarity": "high"}\n', "c.jsonl")
    )
    assert "line 11" in msg and "not a number" in msg
    msg = _error(
        _write(tmp_path, good + '{"base": "x", "ref": "y", "similarity": null}\n', "d.jsonl")
    )
    assert "line 11" in msg and "missing" in msg
    assert "JSON Lines" in _error(
        _write(tmp_path, "[" + good.replace("\n", ",")[:-1] + "]", "e.json")
    )


def test_parquet(tmp_path: Path) -> None:
    import pandas as pd

    df = pd.DataFrame(
        {
            "base": [f"a{i}" for i in range(10)],
            "ref": [f"b{i}" for i in range(10)],
            "similarity": [0.5] * 10,
        }
    )
    p = tmp_path / "pairs.parquet"
    df.to_parquet(p)
    pairs, _ = load_pairs(p)
    assert len(pairs) == 10
    df.loc[4, "ref"] = "  "
    df.to_parquet(p)
    assert "row index 4" in _error(p)
    df.rename(columns={"ref": "other"}).to_parquet(p)
    assert "--columns" in _error(p)


# ------------------------------------------------------------------- hard negatives

HN_HEADER = "base,ref,similarity,hard_negative\n"
# 12 rows: even rows carry a hard negative (row 4 only whitespace), odd rows leave it empty.
HN_ROWS = [
    (
        f"title {i}",
        f"other title {i}",
        1.0,
        "  " if i == 4 else (f"sibling {i}" if i % 2 == 0 else ""),
    )
    for i in range(12)
]
HN_EXPECTED = [
    "sibling 0",
    "",
    "sibling 2",
    "",
    "",
    "",
    "sibling 6",
    "",
    "sibling 8",
    "",
    "sibling 10",
    "",
]


def _write_hn(tmp_path: Path, fmt: str) -> Path:
    p = tmp_path / f"hn.{fmt}"
    if fmt == "csv":
        p.write_text(
            HN_HEADER + "".join(f'{a},{b},{s},"{h}"\n' for a, b, s, h in HN_ROWS), encoding="utf-8"
        )
    elif fmt == "tsv":
        p.write_text(
            HN_HEADER.replace(",", "\t")
            + "".join(f"{a}\t{b}\t{s}\t{h}\n" for a, b, s, h in HN_ROWS),
            encoding="utf-8",
        )
    elif fmt == "jsonl":  # odd rows omit the key, row 1 has null
        objs = [
            {
                "base": a,
                "ref": b,
                "similarity": s,
                **({"hard_negative": h} if h.strip() or i == 4 else {}),
            }
            for i, (a, b, s, h) in enumerate(HN_ROWS)
        ]
        objs[1]["hard_negative"] = None
        p.write_text("".join(json.dumps(o) + "\n" for o in objs), encoding="utf-8")
    else:
        import pyarrow as pa
        import pyarrow.parquet as pq

        cols = list(zip(*HN_ROWS))
        hard = [None if i == 1 else h for i, h in enumerate(cols[3])]  # a null reads as ""
        pq.write_table(
            pa.table(
                {
                    "base": list(cols[0]),
                    "ref": list(cols[1]),
                    "similarity": list(cols[2]),
                    "hard_negative": hard,
                }
            ),
            p,
        )
    return p


@pytest.mark.parametrize("fmt", ["csv", "tsv", "jsonl", "parquet"])
def test_hard_negative_column_is_read(tmp_path: Path, fmt: str) -> None:
    pairs, report = load_pairs(_write_hn(tmp_path, fmt))
    assert pairs.hard_negatives == HN_EXPECTED  # whitespace-only and missing -> ""
    assert pairs.texts_a[0] == "title 0" and len(pairs) == 12
    assert report.hard_negatives == 5
    assert report.summary() == f"hn.{fmt}: read 12 pairs, kept 12, 5 with hard negatives"


def test_hard_negative_column_absent_is_none(tmp_path: Path) -> None:
    pairs, report = load_pairs(_write(tmp_path, HEADER + _rows(10)))
    assert pairs.hard_negatives is None and report.hard_negatives is None
    lines = [json.dumps({"base": f"a{i}", "ref": f"b{i}", "similarity": 0.5}) for i in range(10)]
    pairs, _ = load_pairs(_write(tmp_path, "\n".join(lines), "p.jsonl"))
    assert pairs.hard_negatives is None
    assert PairSet(["a"], ["b"], np.array([0.5])).hard_negatives is None


def test_hard_negative_column_present_but_empty(tmp_path: Path) -> None:
    pairs, report = load_pairs(
        _write(tmp_path, HN_HEADER + "".join(f"a{i},b{i},0.5,\n" for i in range(10)))
    )
    assert pairs.hard_negatives == [""] * 10
    assert "0 with hard negatives" in report.summary()


def test_hard_negative_named_as_a_pair_column_is_not_extra(tmp_path: Path) -> None:
    text = "base,hard_negative,similarity\n" + "".join(f"a{i},b{i},0.5\n" for i in range(10))
    pairs, _ = load_pairs(_write(tmp_path, text), columns=("base", "hard_negative", "similarity"))
    assert pairs.texts_b[0] == "b0" and pairs.hard_negatives is None


def test_hard_negative_non_text_is_an_error(tmp_path: Path) -> None:
    good = "".join(
        json.dumps({"base": f"a{i}", "ref": f"b{i}", "similarity": 0.5}) + "\n" for i in range(10)
    )
    bad = json.dumps({"base": "x", "ref": "y", "similarity": 0.5, "hard_negative": ["z"]}) + "\n"
    msg = _error(_write(tmp_path, good + bad, "p.jsonl"))
    assert "line 11" in msg and "hard_negative" in msg


def test_hard_negatives_subset_alignment() -> None:
    ps = PairSet(
        ["a", "b", "c"], ["x", "y", "z"], np.array([0.5, 0.75, 1.0]), "src", ["ha", "", "hc"]
    )
    sub = ps.subset([2, 0, 1])
    assert sub.texts_a == ["c", "a", "b"] and sub.hard_negatives == ["hc", "ha", ""]
    assert ps.subset([]).hard_negatives == []
    assert ps.subset(np.array([1])).hard_negatives == [""]
    with pytest.raises(ValueError):
        PairSet(["a"], ["b"], np.array([0.5]), "s", ["h1", "h2"])


def test_hard_negatives_follow_split(tmp_path: Path) -> None:
    pairs, _ = load_pairs(_write_hn(tmp_path, "csv"))
    train, val = split_pairs(pairs, 0.25, seed=1)
    for part in (train, val):
        assert part.hard_negatives is not None and len(part.hard_negatives) == len(part)
        for a, h in zip(part.texts_a, part.hard_negatives):
            assert h == HN_EXPECTED[int(a.split()[-1])]


def test_hard_negative_exact_duplicates_keep_first(tmp_path: Path) -> None:
    text = (
        HN_HEADER
        + "".join(f"a{i},b{i},0.5,h{i}\n" for i in range(10))
        + "a1,b1,0.5,other\n"
        + "b2,a2,0.50,\n"
        + "a3,b3,0.5,\n"
        + "b3,a3,0.5,late\n"
    )
    text = text.replace("a3,b3,0.5,h3\n", "a3,b3,0.5,\n")  # first a3 row has none: stays ""
    pairs, report = load_pairs(_write(tmp_path, text))
    assert report.dropped["exact_duplicate"] == 4 and len(pairs) == 10
    assert pairs.hard_negatives[:4] == ["h0", "h1", "h2", ""]


def test_hard_negative_mean_merge_keeps_first_non_empty(tmp_path: Path) -> None:
    text = (
        HN_HEADER
        + "".join(f"a{i},b{i},0.5,\n" for i in range(10))
        + "b0,a0,1.0,first\n"
        + "a0,b0,0.75,second\n"  # a0: first non-empty of the merged rows
        + "a1,b1,1.0,one\n"  # a1: merged, only one non-empty
        + "a2,b2,0.5,dup\n"
    )  # a2: exact duplicate -> first row's ""
    pairs, report = load_pairs(_write(tmp_path, text), dedupe="mean")
    assert report.dropped == {"exact_duplicate": 1, "contradictory_merged": 3}
    assert pairs.hard_negatives[:3] == ["first", "one", ""]
    assert pairs.scores[0] == pytest.approx((0.5 + 1.0 + 0.75) / 3)
    assert report.hard_negatives == 2


def test_esco_output_loads_with_hard_negatives(tmp_path: Path) -> None:
    from domaintune.data import esco, esco_exports, esco_output

    fix = Path(__file__).resolve().parent / "fixtures" / "esco"
    occupations = esco_exports.read_occupations(
        [fix / "occupations_en.csv", fix / "occupations_de.csv"]
    )
    result = esco.build_pairs(occupations, seed=0)
    out = tmp_path / "esco.csv"
    esco_output.write_pairs(result, out)
    pairs, report = load_pairs(out, min_pairs=1)
    assert pairs.hard_negatives is not None and len(pairs.hard_negatives) == len(pairs) == len(
        result.train
    )
    n_hard = sum(map(bool, pairs.hard_negatives))
    assert 0 < n_hard < len(pairs) and report.hard_negatives == n_hard
    expected = {(r.base, r.ref): r.hard_negative for r in result.train}
    assert all(
        expected[(a, b)] == h for a, b, h in zip(pairs.texts_a, pairs.texts_b, pairs.hard_negatives)
    )
    assert f"{n_hard} with hard negatives" in report.summary()


# ----------------------------------------------------------------- PairSet and split


def test_pairset_subset_and_len() -> None:
    ps = PairSet(["a", "b", "c"], ["x", "y", "z"], np.array([0.5, 0.75, 1.0]), "src")
    assert len(ps) == 3 and ps.scores.dtype == np.float32
    sub = ps.subset([2, 0])
    assert sub.texts_a == ["c", "a"] and sub.texts_b == ["z", "x"] and sub.source == "src"
    np.testing.assert_allclose(sub.scores, [1.0, 0.5])
    assert len(ps.subset([])) == 0
    with pytest.raises(ValueError):
        PairSet(["a"], ["b", "c"], np.array([0.5]))


def _norm_texts(ps: PairSet) -> set[str]:
    return {t.strip().casefold() for t in ps.texts_a + ps.texts_b}


@pytest.mark.parametrize("fraction", [0.1, 0.2, 0.3])
def test_split_sample_no_straddle_and_deterministic(fraction: float) -> None:
    pairs, _ = load_pairs(sample_path())
    train, val = split_pairs(pairs, fraction, seed=7)
    again_train, again_val = split_pairs(pairs, fraction, seed=7)
    assert train.texts_a == again_train.texts_a and val.texts_b == again_val.texts_b
    assert len(train) + len(val) == len(pairs) and len(train) > 0 and len(val) > 0
    assert not _norm_texts(train) & _norm_texts(val)
    assert 0.5 * fraction <= len(val) / len(pairs) <= 1.5 * fraction + 0.01
    seeds = {tuple(split_pairs(pairs, fraction, seed=s)[1].texts_a) for s in range(6)}
    assert len(seeds) > 1  # the seed matters


def test_split_case_insensitive_grouping() -> None:
    a = ["Nurse", "cook", "Welder", "Judge"] * 1
    b = ["Doctor", "Chef", "Machinist", "Lawyer"]
    # " nurse " links pair 4 to pair 0 despite case and whitespace
    ps = PairSet(a + [" nurse ", "Pilot"], b + ["Midwife", "Co-pilot"], np.full(6, 0.75), "t")
    for seed in range(10):
        train, val = split_pairs(ps, 0.3, seed)
        assert not _norm_texts(train) & _norm_texts(val)


def test_split_rejects_bad_fraction_and_giant_component() -> None:
    ps = PairSet(
        [f"t{i}" for i in range(10)], [f"u{i}" for i in range(10)], np.full(10, 0.5), "s.csv"
    )
    for bad in (0, 1, -0.1, 1.5):
        with pytest.raises(UserError, match="between 0 and 1"):
            split_pairs(ps, bad, 0)
    hub = PairSet(["hub"] * 20, [f"t{i}" for i in range(20)], np.full(20, 0.75), "hub.csv")
    with pytest.raises(UserError, match="--val") as exc:
        split_pairs(hub, 0.2, 0)
    assert "hub.csv" in str(exc.value) and "20 of 20" in str(exc.value)
    with pytest.raises(UserError):
        split_pairs(ps.subset([0]), 0.5, 0)


# ------------------------------------------------------------------ bundled sample


def test_bundled_sample_loads_cleanly() -> None:
    p = sample_path()
    assert p.is_file() and p.name == "job_titles.csv"
    pairs, report = load_pairs(p)
    assert report.read >= 330 and report.kept == report.read and not any(report.dropped.values())
    assert {round(float(s), 4) for s in pairs.scores} <= {0.5, 0.6, 0.65, 0.75, 1.0}
    share = {s: float(np.mean(np.isclose(pairs.scores, s))) for s in (1.0, 0.75, 0.5)}
    assert share[1.0] > 0.3 and share[0.75] > 0.2 and share[0.5] > 0.15
    with p.open(encoding="utf-8", newline="") as fh:
        rows = list(csv.reader(fh))
    assert rows[0] == ["base", "ref", "similarity"] and all(len(r) == 3 for r in rows)
    assert any(not t.isascii() for r in rows for t in r[:2])  # has non-English titles


def test_file_sha256(tmp_path: Path) -> None:
    p = _write(tmp_path, HEADER + _rows(3))
    assert file_sha256(p) == hashlib.sha256(p.read_bytes()).hexdigest()
    with pytest.raises(UserError):
        file_sha256(tmp_path / "missing.csv")


def test_seed_training_data_loads() -> None:
    pairs, report = load_pairs(shared_path("seed", "training_data.csv"))
    assert report.read == 98
    # the tutorial file repeats one row ("data scientist", "research data scientist")
    assert len(pairs) == 97 and report.dropped["exact_duplicate"] == 1
    assert all(t and t == t.strip() for t in pairs.texts_a + pairs.texts_b)
