"""Retrieval evaluation: does a query's nearest corpus text name its concept?

A :class:`RetrievalSet` holds (query, gold target) rows and a corpus of
candidate targets. :func:`retrieval_metrics` embeds both, ranks the corpus by
cosine similarity for each query and reports recall@k and the mean reciprocal
rank (MRR).

Rules, the same for every source:

- **Several gold targets.** A query may appear on several rows (an ESCO
  alternative label shared by two occupations). It counts once, and it is a
  hit if its best-scoring gold target ranks within k.
- **Rank** = 1 + the number of non-gold corpus texts scoring at least as high
  as the best gold target (within ``TIE_TOLERANCE``). Ties count against the
  query, so an encoder that maps everything to one vector scores 0, not 1.
- **Queries found verbatim in the corpus are skipped**, because their rank
  does not depend on the encoder: identical to one of their own gold targets
  the hit is trivial (counted as ``trivial``); identical to another corpus text
  they always lose to it (counted as ``in_corpus``).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from domaintune.errors import UserError
from domaintune.models.encoder import EncodeFn

#: Scores closer than this count as tied (embeddings are float32).
TIE_TOLERANCE = 1e-6
#: Default top score of :func:`retrieval_from_pairs` must reach this ("same concept").
SAME_CONCEPT_SCORE = 0.99
_ESCO_COLUMNS = ("preferredLabel", "altLabels")
_PAIR_COLUMNS = ("query", "target")
_SCORE_CELLS = 1 << 24  # query x corpus scores held at once (64 MB of float32)


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
        raise UserError(f"{p}: {'is not a file' if p.exists() else 'file not found'}. "
                        "Pass an ESCO occupations CSV export or a query,target CSV.")
    rows = _csv_rows(p, _read_utf8(p))
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
            f"{', '.join(map(repr, header)) or '(none)'}. Add a header line 'query,target'.")
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
        raise UserError(f"{p}: no queries: the file has no {kind}"
                        f"{_skipped_note(rset.skipped)}. Add {kind}.")
    if len(rset.corpus) < 2:
        raise UserError(f"{p}: only one distinct target ({rset.corpus[0]!r}); retrieval needs "
                        "at least 2 to choose from. Add rows with other targets.")
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


def retrieval_metrics(encode: EncodeFn, rset: RetrievalSet,
                      ks: Sequence[int] = (1, 5)) -> dict[str, float | int]:
    """``retrieval_r{k}`` for each k, ``retrieval_mrr``, ``retrieval_queries``, ``retrieval_corpus``."""
    queries, golds = rset.gold()
    ranks = _ranks(_normalise(encode(queries)), _normalise(encode(rset.corpus)), golds)
    result: dict[str, float | int] = {f"retrieval_r{k}": float(np.mean(ranks <= k)) for k in ks}
    result.update(retrieval_mrr=float(np.mean(1.0 / ranks)), retrieval_queries=len(queries),
                  retrieval_corpus=len(rset.corpus))
    return result


def _ranks(q: np.ndarray, c: np.ndarray, golds: list[list[int]]) -> np.ndarray:
    """1-based rank of each query's best gold target (ties count against it)."""
    n = len(golds)
    rows = np.repeat(np.arange(n), [len(g) for g in golds])
    cols = np.fromiter((i for g in golds for i in g), np.int64, len(rows))
    ranks = np.empty(n, np.int64)
    step = max(1, _SCORE_CELLS // max(1, len(c)))
    for start in range(0, n, step):
        stop = min(n, start + step)
        scores = q[start:stop] @ c.T
        sel = (rows >= start) & (rows < stop)
        r, g = rows[sel] - start, cols[sel]
        best = np.full(stop - start, -np.inf, np.float32)
        np.maximum.at(best, r, scores[r, g])
        threshold = best - TIE_TOLERANCE
        at_least = np.count_nonzero(scores >= threshold[:, None], axis=1)
        gold_at_least = np.bincount(r, scores[r, g] >= threshold[r], stop - start)
        ranks[start:stop] = 1 + at_least - gold_at_least.astype(np.int64)
    return ranks


def _normalise(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, np.float32)
    norm = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.where(norm > 0, norm, 1.0)  # a zero vector scores 0 against everything


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


def _read_utf8(p: Path) -> str:
    data = p.read_bytes()
    if not data.strip():
        raise UserError(f"{p}: the file is empty. Use an ESCO occupations export or a "
                        "CSV with a header line 'query,target' and one row per query.")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        line = err.object[:err.start].count(b"\n") + 1
        raise UserError(f"{p}, line {line}: not valid UTF-8 (byte 0x{err.object[err.start]:02x}). "
                        "Re-save the file as UTF-8.") from None


def _csv_rows(p: Path, text: str) -> Iterable[tuple[int, list[str]]]:
    """(line the record starts on, fields); a quoted field may span lines."""
    reader = csv.reader(io.StringIO(text, newline=""))
    start = 1
    try:
        for row in reader:
            yield start, row
            start = reader.line_num + 1
    except csv.Error as err:
        raise UserError(f"{p}, line {start}: malformed CSV ({err}). Check the quoting "
                        "on that line.") from None
