"""The loaded pairs (:class:`PairSet`) and what loading them kept and dropped
(:class:`LoadReport`); :mod:`domaintune.data.pairs` builds both."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np


@dataclass(frozen=True, eq=False)  # eq=False: ndarray fields make == ambiguous
class PairSet:
    """Aligned text pairs with angular-scale similarity scores.

    ``hard_negatives``: one text per pair ("" for pairs without one), or None when
    the source has no ``hard_negative`` column. ``concepts``: the concept id of a
    same-concept pair ("" when unknown or not same-concept), or None when the
    source has no ``concept`` column.
    """

    texts_a: list[str]
    texts_b: list[str]
    scores: np.ndarray
    source: str = ""
    hard_negatives: list[str] | None = None
    concepts: list[str] | None = None

    def __post_init__(self) -> None:
        scores = np.asarray(self.scores, dtype=np.float32).reshape(-1)
        if not len(self.texts_a) == len(self.texts_b) == len(scores):
            raise ValueError(
                f"PairSet columns differ in length: {len(self.texts_a)}, "
                f"{len(self.texts_b)}, {len(scores)}"
            )
        for name in ("hard_negatives", "concepts"):
            column = getattr(self, name)
            if column is not None and len(column) != len(scores):
                raise ValueError(
                    f"PairSet {name} has {len(column)} entries for {len(scores)} pairs"
                )
        object.__setattr__(self, "scores", scores)

    def __len__(self) -> int:
        return len(self.texts_a)

    def subset(self, indices: Sequence[int] | np.ndarray) -> PairSet:
        """The pairs at ``indices`` (in the given order), same source."""
        idx = np.asarray(indices, dtype=np.int64).reshape(-1)

        def pick(column: list[str] | None) -> list[str] | None:
            return None if column is None else [column[i] for i in idx]

        return PairSet(
            [self.texts_a[i] for i in idx],
            [self.texts_b[i] for i in idx],
            self.scores[idx],
            self.source,
            pick(self.hard_negatives),
            pick(self.concepts),
        )


@dataclass(frozen=True)
class LoadReport:
    """What :func:`~domaintune.data.pairs.load_pairs` read, kept and dropped
    (reason -> count)."""

    source: str
    read: int
    kept: int
    dropped: dict[str, int] = field(default_factory=dict)
    scale: str = "angular"
    #: Kept pairs with a non-empty hard negative; None when the file has no such column.
    hard_negatives: int | None = None
    #: Kept pairs with a concept; None when the file has no ``concept`` column.
    concepts: int | None = None

    def summary(self) -> str:
        """One line, e.g. ``pairs.csv: read 340 pairs, kept 338 (2 exact duplicates dropped)``;
        with a ``hard_negative`` column also ``..., kept 338, 120 with hard negatives (...)``."""
        text = f"{Path(self.source).name}: read {self.read} pairs, kept {self.kept}"
        if self.hard_negatives is not None:
            text += f", {self.hard_negatives} with hard negatives"
        if self.concepts is not None:
            text += f", {self.concepts} with a concept"
        parts = [
            _DROP_LABELS.get(reason, reason + " dropped").format(n=n, s="" if n == 1 else "s")
            for reason, n in self.dropped.items()
            if n
        ]
        return text + (f" ({', '.join(parts)})" if parts else "")


_DROP_LABELS = {
    "exact_duplicate": "{n} exact duplicate{s} dropped",
    "contradictory_merged": "{n} contradictory duplicate{s} averaged",
}
