"""``domaintune evaluate``: :func:`domaintune.api.evaluate`, printed."""

from __future__ import annotations

import json
from pathlib import Path

import click

from domaintune.cli.options import STS_HELP, pair_format_options


@click.command()
@click.option(
    "--model",
    "model_spec",
    default="use-m3",
    show_default=True,
    help="Encoder: 'use-m3', a SavedModel directory (e.g. an export), or a TF-Hub handle/URL.",
)
@click.option("--sts", "sts_spec", default="auto", show_default=True, help=STS_HELP)
@click.option("--split", type=click.Choice(["dev", "test"]), default="dev", show_default=True)
@click.option(
    "--pairs",
    "pairs_path",
    type=click.Path(path_type=Path),
    help="Domain pairs (base,ref,similarity) to report MSE, Pearson and Spearman on.",
)
@click.option(
    "--heatmap",
    "heatmap_path",
    type=click.Path(path_type=Path),
    help="Write a cosine-similarity heatmap PNG of --titles (default: the tutorial's nine).",
)
@click.option(
    "--titles",
    "titles_path",
    type=click.Path(path_type=Path),
    help="Text file, one title per line, for --heatmap.",
)
@click.option(
    "--retrieval",
    "retrieval_path",
    type=click.Path(path_type=Path),
    help="ESCO occupations export or query,target CSV: report retrieval recall@1/@5 and MRR.",
)
@click.option("--batch-size", default=256, show_default=True, type=click.IntRange(1, 100_000))
@click.option(
    "--case-fold",
    is_flag=True,
    help="Fold every text to NFKC lower case before the encoder (as a search's case_fold "
    "trial and its export do), e.g. for ALL-CAPS queries on an untuned base.",
)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object instead of a table.")
@pair_format_options
def evaluate(
    columns: str,
    scale: str,
    dedupe: str,
    model_spec: str,
    sts_spec: str,
    split: str,
    pairs_path: Path | None,
    heatmap_path: Path | None,
    titles_path: Path | None,
    batch_size: int,
    as_json: bool,
    retrieval_path: Path | None,
    case_fold: bool,
) -> None:
    """Score an encoder on STS-B and, optionally, on domain pairs and retrieval."""
    from domaintune import api

    result = api.evaluate(
        model_spec,
        sts=sts_spec,
        split=split,
        pairs=pairs_path,
        retrieval=retrieval_path,
        heatmap=heatmap_path,
        titles=titles_path,
        batch_size=batch_size,
        columns=columns,
        scale=scale,
        dedupe=dedupe,
        case_fold=case_fold,
    )
    if as_json:
        click.echo(json.dumps(result, indent=2))
        return
    width = max(map(len, result))
    for key, value in result.items():
        shown = f"{value:.4f}" if isinstance(value, float) else value
        click.echo(f"{key:<{width}}  {shown}")
