"""Retrieval benchmark: the untuned encoder on the ESCO occupations export.

Every alternative label of every occupation is a query; the corpus is every
preferred label (see ``domaintune/retrieval.py`` for the rules). Prints
recall@1/@5, MRR, the time to load, encode and score, and queries per second::

    python bench/retrieval.py                       # use-m3, ../shared/data/esco
    python bench/retrieval.py --model runs/export   # any encoder evaluate accepts
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

from _measure import SHARED_DATA

DEFAULT_ESCO = SHARED_DATA / "esco" / "occupations_en.csv"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument(
        "--esco",
        type=Path,
        default=DEFAULT_ESCO,
        help="ESCO occupations export or query,target CSV (default: %(default)s)",
    )
    p.add_argument("--model", default="use-m3", help="encoder spec, as for `domaintune evaluate`")
    p.add_argument("--batch-size", type=int, default=256)
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    from domaintune.data.retrieval_sets import load_retrieval_set
    from domaintune.errors import UserError
    from domaintune.evaluation.retrieval import retrieval_metrics

    if not args.esco.exists():
        sys.exit(f"ESCO export not found at {args.esco}. Pass --esco PATH.")
    try:
        t0 = time.perf_counter()
        rset = load_retrieval_set(args.esco)
        t_read = time.perf_counter() - t0

        from domaintune.models.encoding import batched_encoder, load_encoder_layer
        from domaintune.models.resolver import resolve_base

        t0 = time.perf_counter()
        encode = batched_encoder(load_encoder_layer(resolve_base(args.model)), args.batch_size)
        t_model = time.perf_counter() - t0
    except UserError as err:
        sys.exit(str(err))

    timings = {"encode": 0.0}

    def timed_encode(texts):
        start = time.perf_counter()
        out = encode(texts)
        timings["encode"] += time.perf_counter() - start
        return out

    t0 = time.perf_counter()
    metrics = retrieval_metrics(timed_encode, rset)
    total = time.perf_counter() - t0
    n_q, n_c = metrics["retrieval_queries"], metrics["retrieval_corpus"]

    load1 = os.getloadavg()[0]
    print(f"data: {args.esco} ({t_read:.2f}s to read)")
    print(
        f"model: {args.model} ({t_model:.1f}s to load), batch size {args.batch_size}, "
        f"{os.cpu_count()} CPUs, load average {load1:.2f} before timing"
    )
    print(
        f"queries: {n_q} distinct alternative labels ({len(rset.queries)} query/gold rows); "
        f"corpus: {n_c} preferred labels; skipped on load: {rset.skipped}"
    )
    print()
    header = (
        f"{'model':<12}{'queries':>9}{'corpus':>8}{'R@1':>8}{'R@5':>8}{'MRR':>8}"
        f"{'encode s':>10}{'score s':>9}{'total s':>9}{'queries/s':>11}"
    )
    print(header)
    print("-" * len(header))
    print(
        f"{args.model[-12:]:<12}{n_q:>9}{n_c:>8}{metrics['retrieval_r1']:>8.4f}"
        f"{metrics['retrieval_r5']:>8.4f}{metrics['retrieval_mrr']:>8.4f}"
        f"{timings['encode']:>10.2f}{total - timings['encode']:>9.2f}{total:>9.2f}"
        f"{n_q / total:>11.0f}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
