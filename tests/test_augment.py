"""Surface-variant augmentation: which variants, how many, always the same."""

from __future__ import annotations

import doctest

import pytest

from domaintune.data import augment
from domaintune.data.augment import KINDS, augmented_pairs, gender_forms, surface_variants


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
