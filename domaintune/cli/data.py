"""``domaintune data``: builders that turn public classifications into training pairs."""

from __future__ import annotations

from pathlib import Path

import click

from domaintune.errors import UserError

_SCORE = click.FloatRange(0.0, 1.0)


@click.group()
def data() -> None:
    """Build training pairs from domain data (e.g. ESCO occupations)."""


@data.command()
@click.option(
    "--occupations",
    "occupation_paths",
    multiple=True,
    required=True,
    type=click.Path(path_type=Path),
    help="ESCO occupations CSV export, one per language (repeatable); the language is "
    "read from the name occupations_<lang>.csv (other names: xx for the first file, "
    "else xx<position>).",
)
@click.option(
    "--isco",
    "isco_path",
    type=click.Path(path_type=Path),
    help="ESCO ISCOGroups_<lang>.csv: checks the occupations' codes and adds "
    "occupation <-> unit-group label pairs (--group-label-score).",
)
@click.option(
    "-o",
    "--output",
    required=True,
    type=click.Path(path_type=Path),
    help="Training pairs CSV to write (base,ref,similarity,pair_type,lang,hard_negative,concept).",
)
@click.option(
    "--holdout-fraction",
    default=0.0,
    show_default=True,
    type=click.FloatRange(0.0, 1.0, max_open=True),
    help="Fraction of occupations held out; their pairs go to --holdout-output.",
)
@click.option(
    "--holdout-output",
    type=click.Path(path_type=Path),
    help="Held-out pairs CSV [default: <output stem>.holdout.csv].",
)
@click.option("--seed", default=0, show_default=True, type=int)
@click.option(
    "--negatives-per-positive",
    default=1,
    show_default=True,
    type=click.IntRange(0, 100),
    help="Negatives (labels from another ISCO major group) per positive pair.",
)
@click.option(
    "--same-concept-score",
    default=1.0,
    show_default=True,
    type=_SCORE,
    help="Preferred <-> alternative label, description, other language.",
)
@click.option(
    "--same-group-score",
    default=0.75,
    show_default=True,
    type=_SCORE,
    help="Occupations of one ISCO unit group (4 digits).",
)
@click.option(
    "--minor-group-score",
    default=0.65,
    show_default=True,
    type=_SCORE,
    help="One minor group (3 digits), with --graded-groups.",
)
@click.option(
    "--sub-major-group-score",
    default=0.6,
    show_default=True,
    type=_SCORE,
    help="One sub-major group (2 digits), with --graded-groups.",
)
@click.option(
    "--group-label-score",
    default=0.65,
    show_default=True,
    type=_SCORE,
    help="Occupation <-> its unit group's label, with --isco.",
)
@click.option(
    "--negative-score",
    default=0.5,
    show_default=True,
    type=_SCORE,
    help="Occupations of different ISCO major groups.",
)
@click.option(
    "--graded-groups/--no-graded-groups",
    default=False,
    show_default=True,
    help="Also pair occupations of one minor and one sub-major group.",
)
@click.option(
    "--no-descriptions",
    is_flag=True,
    help="Skip preferred label <-> description (first sentence) pairs.",
)
@click.option(
    "--max-alt-labels",
    type=click.IntRange(0),
    default=None,
    help="Use at most N alternative labels per occupation and language (in file order).",
)
@click.option(
    "--siblings-per-occupation",
    default=3,
    show_default=True,
    type=click.IntRange(0),
    help="Group partners sampled per occupation and group level.",
)
@click.option(
    "--cross-lang-alt-labels",
    default=2,
    show_default=True,
    type=click.IntRange(0),
    help="Alternative labels of the other language paired with each preferred label.",
)
@click.option(
    "--augment",
    default="none",
    show_default=True,
    metavar="KINDS",
    help="Add surface variants of the training occupations' labels, paired with the label: "
    "upper, lower, title, accents, gender (comma-separated), all, or none.",
)
def esco(
    occupation_paths: tuple[Path, ...],
    isco_path: Path | None,
    output: Path,
    holdout_fraction: float,
    holdout_output: Path | None,
    seed: int,
    negatives_per_positive: int,
    same_concept_score: float,
    same_group_score: float,
    minor_group_score: float,
    sub_major_group_score: float,
    group_label_score: float,
    negative_score: float,
    graded_groups: bool,
    no_descriptions: bool,
    max_alt_labels: int | None,
    siblings_per_occupation: int,
    cross_lang_alt_labels: int,
    augment: str,
) -> None:
    """Build graded training pairs from ESCO occupation exports.

    \b
    Pair types (pair_type column), default scores on the angular scale:
      alt              1.0   preferred label <-> each alternative label
      description      1.0   preferred label <-> the description's first sentence,
                             cut at a word boundary to <= 200 characters
      cross_lang       1.0   one occupation's preferred labels in two languages
      cross_lang_alt   1.0   preferred label <-> the first --cross-lang-alt-labels
                             alternative labels in the other language
      unit_group       0.75  preferred labels of two occupations of one 4-digit
                             ISCO unit group (--siblings-per-occupation, sampled)
      minor_group      0.65  same 3 ISCO digits, not 4 (--graded-groups)
      sub_major_group  0.6   same 2 ISCO digits, not 3 (--graded-groups)
      group_label      0.65  preferred label <-> its unit group's label (--isco)
      negative         0.5   --negatives-per-positive per positive pair: its base
                             with a label of an occupation of another ISCO major
                             group, never a label also used in the base's one
      aug_<kind>       1.0   --augment: a surface variant of a training
                             occupation's label <-> the label: upper / lower /
                             title case, accents stripped, or one form of a
                             gender-slash label (Lehrer/-in -> Lehrer, Lehrerin)

    lang is the texts' language (en) or two (de-en). hard_negative, for the
    same-concept types, is the preferred label of a random occupation of the
    same unit group (empty if there is none). concept, for the same-concept
    types (aug_<kind> included), is the occupation's URI (else empty). A variant
    that is itself a label of some occupation is not added; augmented rows get
    no negatives. Rows with the same two texts are merged, keeping the highest
    score. With --holdout-fraction F, a seeded fraction F of the occupations is
    held out: pairs of two held-out occupations go to --holdout-output, pairs of
    two others to --output; pairs mixing both are dropped and counted (ISCO
    group labels are no occupation: they can appear on both sides).
    hiddenLabels (search aliases) are not used.

    \b
    Example:
      domaintune data esco --occupations occupations_en.csv \\
          --occupations occupations_de.csv --isco ISCOGroups_en.csv \\
          -o esco_pairs.csv --holdout-fraction 0.2
    """
    from domaintune.data.augment import parse_kinds
    from domaintune.data.esco import PairScores, build_pairs
    from domaintune.data.esco_exports import read_isco_groups, read_occupations
    from domaintune.data.esco_output import summary, write_pairs

    kinds = parse_kinds(augment)
    if holdout_output is not None and holdout_fraction == 0:
        raise UserError("--holdout-output needs --holdout-fraction above 0.")
    if holdout_fraction > 0 and holdout_output is None:
        holdout_output = output.with_name(output.stem + ".holdout.csv")
    _check_outputs(output, holdout_output, [*occupation_paths, *([isco_path] if isco_path else [])])
    scores = PairScores(
        same_concept=same_concept_score,
        unit_group=same_group_score,
        minor_group=minor_group_score,
        sub_major_group=sub_major_group_score,
        group_label=group_label_score,
        negative=negative_score,
    )
    occupations = read_occupations(occupation_paths)
    isco = read_isco_groups(isco_path) if isco_path else None
    result = build_pairs(
        occupations,
        seed=seed,
        scores=scores,
        negatives_per_positive=negatives_per_positive,
        include_descriptions=not no_descriptions,
        graded_groups=graded_groups,
        max_alt_labels=max_alt_labels,
        holdout_fraction=holdout_fraction,
        siblings_per_occupation=siblings_per_occupation,
        cross_lang_alt_labels=cross_lang_alt_labels,
        isco_groups=isco,
        augment=kinds,
    )
    if not result.train:
        raise UserError("No training pairs were built; check the occupations files and options.")
    write_pairs(result, output, holdout_output)
    click.echo(summary(result))
    click.echo(
        f"\nWrote {len(result.train):,} pairs to {output}"
        + (
            f" and {len(result.holdout):,} held-out pairs to {holdout_output}"
            if holdout_output
            else ""
        )
    )


def _check_outputs(output: Path, holdout: Path | None, inputs: list[Path]) -> None:
    """Refuse outputs that load_pairs could not read or that would clobber an input."""
    resolved_inputs = {p.resolve() for p in inputs}
    for opt, path in (("--output", output), ("--holdout-output", holdout)):
        if path is None:
            continue
        if path.suffix.lower() != ".csv":
            raise UserError(f"{opt} {path}: must end in .csv (the pairs are written as CSV).")
        if not path.parent.is_dir():
            raise UserError(
                f"{opt} {path}: folder '{path.parent}' does not exist; create it first."
            )
        if path.resolve() in resolved_inputs:
            raise UserError(f"{opt} {path} is also an input file; choose another output path.")
    if holdout is not None and holdout.resolve() == output.resolve():
        raise UserError("--holdout-output must differ from --output.")
