"""Peak memory and step time of USE-m3 in-batch training at batch 1,024:
plain steps vs GradCache (``grad_cache_chunk``).

Each setting runs in a fresh process (peak RSS, ``VmHWM``, only grows): it
loads USE-m3, builds the in_batch_negatives model, and fits one epoch over
ESCO label pairs (alternative -> preferred label, six languages) in unique-text
batches; it reports the peak before training, after it, and each step's time.

    python bench/grad_cache_memory.py                 # plain and chunk 128, +- hard negatives
    python bench/grad_cache_memory.py --chunks 0 64 128 --batch-size 512
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path


def _memory_mb() -> dict[str, float]:
    fields = {}
    for line in Path("/proc/self/status").read_text().splitlines():
        name, _, value = line.partition(":")
        if name in ("VmHWM", "VmRSS"):
            fields[name] = int(value.split()[0]) / 1024
    return fields


def _pairs(batch_size: int, hard: bool):
    import numpy as np
    from _measure import esco_label_rows

    from domaintune.data.pairs import PairSet

    rows = esco_label_rows()[: 4 * batch_size]
    # A hard negative per pair: another pair's label, made distinct.
    negatives = [f"{rows[(i + 1) % len(rows)][1]} assistant" for i in range(len(rows))]
    return PairSet(
        [a for a, _ in rows],
        [b for _, b in rows],
        np.ones(len(rows), np.float32),
        "esco",
        negatives if hard else None,
    )


def child(chunk: int, batch_size: int, hard: bool) -> dict:
    import keras_tuner as kt

    from domaintune import tf_runtime
    from domaintune.models.resolver import resolve_base
    from domaintune.models.siamese import build_model, pair_dataset
    from domaintune.models.trainable_encoder import TrainableEncoder
    from domaintune.search.space import SearchSpace

    pairs = _pairs(batch_size, hard)
    encoder = TrainableEncoder(resolve_base("use-m3"))
    fixed = {"loss": "in_batch_negatives", "learning_rate": 1e-4}
    fixed.update({"batch_size": batch_size, "grad_cache_chunk": chunk})
    space = SearchSpace().with_overrides({k: [v] for k, v in fixed.items()})
    model = build_model(space.declare(kt.HyperParameters()), encoder.keras_layer(trainable=True))
    data = pair_dataset(pairs, batch_size, shuffle=True, unique_texts=True, positives_only=0.99)
    steps: list[float] = []

    class StepTimes(tf_runtime.load().tf_keras.callbacks.Callback):
        def on_train_batch_begin(self, batch, logs=None):
            self.started = time.perf_counter()

        def on_train_batch_end(self, batch, logs=None):
            steps.append(time.perf_counter() - self.started)

    before = _memory_mb()["VmHWM"]
    history = model.fit(data, epochs=1, verbose=0, callbacks=[StepTimes()])
    return {
        "chunk": chunk,
        "batch_size": batch_size,
        "hard_negatives": hard,
        "peak_before_mb": round(before),
        "peak_after_mb": round(_memory_mb()["VmHWM"]),
        "step_seconds": [round(s, 2) for s in steps],  # the first includes tracing
        "loss": history.history["loss"][-1],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chunks", type=int, nargs="+", default=[0, 128])
    parser.add_argument("--batch-size", type=int, default=1024)
    parser.add_argument(
        "--child", nargs=3, metavar=("CHUNK", "BATCH", "HARD"), help=argparse.SUPPRESS
    )
    args = parser.parse_args()
    if args.child:
        chunk, batch, hard = args.child
        print(json.dumps(child(int(chunk), int(batch), hard == "1")))
        return
    for hard in (False, True):
        for chunk in args.chunks:
            command = [sys.executable, __file__, "--child", str(chunk), str(args.batch_size)]
            out = subprocess.run(
                command + ["1" if hard else "0"], capture_output=True, text=True, check=True
            )
            result = json.loads(out.stdout.strip().splitlines()[-1])
            print(
                f"batch {result['batch_size']}, chunk {chunk or 'off'}, "
                f"hard negatives {'yes' if hard else 'no'}: peak {result['peak_before_mb']} MB "
                f"before training, {result['peak_after_mb']} MB after; steps (s) "
                f"{result['step_seconds']}"
            )


if __name__ == "__main__":
    main()
