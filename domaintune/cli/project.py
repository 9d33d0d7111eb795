"""Commands on a search's project directory: ``results``, ``export``, ``tensorboard``."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import click


@click.command()
@click.argument("project_dir", type=click.Path(path_type=Path))
@click.option(
    "--json",
    "as_json",
    is_flag=True,
    help="Print a JSON list: the base model, then the trials best first, each with its "
    "rank and every metric (null where not measured).",
)
@click.option(
    "--pareto",
    is_flag=True,
    help="Only the trials not dominated on both the search's domain metric "
    "(val_mse, val_spearman or retrieval_r1, per its --domain-metric) and "
    "sts_pearson.",
)
@click.option(
    "--wide",
    is_flag=True,
    help="One table however wide (default: 120 columns, the rest in a block below).",
)
def results(project_dir: Path, as_json: bool, pareto: bool, wide: bool) -> None:
    """Show the trials of a search ranked by its objective, with their metrics."""
    from domaintune import api
    from domaintune.reporting.status import pareto_unavailable
    from domaintune.reporting.table import WIDTH

    result = api.load_search(project_dir)
    trials = result.trials
    if pareto:
        unavailable = pareto_unavailable(
            result.config, result.base_metrics, [t.to_dict() for t in result.trials]
        )
        if unavailable:
            click.echo(textwrap.fill(unavailable, WIDTH), err=as_json)
            if as_json:
                click.echo("[]")
            return
        trials = result.pareto_front()
    if as_json:
        click.echo(json.dumps(result.records(trials), indent=2))
    elif trials:
        if pareto:
            click.echo(_pareto_heading(result, len(trials)))
        click.echo(result.table(trials, wide=wide))
        warning = None if pareto else result.warning()
        if warning:
            click.echo("\n" + textwrap.fill(warning, WIDTH))
    elif pareto:
        from domaintune.objectives import pareto_axes
        from domaintune.reporting.status import domain_metric

        domain, sts = pareto_axes(domain_metric(result.config))
        click.echo(
            f"No completed trials with {domain} and {sts} yet (the Pareto front needs both)."
        )
    else:
        click.echo("No trials yet.")


def _pareto_heading(result, shown: int) -> str:
    from domaintune.objectives import pareto_axes
    from domaintune.reporting.status import HIGHER_BETTER, domain_metric

    domain, sts = pareto_axes(domain_metric(result.config))
    done = sum(t.status == "COMPLETED" for t in result.trials)
    better = "higher" if domain in HIGHER_BETTER else "lower"
    return (
        f"Pareto front on {domain} ({better} is better) and {sts} (higher is better): "
        f"{shown} of {done} completed trials, each beaten on both by no other.\n"
    )


@click.command()
@click.argument("project_dir", type=click.Path(path_type=Path))
@click.option(
    "--out", required=True, type=click.Path(path_type=Path), help="New folder for the SavedModel."
)
@click.option("--trial", "trial_id", help="Trial id to export (default: the best).")
def export(project_dir: Path, out: Path, trial_id: str | None) -> None:
    """Export a trial's encoder as a TF-Hub-loadable SavedModel."""
    from domaintune import api
    from domaintune.export import MODEL_CARD, export_message

    path = api.load_search(project_dir).export(out, trial_id)
    card = json.loads((path / MODEL_CARD).read_text(encoding="utf-8"))
    click.echo(export_message(path, card))


@click.command()
@click.argument("project_dir", type=click.Path(path_type=Path))
@click.option("--port", default=6006, show_default=True, type=click.IntRange(0, 65535))
@click.option(
    "--host",
    default="127.0.0.1",
    show_default=True,
    help="Address to bind; 0.0.0.0 serves other machines too (TensorBoard has no login).",
)
def tensorboard(project_dir: Path, port: int, host: str) -> None:
    """Start TensorBoard on a search's logs: PROJECT_DIR or its logs/ folder."""
    from domaintune.reporting.tensorboard_serve import LOCAL_HOSTS, launch_tensorboard

    if host not in LOCAL_HOSTS:
        click.echo(
            f"Warning: binding to {host}: anyone who can reach this machine on port {port} "
            "can read the search's logs (TensorBoard has no login). Use the default "
            "--host 127.0.0.1 and an SSH tunnel to keep them private.",
            err=True,
        )
    launch_tensorboard(project_dir, port=port, host=host)
