"""Graded training pairs from ESCO occupations (read by :mod:`domaintune.data.esco_exports`,
written by :mod:`domaintune.data.esco_output`).

Pair types, with default angular scores (:class:`PairScores`; every rule is in
``domaintune data esco --help``): ``alt`` 1.0 (preferred <-> alternative label);
``description`` 1.0 (preferred label <-> the description's first sentence, cut at
a word boundary to <= 200 chars: it defines the occupation, the rest lists tasks
that others share); ``cross_lang`` and ``cross_lang_alt`` 1.0 (one concept in two
languages, ``lang`` e.g. ``de-en``); ``unit_group`` 0.75, ``minor_group`` 0.65,
``sub_major_group`` 0.6 (preferred labels of occupations sharing exactly 4, 3, 2
ISCO digits; sampled); ``group_label`` 0.65 (preferred label <-> its unit group's
label); ``negative`` 0.5 (a label of another ISCO major group). ``hard_negative``:
a unit-group sibling's preferred label, for same-concept rows. ``aug_<kind>`` 1.0
(with ``augment``): a surface variant of a training occupation's label
(:mod:`domaintune.data.augment`) <-> the label. ``concept``: the occupation's URI,
for same-concept rows.
"""

from __future__ import annotations

import re
import textwrap
from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from itertools import combinations

import numpy as np

from domaintune.data.augment import PAIR_TYPE_PREFIX, augmented_pairs, check_kinds
from domaintune.data.esco_exports import IscoGroup, Occupation, clean_text
from domaintune.errors import UserError

SAME_CONCEPT_TYPES = ("alt", "description", "cross_lang", "cross_lang_alt")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-ZÀ-ÞĀ-ſ])")
_NEG_ATTEMPTS = 100  # rejection-sampling tries per negative; then it counts as "negatives_short"


@dataclass(frozen=True)
class PairScores:
    """Angular similarity per relation (see the module docstring)."""

    same_concept: float = 1.0
    unit_group: float = 0.75
    minor_group: float = 0.65
    sub_major_group: float = 0.6
    group_label: float = 0.65
    negative: float = 0.5

    def __post_init__(self) -> None:
        chain = [
            self.same_concept,
            self.unit_group,
            self.minor_group,
            self.sub_major_group,
            self.negative,
        ]
        if chain != sorted(chain, reverse=True) or not all(
            0.0 <= v <= 1.0 for v in vars(self).values()
        ):
            got = ", ".join(f"{k}={v:g}" for k, v in vars(self).items())
            raise UserError(
                "Scores must lie in [0, 1] and not increase as relations get looser "
                "(same-concept >= same-group >= minor-group >= sub-major-group >= negative); "
                f"got {got}."
            )


@dataclass(frozen=True)
class PairRow:
    """One output row plus the conceptUris of its texts (for audits and tests)."""

    base: str
    ref: str
    similarity: float
    pair_type: str
    lang: str
    base_uri: str
    ref_uri: str
    hard_negative: str = ""
    hard_negative_uri: str = ""
    ref_lang: str = ""  # language of ``ref`` when it differs from ``lang`` (cross-language rows)

    @property
    def concept(self) -> str:
        """The occupation both texts name (its URI) for a same-concept row, else ""."""
        same = self.pair_type in SAME_CONCEPT_TYPES or self.pair_type.startswith(PAIR_TYPE_PREFIX)
        return self.base_uri if same and self.base_uri == self.ref_uri else ""


@dataclass
class BuildResult:
    """The pairs of both sides of the split and what was dropped on the way."""

    train: list[PairRow]
    holdout: list[PairRow]
    heldout_uris: frozenset[str]
    n_occupations: int
    languages: tuple[str, ...]
    # dropped_mixed: pairs of a held-out and a training occupation; duplicates / conflicts: same
    # two texts with the same / a lower score; self_pairs: identical texts; negatives_short: no
    # unused negative left.
    stats: Counter = field(default_factory=Counter)
    #: Augmented pairs per kind (only the kinds asked for; empty without augmentation).
    augmented: Counter = field(default_factory=Counter)


def first_sentence(description: str, limit: int = 200) -> str:
    """The description's first sentence, cut at a word boundary to at most ``limit`` characters."""
    text = _SENTENCE_END.split(clean_text(description), maxsplit=1)[0]
    return (textwrap.shorten(text, limit, placeholder="") or text[:limit]).rstrip(" ,;:")


def build_pairs(
    occupations: Sequence[Occupation],
    *,
    seed: int,
    scores: PairScores = PairScores(),
    negatives_per_positive: int = 1,
    include_descriptions: bool = True,
    graded_groups: bool = False,
    max_alt_labels: int | None = None,
    holdout_fraction: float = 0.0,
    siblings_per_occupation: int = 3,
    cross_lang_alt_labels: int = 2,
    isco_groups: tuple[str, Mapping[str, IscoGroup]] | None = None,
    augment: Sequence[str] = (),
) -> BuildResult:
    """Build scored pairs (module docstring), split by occupation; deterministic per ``seed``.

    ``holdout_fraction`` F holds out round(F * n) occupations: pairs of two held-out ones go to
    ``holdout``, of two others to ``train``, mixed ones are dropped and counted. Per side, rows
    with the same two texts are merged keeping the highest score (a shared label means the
    concepts overlap), so ``load_pairs`` accepts the output. ``isco_groups``:
    :func:`~domaintune.data.esco_exports.read_isco_groups`. ``augment``: kinds of
    :mod:`~domaintune.data.augment` whose variants of the training occupations' labels
    are added (never of held-out ones), after the other training rows.
    """
    counts = (
        negatives_per_positive,
        max_alt_labels or 0,
        siblings_per_occupation,
        cross_lang_alt_labels,
    )
    if min(counts) < 0 or not 0.0 <= holdout_fraction < 1.0 or not occupations:
        raise UserError(
            "Need occupations, counts >= 0 and a holdout fraction in [0, 1); got "
            f"{len(occupations)} occupations, counts {counts}, fraction {holdout_fraction:g}."
        )
    if isco_groups and (
        unknown := sorted({o.isco_group for o in occupations} - set(isco_groups[1]))
    ):
        raise UserError(
            f"{len(unknown)} iscoGroup codes are missing from the ISCO groups file "
            f"({', '.join(unknown[:5])}); use exports of one ESCO version, or leave out --isco."
        )
    b = _Builder(occupations, seed, max_alt_labels)
    langs = tuple(sorted({lang for o in b.occs for lang in o.labels}))
    result = BuildResult([], [], b.hold_out(holdout_fraction, langs), len(b.occs), langs)
    levels = [(4, "unit_group", scores.unit_group)]
    if graded_groups:
        levels += [
            (3, "minor_group", scores.minor_group),
            (2, "sub_major_group", scores.sub_major_group),
        ]
    sides: dict[bool, list[PairRow]] = {False: [], True: []}
    for o in b.occs:
        rows = b.same_concept(o, scores.same_concept, include_descriptions, cross_lang_alt_labels)
        if isco_groups and (g := isco_groups[1].get(o.isco_group)) and isco_groups[0] in o.labels:
            rows.append(
                PairRow(
                    o.labels[isco_groups[0]].preferred,
                    g.label,
                    scores.group_label,
                    "group_label",
                    isco_groups[0],
                    o.uri,
                    g.uri or f"isco:{g.code}",
                )
            )
        for n, kind, score in levels:
            rows += b.group_pairs(o, n, kind, score, siblings_per_occupation)
        for r in rows:
            in_sides = {
                b.side[u] for u in (r.base_uri, r.ref_uri) if u in b.side
            }  # ISCO URIs have no side
            result.stats["self_pairs"] += r.base == r.ref
            result.stats["dropped_mixed"] += r.base != r.ref and len(in_sides) > 1
            if r.base != r.ref and len(in_sides) == 1:
                sides[in_sides.pop()].append(r)
    for is_held, rows in sides.items():
        kept = _merge(rows, result)
        used = {_key(r.base, r.ref) for r in kept}
        out = result.holdout if is_held else result.train
        for r in kept:
            out.append(b.with_hard_negative(r) if r.pair_type in SAME_CONCEPT_TYPES else r)
            for _ in range(negatives_per_positive):
                # In the ref's language: a cross-language positive gets a cross-language negative.
                if neg := b.draw_negative(r, used):
                    out.append(
                        PairRow(
                            r.base,
                            neg[0],
                            scores.negative,
                            "negative",
                            r.lang,
                            r.base_uri,
                            neg[1],
                            ref_lang=r.ref_lang,
                        )
                    )
                result.stats["negatives_short"] += neg is None
    if augment:
        taken = {_key(r.base, r.ref) for r in result.train}
        rows, result.augmented = b.augmented(check_kinds(augment), scores.same_concept, taken)
        result.train += rows
    return result


class _Builder:
    """Indexes and seeded random streams shared by the steps of :func:`build_pairs`."""

    def __init__(
        self, occupations: Sequence[Occupation], seed: int, max_alt_labels: int | None
    ) -> None:
        self.occs = sorted(occupations, key=lambda o: o.uri)  # the input order must not matter
        self.by_uri = {o.uri: o for o in self.occs}
        self.max_alt = max_alt_labels
        # Independent streams: e.g. more negatives do not reshuffle the holdout or the siblings,
        # and augmenting leaves every other row as it was.
        self.rng_hold, self.rng_sib, self.rng_hard, self.rng_neg, self.rng_aug = (
            np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(5)
        )
        self.by_prefix: dict[str, list[Occupation]] = defaultdict(list)
        self.text_majors: dict[str, set[str]] = defaultdict(set)  # major groups using each text
        for o in self.occs:
            for n in (2, 3, 4):
                self.by_prefix[o.isco_group[:n]].append(o)
            for t in (
                t for lab in o.labels.values() for t in (lab.preferred, *lab.alt)
            ):  # all, even if cut
                self.text_majors[t].add(o.isco_group[0])
        self.side: dict[str, bool] = {}  # uri -> held out?
        self.pools: dict[
            tuple[bool, str], list[Occupation]
        ] = {}  # (side, lang) -> negative sources

    def alts(self, o: Occupation, lang: str) -> tuple[str, ...]:
        return o.labels[lang].alt[: self.max_alt]  # max_alt None: all

    def texts(self, o: Occupation, lang: str) -> tuple[str, ...]:
        return (o.labels[lang].preferred, *self.alts(o, lang))

    def hold_out(self, fraction: float, langs: Sequence[str]) -> frozenset[str]:
        """Pick the held-out occupations; set each one's side and the negative pools per side."""
        held: frozenset[str] = frozenset()
        if fraction > 0:
            if not 1 <= (n := round(fraction * (total := len(self.occs)))) < total:
                raise UserError(
                    f"--holdout-fraction {fraction:g} of {total} occupations holds out {n}; "
                    "choose a fraction that leaves at least one on each side."
                )
            held = frozenset(self.occs[i].uri for i in self.rng_hold.permutation(total)[:n])
        self.side = {o.uri: o.uri in held for o in self.occs}
        self.pools = {
            (h, lang): [o for o in self.occs if self.side[o.uri] == h and lang in o.labels]
            for h in (False, True)
            for lang in langs
        }
        return held

    def same_concept(
        self, o: Occupation, score: float, descriptions: bool, n_cross_alt: int
    ) -> list[PairRow]:
        u, rows = o.uri, []
        for lang, lab in o.labels.items():
            rows += [
                PairRow(lab.preferred, a, score, "alt", lang, u, u) for a in self.alts(o, lang)
            ]
            if descriptions and lab.description:
                rows.append(
                    PairRow(
                        lab.preferred,
                        first_sentence(lab.description),
                        score,
                        "description",
                        lang,
                        u,
                        u,
                    )
                )
        for l1, l2 in combinations(o.labels, 2):  # labels are sorted: tags like "de-en"
            tag, p1, p2 = f"{l1}-{l2}", o.labels[l1].preferred, o.labels[l2].preferred
            rows.append(PairRow(p1, p2, score, "cross_lang", tag, u, u, ref_lang=l2))
            for base, ref_lang in ((p1, l2), (p2, l1)):
                rows += [
                    PairRow(base, a, score, "cross_lang_alt", tag, u, u, ref_lang=ref_lang)
                    for a in self.alts(o, ref_lang)[:n_cross_alt]
                ]
        return rows

    def group_pairs(self, o: Occupation, n: int, kind: str, score: float, k: int) -> list[PairRow]:
        """Preferred labels of up to ``k`` occupations sharing exactly ``n`` ISCO digits with
        ``o``."""
        g = o.isco_group
        cands = [
            s
            for s in self.by_prefix[g[:n]]
            if s.uri != o.uri and (n == 4 or s.isco_group[: n + 1] != g[: n + 1])
        ]
        picks = (
            sorted(self.rng_sib.choice(len(cands), size=min(k, len(cands)), replace=False))
            if cands
            else []
        )
        return [
            PairRow(
                o.labels[lang].preferred, s.labels[lang].preferred, score, kind, lang, o.uri, s.uri
            )
            for s in (cands[j] for j in picks)
            for lang in o.labels
            if lang in s.labels
        ]

    def augmented(
        self, kinds: Sequence[str], score: float, taken: set[tuple[str, str]]
    ) -> tuple[list[PairRow], Counter]:
        """(variant, label) rows for the labels of the training occupations, and their count
        per kind. A variant that is a label of any occupation is skipped (it has a meaning of
        its own already, maybe a held-out one), as is a pair already in ``taken``."""
        rows: list[PairRow] = []
        counts: Counter = Counter({k: 0 for k in kinds})
        for o in (o for o in self.occs if not self.side[o.uri]):
            for lang in o.labels:
                for variant, label, kind in augmented_pairs(self.texts(o, lang), kinds)[0]:
                    if variant in self.text_majors or _key(variant, label) in taken:
                        continue
                    taken.add(_key(variant, label))
                    row = PairRow(
                        variant, label, score, PAIR_TYPE_PREFIX + kind, lang, o.uri, o.uri
                    )
                    rows.append(self.with_hard_negative(row, self.rng_aug))
                    counts[kind] += 1
        return rows, counts

    def with_hard_negative(self, r: PairRow, rng: np.random.Generator | None = None) -> PairRow:
        o, lang = self.by_uri[r.base_uri], r.ref_lang or r.lang
        avoid = {r.ref, *(t for lab in o.labels.values() for t in (lab.preferred, *lab.alt))}
        cands = [
            s
            for s in self.by_prefix[o.isco_group]
            if s.uri != o.uri
            and self.side[s.uri] == self.side[o.uri]
            and lang in s.labels
            and s.labels[lang].preferred not in avoid
        ]
        s = cands[int((rng or self.rng_hard).integers(len(cands)))] if cands else None
        return (
            replace(r, hard_negative=s.labels[lang].preferred, hard_negative_uri=s.uri) if s else r
        )

    def draw_negative(self, r: PairRow, used: set[tuple[str, str]]) -> tuple[str, str] | None:
        """(text, uri) in ``r``'s ref language and side, another major group, not yet paired with
        ``r.base``; the pair is added to ``used``."""
        major, lang, rng = self.by_uri[r.base_uri].isco_group[0], r.ref_lang or r.lang, self.rng_neg
        pool = self.pools[self.side[r.base_uri], lang]
        for _ in range(_NEG_ATTEMPTS if pool else 0):
            o = pool[int(rng.integers(len(pool)))]
            t = (texts := self.texts(o, lang))[int(rng.integers(len(texts)))]
            if (
                o.isco_group[0] != major
                and t != r.base
                and major not in self.text_majors[t]
                and _key(r.base, t) not in used
            ):
                used.add(_key(r.base, t))
                return t, o.uri
        return None


def _key(a: str, b: str) -> tuple[str, str]:
    return (a, b) if a <= b else (b, a)


def _merge(rows: list[PairRow], result: BuildResult) -> list[PairRow]:
    """One row per unordered text pair: the highest score, the first generated on ties."""
    best: dict[tuple[str, str], PairRow] = {}
    for r in rows:
        if (q := best.setdefault(k := _key(r.base, r.ref), r)) is not r:
            result.stats["duplicates"] += q.similarity == r.similarity
            result.stats["conflicts"] += q.similarity != r.similarity
            if r.similarity > q.similarity:
                best[k] = r
    return list(best.values())  # insertion order: deterministic
