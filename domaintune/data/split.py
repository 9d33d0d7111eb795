"""Validation pairs held out of the training pairs, at any scale.

:func:`split_validation` holds out ~a fraction of the pairs so that no text is
on both sides (validation would measure memorised texts otherwise):

1. ``grouped``: whole groups of pairs that share a text (case-insensitive,
   stripped), directly or through a chain of pairs. Nothing is lost, but a
   taxonomy's pairs often chain into one giant group (ESCO's ISCO-group and
   negative pairs connect every label), which cannot be split;
2. ``concept``, then, when the pairs have a ``concept`` column: validation
   takes whole concepts (seeded), i.e. every text of their same-concept
   pairs; texts of no concept stay on the training side;
3. ``texts`` without one: a seeded sample of texts.

In 2 and 3 a pair goes to validation when both its texts are validation
texts, to training when neither is, and is dropped when it links the two
sides (counted in :attr:`Split.dropped`).

:func:`cap_validation` then samples validation down to a bounded size, so
scoring a trial takes seconds at any data size.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from domaintune.data.pair_arrays import text_key
from domaintune.data.pair_set import PairSet
from domaintune.data.retrieval_sets import SAME_CONCEPT_SCORE, TIE_TOLERANCE
from domaintune.errors import UserError


@dataclass(frozen=True, eq=False)
class Split:
    """Training and validation pairs, how they were split and what it cost."""

    train: PairSet
    val: PairSet
    strategy: str  # "grouped", "concept" or "texts" (see the module doc)
    dropped: int = 0  # pairs linking a validation text to a training text
    largest_group: int = 0  # pairs in the largest shared-text group

    def summary(self) -> str:
        """One line saying how validation was held out."""
        if self.strategy == "grouped":
            return "Validation split: grouped by shared texts"
        n = len(self.train) + len(self.val) + self.dropped
        unit = "whole concepts" if self.strategy == "concept" else "a seeded sample of texts"
        return (
            f"Validation split by {self.strategy}: the pairs share texts in one group of "
            f"{self.largest_group:,} of {n:,} pairs, so validation holds {unit}; "
            f"{self.dropped:,} pairs linking a validation text to a training text were dropped"
        )


def split_validation(pairs: PairSet, fraction: float, seed: int) -> Split:
    """Split into training and ~``fraction`` validation pairs (module doc);
    deterministic for a given ``seed``. A UserError when no strategy can."""
    if not isinstance(fraction, (int, float)) or not 0.0 < float(fraction) < 1.0:
        raise UserError(
            f"Validation fraction must be between 0 and 1 (exclusive), got {fraction!r}."
        )
    n = len(pairs)
    src = pairs.source or "the pairs"
    if n < 2:
        raise UserError(f"{src}: need at least 2 pairs to split off a validation set, got {n}.")
    keys = [(text_key(a), text_key(b)) for a, b in zip(pairs.texts_a, pairs.texts_b)]
    groups = _components(keys)
    target = min(max(1, round(fraction * n)), n - 1)
    lo, hi = max(1, math.floor(target * 0.5)), min(n - 1, math.ceil(target * 1.5))
    rng = np.random.default_rng(seed)
    val: list[int] = []
    # Greedy over groups in seeded random order: take a group if it brings
    # the validation size closer to the target.
    for g in rng.permutation(len(groups)):
        size = len(groups[g])
        if abs(len(val) + size - target) < abs(len(val) - target):
            val.extend(groups[g])
    if lo <= len(val) <= hi:
        in_val = np.isin(np.arange(n), val)
        train_part, val_part = np.flatnonzero(~in_val), np.flatnonzero(in_val)
        return Split(pairs.subset(train_part), pairs.subset(val_part), "grouped")
    biggest = max(len(g) for g in groups)
    concepts = pairs.concepts if pairs.concepts is not None and any(pairs.concepts) else None
    strategy = "concept" if concepts is not None else "texts"
    rank = _text_ranks(keys, concepts, np.random.default_rng([seed, 1]))
    # A unit (concept or text) joins validation in rank order; a pair is in
    # once both its texts are. Stop at the first rank that reaches the target.
    joins = np.array([max(rank[a], rank[b]) for a, b in keys])
    cut = np.sort(joins)[target - 1]
    if not np.isfinite(cut):
        cut = joins[np.isfinite(joins)].max(initial=-1.0)
    val_side = {text for text, r in rank.items() if r <= cut}
    sides = np.array([(a in val_side) + (b in val_side) for a, b in keys])
    train_part, val_part = np.flatnonzero(sides == 0), np.flatnonzero(sides == 2)
    if not lo <= len(val_part) <= hi or not len(train_part):
        raise UserError(
            f"{src}: cannot hold out ~{fraction:.0%} of {n} pairs for validation without "
            f"splitting groups of pairs that share a text; the largest group holds {biggest} "
            f"of {n} pairs ({biggest / n:.0%}), and a split by {strategy} leaves "
            f"{len(val_part)} validation and {len(train_part)} training pairs. Pass a separate "
            "validation file with --val PATH."
        )
    dropped = n - len(train_part) - len(val_part)
    return Split(pairs.subset(train_part), pairs.subset(val_part), strategy, dropped, biggest)


def cap_validation(pairs: PairSet, max_pairs: int, seed: int) -> PairSet:
    """A seeded sample of at most ``max_pairs`` of the validation ``pairs``
    (all of them when ``max_pairs`` is 0 or not fewer), in file order.

    The retrieval task read from the pairs (queries ``base`` -> gold ``ref`` at
    the top score, corpus = the gold refs; see
    :func:`~domaintune.data.retrieval_sets.retrieval_from_pairs`) stays
    consistent: a sampled query keeps every top-score pair whose target the
    sample's corpus holds, so no gold answer in the corpus counts as wrong.
    """
    n = len(pairs)
    if max_pairs <= 0 or n <= max_pairs:
        return pairs
    scores = pairs.scores
    top = float(scores.max())
    is_top = scores >= top - TIE_TOLERANCE if top >= SAME_CONCEPT_SCORE else np.zeros(n, bool)
    by_query: dict[str, list[int]] = {}
    by_target: dict[str, list[int]] = {}
    for i in np.flatnonzero(is_top).tolist():
        by_query.setdefault(pairs.texts_a[i], []).append(i)
        by_target.setdefault(pairs.texts_b[i], []).append(i)
    chosen = np.zeros(n, bool)
    queries: set[str] = set()
    targets: set[str] = set()
    count = 0
    for i in np.random.default_rng(seed).permutation(n).tolist():
        if chosen[i]:
            continue
        need = {i}
        if is_top[i]:
            query, target = pairs.texts_a[i], pairs.texts_b[i]
            if query not in queries:  # its pairs to targets already in the corpus
                need.update(j for j in by_query[query] if pairs.texts_b[j] in targets)
            if target not in targets:  # the pairs of sampled queries to it
                need.update(j for j in by_target[target] if pairs.texts_a[j] in queries)
            need = {j for j in need if not chosen[j]}
        if count + len(need) > max_pairs:
            continue
        chosen[list(need)] = True
        count += len(need)
        if is_top[i]:
            queries.add(query)
            targets.add(target)
        if count == max_pairs:
            break
    return pairs.subset(np.flatnonzero(chosen))


def _text_ranks(
    keys: list[tuple[str, str]], concepts: list[str] | None, rng: np.random.Generator
) -> dict[str, float]:
    """When each text joins validation: its own seeded rank (``texts``), or the
    first rank among its concepts (``concept``; inf for texts of no concept)."""
    texts = list(dict.fromkeys(t for pair in keys for t in pair))
    if concepts is None:
        return dict(zip(texts, rng.permutation(len(texts)).astype(float)))
    names = sorted({c for c in concepts if c})  # sorted: the seed alone decides
    concept_rank = dict(zip(names, rng.permutation(len(names)).astype(float)))
    rank = dict.fromkeys(texts, math.inf)
    for (a, b), concept in zip(keys, concepts):
        if concept:
            r = concept_rank[concept]
            rank[a], rank[b] = min(rank[a], r), min(rank[b], r)
    return rank


def _components(keys: list[tuple[str, str]]) -> list[list[int]]:
    """Pair indices grouped by connected component of the shared-text graph."""
    parent: dict[str, str] = {}

    def find(x: str) -> str:
        parent.setdefault(x, x)
        while parent[x] != x:
            parent[x] = parent[parent[x]]  # path halving
            x = parent[x]
        return x

    for a, b in keys:
        ra, rb = find(a), find(b)
        if ra != rb:
            parent[ra] = rb
    groups: dict[str, list[int]] = {}
    for i, (a, _) in enumerate(keys):
        groups.setdefault(find(a), []).append(i)
    return list(groups.values())  # ordered by first pair: deterministic
