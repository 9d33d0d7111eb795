"""Options shared by several commands."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import click

F = TypeVar("F", bound=Callable)

STS_HELP = (
    "STS Benchmark: 'auto' (DOMAINTUNE_STS_DIR, the cache, or a download), a folder "
    "with sts-dev.csv/sts-test.csv, the Stsbenchmark.tar.gz archive, one CSV, or 'none'."
)


def pair_format_options(command: F) -> F:
    """--columns/--scale/--dedupe: how pair files are read (search and evaluate)."""
    command = click.option(
        "--dedupe",
        type=click.Choice(["error", "mean"]),
        default="error",
        show_default=True,
        help="Same pair with different scores: an error, or average them.",
    )(command)
    command = click.option(
        "--scale",
        type=click.Choice(["angular", "sts", "cosine"]),
        default="angular",
        show_default=True,
        help="Score scale of pair files: angular [0,1], sts 0-5, cosine -1..1 "
        "(converted to angular).",
    )(command)
    return click.option(
        "--columns",
        metavar="BASE,REF,SCORE",
        default="base,ref,similarity",
        show_default=True,
        help="Column names of pair files.",
    )(command)
