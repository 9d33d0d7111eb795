"""The ``domaintune`` command line.

Commands stay thin: they parse options and hand over to the library. A
:class:`~domaintune.errors.UserError` anywhere becomes one ``Error: ...`` line
and exit status 1, never a traceback.
"""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path

import click

from domaintune.errors import UserError


class _Group(click.Group):
    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except UserError as exc:
            raise click.ClickException(str(exc)) from None
        except KeyboardInterrupt:
            click.echo("\nInterrupted. A search resumes when you rerun the same command "
                       "(the running trial starts over).", err=True)
            ctx.exit(130)


@click.group(cls=_Group)
@click.version_option(package_name="domaintune")
@click.option("-v", "--verbose", is_flag=True, help="Show progress logs of TensorFlow and domaintune.")
def main(verbose: bool) -> None:
    """Domain-adapt sentence encoders by siamese fine-tuning and KerasTuner search."""
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING,
                        format="%(message)s", stream=sys.stderr)
    logging.getLogger("domaintune").setLevel(logging.INFO)


def pair_format_options(command):
    """--columns/--scale/--dedupe: how pair files are read (search and evaluate)."""
    command = click.option("--dedupe", type=click.Choice(["error", "mean"]), default="error",
                           show_default=True,
                           help="Same pair with different scores: an error, or average them.")(command)
    command = click.option("--scale", type=click.Choice(["angular", "sts", "cosine"]),
                           default="angular", show_default=True,
                           help="Score scale of pair files: angular [0,1], sts 0-5, cosine -1..1 "
                                "(converted to angular).")(command)
    return click.option("--columns", metavar="BASE,REF,SCORE", default="base,ref,similarity",
                        show_default=True, help="Column names of pair files.")(command)


def _pair_format(columns: str, scale: str, dedupe: str) -> dict:
    from domaintune.data.pairs import parse_columns

    return {"columns": list(parse_columns(columns)), "scale": scale, "dedupe": dedupe}


STS_HELP = ("STS Benchmark: 'auto' (DOMAINTUNE_STS_DIR, the cache, or a download), a folder "
            "with sts-dev.csv/sts-test.csv, the Stsbenchmark.tar.gz archive, one CSV, or 'none'.")


@main.command()
@click.option("--model", "model_spec", default="use-m3", show_default=True,
              help="Encoder: 'use-m3', a SavedModel directory (e.g. an export), or a TF-Hub handle/URL.")
@click.option("--sts", "sts_spec", default="auto", show_default=True, help=STS_HELP)
@click.option("--split", type=click.Choice(["dev", "test"]), default="dev", show_default=True)
@click.option("--pairs", "pairs_path", type=click.Path(path_type=Path),
              help="Domain pairs (base,ref,similarity) to report MSE, Pearson and Spearman on.")
@click.option("--heatmap", "heatmap_path", type=click.Path(path_type=Path),
              help="Write a cosine-similarity heatmap PNG of --titles (default: the tutorial's nine).")
@click.option("--titles", "titles_path", type=click.Path(path_type=Path),
              help="Text file, one title per line, for --heatmap.")
@click.option("--retrieval", "retrieval_path", type=click.Path(path_type=Path),
              help="ESCO occupations export or query,target CSV: report retrieval recall@1/@5 and MRR.")
@click.option("--batch-size", default=256, show_default=True, type=click.IntRange(1, 100_000))
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object instead of a table.")
@pair_format_options
def evaluate(columns: str, scale: str, dedupe: str, model_spec: str, sts_spec: str, split: str,
             pairs_path: Path | None,
             heatmap_path: Path | None, titles_path: Path | None, batch_size: int,
             as_json: bool, retrieval_path: Path | None) -> None:
    """Score an encoder on STS-B and, optionally, on domain pairs and retrieval."""
    from domaintune.data.pairs import load_pairs
    from domaintune.data.sts import load_sts
    from domaintune.data.titles import TUTORIAL_TITLES, read_titles
    from domaintune.evaluation.metrics import pair_metrics, sts_metrics
    from domaintune.models.encoding import batched_encoder, load_encoder_layer
    from domaintune.models.resolver import resolve_base
    from domaintune.data.retrieval_sets import load_retrieval_set
    from domaintune.evaluation.retrieval import retrieval_metrics

    # Read every input before the (slow) model load, so mistakes surface at once.
    sts = load_sts(sts_spec, split)
    pairs = load_pairs(pairs_path, **_pair_format(columns, scale, dedupe))[0] if pairs_path else None
    rset = load_retrieval_set(retrieval_path) if retrieval_path else None
    titles = read_titles(titles_path) if titles_path else list(TUTORIAL_TITLES)
    if heatmap_path and not heatmap_path.parent.is_dir():
        raise UserError(f"--heatmap: folder '{heatmap_path.parent}' does not exist; create it first.")
    if sts is None and pairs is None and rset is None and heatmap_path is None:
        raise UserError("Nothing to evaluate: with --sts none, pass --pairs CSV, "
                        "--retrieval CSV or --heatmap PNG.")

    encode = batched_encoder(load_encoder_layer(resolve_base(model_spec)), batch_size)
    result: dict[str, object] = {"model": model_spec}
    if sts is not None:
        result.update(sts_metrics(encode, sts), sts_split=split, sts_source=sts.source)
    if pairs is not None:
        result.update(pair_metrics(encode, pairs), pairs_source=str(pairs_path))
    if rset is not None:
        result.update(retrieval_metrics(encode, rset), retrieval_source=str(retrieval_path))
    if heatmap_path:
        from domaintune.reporting.plotting import cosine_similarity_matrix, save_similarity_heatmap

        save_similarity_heatmap(heatmap_path, titles, cosine_similarity_matrix(encode(titles)),
                                title=f"Cosine similarity: {model_spec}")
        result["heatmap"] = str(heatmap_path)
    _print_result(result, as_json)


@main.command()
@click.option("--train", "train_path", type=click.Path(path_type=Path),
              help="Domain pairs base,ref,similarity (default: the bundled job-title sample).")
@click.option("--val", "val_path", type=click.Path(path_type=Path),
              help="Validation pairs; default: a grouped --val-split of --train.")
@click.option("--val-split", default=0.2, show_default=True, type=click.FloatRange(0, 1, min_open=True, max_open=True),
              help="Fraction of --train held out for validation (pairs sharing a text stay together).")
@click.option("--base", default="use-m3", show_default=True,
              help="Base encoder: 'use-m3', a TF-Hub handle/URL, or a SavedModel directory.")
@click.option("--sts", "sts_spec", default="auto", show_default=True, help=STS_HELP)
@click.option("--tuner", type=click.Choice(["random", "bayesian", "hyperband", "grid"]),
              default="random", show_default=True)
@click.option("--max-trials", default=5, show_default=True, type=click.IntRange(1, 10_000))
@click.option("--epochs", default=None, type=click.IntRange(1, 1000),
              help="Maximum epochs per trial (early stopping on val_loss); same as --hp epochs=N. [default: 2]")
@click.option("--objective", default="guarded", show_default=True,
              help="guarded (domain fit + STS-B guard), val_mse, or sts_pearson.")
@click.option("--domain-metric", type=click.Choice(["mse", "spearman", "retrieval"]),
              default="mse", show_default=True,
              help="What the objective reads of the validation pairs: val MSE, Spearman, or "
                   "retrieval recall@1 (pairs at score 1.0 as query -> target).")
@click.option("--objective-weight", default=1.0, show_default=True, type=float,
              help="Weight of the STS-B term in the guarded objective.")
@click.option("--tolerance", default=0.005, show_default=True, type=float,
              help="STS-B Pearson drop below the base that the guarded objective tolerates.")
@click.option("--project-dir", default="domaintune_runs/search", show_default=True,
              type=click.Path(path_type=Path), help="Where trials, logs and checkpoints go.")
@click.option("--overwrite", is_flag=True, help="Start afresh instead of resuming the project dir.")
@click.option("--keep-best", default=1, show_default=True, type=click.IntRange(1, 1000),
              help="How many best trials keep their encoder checkpoint.")
@click.option("--seed", default=0, show_default=True, type=int)
@click.option("--max-consecutive-failures", default=3, show_default=True, type=click.IntRange(1, 1000))
@click.option("--hp", "hp_options", multiple=True, metavar="NAME=VALUE|V1,V2|MIN:MAX",
              help="Fix or narrow a hyperparameter (repeatable).")
@click.option("--hp-file", type=click.Path(path_type=Path),
              help="YAML/JSON mapping of hyperparameter overrides.")
@click.option("--role", type=click.Choice(["chief", "worker"]),
              help="Distributed search: the chief serves the oracle, workers run trials "
                   "(or set KERASTUNER_TUNER_ID/_ORACLE_IP/_ORACLE_PORT).")
@click.option("--oracle", "oracle_address", metavar="HOST:PORT",
              help="The chief's oracle address (the chief listens on it).")
@click.option("--worker-id", help="A worker's unique name, e.g. 1.")
@click.option("--lease-timeout", default=60.0, show_default=True, type=click.FloatRange(1),
              help="Chief: seconds without a worker heartbeat before its trial is retried elsewhere.")
@click.option("--connect-timeout", default=120.0, show_default=True, type=click.FloatRange(1),
              help="Worker: seconds to wait for the chief before giving up.")
@click.option("--strategy", type=click.Choice(["none", "mirrored"]), default="none",
              show_default=True, help="mirrored: each trial on all local GPUs (MirroredStrategy).")
@pair_format_options
def search(columns, scale, dedupe, role, oracle_address, worker_id, lease_timeout,
           connect_timeout, strategy, train_path, val_path, val_split, base, sts_spec, tuner, max_trials, epochs,
           objective, domain_metric, objective_weight, tolerance, project_dir, overwrite, keep_best, seed,
           max_consecutive_failures, hp_options, hp_file) -> None:
    """Search for the best fine-tuning of --base on domain pairs.

    With no options, runs a short demo search on the bundled job-title sample.
    Rerunning the same command resumes it.
    """
    from domaintune.data.pairs import sample_path
    from domaintune.search.runner import SearchConfig, run_search
    from domaintune.search.space import load_hp_file, parse_hp_options

    overrides = load_hp_file(hp_file) if hp_file else {}
    overrides.update(parse_hp_options(hp_options))
    if epochs is not None:
        if "epochs" in overrides:
            raise UserError("--epochs and --hp epochs=... both set the epochs; keep one.")
        overrides["epochs"] = [epochs]
    config = SearchConfig(
        train=str(train_path or sample_path()), val=str(val_path) if val_path else None,
        val_split=val_split, base=base, sts=sts_spec, tuner=tuner, max_trials=max_trials,
        objective=objective, domain_metric=domain_metric, objective_weight=objective_weight,
        tolerance=tolerance,
        project_dir=str(project_dir), keep_best=keep_best, seed=seed,
        max_consecutive_failures=max_consecutive_failures, hp_overrides=overrides,
        pair_format=_pair_format(columns, scale, dedupe))
    from domaintune.search.distributed import cluster_from_options

    run_search(config, overwrite=overwrite,
               cluster=cluster_from_options(role, oracle_address, worker_id),
               lease_seconds=lease_timeout, connect_timeout=connect_timeout, strategy=strategy)


@main.command()
@click.argument("project_dir", type=click.Path(path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list of trials.")
@click.option("--pareto", is_flag=True, help="Only the trials not dominated on val_mse / sts_pearson.")
def results(project_dir: Path, as_json: bool, pareto: bool) -> None:
    """Show the trials of a search with their metrics."""
    from domaintune.objectives import pareto_front
    from domaintune.reporting.results import format_table, load_base_metrics, load_trials

    trials = load_trials(project_dir)
    if pareto:
        trials = pareto_front([t for t in trials if t["status"] == "COMPLETED"])
    if as_json:
        click.echo(json.dumps(trials, indent=2))
    elif trials:
        click.echo(format_table(trials, load_base_metrics(project_dir)))
    else:
        click.echo("No completed trials with val_mse and sts_pearson yet (the Pareto front "
                   "needs both)." if pareto else "No trials yet.")


@main.command()
@click.argument("project_dir", type=click.Path(path_type=Path))
@click.option("--out", required=True, type=click.Path(path_type=Path), help="New folder for the SavedModel.")
@click.option("--trial", "trial_id", help="Trial id to export (default: the best).")
def export(project_dir: Path, out: Path, trial_id: str | None) -> None:
    """Export a trial's encoder as a TF-Hub-loadable SavedModel."""
    from domaintune.export import export_trial

    path = export_trial(project_dir, out, trial_id)
    click.echo(f"Exported to {path} (load with hub.KerasLayer('{path}'))")


@main.command()
@click.argument("project_dir", type=click.Path(path_type=Path))
@click.option("--port", default=6006, show_default=True, type=click.IntRange(0, 65535))
def tensorboard(project_dir: Path, port: int) -> None:
    """Start TensorBoard on a search's logs (bound to localhost)."""
    from domaintune.reporting.tensorboard_logging import launch_tensorboard

    launch_tensorboard(Path(project_dir) / "logs", port=port)


def _print_result(result: dict, as_json: bool) -> None:
    if as_json:
        click.echo(json.dumps(result, indent=2))
        return
    width = max(map(len, result))
    for key, value in result.items():
        shown = f"{value:.4f}" if isinstance(value, float) else value
        click.echo(f"{key:<{width}}  {shown}")


from domaintune.cli.data import data  # noqa: E402  (the `domaintune data` group)

main.add_command(data)

