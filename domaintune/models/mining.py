"""Hard negatives mined by the model: for each positive pair, the targets the
current encoder finds most similar to its query among those of OTHER concepts.

Which texts are of the same concept (and so never a negative of each other):

- with a ``concept`` column (``PairSet.concepts``, which ``data esco`` writes),
  the texts of the positive pairs naming one concept; exact, and a label
  shared by two concepts does not merge them;
- else the positives graph: texts joined by a chain of pairs scored at least
  ``positive_threshold`` are one concept (connected components);
- a file with the column but positive pairs without a concept: the graph of
  those pairs groups their texts, and a group takes the concepts its texts
  have in other pairs (so a text linked to a concept's label by such a pair
  is of that concept too; conservative, never merging two concepts' texts
  that only concept pairs join).

Texts are compared case-insensitively (``casefold``), as the in-batch batcher
does. Pure numpy: the encoder comes in as a function.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

import numpy as np

from domaintune.data.pair_arrays import pair_arrays, text_key

#: Values of the ``hard_negatives`` hyperparameter.
HARD_NEGATIVE_MODES: tuple[str, ...] = ("none", "taxonomy", "mined")


class MinedColumns(Protocol):
    """Where a training pipeline gets its mined negatives each epoch."""

    k: int  # columns

    def take(self) -> list[list[str]]:
        """The current ``k`` columns, aligned with the pairs ("" = none)."""
        ...


Embed = Callable[[list[str]], np.ndarray]  # texts -> embeddings [n, d]
# Similarities computed per block of queries: about 16M floats at a time.
_BLOCK_CELLS = 1 << 24


def concept_groups(pairs: Any, positive_threshold: float) -> dict[str, set[str]]:
    """``{text key: groups}`` over the texts of the positive pairs: two texts
    sharing a group are the same concept (see the module doc)."""
    concepts = getattr(pairs, "concepts", None)
    positive = np.flatnonzero(np.asarray(pairs.scores) >= positive_threshold)
    groups: dict[str, set[str]] = {}
    parent: dict[str, str] = {}  # union-find over the pairs without a concept

    def find(x: str) -> str:
        parent.setdefault(x, x)
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    graph = []
    for i in positive:
        a, b = text_key(pairs.texts_a[i]), text_key(pairs.texts_b[i])
        concept = concepts[i] if concepts is not None else ""
        if concept:
            for text in (a, b):
                groups.setdefault(text, set()).add("concept:" + concept)
        else:
            graph.append((a, b))
            ra, rb = find(a), find(b)
            if ra != rb:
                parent[ra] = rb
    # A graph group is also of every concept its texts have elsewhere.
    inherited: dict[str, set[str]] = {}
    for a, b in graph:
        for text in (a, b):
            inherited.setdefault(find(text), set()).update(groups.get(text, ()))
    for a, b in graph:
        for text in (a, b):
            root = find(text)
            groups.setdefault(text, set()).update({"graph:" + root, *inherited[root]})
    return groups


def mine_hard_negatives(
    pairs: Any,
    embed: Embed,
    *,
    k: int,
    positive_threshold: float,
    skip: int = 0,
    rows: np.ndarray | None = None,
) -> list[list[str]]:
    """``k`` columns aligned with ``pairs``: for each positive pair, the ``k``
    targets (refs of positive pairs) most similar to its query after the
    ``skip`` most similar, never one of the query's concept; "" for the other
    pairs and where too few targets remain.

    ``rows`` (an epoch's sample, ``--pairs-per-epoch``): mine only for the
    positive pairs among them, from their targets; what is one concept still
    comes from all the pairs (a sample can miss the pair that joins two of its
    texts), computed once per pair set and threshold.
    """
    if k < 1 or skip < 0:
        raise ValueError(f"need k >= 1 and skip >= 0, got k={k}, skip={skip}")
    n = len(pairs)
    columns = [[""] * n for _ in range(k)]
    positive = np.flatnonzero(np.asarray(pairs.scores) >= positive_threshold)
    if rows is not None:
        positive = np.intersect1d(positive, np.asarray(rows, np.int64))
    if not len(positive):
        return columns
    groups = pair_arrays(pairs).memo(
        ("concept_groups", float(positive_threshold)),
        lambda: concept_groups(pairs, positive_threshold),
    )
    targets = _distinct(pairs.texts_b[i] for i in positive)
    queries = _distinct(pairs.texts_a[i] for i in positive)
    target_keys = list(targets)
    # Targets of each group, and each text's own target index.
    by_group: dict[str, list[int]] = {}
    for j, key in enumerate(target_keys):
        for group in groups.get(key, ()):
            by_group.setdefault(group, []).append(j)
    own = {key: j for j, key in enumerate(target_keys)}

    q_vectors = _unit(embed(list(queries.values())))
    t_vectors = _unit(embed(list(targets.values())))
    take = min(skip + k, len(target_keys))
    mined: dict[str, list[str]] = {}
    block = max(1, _BLOCK_CELLS // max(1, len(target_keys)))
    query_keys = list(queries)
    for start in range(0, len(query_keys), block):
        keys = query_keys[start : start + block]
        sims = q_vectors[start : start + block] @ t_vectors.T
        for row, key in enumerate(keys):
            excluded = [j for g in groups.get(key, ()) for j in by_group.get(g, ())]
            if key in own:
                excluded.append(own[key])
            sims[row, excluded] = -np.inf
        best = np.argpartition(-sims, take - 1, axis=1)[:, :take]
        for row, key in enumerate(keys):
            ranked = best[row][np.argsort(-sims[row, best[row]], kind="stable")]
            chosen = [targets[target_keys[j]] for j in ranked[skip:] if np.isfinite(sims[row, j])]
            mined[key] = chosen
    for i in positive:
        for column, text in zip(columns, mined[text_key(pairs.texts_a[i])]):
            column[i] = text
    return columns


def _distinct(texts) -> dict[str, str]:
    """``{key: first text with that key}`` in first-seen order."""
    found: dict[str, str] = {}
    for text in texts:
        found.setdefault(text_key(text), text)
    return found


def _unit(vectors: np.ndarray) -> np.ndarray:
    vectors = np.asarray(vectors, np.float32)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors / np.maximum(norms, 1e-12)
