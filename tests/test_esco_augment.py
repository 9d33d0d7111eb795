"""``data esco --augment``: surface variants of the TRAINING occupations' labels,
counted, deterministic, never of held-out occupations."""

from __future__ import annotations

import csv
from collections import Counter
from pathlib import Path

import pytest
from click.testing import CliRunner

from domaintune.cli import main
from domaintune.data.augment import KINDS
from domaintune.data.esco import build_pairs
from domaintune.data.esco_exports import read_occupations
from domaintune.data.pairs import load_pairs

FIX = Path(__file__).resolve().parent / "fixtures" / "esco"
EN, DE = FIX / "occupations_en.csv", FIX / "occupations_de.csv"


@pytest.fixture(scope="module")
def occupations():
    return read_occupations([EN, DE])


def _labels(o, lang):
    return (o.labels[lang].preferred, *o.labels[lang].alt)


def test_variants_of_training_labels_only_counted_and_typed(occupations):
    result = build_pairs(occupations, seed=3, holdout_fraction=0.3, augment=KINDS)
    assert result.heldout_uris
    aug = [r for r in result.train if r.pair_type.startswith("aug_")]
    assert not [r for r in result.holdout if r.pair_type.startswith("aug_")]
    assert Counter(r.pair_type.removeprefix("aug_") for r in aug) == result.augmented
    assert set(result.augmented) == set(KINDS) and result.augmented["gender"] > 0
    by_uri = {o.uri: o for o in occupations}
    all_labels = {t for o in occupations for lang in o.labels for t in _labels(o, lang)}
    for r in aug:
        assert r.base_uri == r.ref_uri == r.concept and r.base_uri not in result.heldout_uris
        assert r.ref in _labels(by_uri[r.base_uri], r.lang)  # the label, in its language
        assert r.base not in all_labels and r.similarity == 1.0
    # Like the other same-concept rows: a training sibling's label, where there is one.
    assert any(r.hard_negative for r in aug)
    assert all(r.hard_negative_uri not in result.heldout_uris for r in aug)


def test_upper_count_is_every_changed_training_label(occupations):
    result = build_pairs(occupations, seed=3, holdout_fraction=0.3, augment=("upper",))
    all_labels = {t for o in occupations for lang in o.labels for t in _labels(o, lang)}
    expected = {
        (t.upper(), t)
        for o in occupations
        if o.uri not in result.heldout_uris
        for lang in o.labels
        for t in _labels(o, lang)
        if t.upper() != t and t.upper() not in all_labels
    }
    got = {(r.base, r.ref) for r in result.train if r.pair_type == "aug_upper"}
    assert got == expected and result.augmented == {"upper": len(expected)}


def test_augmenting_is_deterministic_and_leaves_the_other_rows_alone(occupations):
    plain = build_pairs(occupations, seed=5, holdout_fraction=0.25)
    first = build_pairs(occupations, seed=5, holdout_fraction=0.25, augment=KINDS)
    again = build_pairs(list(reversed(occupations)), seed=5, holdout_fraction=0.25, augment=KINDS)
    assert first.train == again.train and first.augmented == again.augmented
    assert first.train[: len(plain.train)] == plain.train
    assert first.holdout == plain.holdout and not plain.augmented


def test_cli_augment_writes_counts_and_loads(tmp_path):
    out = tmp_path / "pairs.csv"
    args = ["data", "esco", "--occupations", EN, "--occupations", DE, "-o", out]
    result = CliRunner().invoke(main, [*map(str, args), "--augment", "upper,gender"])
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader(out.open(encoding="utf-8")))
    counts = Counter(r["pair_type"] for r in rows if r["pair_type"].startswith("aug_"))
    assert set(counts) == {"aug_upper", "aug_gender"}
    line = next(x for x in result.output.splitlines() if x.startswith("augmented"))
    assert line == (
        "augmented (training occupations only): "
        f"upper {counts['aug_upper']:,}, gender {counts['aug_gender']:,}"
    )
    assert all(r["concept"] for r in rows if r["pair_type"].startswith("aug_"))
    pairs, _ = load_pairs(out)
    assert len(pairs) == len(rows)

    bad = CliRunner().invoke(main, [*map(str, args), "--augment", "upper,shout"])
    assert bad.exit_code == 1
    assert "unknown kind 'shout'" in bad.output and "accents, gender" in bad.output
