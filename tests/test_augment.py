"""Surface-variant augmentation: which variants, how many, always the same."""

from __future__ import annotations

import doctest

import numpy as np
import pytest

from domaintune.data import augment
from domaintune.data.augment import (
    KINDS,
    augment_pair_set,
    augmented_pairs,
    gender_forms,
    surface_variants,
)
from domaintune.data.pair_set import PairSet
from domaintune.errors import UserError


def test_docstring_example():
    assert doctest.testmod(augment).failed == 0


@pytest.mark.parametrize(
    "text, forms",
    [
        ("Straßenbahnfahrer/Straßenbahnfahrerin", ["Straßenbahnfahrer", "Straßenbahnfahrerin"]),
        ("Lehrer/-in", ["Lehrer", "Lehrerin"]),
        ("ingeniero/ingeniera de caminos", ["ingeniero de caminos", "ingeniera de caminos"]),
        ("trabajador social/trabajadora social", ["trabajador social", "trabajadora social"]),
        (
            "Hochschuldozent/in für Journalistik",
            ["Hochschuldozent für Journalistik", "Hochschuldozentin für Journalistik"],
        ),
        (
            "superviseur d'engins/superviseure d'engins",
            ["superviseur d'engins", "superviseure d'engins"],
        ),
        ("Koch/Köchin", ["Koch", "Köchin"]),
        ("Leiter/Leiterin Forschung/Entwicklung", []),  # two slashes: ambiguous, left alone
        ("graphic designer / digital printer", []),
        ("rigger/slinger", []),
        ("Forschung/Entwicklung", []),  # two words, not two forms of one
        ("CAD/CAM operator", []),
        ("24/7 support", []),
        ("data scientist", []),
        ("a/", []),
    ],
)
def test_gender_forms(text, forms):
    assert gender_forms(text) == forms


def test_each_kind_and_no_identity():
    variants = dict(surface_variants("Técnico de sonido"))
    assert variants == {
        "TÉCNICO DE SONIDO": "upper",
        "técnico de sonido": "lower",
        "Técnico De Sonido": "title",
        "Tecnico de sonido": "accents",
    }
    # A text that is already lower-case has no "lower" variant.
    assert "lower" not in dict(surface_variants("nurse")).values()
    # Kinds can be switched off one by one.
    assert dict(surface_variants("Técnico", ("accents",))) == {"Tecnico": "accents"}
    with pytest.raises(ValueError, match="unknown augmentation 'shout'"):
        surface_variants("x", ("shout",))


def test_pairs_are_counted_deduplicated_and_deterministic():
    texts = ["Data scientist", "data scientist", "Koch/Köchin", "Data scientist", "  "]
    rows, counts = augmented_pairs(texts)
    # "data scientist" is a text of its own: not added as a variant of "Data scientist".
    assert ("data scientist", "Data scientist", "lower") not in rows
    assert ("DATA SCIENTIST", "Data scientist", "upper") in rows
    assert ("Koch", "Koch/Köchin", "gender") in rows and ("Köchin", "Koch/Köchin", "gender") in rows
    assert sum(counts.values()) == len(rows) == len(set(rows))
    assert counts["gender"] == 2 and set(counts) == set(KINDS)
    assert augmented_pairs(texts) == (rows, counts)  # same input, same output
    only_upper, upper_counts = augmented_pairs(texts, ("upper",))
    assert {kind for *_, kind in only_upper} == {"upper"}
    assert upper_counts == {"upper": len(only_upper)}


def test_parse_kinds():
    assert augment.parse_kinds("all") == KINDS
    assert augment.parse_kinds("gender, Upper") == ("upper", "gender")  # canonical order
    assert augment.parse_kinds(["accents"]) == ("accents",)
    assert augment.parse_kinds("none") == augment.parse_kinds("") == augment.parse_kinds(None) == ()
    with pytest.raises(UserError) as err:
        augment.parse_kinds("upper,shout")
    assert "--augment 'upper,shout': unknown kind 'shout'" in str(err.value)
    assert "upper, lower, title, accents, gender" in str(err.value) and "all" in str(err.value)


def test_augment_pair_set_adds_variants_of_its_texts():
    pairs = PairSet(
        ["Data scientist", "Koch/Köchin", "nurse"],
        ["data analyst", "chef", "Técnico"],
        np.array([1.0, 1.0, 0.5]),
        "train.csv",
        ["sibling", "", ""],
        ["c1", "c2", ""],
    )
    out, counts = augment_pair_set(pairs, ("upper", "gender"), exclude={"CHEF"})
    added = list(zip(out.texts_a[3:], out.texts_b[3:], out.scores[3:], out.concepts[3:]))
    assert (out.texts_a[:3], out.texts_b[:3], out.concepts[:3]) == (
        pairs.texts_a,
        pairs.texts_b,
        pairs.concepts,
    )
    assert ("DATA SCIENTIST", "Data scientist", 1.0, "c1") in added
    assert ("Köchin", "Koch/Köchin", 1.0, "c2") in added
    assert ("TÉCNICO", "Técnico", 1.0, "") in added  # a text without a concept
    assert not any(a == "CHEF" for a, *_ in added)  # an excluded (validation) text
    assert counts == {"upper": len(added) - 2, "gender": 2}
    assert out.hard_negatives == ["sibling", "", ""] + [""] * len(added)
    assert augment_pair_set(pairs, ("gender", "upper"), exclude={"CHEF"})[0].texts_a == out.texts_a
    no_columns = PairSet(pairs.texts_a, pairs.texts_b, pairs.scores)
    plain, _ = augment_pair_set(no_columns, ("upper",))
    assert plain.concepts is None and plain.hard_negatives is None and len(plain) == 9
