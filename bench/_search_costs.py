"""Rows 4-6 of ``run.py``: one trial's wall time (phases from the tuner's hooks), and the
peak RSS and disk use of a search run as ``domaintune search`` in a subprocess."""

from __future__ import annotations

import contextlib
import io
import shutil
import sys
import time
from pathlib import Path

import _subprocesses
from _measure import median
from _report import Row, log, verdict
from _subprocesses import SearchRun

from domaintune.search.callbacks import SearchCallback

GB = 1e9
TRIAL_BATCH = 16
# Row 4's search: the searched values at their defaults, except learning
# rates near the default (the oracle never repeats a trial's values).
TRIAL_HPS = {
    "batch_size": [TRIAL_BATCH],
    "epochs": [1],
    "learning_rate": [1.6e-5, 1.7e-5, 1.8e-5, 1.9e-5, 2e-5, 2.1e-5, 2.2e-5, 2.3e-5],
    "clipnorm": [1.0],
    "clip_epsilon": [1e-5],
}


# ---------------------------------------------------------------- 4. one trial


class _PhaseTimes(SearchCallback):
    """Each trial's wall time and its phases' seconds, from the tuner's hooks."""

    def __init__(self):
        self.trials: list[dict[str, float]] = []  # per ended trial: phases and "trial"
        self._phases: dict[str, float] = {}

    def on_trial_begin(self, trial_id, hyperparameters) -> None:
        self._phases = {}

    def on_phase_end(self, trial_id, phase, seconds) -> None:
        self._phases[phase] = self._phases.get(phase, 0.0) + seconds

    def on_trial_end(self, trial_id, status, metrics, seconds, message=None) -> None:
        self.trials.append({**self._phases, "trial": seconds})


def bench_trial(args, workdir: Path) -> tuple[list[dict[str, float]], float]:
    """One search of 1 + repeats trials: the first builds and traces the
    model (once per search), the others are the steady per-trial cost."""
    from domaintune.search.runner import SearchConfig, run_search

    trials = args.repeats + 1
    log(f"[4] a {trials}-trial search (batch {TRIAL_BATCH}, epochs 1)")
    project = workdir / "trials"
    config = SearchConfig(
        train=str(args.pairs),
        sts=str(args.sts),
        max_trials=trials,
        tuner="random",
        project_dir=str(project),
        hp_overrides=dict(TRIAL_HPS),
    )
    phases = _PhaseTimes()
    out = io.StringIO()
    t0 = time.perf_counter()
    with contextlib.redirect_stdout(sys.stderr if args.verbose else out):
        run_search(config, overwrite=True, callbacks=[phases])
    total = time.perf_counter() - t0
    shutil.rmtree(project, ignore_errors=True)
    if len(phases.trials) != trials:
        raise RuntimeError(
            f"{trials}-trial search reported {len(phases.trials)} trials:\n{out.getvalue()[-2000:]}"
        )
    for i, found in enumerate(phases.trials):
        log(f"    trial {i + 1}: {found['trial']:.2f} s (fit {found.get('fit', 0.0):.2f} s)")
    return phases.trials, total


def rows_trial(trials: list[dict[str, float]], total: float) -> list[Row]:
    def breakdown(found: dict[str, float]) -> str:
        parts = {k: v for k, v in found.items() if k != "trial"}
        parts["other"] = max(found["trial"] - sum(parts.values()), 0.0)
        return ", ".join(f"{k} {v:.2f}" for k, v in sorted(parts.items(), key=lambda kv: -kv[1]))

    first, steady = trials[0], trials[1:]
    secs = median([t["trial"] for t in steady])
    keys = sorted({k for t in steady for k in t})
    typical = {k: median([t.get(k, 0.0) for t in steady]) for k in keys}
    each = " ".join(f"{t['trial']:.2f}" for t in trials)
    return [
        Row(
            "4",
            f"one trial wall s (trials 2-{len(trials)} of a search, batch {TRIAL_BATCH}, 1 epoch)",
            f"{secs:.1f} s",
            f"first trial {first['trial']:.1f} s",
            "-",
            "<= 8 s",
            verdict(secs <= 8.0),
            f"trial s: {each} (the first builds and "
            f"traces the model, once per search; whole search {total:.0f} s); median s by "
            f"part: {breakdown(typical)}; first trial: {breakdown(first)}",
        )
    ]


# ---------------------------------------------------------------- 5./6. memory and disk


def bench_search_memory(args, workdir: Path) -> tuple[SearchRun, Path]:
    project = workdir / f"search-{args.trials}"
    cli = [
        "search",
        "--train",
        str(args.pairs),
        "--sts",
        str(args.sts),
        "--tuner",
        "random",
        "--max-trials",
        str(args.trials),
        "--epochs",
        "1",
        "--project-dir",
        str(project),
        "--overwrite",
    ]
    log(
        f"[5] {args.trials}-trial random search in a subprocess, sampling its RSS: "
        f"domaintune {' '.join(cli)}"
    )
    checkpoints = tuple(range(1, args.trials + 1))
    run = _subprocesses.run_search_subprocess(
        cli, project, checkpoints, log_path=workdir / f"search-{args.trials}.log"
    )
    log(f"    exit {run.returncode}, {run.trials_done} trials in {run.wall_s:.0f} s")
    if args.verbose or run.returncode != 0:
        log(run.output_tail)
    return run, project


def rows_memory(args, run: SearchRun) -> list[Row]:
    last = args.trials
    p2, pn = run.peak_after.get(2), run.peak_after.get(last)
    if run.returncode != 0 or p2 is None or pn is None:
        why = f"search exit {run.returncode}, {run.trials_done} trials finished"
        return [
            Row(
                "5",
                f"peak RSS after trials 2 and {last}",
                "-",
                "-",
                "-",
                "<= 3 GB, +5%",
                f"failed: {why}",
            )
        ]
    growth = pn / p2 - 1
    return [
        Row(
            "5",
            f"peak RSS after trial 2 ({last}-trial random search, epochs 1)",
            f"{p2 / GB:.2f} GB",
            "-",
            "-",
            "<= 3 GB",
            verdict(p2 <= 3 * GB),
        ),
        Row(
            "5",
            f"peak RSS after trial {last}",
            f"{pn / GB:.2f} GB",
            f"{p2 / GB:.2f} GB trial 2",
            f"{growth:+.1%}",
            "<= 3 GB, <= +5%",
            verdict(pn <= 3 * GB and growth <= 0.05),
            f"one search (not a timing), {run.wall_s:.0f} s; peak after each trial (GB): "
            + " ".join(f"{run.peak_after[n] / GB:.2f}" for n in sorted(run.peak_after))
            + f"; at exit {run.final_peak / GB:.2f}; read from {run.probe_source}",
        ),
    ]


def rows_disk(args, run: SearchRun, project: Path) -> list[Row]:
    what = f"project dir bytes after {args.trials} trials vs one encoder checkpoint"
    if not project.is_dir():
        return [Row("6", what, "-", "-", "-", "<= 1.2x", "failed: no project dir")]
    size, allocated = _subprocesses.tree_bytes(project)
    checkpoints = sorted(project.glob("trial_*/encoder.npz"))
    if checkpoints:
        ckpt = checkpoints[0].stat().st_size
        ref = f"{ckpt / 1e6:,.0f} MB ckpt (x{len(checkpoints)})"
    else:  # no kept checkpoint: the encoder's variables
        from domaintune.models.resolver import resolve_base

        ckpt = _subprocesses.tree_bytes(resolve_base("use-m3") / "variables")[0]
        ref = f"{ckpt / 1e6:,.0f} MB variables (no ckpt kept)"
    ratio = size / ckpt
    logs = _subprocesses.tree_bytes(project / "logs")[0] if (project / "logs").is_dir() else 0
    kept = sum(p.stat().st_size for p in checkpoints)
    return [
        Row(
            "6",
            what,
            f"{size / 1e6:,.1f} MB",
            ref,
            f"{ratio:.2f}x",
            "<= 1.2x",
            verdict(ratio <= 1.2),
            f"{size:,} bytes ({allocated / 1e6:,.1f} MB allocated): checkpoints "
            f"{kept / 1e6:,.1f} MB, TensorBoard logs {logs / 1e6:,.2f} MB, "
            f"the rest {(size - logs - kept) / 1e6:,.2f} MB",
        )
    ]
