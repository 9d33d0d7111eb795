"""Distributed search: a chief and workers as real processes on 127.0.0.1."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from domaintune.reporting.results import load_trials
from tests.tensorboard_events import read_scalars

from .conftest import run_cli, trial_status, wait_until

pytestmark = pytest.mark.slow


# A worker's trial is given up after LEASE_SECONDS without a heartbeat; they
# come every HEARTBEAT_SECONDS. Three TF processes share 2 cores here, so a
# heartbeat can be late by seconds: a live worker must miss many in a row
# before it loses its trial, and the kill test waits one lease longer.
HEARTBEAT_SECONDS, LEASE_SECONDS = 1, 20


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def common(project: Path, model: Path, port: int, trials: int = 4, epochs: int = 2):
    return [
        "--base",
        str(model),
        "--sts",
        "none",
        "--project-dir",
        str(project),
        "--max-trials",
        str(trials),
        "--epochs",
        str(epochs),
        "--hp",
        "batch_size=32",
        "--hp",
        "learning_rate=1e-3:1e-1",
        "--oracle",
        f"127.0.0.1:{port}",
        "--lease-timeout",
        str(LEASE_SECONDS),
    ]


def start(*args: str, log: Path) -> subprocess.Popen:
    env = {**os.environ, "DOMAINTUNE_HEARTBEAT_SECONDS": str(HEARTBEAT_SECONDS)}
    return subprocess.Popen(
        [sys.executable, "-m", "domaintune.cli", "search", *args],
        stdout=open(log, "w"),
        stderr=subprocess.STDOUT,
        env=env,
        start_new_session=True,
    )


def finish(procs: list[subprocess.Popen], timeout: float = 400) -> None:
    deadline = time.monotonic() + timeout
    try:
        for proc in procs:
            proc.wait(timeout=max(1, deadline - time.monotonic()))
    finally:
        for proc in procs:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)


def stop(procs: list[subprocess.Popen]) -> None:
    """Kill those still running (after a failed assertion: waiting is pointless)."""
    for proc in procs:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=30)


def trials_run_by(log: Path) -> list[str]:
    return re.findall(r"^Trial \d+/\d+ \(trial-(\w+)\)", log.read_text(), flags=re.M)


def test_chief_and_two_workers_complete_a_search(tmp_path, tiny_model_dir):
    project, port = tmp_path / "p", free_port()
    args = common(project, tiny_model_dir, port)
    chief = start("--role", "chief", *args, log=tmp_path / "chief.log")
    workers = [
        start("--role", "worker", "--worker-id", str(i), *args, log=tmp_path / f"w{i}.log")
        for i in (1, 2)
    ]
    finish([chief, *workers])
    assert [p.returncode for p in (chief, *workers)] == [0, 0, 0], (
        tmp_path / "chief.log"
    ).read_text()[-2000:]
    trials = load_trials(project)
    assert [t["status"] for t in trials] == ["COMPLETED"] * 4
    assert len({json.dumps(t["hyperparameters"], sort_keys=True) for t in trials}) == 4
    ran = trials_run_by(tmp_path / "w1.log") + trials_run_by(tmp_path / "w2.log")
    assert sorted(ran) == sorted(t["trial_id"] for t in trials)  # each by exactly one worker
    assert list(project.glob("trial_*/encoder.npz"))  # the best kept
    run_cli("export", project, "--out", tmp_path / "export")
    assert (tmp_path / "export" / "saved_model.pb").is_file()


def test_killed_worker_does_not_stall_the_search(tmp_path, tiny_model_dir):
    project, port = tmp_path / "p", free_port()
    args = common(project, tiny_model_dir, port, trials=3, epochs=4)
    chief = start("--role", "chief", *args, log=tmp_path / "chief.log")
    doomed = start("--role", "worker", "--worker-id", "1", *args, log=tmp_path / "w1.log")
    try:

        def training():  # kill it in the middle of its first trial
            states = [trial_status(p) for p in project.glob("trial_*/trial.json")]
            return "RUNNING" in states and list((project / "logs").glob("*/events.out.*"))

        assert wait_until(training, 180), "the first trial never started training"
        os.killpg(doomed.pid, signal.SIGKILL)
        doomed.wait(timeout=30)
        # The lease expires: the chief sends the trial for retry. (A worker that
        # asks before then, when every trial is handed out, is told the search
        # is over: the retry needs a worker still asking.)
        log = tmp_path / "chief.log"
        assert wait_until(lambda: "is sent for retry" in log.read_text(), LEASE_SECONDS + 60)
        survivor = start("--role", "worker", "--worker-id", "2", *args, log=tmp_path / "w2.log")
        finish([chief, survivor])
    finally:
        stop([chief, doomed])
    assert chief.returncode == 0 and survivor.returncode == 0, log.read_text()[-2000:]
    assert [t["status"] for t in load_trials(project)] == ["COMPLETED"] * 3


def test_worker_waits_for_a_late_chief(tmp_path, tiny_model_dir):
    project, port = tmp_path / "p", free_port()
    args = common(project, tiny_model_dir, port, trials=1, epochs=1)
    log = tmp_path / "w1.log"
    worker = start("--role", "worker", "--worker-id", "1", *args, log=log)
    try:

        def waiting() -> bool:  # the worker is up and has found no oracle yet
            assert worker.poll() is None, log.read_text()
            return "Waiting for the oracle at 127.0.0.1" in log.read_text()

        assert wait_until(waiting, 180, interval=0.2)
        chief = start("--role", "chief", *args, log=tmp_path / "chief.log")
        finish([worker, chief])
    finally:
        stop([worker])
    assert worker.returncode == 0 and chief.returncode == 0, log.read_text()[-2000:]
    assert [t["status"] for t in load_trials(project)] == ["COMPLETED"]


def test_wrong_oracle_address_is_a_clear_error(tmp_path, tiny_model_dir):
    args = common(tmp_path / "p", tiny_model_dir, free_port(), trials=1)
    proc = run_cli(
        "search",
        "--role",
        "worker",
        "--worker-id",
        "1",
        *args,
        "--connect-timeout",
        "2",
        check=False,
    )
    assert proc.returncode == 1
    assert "Error: No oracle answered at 127.0.0.1:" in proc.stderr
    assert "Traceback" not in proc.stderr + proc.stdout
    assert not (tmp_path / "p").exists()  # nothing half-written


def test_mirrored_strategy_on_two_logical_cpus(tmp_path, tiny_model_dir):
    project = tmp_path / "p"
    env = {**os.environ, "DOMAINTUNE_LOGICAL_CPUS": "2"}
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "domaintune.cli",
            "search",
            "--base",
            str(tiny_model_dir),
            "--sts",
            "none",
            "--project-dir",
            str(project),
            "--max-trials",
            "2",
            "--epochs",
            "3",
            "--hp",
            "batch_size=32",
            "--hp",
            "learning_rate=0.04,0.05",
            "--strategy",
            "mirrored",
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    assert "MirroredStrategy over 2 device(s)" in proc.stdout
    trials = load_trials(project)  # the second reuses the model: restore, reset on mirrors
    assert [t["status"] for t in trials] == ["COMPLETED", "COMPLETED"]
    for trial in trials:
        run = project / "logs" / f"trial-{trial['trial_id']}"
        losses = [v for _, v in read_scalars(run)["loss"]]
        assert len(losses) >= 2 and losses[-1] < losses[0]


def test_restarted_chief_resumes(tmp_path, tiny_model_dir):
    project, port = tmp_path / "p", free_port()
    args = common(project, tiny_model_dir, port, trials=3, epochs=1)
    chief = start("--role", "chief", *args, log=tmp_path / "chief1.log")
    worker = start("--role", "worker", "--worker-id", "1", *args, log=tmp_path / "w1.log")
    try:
        assert wait_until(lambda: any(t["status"] == "COMPLETED" for t in _trials(project)), 180)
        os.killpg(chief.pid, signal.SIGKILL)
        chief.wait(timeout=30)  # gone, its port free; the worker's calls wait for a chief
        assert worker.poll() is None, (tmp_path / "w1.log").read_text()[-2000:]
        chief = start("--role", "chief", *args, log=tmp_path / "chief2.log")
        finish([worker, chief])
    finally:
        stop([worker, chief])
    assert chief.returncode == 0 and worker.returncode == 0, (tmp_path / "chief2.log").read_text()[
        -2000:
    ] + (tmp_path / "w1.log").read_text()[-2000:]
    assert "Resuming the search's oracle state" in (tmp_path / "chief2.log").read_text()
    assert [t["status"] for t in load_trials(project)] == ["COMPLETED"] * 3


def _trials(project: Path) -> list[dict]:
    try:
        return load_trials(project)
    except Exception:  # the project is still being created
        return []
