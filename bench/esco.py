"""ESCO pair building: time, peak memory and pairs/second of ``domaintune data esco``.

Builds the pairs of the shared ESCO export (``../shared/data/esco``:
``occupations_en.csv`` with ``ISCOGroups_en.csv``) with the command's defaults
and ``--holdout-fraction 0.2``, in stages (read, build, write) so a slow stage
shows. Each stage is timed ``--repeats`` times and the median reported; a
separate, untimed run under ``tracemalloc`` gives each stage's peak Python heap
(tracemalloc slows code down, so it never overlaps the timed runs). The
process's peak RSS (``resource.getrusage``) includes the interpreter, numpy and
every run, so it is an upper bound of what the build needs.

Run from the repository root: ``python bench/esco.py [--repeats N]``.
Then the untuned use-m3's retrieval on the held-out occupations
(``--skip-retrieval`` leaves it out).
"""

from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

import _measure
from _measure import heldout_retrieval, median

DEFAULT_ESCO = _measure.SHARED_DATA / "esco"
STAGES = ("read", "build", "write", "total")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description="Time and memory of building ESCO training pairs.")
    p.add_argument(
        "--esco",
        default=DEFAULT_ESCO,
        help="folder with occupations_<lang>.csv and ISCOGroups_en.csv; a relative "
        f"path is taken from the repository root (default: {DEFAULT_ESCO})",
    )
    p.add_argument(
        "--repeats", type=int, default=3, help="timed runs, the median is reported (default 3)"
    )
    p.add_argument("--holdout-fraction", type=float, default=0.2, help="default 0.2")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--skip-retrieval",
        action="store_true",
        help="only time the build (no TensorFlow, no model)",
    )
    args = p.parse_args(argv)
    if args.repeats < 1:
        p.error("--repeats must be at least 1")
    return args


def build_once(
    occupation_paths: list[Path],
    isco_path: Path | None,
    holdout_fraction: float,
    seed: int,
    out_dir: Path,
    measure_memory: bool = False,
) -> tuple[dict[str, float], dict[str, int], object]:
    """Read, build and write once: (seconds per stage, peak traced bytes per stage, BuildResult)."""
    from domaintune.data.esco import build_pairs
    from domaintune.data.esco_exports import read_isco_groups, read_occupations
    from domaintune.data.esco_output import write_pairs

    seconds: dict[str, float] = {}
    peaks: dict[str, int] = {}
    result = None

    def stage(name: str, fn):
        if measure_memory:
            tracemalloc.start()
        t0 = time.perf_counter()
        value = fn()
        seconds[name] = time.perf_counter() - t0
        if measure_memory:
            peaks[name] = tracemalloc.get_traced_memory()[1]
            tracemalloc.stop()
        return value

    occupations, isco = stage(
        "read",
        lambda: (
            read_occupations(occupation_paths),
            read_isco_groups(isco_path) if isco_path else None,
        ),
    )
    result = stage(
        "build",
        lambda: build_pairs(
            occupations, seed=seed, holdout_fraction=holdout_fraction, isco_groups=isco
        ),
    )
    holdout = out_dir / "esco.holdout.csv" if result.heldout_uris else None
    stage("write", lambda: write_pairs(result, out_dir / "esco.csv", holdout))
    seconds["total"] = sum(seconds.values())
    if measure_memory:
        peaks["total"] = max(peaks.values())
    return seconds, peaks, result


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    esco_dir = _measure.repo_path(args.esco).resolve()
    occupation_paths = sorted(esco_dir.glob("occupations_*.csv"))
    if not occupation_paths:
        print(f"No occupations_<lang>.csv in {esco_dir}; pass --esco DIR.", file=sys.stderr)
        return 1
    isco_path = esco_dir / "ISCOGroups_en.csv"
    isco_path = isco_path if isco_path.is_file() else None

    with tempfile.TemporaryDirectory() as tmp:
        out_dir = Path(tmp)
        inputs = (occupation_paths, isco_path, args.holdout_fraction, args.seed, out_dir)
        build_once(*inputs)  # warm-up: imports, caches
        runs = [build_once(*inputs) for _ in range(args.repeats)]
        _, peaks, result = build_once(*inputs, measure_memory=True)
        sizes = {p.name: p.stat().st_size for p in out_dir.glob("esco*.csv")}
    max_rss_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB

    n_pairs = len(result.train) + len(result.holdout)
    print(
        f"ESCO export: {', '.join(p.name for p in occupation_paths)}"
        f"{' + ' + isco_path.name if isco_path else ''} in {esco_dir}"
    )
    print(
        f"{result.n_occupations:,} occupations -> {len(result.train):,} training + "
        f"{len(result.holdout):,} held-out pairs "
        f"({len(result.heldout_uris):,} occupations held out, "
        f"{result.stats['dropped_mixed']:,} mixed pairs dropped); "
        + ", ".join(f"{name} {size / 1e6:.1f} MB" for name, size in sorted(sizes.items()))
    )
    print(
        f"holdout fraction {args.holdout_fraction:g}, seed {args.seed}, "
        f"median of {args.repeats} runs\n"
    )
    header = f"{'stage':<8}{'median s':>10}{'min s':>9}{'pairs/s':>12}{'peak heap MiB':>15}"
    print(header)
    print("-" * len(header))
    for name in STAGES:
        times = [seconds[name] for seconds, _, _ in runs]
        med = median(times)
        rate = f"{n_pairs / med:,.0f}" if name in ("build", "total") else ""
        print(f"{name:<8}{med:>10.3f}{min(times):>9.3f}{rate:>12}{peaks[name] / 2**20:>15.1f}")
    print(f"\npeak RSS of the process (interpreter, numpy and all runs): {max_rss_mib:.0f} MiB")
    if not args.skip_retrieval:
        holdout_retrieval_of_base(occupation_paths, result)
    return 0


def holdout_retrieval_of_base(occupation_paths: list[Path], result) -> None:
    """Retrieval of the untuned use-m3 on the held-out occupations (English
    alternative label -> preferred label among the held-out occupations)."""
    from domaintune.data.esco_exports import read_occupations
    from domaintune.evaluation.retrieval import retrieval_metrics
    from domaintune.models.encoding import batched_encoder, load_encoder_layer
    from domaintune.models.resolver import resolve_base

    rset = heldout_retrieval(read_occupations(occupation_paths), result.heldout_uris)
    encode = batched_encoder(load_encoder_layer(resolve_base("use-m3")))
    started = time.perf_counter()
    found = retrieval_metrics(encode, rset)
    seconds = time.perf_counter() - started
    print(
        f"\nuse-m3 (untuned) retrieval on the holdout: {found['retrieval_queries']:,} queries, "
        f"corpus {found['retrieval_corpus']:,}: recall@1 {found['retrieval_r1']:.4f}, "
        f"recall@5 {found['retrieval_r5']:.4f}, MRR {found['retrieval_mrr']:.4f} "
        f"({seconds:.1f}s)"
    )


if __name__ == "__main__":
    sys.exit(main())
