"""Surface variants of texts, as extra same-concept training pairs.

Real queries come written in ways a taxonomy's labels are not: ALL CAPS
(national occupation lists, job-ad exports), without accents (keyboards,
legacy systems), or as one of the two gender forms that a label joins with a
slash. Each variant is paired with the text it came from at the
same-concept score, so the encoder learns that they mean the same thing.

Kinds (each can be switched off):

- ``upper`` / ``lower`` / ``title``: ``"Data scientist"`` -> ``"DATA SCIENTIST"``,
  ``"data scientist"``, ``"Data Scientist"``;
- ``accents``: accents stripped, ``"técnico"`` -> ``"tecnico"``;
- ``gender``: a slash-joined gender pair split into its forms,
  ``"Straßenbahnfahrer/Straßenbahnfahrerin"`` -> ``"Straßenbahnfahrer"`` and
  ``"Straßenbahnfahrerin"``; ``"Lehrer/-in"`` -> ``"Lehrer"``, ``"Lehrerin"``.

Example::

    >>> [v for v, _ in surface_variants("Abogado/Abogada", ("upper", "gender"))]
    ['ABOGADO/ABOGADA', 'Abogado', 'Abogada']
"""

from __future__ import annotations

import unicodedata
from collections import Counter
from collections.abc import Collection, Iterable, Sequence

import numpy as np

from domaintune.data.pair_set import PairSet
from domaintune.errors import UserError

KINDS = ("upper", "lower", "title", "accents", "gender")
#: The pair_type of an augmented pair of ``kind`` is this prefix + kind.
PAIR_TYPE_PREFIX = "aug_"

# Two sides of a slash are gender forms when they share at least this many
# leading characters, accents aside (Fahrer/Fahrerin, Koch/Köchin, leraar/lerares),
# which "Forschung/Entwicklung", "rigger/slinger" or "prelim/prepress" do not.
_MIN_SHARED_PREFIX = 4


def check_kinds(kinds: Iterable[str]) -> tuple[str, ...]:
    """The kinds, validated and in canonical order (ValueError names the bad one)."""
    kinds = tuple(kinds)
    unknown = [k for k in kinds if k not in KINDS]
    if unknown:
        raise ValueError(f"unknown augmentation {unknown[0]!r}; choose from {', '.join(KINDS)}")
    return tuple(k for k in KINDS if k in kinds)


def parse_kinds(spec: str | Iterable[str] | None, option: str = "--augment") -> tuple[str, ...]:
    """An ``--augment`` value: kinds separated by commas (or a list of them),
    ``all``, or ``none`` / empty for no augmentation; in canonical order."""
    if spec is None:
        return ()
    items = spec.split(",") if isinstance(spec, str) else list(spec)
    names = [str(k).strip().lower() for k in items if str(k).strip()]
    if names in ([], ["none"]):
        return ()
    if names == ["all"]:
        return KINDS
    unknown = [k for k in names if k not in KINDS]
    if unknown:
        raise UserError(
            f"{option} {spec!r}: unknown kind {unknown[0]!r}. Choose from "
            f"{', '.join(KINDS)} (separated by commas), or all."
        )
    return check_kinds(names)


def strip_accents(text: str) -> str:
    """``text`` without combining marks (é -> e, ñ -> n; ß and ø stay)."""
    decomposed = unicodedata.normalize("NFD", text)
    kept = "".join(c for c in decomposed if unicodedata.category(c) != "Mn")
    return unicodedata.normalize("NFC", kept)


def gender_forms(text: str) -> list[str]:
    """The two forms of a label that joins gender forms with a slash; else [].

    Three spellings are split: whole phrases (``trabajador social/trabajadora
    social``), one word (``technicien/technicienne biochimiste``) and a suffix
    (``Lehrer/-in``, ``Hochschuldozent/in für Journalistik``). Slashes between
    unrelated words (``Forschung/Entwicklung``, ``rigger/slinger``) and
    spaced ones (``designer / printer``: alternatives) are left alone.
    """
    words = text.split(" ")
    slashed = [i for i, word in enumerate(words) if "/" in word]
    if len(slashed) != 1 or words[slashed[0]].count("/") != 1:
        return []
    i = slashed[0]
    left, right = words[i].split("/")
    if not left or not right:
        return []
    suffix = right[1:] if right.startswith("-") else right
    if suffix.isalpha() and (right.startswith("-") or (len(right) <= 3 and right.islower())):
        forms = [left, left + suffix]  # Lehrer/-in, Dozent/in
        return [" ".join(words[:i] + [f] + words[i + 1 :]) for f in forms]
    first, second = words[:i] + [left], [right] + words[i + 1 :]
    if len(first) == len(second) and all(
        a == b or _gender_like(a, b) for a, b in zip(first, second)
    ):
        return [" ".join(first), " ".join(second)]  # whole phrases
    if _gender_like(left, right):
        return [" ".join(words[:i] + [f] + words[i + 1 :]) for f in (left, right)]
    return []


def _gender_like(a: str, b: str) -> bool:
    """Two forms of one word: a long shared start, accents and case aside."""
    shared = 0
    # Umlauts change between forms (Koch/Köchin, Arzt/Ärztin): compare unaccented.
    for x, y in zip(strip_accents(a.casefold()), strip_accents(b.casefold())):
        if x != y:
            break
        shared += 1
    return a != b and shared >= _MIN_SHARED_PREFIX


def surface_variants(text: str, kinds: Sequence[str] = KINDS) -> list[tuple[str, str]]:
    """``(variant, kind)`` for each kind that changes ``text``, without repeats."""
    variants: dict[str, str] = {}
    for kind in check_kinds(kinds):
        if kind == "upper":
            found = [text.upper()]
        elif kind == "lower":
            found = [text.lower()]
        elif kind == "title":
            found = [text.title()]
        elif kind == "accents":
            found = [strip_accents(text)]
        else:
            found = gender_forms(text)
        for variant in found:
            if variant.strip() and variant != text:
                variants.setdefault(variant, kind)
    return list(variants.items())


def augmented_pairs(
    texts: Iterable[str], kinds: Sequence[str] = KINDS
) -> tuple[list[tuple[str, str, str]], Counter]:
    """``(variant, text, kind)`` for every distinct text, and the count per kind.

    A variant that is itself one of ``texts`` is skipped: the data already
    says what it means.
    """
    distinct = list(dict.fromkeys(t for t in texts if t.strip()))
    known = set(distinct)
    rows: list[tuple[str, str, str]] = []
    seen: set[tuple[str, str]] = set()
    counts: Counter = Counter({k: 0 for k in check_kinds(kinds)})
    for text in distinct:
        for variant, kind in surface_variants(text, kinds):
            if variant in known or (variant, text) in seen:
                continue
            seen.add((variant, text))
            rows.append((variant, text, kind))
            counts[kind] += 1
    return rows, counts


def augment_pair_set(
    pairs: PairSet, kinds: Sequence[str], score: float = 1.0, exclude: Collection[str] = ()
) -> tuple[PairSet, Counter]:
    """``pairs`` plus ``(variant, text)`` pairs at ``score`` for every text of
    ``pairs``, and the count per kind.

    A variant that is one of ``exclude`` (the validation texts) is skipped: the
    model must not train on a text it is judged on. An added pair's concept is
    its text's (the first non-empty one it has), and it has no hard negative.
    """
    texts = [t for pair in zip(pairs.texts_a, pairs.texts_b) for t in pair]
    rows, counts = augmented_pairs(texts, kinds)
    excluded = set(exclude)
    rows = [row for row in rows if row[0] not in excluded]
    counts = Counter({k: 0 for k in counts})
    counts.update(kind for _, _, kind in rows)
    concept_of: dict[str, str] = {}
    if pairs.concepts is not None:
        for a, b, concept in zip(pairs.texts_a, pairs.texts_b, pairs.concepts):
            for text in (a, b):
                if concept and not concept_of.get(text):
                    concept_of[text] = concept

    def extended(column: list[str] | None, added: list[str]) -> list[str] | None:
        return None if column is None else [*column, *added]

    return (
        PairSet(
            [*pairs.texts_a, *(variant for variant, _, _ in rows)],
            [*pairs.texts_b, *(text for _, text, _ in rows)],
            np.concatenate([pairs.scores, np.full(len(rows), score, np.float32)]),
            pairs.source,
            extended(pairs.hard_negatives, [""] * len(rows)),
            extended(pairs.concepts, [concept_of.get(text, "") for _, text, _ in rows]),
        ),
        counts,
    )
