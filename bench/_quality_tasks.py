"""The held-out ESCO tasks of ``quality.py``: data splits and retrieval scoring.

Built from ``domaintune.data.esco`` with a concept-disjoint holdout over the six
shared languages. On the held-out occupations:

- ``mono_<lang>``: every alternative label -> its occupation's preferred label,
  among the held-out preferred labels of that language;
- ``cross_<lang>``: every label (preferred and alternative) in ``lang`` ->
  the occupation's English preferred label, among the English ones;
- ``upper_<lang>``: the ``mono_<lang>`` queries written in UPPER CASE.

A query equal to a corpus text is left out (its rank does not depend on the
encoder).
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from _measure import SHARED_DATA

LANGS = ("en", "de", "fr", "es", "it", "nl")
Encode = Callable[[Sequence[str]], np.ndarray]


@dataclass
class Task:
    queries: list[str]
    targets: list[str]
    corpus: list[str]


@dataclass
class Split:
    """Training and validation pair rows, and the held-out tasks."""

    train: list  # esco.PairRow
    val: list
    tasks: dict[str, Task]
    heldout: int


def build_split(seed: int, langs: Sequence[str] = LANGS, val_fraction: float = 0.1) -> Split:
    """Pairs of 80% of the occupations; 20% held out (as ``data esco
    --holdout-fraction 0.2``); a seeded ``val_fraction`` of the training
    occupations is validation, so selecting a trial never sees the test."""
    from domaintune.data.esco import build_pairs
    from domaintune.data.esco_exports import read_occupations

    occupations = read_occupations(
        [SHARED_DATA / "esco" / f"occupations_{lang}.csv" for lang in langs]
    )
    built = build_pairs(occupations, seed=seed, holdout_fraction=0.2)
    rng = np.random.default_rng(seed + 1)
    train_uris = sorted({o.uri for o in occupations} - set(built.heldout_uris))
    val_uris = set(rng.choice(train_uris, round(len(train_uris) * val_fraction), replace=False))
    train = [r for r in built.train if r.base_uri not in val_uris and r.ref_uri not in val_uris]
    val = [r for r in built.train if r.base_uri in val_uris and r.ref_uri in val_uris]
    return Split(
        train, val, heldout_tasks(occupations, built.heldout_uris), len(built.heldout_uris)
    )


def heldout_tasks(occupations, heldout_uris) -> dict[str, Task]:
    held = [o for o in occupations if o.uri in heldout_uris]
    tasks: dict[str, Task] = {}
    english = sorted({o.labels["en"].preferred for o in held if "en" in o.labels})
    for lang in sorted({lang for o in held for lang in o.labels}):
        corpus = sorted({o.labels[lang].preferred for o in held if lang in o.labels})
        mono = _task(
            [
                (alt, o.labels[lang].preferred)
                for o in held
                if lang in o.labels
                for alt in o.labels[lang].alt
            ],
            corpus,
        )
        tasks[f"mono_{lang}"] = mono
        tasks[f"upper_{lang}"] = Task([q.upper() for q in mono.queries], mono.targets, corpus)
        if lang != "en" and english:
            tasks[f"cross_{lang}"] = _task(
                [
                    (text, o.labels["en"].preferred)
                    for o in held
                    if lang in o.labels and "en" in o.labels
                    for text in (o.labels[lang].preferred, *o.labels[lang].alt)
                ],
                english,
            )
    return tasks


def _task(pairs, corpus: list[str]) -> Task:
    in_corpus = set(corpus)
    kept = list(dict.fromkeys((q, t) for q, t in pairs if q not in in_corpus))
    return Task([q for q, _ in kept], [t for _, t in kept], corpus)


def write_upper_queries(tasks: dict[str, Task], path: Path, n: int = 1000, seed: int = 0) -> Path:
    """The benchmark's data file of ``n`` upper-cased held-out queries
    (query,target), drawn evenly from the languages."""
    rng = np.random.default_rng(seed)
    uppers = [t for name, t in sorted(tasks.items()) if name.startswith("upper_")]
    rows = []
    for i, task in enumerate(uppers):
        share = n // len(uppers) + (1 if i < n % len(uppers) else 0)
        picks = rng.choice(len(task.queries), min(share, len(task.queries)), replace=False)
        rows += [(task.queries[j], task.targets[j]) for j in sorted(picks)]
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["query", "target"])
        writer.writerows(rows)
    return path


def score(encode: Encode, tasks: dict[str, Task], sts=None) -> dict[str, float]:
    """recall@1, recall@5 and MRR per task, their means by kind, STS-B dev Pearson."""
    from domaintune.evaluation.metrics import sts_metrics

    result: dict[str, float] = {}
    cache: dict[str, np.ndarray] = {}

    def vectors(texts: list[str]) -> np.ndarray:
        missing = [t for t in dict.fromkeys(texts) if t not in cache]
        if missing:
            found = np.asarray(encode(missing), np.float32)
            found /= np.maximum(np.linalg.norm(found, axis=1, keepdims=True), 1e-12)
            cache.update(zip(missing, found))
        return np.stack([cache[t] for t in texts])

    for name, task in tasks.items():
        q, c = vectors(task.queries), vectors(task.corpus)
        gold = np.array([task.corpus.index(t) for t in task.targets])
        sims = q @ c.T
        ranks = 1 + (sims > sims[np.arange(len(gold)), gold][:, None] + 1e-6).sum(axis=1)
        result[f"{name}_r1"] = float(np.mean(ranks == 1))
        result[f"{name}_r5"] = float(np.mean(ranks <= 5))
        result[f"{name}_mrr"] = float(np.mean(1.0 / ranks))
    for kind in ("mono", "cross", "upper"):
        for metric in ("r1", "r5", "mrr"):
            values = [v for k, v in result.items() if k.startswith(kind) and k.endswith(metric)]
            if values:
                result[f"{kind}_mean_{metric}"] = float(np.mean(values))
    if sts is not None:
        result["sts"] = float(sts_metrics(encode, sts)["sts_pearson"])
    return result


def write_pairs_csv(rows, path: Path) -> Path:
    """PairRows as a pair file domaintune reads (with hard negatives and concepts)."""
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["base", "ref", "similarity", "hard_negative", "concept"])
        for r in rows:
            concept = r.base_uri if r.base_uri == r.ref_uri else ""
            writer.writerow([r.base, r.ref, r.similarity, r.hard_negative, concept])
    return path
