"""Rows 4-5 of ``scale.py``: a Hyperband search over the six-language ESCO
pairs, run as a user runs it (``domaintune data esco``, then ``domaintune
search --recipe retrieval --tuner hyperband``) in a subprocess: its wall time,
peak RSS and checkpoints on disk; then its top-3 configurations retrained from
the base on the full budget, each a one-trial search of its own.

Budget: ``--epochs 27`` (factor 3: brackets of 27, 12, 6 and 4 configurations,
49 in all, 70 trials, 375 epoch units with warm starts) of ``--pairs-per-epoch
1000``; the full budget is 27 epochs = 27k pairs. The recipe's three learning
rates leave only 12 distinct configurations (the oracle never repeats one), so
the rate is searched as a range around them. ``patience=0``: every trial
trains its whole budget (with patience 1, one noisy val_loss on 1,000 pairs
stopped the retrains after a few of their 27 epochs).
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

from _measure import SHARED_DATA
from _report import log, verdict
from _subprocesses import run_search_subprocess

from domaintune.evaluation import names

MAX_EPOCHS = 27
PAIRS_PER_EPOCH = 1000
LEARNING_RATES = "5e-5:3e-4"
KEEP_BEST = 1
GB = 1e9
LANGS = ("en", "de", "fr", "es", "it", "nl")
Row = tuple[str, str, str, str, str]


def _cli(*args: str, timeout: float) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "domaintune.cli", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def build_pairs(workdir: Path) -> tuple[Path, int]:
    """``domaintune data esco`` over the six shared languages, no holdout."""
    out = workdir / "esco_pairs.csv"
    esco = SHARED_DATA / "esco"
    args = ["data", "esco", "--isco", str(esco / "ISCOGroups_en.csv"), "-o", str(out)]
    for lang in LANGS:
        args += ["--occupations", str(esco / f"occupations_{lang}.csv")]
    done = _cli(*args, timeout=900)
    if done.returncode != 0:
        raise RuntimeError(f"data esco failed:\n{done.stdout}\n{done.stderr}")
    with out.open(encoding="utf-8") as f:
        rows = sum(1 for _ in f) - 1
    return out, rows


def _search_args(pairs: Path, project: Path, sts: str, *extra: str) -> list[str]:
    return [
        "search",
        "--train",
        str(pairs),
        "--sts",
        sts,
        "--recipe",
        "retrieval",
        "--pairs-per-epoch",
        str(PAIRS_PER_EPOCH),
        "--keep-best",
        str(KEEP_BEST),
        "--project-dir",
        str(project),
        "--seed",
        "0",  # the same validation split in the search and the retrains
        "--overwrite",
        *extra,
    ]


def run_hyperband(workdir: Path, pairs: Path, sts: str):
    project = workdir / "hyperband"
    args = _search_args(
        pairs,
        project,
        sts,
        "--tuner",
        "hyperband",
        "--epochs",
        str(MAX_EPOCHS),
        "--hp",
        f"learning_rate={LEARNING_RATES}",
        "--hp",
        "patience=0",  # epochs are budget units: a trial trains all of its own
    )
    log(f"[4] domaintune {' '.join(args)}")
    run = run_search_subprocess(
        args, project, (), timeout_s=3 * 3600, log_path=workdir / "hyperband.log"
    )
    log(f"    exit {run.returncode}, {run.trials_done} trials in {run.wall_s / 60:.1f} min")
    return run, project


def _trials(project: Path) -> list[dict]:
    """Completed trials, best first."""
    import domaintune as dt

    done = [t for t in dt.load_search(project).trials if t.objective is not None]
    return sorted(done, key=lambda t: t.objective)


def _configuration(trial) -> dict:
    return {k: v for k, v in trial.hyperparameters.items() if not k.startswith("tuner/")}


def rows_search(run, project: Path, n_pairs: int) -> list[Row]:
    trials = _trials(project) if project.is_dir() else []
    configs = {json.dumps(_configuration(t), sort_keys=True) for t in trials}
    what = (
        f"Hyperband --epochs {MAX_EPOCHS} x {PAIRS_PER_EPOCH:,} pairs over {n_pairs:,} "
        f"six-language pairs, --recipe retrieval, STS-B guard on"
    )
    if run.returncode != 0:
        return [("4", what, "-", "<= 90 min", f"failed: exit {run.returncode}")]
    minutes = run.wall_s / 60
    limit = KEEP_BEST + 1
    return [
        (
            "4",
            f"{what}: wall ({len(configs)} configurations, {len(trials)} trials)",
            f"{minutes:.1f} min",
            "<= 90 min",
            f"2 cores: {verdict(minutes <= 90)}",
        ),
        (
            "4",
            "its peak RSS",
            f"{run.final_peak / GB:.2f} GB",
            "<= 4 GB",
            f"{run.probe_source}: {verdict(run.final_peak <= 4 * GB)}",
        ),
        (
            "4",
            "its checkpoints on disk at once (max over the search)",
            f"{run.max_checkpoints} ({run.max_checkpoint_bytes / GB:.2f} GB)",
            f"<= keep-best + 1 = {limit}",
            f"sampled every second: {verdict(run.max_checkpoints <= limit)}",
        ),
    ]


def rows_retrain(workdir: Path, project: Path, pairs: Path, sts: str, top: int = 3) -> list[Row]:
    """Row 5: the validation recall@1 of the search's best trial (by its
    objective) vs the best of its top configurations retrained from the base
    on the full budget."""
    trials = _trials(project)
    if not trials:
        return [("5", "best trial vs top-3 retrained", "-", "within 0.01", "failed: no trials")]
    best = trials[0].metrics[names.RETRIEVAL_R1]
    picked, seen = [], set()
    for trial in trials:
        key = json.dumps(_configuration(trial), sort_keys=True)
        if key not in seen:
            seen.add(key)
            picked.append(_configuration(trial))
        if len(picked) == top:
            break
    retrained = []
    for i, config in enumerate(picked):
        hp_file = workdir / f"retrain_{i}.json"
        hp_file.write_text(json.dumps({**config, "epochs": MAX_EPOCHS}))
        retrain_project = workdir / f"retrain_{i}"
        args = _search_args(
            pairs,
            retrain_project,
            sts,
            "--tuner",
            "grid",
            "--max-trials",
            "1",
            "--hp-file",
            str(hp_file),
        )
        started = time.perf_counter()
        done = _cli(*args, timeout=3 * 3600)
        if done.returncode != 0:
            raise RuntimeError(f"retrain {i} failed:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}")
        r1 = _trials(retrain_project)[0].metrics[names.RETRIEVAL_R1]
        log(f"[5] retrained {config}: recall@1 {r1:.4f} in {time.perf_counter() - started:.0f} s")
        retrained.append(r1)
    gap = best - max(retrained)
    return [
        (
            "5",
            f"search's best trial vs the best of its top-{len(picked)} configurations "
            f"retrained on the full budget ({MAX_EPOCHS} x {PAIRS_PER_EPOCH:,} pairs), "
            "validation recall@1",
            f"{best:.4f} vs {max(retrained):.4f} ({gap:+.4f})",
            "within 0.01",
            f"retrained: {', '.join(f'{r:.4f}' for r in retrained)}: {verdict(abs(gap) <= 0.01)}",
        )
    ]
