"""Tests for domaintune.data.esco (with esco_exports, esco_output) and ``domaintune data esco``
(fixtures written for this project)."""

from __future__ import annotations

import csv
import os
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from domaintune import _io
from domaintune.cli import main
from domaintune.data import esco, esco_output
from domaintune.data.esco import PairScores, build_pairs, first_sentence
from domaintune.data.esco_exports import read_isco_groups, read_occupations
from domaintune.data.esco_output import summary, write_pairs
from domaintune.data.pairs import load_pairs
from domaintune.errors import UserError
from tests.conftest import shared_path

FIX = Path(__file__).resolve().parent / "fixtures" / "esco"
EN, DE, ISCO = FIX / "occupations_en.csv", FIX / "occupations_de.csv", FIX / "ISCOGroups_en.csv"
URI = "http://example.org/esco-fixture/occupation/o{:02d}".format


def _set(rows) -> set[tuple]:
    """Orientation-free view of rows: ({a, b}, score, type, lang)."""
    return {
        (min(r.base, r.ref), max(r.base, r.ref), r.similarity, r.pair_type, r.lang) for r in rows
    }


def _cli(*args: str):
    return CliRunner().invoke(main, ["data", "esco", *map(str, args)])


@pytest.fixture(scope="module")
def en_de():
    return read_occupations([EN, DE])


# -- reading -----------------------------------------------------------------------------------


def test_read_joins_languages_on_uri(en_de):
    assert len(en_de) == 12 and [o.uri for o in en_de] == sorted(o.uri for o in en_de)
    first = en_de[0]
    assert first.uri == URI(1) and first.isco_group == "2512" and list(first.labels) == ["de", "en"]
    assert first.labels["en"].alt == ("programmer", "software engineer", "application developer")
    assert first.labels["de"].preferred == "Softwareentwickler/Softwareentwicklerin"
    assert list(en_de[11].labels) == ["en"]  # o12 has no German row
    assert en_de[11].labels["en"].description == ""


def test_language_fallback_for_other_file_names(tmp_path):
    a, b = tmp_path / "export.csv", tmp_path / "other.csv"
    a.write_bytes(EN.read_bytes())
    b.write_bytes(DE.read_bytes())
    occs = read_occupations([a, b])
    assert list(occs[0].labels) == ["xx", "xx2"]


def test_isco_groups():
    lang, groups = read_isco_groups(ISCO)
    assert lang == "en" and groups["2512"].label == "Software developers" and len(groups) == 15


def test_first_sentence():
    assert first_sentence("Cooks cook. They plan menus.") == "Cooks cook."
    assert (
        first_sentence("Analysts use e.g. tools and\n  plans! Then more.")
        == "Analysts use e.g. tools and plans!"
    )
    long = "word " * 100
    cut = first_sentence(long)
    assert len(cut) <= 200 and long.startswith(cut) and cut.endswith("word")


# -- exact pairs --------------------------------------------------------------------------------

EXPECTED_SMALL = {
    ("programmer", "software developer", 1.0, "alt", "en"),
    ("web developer", "web programmer", 1.0, "alt", "en"),
    ("mobile app developer", "mobile application developer", 1.0, "alt", "en"),
    ("ICT systems analyst", "systems analyst", 1.0, "alt", "en"),
    ("ICT business analyst", "business analyst", 1.0, "alt", "en"),
    ("database architect", "database designer", 1.0, "alt", "en"),
    ("cook", "kitchen cook", 1.0, "alt", "en"),
    ("grill chef", "grill cook", 1.0, "alt", "en"),
    ("fish cook", "poissonnier", 1.0, "alt", "en"),
    ("carpenter", "woodworker", 1.0, "alt", "en"),
    ("bench joiner", "joiner", 1.0, "alt", "en"),
    ("roof carpenter", "roof framer", 1.0, "alt", "en"),
    ("software developer", "web developer", 0.75, "unit_group", "en"),
    ("mobile app developer", "software developer", 0.75, "unit_group", "en"),
    ("mobile app developer", "web developer", 0.75, "unit_group", "en"),
    ("ICT business analyst", "systems analyst", 0.75, "unit_group", "en"),
    ("cook", "grill cook", 0.75, "unit_group", "en"),
    ("cook", "fish cook", 0.75, "unit_group", "en"),
    ("fish cook", "grill cook", 0.75, "unit_group", "en"),
    ("carpenter", "joiner", 0.75, "unit_group", "en"),
    ("carpenter", "roof carpenter", 0.75, "unit_group", "en"),
    ("joiner", "roof carpenter", 0.75, "unit_group", "en"),
}


def test_exact_pairs_small_config():
    res = build_pairs(
        read_occupations([EN]),
        seed=0,
        negatives_per_positive=0,
        include_descriptions=False,
        max_alt_labels=1,
    )
    assert _set(res.train) == EXPECTED_SMALL and len(res.train) == len(EXPECTED_SMALL)
    assert res.holdout == [] and res.stats["dropped_mixed"] == 0


def test_graded_groups_and_custom_scores():
    scores = PairScores(unit_group=0.8, minor_group=0.7, sub_major_group=0.62)
    res = build_pairs(
        read_occupations([EN]),
        seed=0,
        scores=scores,
        negatives_per_positive=0,
        include_descriptions=False,
        max_alt_labels=0,
        graded_groups=True,
    )
    got = _set(res.train)
    minor = {r for r in got if r[3] == "minor_group"}
    sub = {r for r in got if r[3] == "sub_major_group"}
    # 251 = 2511 (2 occupations) + 2512 (3): every cross pair; 25 = 251 (5) + 252 (1).
    assert minor == {
        (min(a, b), max(a, b), 0.7, "minor_group", "en")
        for a in ("software developer", "web developer", "mobile app developer")
        for b in ("systems analyst", "ICT business analyst")
    }
    assert sub == {
        (min(a, "database designer"), max(a, "database designer"), 0.62, "sub_major_group", "en")
        for a in (
            "software developer",
            "web developer",
            "mobile app developer",
            "systems analyst",
            "ICT business analyst",
        )
    }
    assert {r[2] for r in got if r[3] == "unit_group"} == {0.8}


def test_descriptions_first_sentence_and_truncation():
    res = build_pairs(read_occupations([EN]), seed=0, negatives_per_positive=0, max_alt_labels=0)
    desc = {r.base: r.ref for r in res.train if r.pair_type == "description"}
    assert len(desc) == 11  # o12 has no description
    assert desc["software developer"] == (
        "Software developers implement or program all kinds of software "
        "systems based on specifications and designs, e.g. desktop tools."
    )
    assert desc["fish cook"] == "Fish cooks prepare fish and seafood dishes!"
    long = desc["ICT business analyst"]
    assert len(long) <= 200 and long.startswith(
        "ICT business analysts analyse the business processes"
    )
    assert not long.endswith(" ") and "They manage" not in long


def test_shared_label_conflict_keeps_highest_score():
    # "cook" is o07's preferred label and an alt label of its sibling o08 (grill cook).
    res = build_pairs(
        read_occupations([EN]), seed=0, negatives_per_positive=0, include_descriptions=False
    )
    rows = [r for r in res.train if {r.base, r.ref} == {"grill cook", "cook"}]
    assert len(rows) == 1 and rows[0].similarity == 1.0 and rows[0].pair_type == "alt"
    assert res.stats["conflicts"] >= 1


def test_cross_language_pairs(en_de):
    res = build_pairs(
        en_de,
        seed=0,
        negatives_per_positive=0,
        include_descriptions=False,
        max_alt_labels=1,
        cross_lang_alt_labels=1,
    )
    cross = [r for r in res.train if r.pair_type == "cross_lang"]
    assert (
        len(cross) == 11
        and {r.similarity for r in cross} == {1.0}
        and {r.lang for r in cross} == {"de-en"}
    )
    assert ("Koch/Köchin", "cook", 1.0, "cross_lang", "de-en") in _set(cross)
    alt = _set(r for r in res.train if r.pair_type == "cross_lang_alt")
    assert (
        "Programmierer/Programmiererin",
        "software developer",
        1.0,
        "cross_lang_alt",
        "de-en",
    ) in alt
    assert (
        "Softwareentwickler/Softwareentwicklerin",
        "programmer",
        1.0,
        "cross_lang_alt",
        "de-en",
    ) in alt
    assert len(alt) == 22
    assert {r.lang for r in res.train if r.pair_type == "alt"} == {"de", "en"}


def test_negatives_come_from_other_major_groups(en_de):
    by_uri = {o.uri: o for o in en_de}
    majors_of_text: dict[str, set[str]] = {}
    for o in en_de:
        for lab in o.labels.values():
            for t in (lab.preferred, *lab.alt):
                majors_of_text.setdefault(t, set()).add(o.isco_group[0])
    res = build_pairs(en_de, seed=3, negatives_per_positive=1, graded_groups=True)
    neg = [r for r in res.train if r.pair_type == "negative"]
    pos = [r for r in res.train if r.pair_type != "negative"]
    assert res.stats["negatives_short"] == 0 and len(neg) == len(pos)
    # Two per positive exhaust the few labels of other major groups for some bases; those are
    # counted.
    res2 = build_pairs(en_de, seed=3, negatives_per_positive=2, graded_groups=True)
    neg2 = [r for r in res2.train if r.pair_type == "negative"]
    assert len(neg2) == 2 * len(pos) - res2.stats["negatives_short"] and res2.stats[
        "negatives_short"
    ] < len(pos)
    neg += neg2
    assert {r.similarity for r in neg} == {0.5}
    for r in neg:
        base_major = by_uri[r.base_uri].isco_group[0]
        assert by_uri[r.ref_uri].isco_group[0] != base_major
        assert base_major not in majors_of_text[r.ref]  # no shared label sneaks in
        assert r.hard_negative == ""
    assert {r.lang for r in neg} == {"de", "en", "de-en"}


def test_hard_negatives_are_unit_group_siblings(en_de):
    by_uri = {o.uri: o for o in en_de}
    res = build_pairs(en_de, seed=0, negatives_per_positive=0)
    for r in res.train:
        if r.pair_type not in esco.SAME_CONCEPT_TYPES or by_uri[r.base_uri].isco_group == "2521":
            assert r.hard_negative == ""
        else:
            sib = by_uri[r.hard_negative_uri]
            assert sib.uri != r.base_uri and sib.isco_group == by_uri[r.base_uri].isco_group
            lang = r.ref_lang or r.lang
            assert r.hard_negative == sib.labels[lang].preferred


def test_group_labels_from_isco(en_de):
    res = build_pairs(en_de, seed=0, negatives_per_positive=0, isco_groups=read_isco_groups(ISCO))
    got = _set(r for r in res.train if r.pair_type == "group_label")
    assert len(got) == 12 and ("Cooks", "grill cook", 0.65, "group_label", "en") in got


# -- holdout, determinism, output ---------------------------------------------------------------


def test_holdout_is_occupation_disjoint(en_de):
    res = build_pairs(en_de, seed=5, holdout_fraction=0.25, graded_groups=True)
    held = res.heldout_uris
    occ_uris = {o.uri for o in en_de}
    assert len(held) == 3 and res.stats["dropped_mixed"] > 0 and res.holdout
    for rows, inside in ((res.train, False), (res.holdout, True)):
        for r in rows:
            for u in (r.base_uri, r.ref_uri, r.hard_negative_uri):
                if u in occ_uris:
                    assert (u in held) is inside
    again = build_pairs(en_de, seed=5, holdout_fraction=0.25, graded_groups=True)
    assert again.heldout_uris == held and again.train == res.train


def test_cli_writes_loadable_deterministic_files(tmp_path):
    def run(seed: int, name: str) -> tuple[bytes, bytes]:
        out = tmp_path / f"{name}.csv"
        res = _cli(
            "--occupations",
            EN,
            "--occupations",
            DE,
            "--isco",
            ISCO,
            "-o",
            out,
            "--seed",
            seed,
            "--holdout-fraction",
            "0.25",
            "--graded-groups",
        )
        assert res.exit_code == 0, res.output
        assert "pairs mixing held-out and training occupations dropped" in res.output
        return out.read_bytes(), (tmp_path / f"{name}.holdout.csv").read_bytes()

    a, b, c = run(1, "a"), run(1, "b"), run(2, "c")
    assert a == b and a != c
    train, report = load_pairs(tmp_path / "a.csv")
    assert report.kept == report.read == len(train)
    load_pairs(tmp_path / "a.holdout.csv", min_pairs=1)
    with (tmp_path / "a.csv").open(encoding="utf-8", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert list(rows[0]) == list(esco_output.OUTPUT_COLUMNS)
    assert {r["pair_type"] for r in rows} >= {"alt", "description", "cross_lang", "negative"}
    assert not list(tmp_path.glob(".*.tmp"))


def test_cli_outputs_are_readable_by_all(tmp_path):
    # Pair files are shared (a search's workers, other users): 0644, not mkstemp's 0600.
    out = tmp_path / "p.csv"
    res = _cli("--occupations", EN, "-o", out, "--holdout-fraction", "0.25")
    assert res.exit_code == 0, res.output
    for path in (out, tmp_path / "p.holdout.csv"):
        assert path.stat().st_mode & 0o777 == 0o644, path


def test_cli_score_options_and_no_descriptions(tmp_path):
    out = tmp_path / "p.csv"
    res = _cli(
        "--occupations",
        EN,
        "-o",
        out,
        "--same-group-score",
        "0.8",
        "--negative-score",
        "0.4",
        "--no-descriptions",
        "--negatives-per-positive",
        "1",
    )
    assert res.exit_code == 0, res.output
    with out.open(encoding="utf-8", newline="") as fh:
        rows = list(csv.DictReader(fh))
    scores = {
        r["pair_type"]: {r2["similarity"] for r2 in rows if r2["pair_type"] == r["pair_type"]}
        for r in rows
    }
    assert (
        scores["unit_group"] == {"0.8"}
        and scores["negative"] == {"0.4"}
        and "description" not in scores
    )


def test_bad_scores_and_options(tmp_path):
    with pytest.raises(UserError, match="not increase as relations get looser"):
        PairScores(unit_group=0.4)
    res = _cli("--occupations", EN, "-o", tmp_path / "p.csv", "--same-group-score", "0.3")
    assert res.exit_code == 1 and "not increase" in res.output and "unit_group=0.3" in res.output
    res = _cli("--occupations", EN, "-o", tmp_path / "p.tsv")
    assert res.exit_code == 1 and "must end in .csv" in res.output
    res = _cli(
        "--occupations", EN, "-o", tmp_path / "p.csv", "--holdout-output", tmp_path / "h.csv"
    )
    assert res.exit_code == 1 and "--holdout-fraction" in res.output
    assert not list(tmp_path.iterdir())


def test_write_is_atomic(tmp_path, monkeypatch):
    out = tmp_path / "p.csv"
    out.write_text("old\n")
    res = build_pairs(read_occupations([EN]), seed=0)

    def fail(*_a, **_k):
        raise OSError(28, "No space left on device", str(out))

    monkeypatch.setattr(_io.os, "replace", fail)
    with pytest.raises(UserError, match="No space left"):
        write_pairs(res, out)
    assert out.read_text() == "old\n" and sorted(p.name for p in tmp_path.iterdir()) == ["p.csv"]


# -- validation errors (nothing written) ---------------------------------------------------------


def _header_and(rows: str, drop: tuple[str, ...] = ()) -> str:
    cols = [
        c
        for c in [
            "conceptType",
            "conceptUri",
            "iscoGroup",
            "preferredLabel",
            "altLabels",
            "hiddenLabels",
            "status",
            "description",
        ]
        if c not in drop
    ]
    return ",".join(cols) + "\r\n" + rows


@pytest.mark.parametrize(
    "content, expected",
    [
        (
            _header_and(
                "Occupation,u1,2512,developer\r\n",
                drop=("iscoGroup", "description", "hiddenLabels", "status", "altLabels"),
            ),
            ["occupations_en.csv", "line 1", "missing column(s) iscoGroup, altLabels, description"],
        ),
        (b"", ["occupations_en.csv", "the file is empty"]),
        (b" \r\n", ["occupations_en.csv", "the file is empty"]),
        (_header_and(""), ["only a header"]),
        (
            _header_and(
                'Occupation,u1,2512,dev,"a\nb",,released,ok\r\nOccupation,u2,25X2,cook,,,released,x\r\n'
            ),
            ["line 4", "iscoGroup '25X2'"],
        ),
        (
            _header_and(
                "Occupation,u1,2512,dev,,,released,x\r\nOccupation,u1,2512,dev2,,,released,x\r\n"
            ),
            ["line 3", "u1 already appears above"],
        ),
        (_header_and("Occupation,u1,2512,,,,released,x\r\n"), ["line 2", "empty preferredLabel"]),
        (
            _header_and("Occupation,u1,2512,dev,,released\r\n"),
            ["line 2", "6 fields where the header has 8"],
        ),
        (
            _header_and(
                'Occupation,u1,2512,dev,"a\nb",,released,ok\r\nOccupation,u2,2512,caf\xe9,,,released,x\r\n'
            )
            .encode("utf-8")
            .replace("caf\xe9".encode(), b"caf\xe9"),
            ["line 4", "not valid UTF-8", "0xe9"],
        ),
    ],
)
def test_validation_errors_name_file_and_line(tmp_path, content, expected):
    src = tmp_path / "occupations_en.csv"
    src.write_bytes(content if isinstance(content, bytes) else content.encode("utf-8"))
    out = tmp_path / "out" / "pairs.csv"
    out.parent.mkdir()
    res = _cli("--occupations", src, "-o", out)
    assert res.exit_code == 1
    assert res.output.startswith("Error: ")
    for part in expected:
        assert part in res.output, res.output
    assert not any(out.parent.iterdir())  # nothing written, no temp file


def test_more_read_errors(tmp_path):
    with pytest.raises(UserError, match="cannot read"):
        read_occupations([tmp_path / "occupations_en.csv"])
    with pytest.raises(UserError, match="also given by"):
        read_occupations([EN, EN])
    clash = tmp_path / "occupations_fr.csv"
    clash.write_text(
        DE.read_text(encoding="utf-8").replace(",2512,", ",2519,", 1), encoding="utf-8"
    )
    with pytest.raises(UserError, match="iscoGroup 2519 but 2512"):
        read_occupations([EN, clash])
    isco = tmp_path / "ISCOGroups_en.csv"
    isco.write_text(
        "conceptType,conceptUri,code,preferredLabel\r\nISCOGroup,c,2512,Devs\r\n", encoding="utf-8"
    )
    with pytest.raises(UserError, match="missing from the ISCO groups file"):
        build_pairs(read_occupations([EN]), seed=0, isco_groups=read_isco_groups(isco))
    with pytest.raises(UserError, match="at least one on each side"):
        build_pairs(read_occupations([EN]), seed=0, holdout_fraction=0.01)


# -- the real ESCO export (../shared/data/esco) --------------------------------------------------


def test_real_esco_export(tmp_path):
    occ_path = shared_path("esco", "occupations_en.csv")
    isco_path = shared_path("esco", "ISCOGroups_en.csv")
    t0 = time.perf_counter()
    occs = read_occupations([occ_path])
    assert len(occs) == 2353
    res = build_pairs(
        occs,
        seed=0,
        holdout_fraction=0.2,
        graded_groups=True,
        isco_groups=read_isco_groups(isco_path),
    )
    for part in (res.train, res.holdout):
        counts = {
            t: sum(r.pair_type == t for r in part)
            for t in (
                "alt",
                "description",
                "unit_group",
                "minor_group",
                "sub_major_group",
                "group_label",
                "negative",
            )
        }
        assert all(counts.values()), counts
    assert len(res.heldout_uris) == round(0.2 * 2353) and res.stats["dropped_mixed"] > 0
    occ_uris = {o.uri for o in occs}
    train_uris = {
        u for r in res.train for u in (r.base_uri, r.ref_uri, r.hard_negative_uri) if u in occ_uris
    }
    hold_uris = {
        u
        for r in res.holdout
        for u in (r.base_uri, r.ref_uri, r.hard_negative_uri)
        if u in occ_uris
    }
    assert not train_uris & hold_uris and hold_uris <= res.heldout_uris
    out, hold = tmp_path / "esco.csv", tmp_path / "esco.holdout.csv"
    write_pairs(res, out, hold)
    assert load_pairs(out)[1].kept == len(res.train) and load_pairs(hold)[1].kept == len(
        res.holdout
    )
    assert "holdout: 471 of 2,353 occupations" in summary(res)
    assert time.perf_counter() - t0 < 30
    assert os.path.getsize(out) > 0
