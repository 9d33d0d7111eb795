"""Retrieval sets: queries, their gold targets, and the corpus searched.

Loaded from an ESCO occupations export, a ``query,target`` CSV, or the
same-concept pairs of a pair file. Scored by
:func:`domaintune.evaluation.retrieval.retrieval_metrics`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from domaintune._io import csv_records, read_utf8
from domaintune.errors import UserError

#: Scores closer than this count as tied (embeddings are float32).
TIE_TOLERANCE = 1e-6
#: A pair scored at least this names one concept twice: the top score
#: :func:`retrieval_from_pairs` needs, and the default ``positive_threshold``
#: of the losses that train on positives only.
SAME_CONCEPT_SCORE = 0.99
_ESCO_COLUMNS = ("preferredLabel", "altLabels")
_PAIR_COLUMNS = ("query", "target")


@dataclass
class RetrievalSet:
    """Queries with their gold targets, and the corpus searched for them.

    ``queries[i]``'s gold target is ``targets[i]``; a query with several gold
    targets appears on several rows. ``skipped`` counts rows left out on load
    (reason -> count).
    """

    queries: list[str]
    targets: list[str]
    corpus: list[str]
    source: str = ""
    skipped: dict[str, int] = field(default_factory=dict)

    def gold(self) -> tuple[list[str], list[list[int]]]:
        """Distinct queries (first-seen order) and each one's gold corpus indices."""
        index = {text: i for i, text in enumerate(self.corpus)}
        missing = set(self.targets) - index.keys()
        if missing:
            raise ValueError(f"targets not in the corpus: {sorted(missing)[:5]}")
        golds: dict[str, list[int]] = {}
        for query, target in zip(self.queries, self.targets):
            ids = golds.setdefault(query, [])
            if index[target] not in ids:
                ids.append(index[target])
        return list(golds), list(golds.values())


def load_retrieval_set(path: str | Path) -> RetrievalSet:
    """Load an ESCO occupations export or a ``query,target`` CSV (told apart by header).

    ESCO: every line of an occupation's ``altLabels`` is a query whose gold
    target is its ``preferredLabel``; the corpus is every preferred label, also
    of occupations without alternative labels. CSV: one query and its target
    per row; the corpus is the distinct targets.
    """
    p = Path(path)
    if not p.is_file():
        raise UserError(
            f"{p}: {'is not a file' if p.exists() else 'file not found'}. "
            "Pass an ESCO occupations CSV export or a query,target CSV."
        )
    text = read_utf8(
        p,
        if_empty="Use an ESCO occupations export or a CSV with a header line "
        "'query,target' and one row per query.",
    )
    rows = csv_records(p, text)
    header_line, header = next(rows, (1, []))
    header = [h.strip() for h in header]
    if all(c in header for c in _ESCO_COLUMNS):
        esco = True
        pref, alt = (header.index(c) for c in _ESCO_COLUMNS)
    elif all(c in header for c in _PAIR_COLUMNS):
        esco = False
        pref, alt = (header.index(c) for c in ("target", "query"))
    else:
        raise UserError(
            f"{p}, line {header_line}: neither an ESCO occupations export (columns "
            f"preferredLabel, altLabels) nor a query,target CSV; found columns: "
            f"{', '.join(map(repr, header)) or '(none)'}. Add a header line 'query,target'."
        )
    pairs: list[tuple[str, str]] = []
    corpus: dict[str, None] = {}  # ordered set
    for line, row in rows:
        if not any(cell.strip() for cell in row):
            continue
        target = row[pref].strip() if pref < len(row) else ""
        cell = row[alt] if alt < len(row) else ""
        # ESCO: one alternative label per line of the cell; CSV: the cell is the query.
        queries = [q.strip() for q in (cell.split("\n") if esco else [cell]) if q.strip()]
        if not target or (not esco and not queries):
            what = "preferredLabel" if esco else ("target" if not target else "query")
            raise UserError(f"{p}, line {line}: the {what} is empty. Fill it in or delete the row.")
        corpus[target] = None
        pairs.extend((q, target) for q in queries)
    kind = "alternative labels (altLabels)" if esco else "query,target rows"
    rset = _build(pairs, list(corpus), str(p))
    if not rset.queries:
        raise UserError(
            f"{p}: no queries: the file has no {kind}{_skipped_note(rset.skipped)}. Add {kind}."
        )
    if len(rset.corpus) < 2:
        raise UserError(
            f"{p}: only one distinct target ({rset.corpus[0]!r}); retrieval needs "
            "at least 2 to choose from. Add rows with other targets."
        )
    return rset


def retrieval_from_pairs(pairs, top_score: float | None = None) -> RetrievalSet | None:
    """A retrieval set from scored pairs (a ``PairSet``): base -> ref at the top score.

    Every pair scoring at least ``top_score`` is a query (``base``) with gold
    target ``ref``; the corpus is the distinct targets. The default
    ``top_score`` is the highest score present, and only counts if it reaches
    ``SAME_CONCEPT_SCORE`` (same concept). None when fewer than 2 distinct
    targets (or no query) remain.
    """
    scores = np.asarray(pairs.scores, np.float64)
    if len(scores) == 0:
        return None
    if top_score is None:
        top_score = float(scores.max())
        if top_score < SAME_CONCEPT_SCORE:
            return None
    keep = np.flatnonzero(scores >= top_score - TIE_TOLERANCE)
    chosen = [(pairs.texts_a[i], pairs.texts_b[i]) for i in keep]
    rset = _build(chosen, list(dict.fromkeys(b for _, b in chosen)), pairs.source)
    return rset if rset.queries and len(rset.corpus) >= 2 else None


def _build(pairs: Iterable[tuple[str, str]], corpus: list[str], source: str) -> RetrievalSet:
    """Drop duplicate rows and queries found verbatim in the corpus (counted)."""
    in_corpus = set(corpus)
    golds: dict[str, dict[str, None]] = {}
    duplicates = 0
    for query, target in pairs:
        targets = golds.setdefault(query, {})
        duplicates += target in targets
        targets[target] = None
    skipped = {"trivial": 0, "in_corpus": 0, "duplicate": duplicates}
    queries: list[str] = []
    targets_out: list[str] = []
    for query, targets in golds.items():
        if query in in_corpus:
            skipped["trivial" if query in targets else "in_corpus"] += 1
            continue
        queries += [query] * len(targets)
        targets_out += list(targets)
    return RetrievalSet(queries, targets_out, corpus, source, skipped)


def _skipped_note(skipped: dict[str, int]) -> str:
    n = skipped.get("trivial", 0) + skipped.get("in_corpus", 0)
    return f" other than {n} found verbatim among the targets" if n else ""
