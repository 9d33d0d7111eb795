"""In-trial checkpoints (``--checkpoint-minutes``): what a save costs, and the
work a SIGKILL loses (issue 13, row 7 of ``bench/scale.py``).

    python bench/kill_resume.py save-cost                 # USE-m3, ~1 min of training
    python bench/kill_resume.py save-cost --seconds 30 --batch-size 256
    python bench/kill_resume.py kill --minutes 1 --kill-after 2.5 -- \\
        --train pairs.csv --sts none --epochs 3 --max-trials 1

``save-cost`` trains USE-m3 (``in_batch_negatives``, lazy Adam) on the
six-language ESCO label pairs (alternative -> preferred label) for
``--seconds``, then writes the trial's state three times in a row and reports
the median seconds, the file's size and the embedding rows it holds.

``kill`` runs ``domaintune search`` with the options after ``--`` and
``--checkpoint-minutes M`` in a fresh project directory, SIGKILLs it
``--kill-after`` minutes after its first state was written (mid-trial), and
reruns the same command. Work lost: the wall time from the last state save
to the kill (the rerun continues from that state, which it says). ``import
kill_resume; kill_resume.measure_kill(...)`` gives the same as a dict.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def _esco_pairs():
    import numpy as np
    from _measure import esco_label_rows

    from domaintune.data.pairs import PairSet

    rows = esco_label_rows()
    scores = np.ones(len(rows), np.float32)
    return PairSet([a for a, _ in rows], [b for _, b in rows], scores, "esco", None)


def save_cost(base: str, seconds: float, batch_size: int, saves: int = 3) -> dict:
    """Train ``seconds``, then write the state ``saves`` times: median seconds, size."""
    import keras_tuner as kt

    from domaintune import tf_runtime
    from domaintune.models.resolver import resolve_base
    from domaintune.models.siamese import build_model
    from domaintune.models.trainable_encoder import TrainableEncoder
    from domaintune.search.fit_callbacks import RestoreBestEpoch, changed_rows
    from domaintune.search.space import SearchSpace
    from domaintune.search.trial_batches import trial_batches
    from domaintune.search.trial_state import trial_checkpoints

    pairs = _esco_pairs()
    encoder = TrainableEncoder(resolve_base(base))
    fixed = {"loss": "in_batch_negatives", "learning_rate": 1e-4, "batch_size": batch_size}
    space = SearchSpace().with_overrides({k: [v] for k, v in fixed.items()})
    values = space.declare(kt.HyperParameters())
    model = build_model(values, encoder.keras_layer(trainable=True))
    trial_dir = Path(tempfile.mkdtemp(prefix="kill_resume_"))
    checkpoints = trial_checkpoints(
        trial_dir,
        "0",
        values,
        minutes=1e9,  # saved below, by hand
        seed=0,
        start_epoch=0,
        encoder=encoder,
        pairs=len(pairs),
    )
    val = pairs.subset(range(256))
    train, val_data, clock = trial_batches(
        model.pair_loss, values, pairs, val, seed=0, encode=encoder.encode_fn
    )
    epochs = 1000  # until the saves (early stopping may end it sooner)
    best = RestoreBestEpoch(encoder, epochs - 1, changed_rows(model))
    found: dict = {}

    class SaveAfter(tf_runtime.load().tf_keras.callbacks.Callback):
        def on_train_begin(self, logs=None):
            self.started = time.perf_counter()

        def on_train_batch_end(self, batch, logs=None):
            if time.perf_counter() - self.started < seconds:
                return
            for _ in range(saves):
                checkpoints.save()
            table = max(encoder.variables, key=lambda v: v.shape.num_elements())
            found.update(
                trained_seconds=round(time.perf_counter() - self.started, 1),
                steps=int(model.optimizer.iterations.numpy()),
                best_epoch_snapshot=best.saved,
                changed_rows=int(len(changed_rows(model)(table))),
                table_rows=int(table.shape[0]),
            )
            self.model.stop_training = True

    model.fit(
        checkpoints.dataset(train),
        validation_data=val_data,
        epochs=epochs,
        verbose=0,
        callbacks=[best, *clock, checkpoints.watching(best, clock), SaveAfter()],
    )
    size = checkpoints.path.stat().st_size
    checkpoints.path.unlink()
    return {
        "base": base,
        "batch_size": batch_size,
        **found,
        "save_seconds_median": round(statistics.median(checkpoints.save_seconds), 3),
        "save_seconds": [round(s, 3) for s in checkpoints.save_seconds],
        "state_mb": round(size / 2**20, 1),
    }


def measure_kill(search_args: list[str], minutes: float, kill_after: float) -> dict:
    """Row 7: SIGKILL a search ``kill_after`` minutes after its first state
    save, rerun it; the minutes of work lost and where the rerun continued."""
    from domaintune.search.state_file import StateReader
    from domaintune.search.trial_state import STATE_NAME

    project = Path(tempfile.mkdtemp(prefix="kill_resume_")) / "search"
    command = [sys.executable, "-m", "domaintune.cli", "search", *search_args]
    command += ["--project-dir", str(project), "--checkpoint-minutes", str(minutes)]
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, start_new_session=True)
    first = None
    while True:
        if proc.poll() is not None:
            raise RuntimeError("the search ended before the kill: give it a longer trial")
        states = list(project.glob(f"trial_*/{STATE_NAME}"))
        if states and first is None:
            first = time.time()
        if first is not None and time.time() - first >= kill_after * 60:
            break
        time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGKILL)
    killed_at = time.time()
    proc.wait()
    state = next(project.glob(f"trial_*/{STATE_NAME}"))
    saved = StateReader(state)
    meta = saved.meta
    saved.close()
    size_mb = round(state.stat().st_size / 2**20, 1)
    started = time.perf_counter()
    rerun = subprocess.run(command, capture_output=True, text=True)
    continued = re.search(r"continuing from its state saved .*", rerun.stdout + rerun.stderr)
    lost = (killed_at - meta["saved_at"]) / 60
    return {
        "checkpoint_minutes": minutes,
        "lost_minutes": round(lost, 3),
        "met": lost <= minutes,
        "state": {"trial": state.parent.name, "epoch": meta["epoch"], "batch": meta["batch"]},
        "state_mb": size_mb,
        "rerun": continued.group(0) if continued else "did not continue from the state",
        "rerun_seconds": round(time.perf_counter() - started, 1),
        "rerun_exit": rerun.returncode,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    cost = sub.add_parser("save-cost", help="seconds and MB per state save")
    cost.add_argument("--base", default="use-m3")
    cost.add_argument("--seconds", type=float, default=60.0, help="training before the saves")
    cost.add_argument("--batch-size", type=int, default=64)
    kill = sub.add_parser("kill", help="work lost by a SIGKILL mid-trial (row 7)")
    kill.add_argument("--minutes", type=float, default=1.0, help="--checkpoint-minutes")
    kill.add_argument("--kill-after", type=float, default=2.5, help="minutes after the 1st save")
    kill.add_argument("search_args", nargs=argparse.REMAINDER, help="-- then search options")
    args = parser.parse_args()
    if args.command == "save-cost":
        result = save_cost(args.base, args.seconds, args.batch_size)
    else:
        rest = args.search_args[1:] if args.search_args[:1] == ["--"] else args.search_args
        result = measure_kill(rest, args.minutes, args.kill_after)
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
