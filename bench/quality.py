"""Does fine-tuning improve the domain on UNSEEN occupations, keeping STS-B?

Builds training pairs from the shared ESCO export with a concept-disjoint
holdout (``domaintune.data.esco``), fine-tunes the embedded ``use-m3`` once per
setting with ``domaintune search`` (one fixed trial each), and prints, next to
the untuned base: retrieval on the held-out occupations (every English
alternative label is a query, the corpus is the held-out preferred labels;
recall@1, recall@5, MRR) and STS-B dev Pearson.

Run from the repository root: ``python bench/quality.py [--quick]``.
"""

from __future__ import annotations

import argparse
import csv
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from _measure import SHARED_DATA, heldout_retrieval

# name -> fixed hyperparameters (everything else at the search-space default)
SETTINGS = {
    "angular_mse (tutorial)": {"loss": "angular_mse", "learning_rate": 2e-5, "batch_size": 16},
    "in_batch_negatives": {
        "loss": "in_batch_negatives",
        "learning_rate": 2e-5,
        "batch_size": 32,
        "scale": 20.0,
    },
    "in_batch_negatives lr 5e-5": {
        "loss": "in_batch_negatives",
        "learning_rate": 5e-5,
        "batch_size": 32,
        "scale": 20.0,
    },
    "in_batch_negatives lr 1e-4": {
        "loss": "in_batch_negatives",
        "learning_rate": 1e-4,
        "batch_size": 32,
        "scale": 20.0,
    },
    "in_batch_negatives b64 lr 1e-4": {
        "loss": "in_batch_negatives",
        "learning_rate": 1e-4,
        "batch_size": 64,
        "scale": 20.0,
    },
    "mixed": {"loss": "mixed", "learning_rate": 5e-5, "batch_size": 32, "mix_weight": 0.05},
    "cosent": {"loss": "cosent", "learning_rate": 2e-5, "batch_size": 32},
}


def write_rows(rows, path: Path) -> None:
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["base", "ref", "similarity", "hard_negative"])
        for r in rows:
            writer.writerow([r.base, r.ref, r.similarity, r.hard_negative])


def evaluate(encoder, retrieval, sts) -> dict[str, float]:
    from domaintune.evaluation.metrics import sts_metrics
    from domaintune.evaluation.retrieval import retrieval_metrics

    encode = encoder.encode_fn()
    found = retrieval_metrics(encode, retrieval)
    return {
        "r1": found["retrieval_r1"],
        "r5": found["retrieval_r5"],
        "mrr": found["retrieval_mrr"],
        "sts": sts_metrics(encode, sts)["sts_pearson"],
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train-pairs", type=int, default=4000)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--quick", action="store_true", help="1,000 pairs, two settings")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    esco = SHARED_DATA / "esco" / "occupations_en.csv"
    if not esco.exists():
        print(f"needs the shared ESCO export at {esco}", file=sys.stderr)
        return 2
    settings = dict(list(SETTINGS.items())[:2]) if args.quick else SETTINGS
    n_pairs = 1000 if args.quick else args.train_pairs

    from domaintune.data.esco import build_pairs
    from domaintune.data.esco_exports import read_occupations
    from domaintune.data.sts import load_sts
    from domaintune.models.resolver import resolve_base
    from domaintune.models.trainable_encoder import TrainableEncoder
    from domaintune.search.runner import SearchConfig, run_search

    occupations = read_occupations([esco])
    built = build_pairs(occupations, seed=args.seed, holdout_fraction=0.2)
    rng = np.random.default_rng(args.seed)
    train = [built.train[i] for i in sorted(rng.choice(len(built.train), n_pairs, replace=False))]
    val = [built.holdout[i] for i in sorted(rng.choice(len(built.holdout), 500, replace=False))]
    retrieval = heldout_retrieval(occupations, built.heldout_uris)
    sts = load_sts(str(SHARED_DATA / "stsbenchmark"), "dev")
    print(
        f"train pairs {len(train)} (positives >= 0.99: "
        f"{sum(r.similarity >= 0.99 for r in train)}), holdout occupations "
        f"{len(built.heldout_uris)}, queries {len(retrieval.queries)}, "
        f"corpus {len(retrieval.corpus)}"
    )

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        write_rows(train, tmp / "train.csv")
        write_rows(val, tmp / "val.csv")
        encoder = TrainableEncoder(resolve_base("use-m3"))
        rows.append(("base (untuned)", evaluate(encoder, retrieval, sts), 0.0))
        for name, hps in settings.items():
            project = tmp / name.replace(" ", "_")
            overrides = {k: [v] for k, v in {**hps, "epochs": args.epochs}.items()}
            started = time.perf_counter()
            run_search(
                SearchConfig(
                    train=str(tmp / "train.csv"),
                    val=str(tmp / "val.csv"),
                    sts=str(SHARED_DATA / "stsbenchmark"),
                    max_trials=1,
                    project_dir=str(project),
                    seed=args.seed,
                    hp_overrides=overrides,
                )
            )
            seconds = time.perf_counter() - started
            encoder.load_weights(project / "trial_0" / "encoder.npz")
            rows.append((name, evaluate(encoder, retrieval, sts), seconds))

    base = rows[0][1]
    print(
        f"\n{'setting':<28} {'R@1':>7} {'ΔR@1':>7} {'R@5':>7} {'MRR':>7} {'STS-B':>7} "
        f"{'ΔSTS':>8} {'train s':>8}"
    )
    for name, m, seconds in rows:
        print(
            f"{name:<28} {m['r1']:7.4f} {m['r1'] - base['r1']:+7.4f} {m['r5']:7.4f} "
            f"{m['mrr']:7.4f} {m['sts']:7.4f} {m['sts'] - base['sts']:+8.4f} {seconds:8.0f}"
        )
    best = max(rows[1:], key=lambda r: r[1]["r1"])
    met = best[1]["r1"] - base["r1"] >= 0.03 and abs(best[1]["sts"] - base["sts"]) <= 0.01
    print(
        f"\ngoal (R@1 +3 points, STS-B within 0.01) with '{best[0]}': {'met' if met else 'not met'}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
