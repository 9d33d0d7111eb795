"""A process killed while writing a checkpoint leaves its temp file behind;
pruning removes it once the trial has ended, so disk stays bounded."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from click.testing import CliRunner

from domaintune._io import temp_glob
from domaintune.cli import main
from domaintune.models.trainable_encoder import CHECKPOINT_NAME

# Writes the tiny model's weights to ARGV[2] as save_weights does (atomically,
# through a temp file beside it), then hangs before the rename, to be killed.
_KILLED_WRITER = """
import sys, time
from pathlib import Path
from domaintune._io import write_atomic
from domaintune.models import weights_io
from domaintune.models.trainable_encoder import TrainableEncoder

encoder = TrainableEncoder(Path(sys.argv[1]))

def write_then_hang(f):
    weights_io.save_npz(f, encoder.variables)
    f.flush()
    print("written", flush=True)
    time.sleep(600)

write_atomic(Path(sys.argv[2]), write_then_hang)
"""


def _kill_mid_write(model: Path, target: Path) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-c", _KILLED_WRITER, str(model), str(target)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        line = proc.stdout.readline()  # blocks until the data is written
        assert line == "written\n", proc.stderr.read()
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=60)


def _search(project: Path, model: Path, trials: int) -> None:
    result = CliRunner().invoke(
        main,
        ["search", "--base", str(model), "--sts", "none", "--project-dir", str(project)]
        + ["--hp", "batch_size=32", "--epochs", "1", "--max-trials", str(trials)],
    )
    assert result.exit_code == 0, result.output


def test_pruning_removes_the_temp_file_of_a_killed_checkpoint_write(tmp_path, tiny_model_dir):
    project = tmp_path / "p"
    _search(project, tiny_model_dir, 1)
    checkpoint = project / "trial_0" / CHECKPOINT_NAME
    kept = checkpoint.read_bytes()

    _kill_mid_write(tiny_model_dir, checkpoint)  # trial 0 has ended: its temp is an orphan
    (orphan,) = project.glob(f"trial_*/{temp_glob(CHECKPOINT_NAME)}")
    assert orphan.parent == checkpoint.parent and orphan.stat().st_size > 0
    assert checkpoint.read_bytes() == kept  # the kill left the real checkpoint alone

    _search(project, tiny_model_dir, 2)  # resumes: trial 1 runs, then prunes
    assert not orphan.exists()
    assert list(project.glob(f"trial_*/{temp_glob(CHECKPOINT_NAME)}")) == []
    assert len(list(project.glob(f"trial_*/{CHECKPOINT_NAME}"))) == 1  # --keep-best 1


def test_pruning_leaves_a_trial_dir_the_oracle_does_not_know(tmp_path, tiny_model_dir):
    """A dir the oracle never recorded (an earlier run's ids, padded to another
    --max-trials' digits, interrupted before its oracle state was saved) is
    neither judged nor a crash."""
    project = tmp_path / "p"
    _search(project, tiny_model_dir, 1)
    stray = project / "trial_000" / CHECKPOINT_NAME
    stray.parent.mkdir()
    stray.write_bytes((project / "trial_0" / CHECKPOINT_NAME).read_bytes())
    _search(project, tiny_model_dir, 2)  # resumes: trial 1 ends and prunes
    assert stray.exists()
