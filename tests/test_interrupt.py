"""Ctrl-C: exit 130 and one line; only ``search`` promises a resume, and keeps it.

Real subprocesses get a real SIGINT, with SIGINT's default handler restored
as in a terminal (a suite started in the background passes it on ignored).
"""

from __future__ import annotations

import errno
import os
import signal
import subprocess
import sys

from domaintune.reporting.results import load_trials

from .conftest import run_cli, trial_status, wait_until

RESUMES = "A search resumes when you rerun the same command"


def _start(*args: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "domaintune.cli", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )


def _ctrl_c(proc: subprocess.Popen) -> tuple[int, str]:
    """SIGINT to the process group, as a terminal sends it; (exit status, stderr)."""
    os.killpg(proc.pid, signal.SIGINT)
    try:
        _, err = proc.communicate(timeout=90)
    except subprocess.TimeoutExpired:
        raise AssertionError("the Ctrl-C was lost: still running 90 s after it") from None
    return proc.returncode, err


def _kill(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=60)


def test_ctrl_c_during_search_exits_130_and_the_rerun_resumes(tmp_path, tiny_model_dir):
    project = tmp_path / "p"
    args = ["search", "--base", str(tiny_model_dir), "--sts", "none", "--project-dir", project]
    args += ["--hp", "batch_size=32", "--epochs", "1", "--hp", "learning_rate=1e-3:1e-1"]
    proc = _start(*map(str, args), "--max-trials", "200")  # still running when interrupted
    try:

        def first_done() -> bool:  # trial ids are padded to the digits of --max-trials
            assert proc.poll() is None, proc.communicate()
            return any(trial_status(p) == "COMPLETED" for p in project.glob("trial_*/trial.json"))

        assert wait_until(first_done, 300), "the first trial never completed"
        status, err = _ctrl_c(proc)
    finally:
        _kill(proc)
    assert status == 130, err
    assert "Traceback" not in err
    assert f"Interrupted. {RESUMES}" in err
    finished = {t["trial_id"]: t for t in load_trials(project) if t["status"] == "COMPLETED"}
    assert finished

    # Rerun (max_trials does not define a search): one more trial, none repeated.
    more = str(len(finished) + 1)
    output = run_cli(*args, "--max-trials", more).stdout
    assert f"Resuming: {len(finished)} trial(s) already finished" in output
    after = {t["trial_id"]: t for t in load_trials(project) if t["status"] == "COMPLETED"}
    assert len(after) == len(finished) + 1
    for trial_id, before in finished.items():
        assert after[trial_id] == before


def test_ctrl_c_in_another_command_is_a_plain_interrupted(tmp_path):
    """``evaluate`` blocked reading its --sts input (a FIFO no one writes)."""
    fifo = tmp_path / "sts.fifo"
    os.mkfifo(fifo)
    proc = _start("evaluate", "--sts", str(fifo), "--model", "use-m3")
    writer = None
    try:

        def reading() -> bool:  # the write end opens once a reader has it open
            nonlocal writer
            assert proc.poll() is None, proc.communicate()
            try:
                writer = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
            except OSError as exc:
                assert exc.errno == errno.ENXIO, exc
                return False
            return True

        assert wait_until(reading, 120), "evaluate never opened its --sts input"
        status, err = _ctrl_c(proc)
    finally:
        _kill(proc)
        if writer is not None:
            os.close(writer)
    assert status == 130, err
    assert "Traceback" not in err
    lines = [line for line in err.splitlines() if line.strip()]
    assert lines[-1] == "Interrupted.", err
    assert RESUMES not in err
