"""Retrieval evaluation: hand-checked ranks, loaders, errors, the CLI, and USE-m3 on ESCO.

The small examples embed texts with a fixed table (text -> vector) written in
the test, so every rank can be checked by hand; the end-to-end runs use real
encoders (the tiny SavedModel, USE-m3) on real files.
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from domaintune.cli import main
from domaintune.data.pairs import PairSet
from domaintune.data.retrieval_sets import RetrievalSet, load_retrieval_set, retrieval_from_pairs
from domaintune.errors import UserError
from domaintune.evaluation import retrieval
from domaintune.evaluation.retrieval import retrieval_metrics
from tests.conftest import shared_path


def _at(degrees: float, norm: float = 1.0) -> list[float]:
    """A 2-d vector at an angle: cosine ranks by angular distance."""
    rad = math.radians(degrees)
    return [norm * math.cos(rad), norm * math.sin(rad)]


def _table_encoder(table: dict[str, list[float]]):
    return lambda texts: np.asarray([table[t] for t in texts], np.float32)


# Corpus A..F every 20 degrees; norms vary to check the embeddings get normalised.
CORPUS = {
    "A": _at(0, 3),
    "B": _at(20),
    "C": _at(40, 0.5),
    "D": _at(60),
    "E": _at(80, 2),
    "F": _at(100),
}
# query: (angle, gold targets) -> corpus by angular distance -> rank of the best gold
QUERIES = {
    "q1": (2, ["A"]),  # A 2                               -> rank 1
    "q2": (45, ["A"]),  # C 5, D 15, B 25, E 35, A 45       -> rank 5
    "q3": (95, ["A"]),  # F 5, E 15, D 35, C 55, B 75, A 95 -> rank 6
    "q4": (28, ["B"]),  # B 8                               -> rank 1
    "q5": (33, ["B"]),  # C 7, B 13                         -> rank 2
    "q6": (57, ["B", "F"]),  # D 3, C 17, E 23, B 37, F 43       -> rank 4 (best gold B)
}
# ranks 1, 5, 6, 1, 2, 4 over 6 queries:
#   recall@1 = 2/6, recall@5 = 5/6 (all but q3),
#   MRR = (1 + 1/5 + 1/6 + 1 + 1/2 + 1/4) / 6 = (187/60) / 6 = 187/360
EXPECTED = {
    "retrieval_r1": 2 / 6,
    "retrieval_r5": 5 / 6,
    "retrieval_mrr": 187 / 360,
    "retrieval_queries": 6,
    "retrieval_corpus": 6,
}


def _hand_set() -> tuple[RetrievalSet, dict[str, list[float]]]:
    rows = [(q, t) for q, (_, golds) in QUERIES.items() for t in golds]
    table = dict(CORPUS, **{q: _at(angle) for q, (angle, _) in QUERIES.items()})
    return RetrievalSet([q for q, _ in rows], [t for _, t in rows], list(CORPUS), "hand"), table


def test_hand_checked_ranks():
    rset, table = _hand_set()
    assert rset.gold()[1][-1] == [1, 5]  # q6 has two gold targets, B and F
    assert retrieval_metrics(_table_encoder(table), rset) == pytest.approx(EXPECTED)


def test_chunking_and_corpus_order_do_not_change_the_result(monkeypatch):
    rset, table = _hand_set()
    monkeypatch.setattr(retrieval, "_SCORE_CELLS", 7)  # one query per score block
    assert retrieval_metrics(_table_encoder(table), rset) == pytest.approx(EXPECTED)
    rset.corpus.reverse()
    out = retrieval_metrics(_table_encoder(table), rset, ks=(1, 2, 6))
    assert out["retrieval_r2"] == pytest.approx(3 / 6)  # ranks 1, 1, 2
    assert out["retrieval_r6"] == 1.0
    assert out["retrieval_mrr"] == pytest.approx(187 / 360)


def test_ties_count_against_the_query():
    # q sits exactly between its gold target and another text: both score 1/sqrt(2).
    table = {"q": [1, 1], "gold": [1, 0], "other": [0, 1], "far": [-1, -1]}
    encode = _table_encoder(table)
    for corpus in (["gold", "other", "far"], ["other", "gold", "far"], ["far", "gold", "other"]):
        out = retrieval_metrics(encode, RetrievalSet(["q"], ["gold"], corpus))
        assert (out["retrieval_r1"], out["retrieval_mrr"]) == (0.0, 0.5), corpus


def test_a_collapsed_encoder_scores_zero():
    # Every text -> one vector: every gold target ties with every other text.
    rset, _ = _hand_set()
    out = retrieval_metrics(lambda texts: np.ones((len(texts), 4), np.float32), rset)
    # rank 6 (one gold target, 5 others) or 5 (q6: two gold targets, 4 others)
    assert (out["retrieval_r1"], out["retrieval_r5"]) == (0.0, pytest.approx(1 / 6))
    assert out["retrieval_mrr"] == pytest.approx((5 / 6 + 1 / 5) / 6)


# --- loaders --------------------------------------------------------------------------

ESCO_HEADER = (
    "conceptType,conceptUri,iscoGroup,preferredLabel,altLabels,hiddenLabels,status,description\n"
)
ESCO_ROWS = [
    # lines 2-6: four alternative labels, one identical to the preferred label (trivial)
    'Occupation,http://x/1,2511,data scientist,"data science specialist\nml scientist\n'
    'data scientist\n  machine learning scientist  ",,released,"Analyses data.\nBuilds models."\n',
    # lines 7-8: 'bus driver' also names occupation 3 (in the corpus: always loses to it)
    'Occupation,http://x/2,8331,bus operator,"bus driver\ncoach driver",,released,Drives.\n',
    "Occupation,http://x/3,8331,bus driver,,,released,No alternative labels.\n",  # line 9
    # lines 10-11: 'coach driver' belongs to two occupations: two gold targets
    'Occupation,http://x/4,8331,coach chauffeur,"coach driver\r\ntour driver",,released,\n',
    "\n",
]


def _write(tmp_path: Path, content: str | bytes, name: str = "set.csv") -> Path:
    path = tmp_path / name
    path.write_bytes(content if isinstance(content, bytes) else content.encode("utf-8"))
    return path


def test_esco_export(tmp_path):
    rset = load_retrieval_set(_write(tmp_path, ESCO_HEADER + "".join(ESCO_ROWS)))
    assert rset.corpus == ["data scientist", "bus operator", "bus driver", "coach chauffeur"]
    assert list(zip(rset.queries, rset.targets)) == [
        ("data science specialist", "data scientist"),
        ("ml scientist", "data scientist"),
        ("machine learning scientist", "data scientist"),
        ("coach driver", "bus operator"),
        ("coach driver", "coach chauffeur"),
        ("tour driver", "coach chauffeur"),
    ]
    assert rset.skipped == {"trivial": 1, "in_corpus": 1, "duplicate": 0}
    queries, golds = rset.gold()
    assert len(queries) == 5 and golds[3] == [1, 3]


def test_query_target_csv(tmp_path):
    text = (
        "target,query,note\nnurse,registered nurse,x\nnurse,RN,\nwelder,welder,trivial\n"
        'welder,"arc welder",\nnurse,RN,duplicate row\n'
    )
    rset = load_retrieval_set(_write(tmp_path, "\ufeff" + text))  # a BOM is fine
    assert rset.corpus == ["nurse", "welder"]
    assert rset.queries == ["registered nurse", "RN", "arc welder"]
    assert rset.targets == ["nurse", "nurse", "welder"]
    assert rset.skipped == {"trivial": 1, "in_corpus": 0, "duplicate": 1}


@pytest.mark.parametrize(
    "content, needles",
    [
        (None, ["file not found"]),
        (" \n\n", ["empty"]),
        ("base,ref,similarity\na,b,1.0\n", ["line 1", "neither", "query,target"]),
        ("query,target\n", ["no queries", "query,target rows"]),
        ("query,target\nnurse,nurse\nwelder,welder\n", ["no queries", "2 found verbatim"]),
        ("query,target\nRN,nurse\nwelder,\n", ["line 3", "target is empty"]),
        ("query,target\nRN,nurse\n,welder\n", ["line 3", "query is empty"]),
        (
            "query,target\nRN,nurse\nregistered nurse,nurse\n",
            ["only one distinct target", "at least 2"],
        ),
        (b"query,target\nRN,nurse\nCaf\xe9 owner,caf\xe9 manager\n", ["line 3", "UTF-8", "0xe9"]),
        (
            ESCO_HEADER + ESCO_ROWS[0] + 'Occupation,u,1,"",other,,released,\n',
            ["line 7", "preferredLabel is empty"],
        ),
        (ESCO_HEADER, ["no queries", "altLabels"]),
    ],
    ids=[
        "missing",
        "empty",
        "neither",
        "header-only",
        "all-trivial",
        "no-target",
        "no-query",
        "one-target",
        "not-utf8",
        "esco-no-label",
        "esco-header-only",
    ],
)
def test_user_errors(tmp_path, content, needles):
    path = tmp_path / "set.csv" if content is None else _write(tmp_path, content)
    with pytest.raises(UserError) as err:
        load_retrieval_set(path)
    message = str(err.value)
    for needle in [str(path), *needles]:
        assert needle in message, message


def test_retrieval_from_pairs():
    pairs = PairSet(
        [
            "ml scientist",
            "data science specialist",
            "data scientist",
            "ml scientist",
            "nurse",
            "RN",
        ],
        ["data scientist", "data scientist", "data scientist", "ml engineer", "welder", "nurse"],
        [1.0, 1.0, 1.0, 1.0, 0.5, 0.75],
        source="toy.csv",
    )
    rset = retrieval_from_pairs(pairs)
    assert rset.corpus == ["data scientist", "ml engineer"]  # refs of the 1.0 pairs
    assert rset.queries == ["ml scientist", "ml scientist", "data science specialist"]
    assert rset.targets == ["data scientist", "ml engineer", "data scientist"]
    assert rset.skipped["trivial"] == 1 and rset.source == "toy.csv"
    # An explicit threshold takes every pair at or above it.
    lower = retrieval_from_pairs(pairs, top_score=0.75)
    assert lower.corpus == ["data scientist", "ml engineer", "nurse"]
    assert ("RN", "nurse") in zip(lower.queries, lower.targets)
    # No 'same concept' pairs, or a single target: nothing to retrieve.
    assert retrieval_from_pairs(pairs.subset([4, 5])) is None  # top score 0.75
    assert retrieval_from_pairs(pairs.subset([0, 1, 4])) is None  # one target only
    assert retrieval_from_pairs(pairs.subset([])) is None


# --- real encoders ------------------------------------------------------------------------


def test_cli_evaluate_retrieval(tiny_model_dir, tmp_path):
    fixture = _write(tmp_path, ESCO_HEADER + "".join(ESCO_ROWS))
    result = CliRunner().invoke(
        main,
        [
            "evaluate",
            "--retrieval",
            str(fixture),
            "--model",
            str(tiny_model_dir),
            "--sts",
            "none",
            "--json",
        ],
        catch_exceptions=False,
    )
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    for key in ("retrieval_r1", "retrieval_r5", "retrieval_mrr"):
        assert 0.0 <= out[key] <= 1.0, out
    assert out["retrieval_r5"] == 1.0  # the corpus holds only 4 texts
    assert (out["retrieval_queries"], out["retrieval_corpus"]) == (5, 4)
    assert out["retrieval_source"] == str(fixture)


def test_cli_reads_the_retrieval_file_before_the_model(tmp_path):
    bad = _write(tmp_path, "base,ref,similarity\na,b,1\n")
    result = CliRunner().invoke(
        main,
        [
            "evaluate",
            "--retrieval",
            str(bad),
            "--model",
            str(tmp_path / "no-model"),
            "--sts",
            "none",
        ],
    )
    assert result.exit_code == 1 and "Traceback" not in result.output
    errors = [line for line in result.output.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1 and str(bad) in errors[0] and "neither" in errors[0], result.output


def test_use_m3_on_the_esco_export(use_m3_layer):
    from domaintune.models.encoding import batched_encoder

    rset = load_retrieval_set(shared_path("esco", "occupations_en.csv"))
    start = time.perf_counter()
    out = retrieval_metrics(batched_encoder(use_m3_layer), rset)
    print(f"\nUSE-m3 on ESCO: {out} ({time.perf_counter() - start:.1f}s, skipped {rset.skipped})")
    assert 0.3 < out["retrieval_r1"] < 0.95
    assert out["retrieval_r1"] < out["retrieval_r5"] and 0 < out["retrieval_mrr"] < 1
    assert out["retrieval_queries"] > 5 * out["retrieval_corpus"] > 10_000
