"""Commands on a search's project directory: ``results``, ``export``, ``tensorboard``."""

from __future__ import annotations

import json
from pathlib import Path

import click


@click.command()
@click.argument("project_dir", type=click.Path(path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list of trials.")
@click.option(
    "--pareto",
    is_flag=True,
    help="Only the trials not dominated on both the search's domain metric "
    "(val_mse, val_spearman or retrieval_r1, per its --domain-metric) and "
    "sts_pearson.",
)
def results(project_dir: Path, as_json: bool, pareto: bool) -> None:
    """Show the trials of a search with their metrics."""
    from domaintune import api

    result = api.load_search(project_dir)
    trials = result.pareto_front() if pareto else result.trials
    if as_json:
        click.echo(json.dumps([t.to_dict() for t in trials], indent=2))
    elif trials:
        click.echo(result.table(trials))
    elif pareto:
        from domaintune.objectives import pareto_axes
        from domaintune.reporting.results import search_domain_metric

        domain, sts = pareto_axes(search_domain_metric(project_dir))
        click.echo(
            f"No completed trials with {domain} and {sts} yet (the Pareto front needs both)."
        )
    else:
        click.echo("No trials yet.")


@click.command()
@click.argument("project_dir", type=click.Path(path_type=Path))
@click.option(
    "--out", required=True, type=click.Path(path_type=Path), help="New folder for the SavedModel."
)
@click.option("--trial", "trial_id", help="Trial id to export (default: the best).")
def export(project_dir: Path, out: Path, trial_id: str | None) -> None:
    """Export a trial's encoder as a TF-Hub-loadable SavedModel."""
    from domaintune import api

    path = api.load_search(project_dir).export(out, trial_id)
    click.echo(f"Exported to {path} (load with hub.KerasLayer('{path}'))")


@click.command()
@click.argument("project_dir", type=click.Path(path_type=Path))
@click.option("--port", default=6006, show_default=True, type=click.IntRange(0, 65535))
def tensorboard(project_dir: Path, port: int) -> None:
    """Start TensorBoard on a search's logs (bound to localhost)."""
    from domaintune.reporting.tensorboard_logging import launch_tensorboard

    launch_tensorboard(Path(project_dir) / "logs", port=port)
