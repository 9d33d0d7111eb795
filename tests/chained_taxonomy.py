"""A synthetic taxonomy whose pairs chain into ONE group of shared texts, as
``domaintune data esco`` output does (its ISCO-group and negative pairs
connect every label): the grouped validation split cannot split it."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from domaintune.data.pair_set import PairSet


def chained_taxonomy(concepts: int = 40, seed: int = 0, with_concepts: bool = True) -> PairSet:
    """Per concept ``k``: two preferred labels (``role k``, ``Rolle k``, the
    retrieval queries) x 2-4 alternative labels (the gold targets, so a target
    is gold for two queries) at 1.0 with concept ``uri:k``; every 7th concept
    shares an alternative label with the one before. Concepts chain through
    0.75 pairs without a concept, and 0.5 negatives name a label UPPER-CASED
    (the same text to the split, which compares case-insensitively)."""
    rng = np.random.default_rng(seed)
    a: list[str] = []
    b: list[str] = []
    scores: list[float] = []
    ids: list[str] = []

    def add(x: str, y: str, score: float, concept: str = "") -> None:
        a.append(x), b.append(y), scores.append(score), ids.append(concept)

    alts = {
        k: [f"role {k} alt {j}" for j in range(int(rng.integers(2, 5)))] for k in range(concepts)
    }
    for k in range(concepts):
        targets = alts[k] + ([alts[k - 1][0]] if k and k % 7 == 0 else [])
        for query in (f"role {k}", f"Rolle {k}"):
            for target in targets:
                add(query, target, 1.0, f"uri:{k}")
        if k + 1 < concepts:
            add(alts[k][-1], f"role {k + 1}", 0.75)
        i, j = rng.choice(concepts, 2, replace=False)
        add(f"ROLE {i}", f"Rolle {j}", 0.5)
    return PairSet(a, b, np.array(scores), "taxonomy.csv", None, ids if with_concepts else None)


def write_csv(pairs: PairSet, path: Path) -> Path:
    """The pairs as a pair file (with the ``concept`` column if they have one)."""
    with path.open("w", newline="", encoding="utf-8") as fh:
        out = csv.writer(fh)
        concepts = pairs.concepts
        out.writerow(["base", "ref", "similarity", *(["concept"] if concepts else [])])
        for i, (x, y, s) in enumerate(zip(pairs.texts_a, pairs.texts_b, pairs.scores)):
            out.writerow([x, y, f"{s:g}", *([concepts[i]] if concepts else [])])
    return path
